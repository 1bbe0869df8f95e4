// Flash-attention forward on CPU, packed variable-length sequences.
//
// Layout: q [T, Hq, D], k and v [T, Hkv, D] (any token/head strides, head dim
// contiguous), sequences given as token ranges (seqStarts, seqLens): tokens
// attend only within their own range (block-diagonal attention), causally if
// asked. Hq must be a multiple of Hkv (grouped-query attention: query head h
// reads kv head h / (Hq/Hkv)). Outputs: out [T, Hq, D] contiguous and the
// per-row logsumexp of the scaled scores, lse [T, Hq], saved for backward.
// Rows outside every range get out = 0 and lse = -inf.
//
// Memory is linear in T: one task = (sequence, query head, block of 64
// queries) keeps a 64-query tile in the transposed layout (head dim × query),
// walks the keys in blocks of 64 with an online softmax (running max and
// sum), and never holds more than a 64×64 score tile. K and V are first
// copied head-major (each head's rows contiguous), so tasks stream them. Vectorising along the
// query axis makes the row max / exp / sum of the online softmax plain
// vertical vector ops, and K and V are read in their own layout (no packing
// per key block). Tasks are claimed dynamically, largest first.
#include "attention_kernels.h"
#include "cpu.h"

namespace sv {
namespace attn {
namespace {

struct QTask {
  int32_t seq, head, block;
};

template <typename T, typename Ops>
void forward(const FwdArgs<T>& args) {
  FwdArgs<T> a = args;
  std::unique_ptr<Buf<T>> kHeads, vHeads;  // tasks stream the K/V rows of one head: make them contiguous
  const bool copy = worth_head_major(a.seqs);
  a.k = head_major(a.k, a.T_, a.Hkv, a.D, kHeads, copy);
  a.v = head_major(a.v, a.T_, a.Hkv, a.D, vHeads, copy);
  const int64_t D = a.D, Hq = a.Hq, G = a.Hq / a.Hkv;
  // Task order: longest sequences first; within a sequence head by head (so
  // the tasks running at once share one head's K/V in cache) and, per head,
  // the costliest (latest, when causal) query blocks first so the tail of the
  // queue is small tasks that even out the threads.
  std::vector<int64_t> seqOrder(a.seqs.n);
  for (int64_t s = 0; s < a.seqs.n; s++) seqOrder[s] = s;
  std::stable_sort(seqOrder.begin(), seqOrder.end(), [&](int64_t x, int64_t y) { return a.seqs.len[x] > a.seqs.len[y]; });
  std::vector<QTask> tasks;
  for (int64_t s : seqOrder) {
    const int64_t nb = (a.seqs.len[s] + kBq - 1) / kBq;
    for (int64_t h = 0; h < Hq; h++)
      for (int64_t i = 0; i < nb; i++)
        tasks.push_back({static_cast<int32_t>(s), static_cast<int32_t>(h), static_cast<int32_t>(a.causal ? nb - 1 - i : i)});
  }

  // Per-slot scratch: Qt [D][Bq], Ot [D][Bq], St [Bk][Bq], m, l, alpha [Bq].
  const int64_t per = 2 * D * kBq + kBk * kBq + 3 * kBq;
  const int64_t nslots = slots_for(static_cast<int64_t>(tasks.size()));
  Buf<T> scratch(static_cast<size_t>(per * nslots));

  run_tasks(static_cast<int64_t>(tasks.size()), nslots, [&](int64_t slot, int64_t ti) {
    const QTask& task = tasks[ti];
    const int64_t h = task.head, hk = h / G;
    const int64_t start = a.seqs.start[task.seq], L = a.seqs.len[task.seq];
    const int64_t q0 = task.block * kBq, qn = std::min(kBq, L - q0);
    T* Qt = scratch.get() + slot * per;
    T* Ot = Qt + D * kBq;
    T* St = Ot + D * kBq;
    T* m = St + kBk * kBq;
    T* l = m + kBq;
    T* alpha = l + kBq;
    std::fill(m, m + kBq, neg_inf<T>());
    std::fill(l, l + kBq, T(0));
    const int64_t kend = a.causal ? q0 + qn : L;
    // Qt[d][i] = scale·log2(e)·q_i[d]: scores come out scaled, in log2 units.
    Ops::transpose(a.q.at(start + q0, h), a.q.st, qn, D, Qt, kBq, a.scale * kLog2e<T>, nullptr);
    for (int64_t k0 = 0; k0 < kend; k0 += kBk) {
      const int64_t kn = std::min(kBk, kend - k0);
      // St[j][i] = k_j · (scale q_i)
      Ops::mm(kn, qn, D, a.k.at(start + k0, hk), a.k.st, 1, Qt, kBq, St, kBq, false, nullptr);
      if (a.causal && k0 + kn - 1 > q0) {  // tile crosses the diagonal: key j sees queries i >= j
        for (int64_t j = 0; j < kn; j++) {
          const int64_t cut = std::min(qn, k0 + j - q0);
          for (int64_t i = 0; i < cut; i++) St[j * kBq + i] = neg_inf<T>();
        }
      }
      Ops::fwd_softmax(St, kBq, kn, qn, m, l, alpha);
      // Ot[d][i] = alpha[i]·Ot[d][i] + Σ_j v_j[d] · P[j][i]  (the first block initialises Ot)
      Ops::mm(D, qn, kn, a.v.at(start + k0, hk), 1, a.v.st, St, kBq, Ot, kBq, k0 > 0, alpha);
    }
    for (int64_t i = 0; i < qn; i++) {
      a.lse[(start + q0 + i) * Hq + h] = l[i] > T(0) ? (m[i] + std::log2(l[i])) * kLn2<T> : neg_inf<T>();
      alpha[i] = l[i] > T(0) ? T(1) / l[i] : T(0);
    }
    // out[i][d] = Ot[d][i] / l[i]
    Ops::transpose(Ot, kBq, D, qn, a.out + ((start + q0) * Hq + h) * D, Hq * D, T(1), alpha);
  });
  zero_gaps(a.out, Hq * D, a.T_, a.seqs);
  zero_gaps(a.lse, Hq, a.T_, a.seqs, neg_inf<T>());
}

template <typename T>
void run_forward(const Napi::CallbackInfo& info, const char* op) {
  FwdArgs<T> a = forward_args<T>(info, op);
  if constexpr (std::is_same_v<T, float>) {
    if (isa() == Isa::Avx512) return forward<float, Avx512Ops>(a);
  }
  forward<T, PortableOps<T>>(a);
}

}  // namespace

// attentionForward(q, k, v, out, lse, seqStarts: Int32Array, seqLens: Int32Array,
//                  dims [T, Hq, Hkv, D], strides [qT, qH, kT, kH, vT, vH], causal, scale)
// f32 or f64 (all buffers the same type). Layout and semantics: file header.
SV_KERNEL(attentionForward) {
  const char* op = "attentionForward";
  checkArgc(info, 11, op);
  if (is_f64(info, 0)) run_forward<double>(info, op);
  else run_forward<float>(info, op);
  return info.Env().Undefined();
}

}  // namespace attn
}  // namespace sv
