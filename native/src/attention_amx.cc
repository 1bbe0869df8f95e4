// bf16 flash-attention forward on AMX tiles: the driver (numerics and packed
// layouts: attention_amx.h; per-block kernel: attention_amx_block.cc). Same
// semantics and argument layout as attentionForward (attention_fwd.cc):
// packed variable-length sequences, causal or not, grouped-query attention.
//
// Tasks, claimed dynamically: (sequence, query head, block of 64 queries) for
// sequences longer than 64, whose Q/K/V are packed once up front in token
// order (one sequential sweep over the f32 inputs); and one task per short
// sequence (Qwen2.5-VL's 64-patch windows) that packs that sequence's rows of
// all heads into its own scratch, then runs each head. Each output row is
// computed by one task in a fixed order: results do not depend on the thread count.
#include "attention_amx.h"
#include "cpu.h"
#include "gemm_bf16.h"
#include <cmath>

namespace sv {
namespace attn {
namespace {

constexpr int64_t kQ = kAmxQ;

struct QTask {
  int32_t seq, head, block;
};

struct SlotScratch {
  uint16_t* Qa;    // short sequences, all heads: [Hq][kQ][Dp] bf16
  uint32_t* Ktmp;  // [Hkv][kQ][Dp/2]
  uint32_t* Ka;    // [Hkv][kQ/16][Dp/2][16]
  uint32_t* Va;    // [Hkv][kQ/2][Dv]
  AmxBlockScratch blk;
};

// A task: (sequence, query head, query block) for a sequence with shared
// packed K/V (block >= 0), or a whole short sequence, all heads (block < 0):
// its q, k, v rows are fetched in one sweep and each kv head is packed once
// into the slot's scratch for its query heads.
void run_task(const AmxArgs& a, const AmxGeom& g, const uint16_t* Qp, const uint32_t* Kp, const uint32_t* Vp,
              const QTask& t, const SlotScratch& w) {
  const int64_t start = a.seqs.start[t.seq], L = a.seqs.len[t.seq], pst = g.pst[t.seq], G = a.Hq / a.Hkv;
  if (t.block >= 0) {
    const int64_t hk = t.head / G, q0 = t.block * kQ;
    AmxBlockScratch wq = w.blk;
    wq.Qs = Qp + (t.head * g.P + pst + q0) * g.Dp;
    amx_query_block(a, g, t.head, start, L, q0, Kp + (hk * g.P + pst) * (g.Dp / 2), Vp + (hk * (g.P / 2) + pst / 2) * g.Dv,
                    wq);
    return;
  }
  amx_pack_short(a.q, a.k, a.v, start, L, a.Hq, a.Hkv, a.D, g.Dp, g.Dv, w.Qa, w.Ktmp, w.Ka, w.Va);
  AmxBlockScratch wh = w.blk;
  for (int64_t h = 0; h < a.Hq; h++) {
    const int64_t hk = h / G;
    wh.Qs = w.Qa + h * kQ * g.Dp;
    amx_query_block(a, g, h, start, L, 0, w.Ka + hk * kQ * (g.Dp / 2), w.Va + hk * (kQ / 2) * g.Dv, wh);
  }
}

// Working memory of forward_amx, kept per calling thread (JS main thread or a
// worker) and grown on demand: a fresh allocation per call would page-fault
// (and clear) every page of it again, which costs as much as a small prefill.
float* arena(size_t floats) {
  thread_local std::unique_ptr<Buf<float>> buf;
  if (!buf || buf->size() < floats) {
    buf.reset();
    buf.reset(new Buf<float>(floats + floats / 8));
  }
  return buf->get();
}

void forward_amx(const AmxArgs& a) {
  const AmxGeom g = amx_geometry(a.seqs, a.T_, a.Hq, a.Hkv, a.D, kAmxShortMax);
  // Task order as in attention_fwd.cc: longest sequences first, head by head
  // (tasks running together share one head's K/V), costliest causal blocks first.
  std::vector<int64_t> order(a.seqs.n);
  for (int64_t s = 0; s < a.seqs.n; s++) order[s] = s;
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a.seqs.len[x] > a.seqs.len[y]; });
  std::vector<QTask> tasks;
  for (int64_t s : order) {
    if (g.pst[s] < 0) {  // short: one task for all heads
      if (a.seqs.len[s] > 0) tasks.push_back({static_cast<int32_t>(s), 0, -1});
      continue;
    }
    const int64_t nb = (a.seqs.len[s] + kQ - 1) / kQ;
    for (int64_t h = 0; h < a.Hq; h++)
      for (int64_t i = 0; i < nb; i++)
        tasks.push_back({static_cast<int32_t>(s), static_cast<int32_t>(h), static_cast<int32_t>(a.causal ? nb - 1 - i : i)});
  }
  // Per-slot scratch, each piece 64-byte aligned: [Qa, Ktmp, Ka, Va,] then the block kernel's.
  const bool anyShort = std::any_of(g.pst.begin(), g.pst.end(), [](int64_t p) { return p < 0; });
  const int64_t qaF = anyShort ? a.Hq * kQ * g.Dp / 2 : 0;  // sizes in floats (4 bytes)
  const int64_t kaF = anyShort ? a.Hkv * kQ * g.Dp / 2 : 0;  // Ka, and Ktmp (Hkv·64 rows of Dp/2)
  const int64_t vaF = anyShort ? a.Hkv * kQ / 2 * g.Dv : 0;
  const int64_t head = round_up(qaF, 16) + 2 * round_up(kaF, 16) + round_up(vaF, 16);
  const int64_t per = head + round_up(amx_block_scratch_floats(g.Dv), 16);
  const int64_t nslots = slots_for(static_cast<int64_t>(tasks.size()));
  // Shared packed operands, then the slots' scratch, in one per-thread arena (in floats).
  const int64_t qpF = round_up(a.Hq * g.P * g.Dp / 2, 16), kpF = round_up(a.Hkv * g.P * g.Dp / 2, 16);
  const int64_t vpF = round_up(a.Hkv * (g.P / 2) * g.Dv, 16);
  float* mem = arena(static_cast<size_t>(qpF + kpF + vpF + per * nslots));
  uint16_t* Qp = reinterpret_cast<uint16_t*>(mem);
  uint32_t* Kp = reinterpret_cast<uint32_t*>(mem + qpF);
  uint32_t* Vp = reinterpret_cast<uint32_t*>(mem + qpF + kpF);
  float* scratch = mem + qpF + kpF + vpF;
  amx_pack_long(a.q, a.k, a.v, a.seqs, g, Qp, Kp, Vp);
  run_tasks(static_cast<int64_t>(tasks.size()), nslots, [&](int64_t slot, int64_t ti) {
    float* p = scratch + slot * per;
    SlotScratch w;
    w.Qa = reinterpret_cast<uint16_t*>(p);
    p += round_up(qaF, 16);
    w.Ktmp = reinterpret_cast<uint32_t*>(p);
    p += round_up(kaF, 16);
    w.Ka = reinterpret_cast<uint32_t*>(p);
    p += round_up(kaF, 16);
    w.Va = reinterpret_cast<uint32_t*>(p);
    w.blk = amx_block_scratch(scratch + slot * per + head, g.Dv);
    run_task(a, g, Qp, Kp, Vp, tasks[ti], w);
  });
  zero_gaps(a.out, a.Hq * a.D, a.T_, a.seqs);
  zero_gaps(a.lse, a.Hq, a.T_, a.seqs, neg_inf<float>());
}

}  // namespace

bool amx_attention_available() {
  return isa() == Isa::Avx512 && cpu().avx512bf16 && gemm::bf16_amx_available();
}

// attentionForwardBf16(q, k, v, out, lse, seqStarts, seqLens, dims [T, Hq, Hkv, D],
//                      strides [qT, qH, kT, kH, vT, vH], causal, scale): Float32Arrays;
// the arguments and outputs of attentionForward, computed with bf16 products
// (numerics: attention_amx.h). Throws where attentionBf16Available() is false.
SV_KERNEL(attentionForwardBf16) {
  const char* op = "attentionForwardBf16";
  checkArgc(info, 11, op);
  check(amx_attention_available(), std::string(op) + ": needs AMX-BF16 (granted by the OS) and AVX-512 enabled");
  AmxArgs a = forward_args<float>(info, op);
  check(a.scale > 0.0f && std::isfinite(a.scale), std::string(op) + ": scale must be positive and finite, got " + std::to_string(a.scale));
  forward_amx(a);
  return info.Env().Undefined();
}

// attentionBf16Available() → whether attentionForwardBf16 can run (AMX-BF16
// granted, avx512_bf16, ISA cap at AVX-512).
SV_KERNEL(attentionBf16Available) { return Napi::Boolean::New(info.Env(), amx_attention_available()); }

}  // namespace attn
}  // namespace sv
