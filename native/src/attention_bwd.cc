// Flash-attention backward on CPU (FlashAttention-2 recomputation), same
// packed varlen layout as attention_fwd.cc. From q, k, v, out, dout and the
// forward's lse it recomputes each probability tile P = exp(scale·q·kᵀ − lse)
// and accumulates
//   dV += Pᵀ dO,  dP = dO Vᵀ,  dS = scale · P ∘ (dP − Δ),  Δ_i = dO_i · O_i,
//   dQ += dS K,   dK += dSᵀ Q.
// One task = (sequence, query head): it walks key blocks (outer; dK and dV
// tiles stay in scratch) and query blocks (inner; dQ rows of this head are
// owned by the task, so no atomics and no dependence on the thread count).
// Grouped-query attention: each query head writes its own dK/dV into a
// [T, Hq, D] scratch, then a second pass sums the heads of each group in a
// fixed order (no scratch when Hq == Hkv). q, k, v and dout are first copied
// head-major and dQ is accumulated head-major (each head's rows contiguous,
// so tiles stream them instead of striding by H·D, which costs a TLB miss per
// row at 16×64 heads). Scratch is a few copies of q: linear in T.
// Rows outside every sequence get zero gradients.
#include "attention_kernels.h"
#include "cpu.h"
#include <memory>

namespace sv {
namespace attn {
namespace {

template <typename T>
struct BwdArgs {
  Rows<const T> q, k, v, out, dout;
  const T* lse;
  T *dq, *dk, *dv;
  Seqs seqs;
  int64_t T_, Hq, Hkv, D;
  bool causal;
  T scale;
};

template <typename T, typename Ops>
void backward(const BwdArgs<T>& args) {
  BwdArgs<T> a = args;
  const int64_t D = a.D, Hq = a.Hq, Hkv = a.Hkv, G = Hq / Hkv;
  // Head-major copies of the operands the tiles stream (each head's rows
  // contiguous), and dQ accumulated head-major then scattered to [T, Hq, D].
  std::unique_ptr<Buf<T>> qHeads, kHeads, vHeads, gHeads, dqHeads;
  const bool copy = worth_head_major(a.seqs);
  a.q = head_major(a.q, a.T_, Hq, D, qHeads, copy);
  a.k = head_major(a.k, a.T_, Hkv, D, kHeads, copy);
  a.v = head_major(a.v, a.T_, Hkv, D, vHeads, copy);
  a.dout = head_major(a.dout, a.T_, Hq, D, gHeads, copy);
  const bool dqScatter = copy && Hq > 1 && a.T_ > 1;
  if (dqScatter) dqHeads.reset(new Buf<T>(static_cast<size_t>(a.T_ * Hq * D)));
  T* const dqBase = dqScatter ? dqHeads->get() : a.dq;
  const int64_t dqTok = dqScatter ? D : Hq * D, dqHead = dqScatter ? a.T_ * D : D;
  // Where each (token, query head) writes its dK/dV rows.
  const bool grouped = G > 1;
  std::unique_ptr<Buf<T>> dkh, dvh;
  if (grouped) {
    dkh.reset(new Buf<T>(static_cast<size_t>(a.T_ * Hq * D)));
    dvh.reset(new Buf<T>(static_cast<size_t>(a.T_ * Hq * D)));
    zero_gaps(dkh->get(), Hq * D, a.T_, a.seqs);  // the group sum below reads every row
    zero_gaps(dvh->get(), Hq * D, a.T_, a.seqs);
  }
  T* dkDst = grouped ? dkh->get() : a.dk;
  T* dvDst = grouped ? dvh->get() : a.dv;
  const int64_t dstHeads = grouped ? Hq : Hkv;

  struct Task { int32_t seq, head; int64_t cost; };
  std::vector<Task> tasks;
  for (int64_t s = 0; s < a.seqs.n; s++)
    for (int64_t h = 0; h < Hq; h++) {
      const int64_t L = a.seqs.len[s];
      if (L > 0) tasks.push_back({static_cast<int32_t>(s), static_cast<int32_t>(h), L * L});
    }
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& x, const Task& y) { return x.cost > y.cost; });

  // Per-slot scratch: Kt, Vt [D][Bk]; S/P, dP/dS [Bq][Bk]; dKt, dVt [Bk][D]; delta, lse [Lmax].
  const int64_t Lmax = a.seqs.max_len();
  const int64_t per = 4 * D * kBk + 2 * kBq * kBk + 2 * Lmax;
  const int64_t nslots = slots_for(static_cast<int64_t>(tasks.size()));
  Buf<T> scratch(static_cast<size_t>(per * nslots));

  run_tasks(static_cast<int64_t>(tasks.size()), nslots, [&](int64_t slot, int64_t ti) {
    const int64_t h = tasks[ti].head, hk = h / G, dstH = grouped ? h : hk;
    const int64_t start = a.seqs.start[tasks[ti].seq], L = a.seqs.len[tasks[ti].seq];
    T* Kt = scratch.get() + slot * per;
    T* Vt = Kt + D * kBk;
    T* S = Vt + D * kBk;
    T* dP = S + kBq * kBk;
    T* dKt = dP + kBq * kBk;
    T* dVt = dKt + kBk * D;
    T* delta = dVt + kBk * D;
    T* lse = delta + Lmax;
    T* dq = dqBase + start * dqTok + h * dqHead;  // row i of this head: dq + i*ldq
    const int64_t ldq = dqTok;
    for (int64_t i = 0; i < L; i++) {
      const T* o = a.out.at(start + i, h);
      const T* g = a.dout.at(start + i, h);
      T acc = 0;
      for (int64_t d = 0; d < D; d++) acc += g[d] * o[d];
      delta[i] = acc;
      lse[i] = a.lse[(start + i) * Hq + h] * kLog2e<T>;  // the kernels work in log2 units
    }
    for (int64_t k0 = 0; k0 < L; k0 += kBk) {
      const int64_t kn = std::min(kBk, L - k0);
      // Transposed key/value tiles; scale·log2(e) folded into K.
      Ops::transpose(a.k.at(start + k0, hk), a.k.st, kn, D, Kt, kBk, a.scale * kLog2e<T>, nullptr);
      Ops::transpose(a.v.at(start + k0, hk), a.v.st, kn, D, Vt, kBk, T(1), nullptr);
      const T* kRows = a.k.at(start + k0, hk);
      const int64_t qFirst = a.causal ? k0 : 0;
      for (int64_t q0 = qFirst; q0 < L; q0 += kBq) {
        const int64_t qn = std::min(kBq, L - q0);
        // The first query block initialises the dK/dV tiles; key block 0 (seen
        // by every query block, causal or not) initialises the dQ rows.
        const bool accKV = q0 > qFirst, accQ = k0 > 0;
        const T* qRows = a.q.at(start + q0, h);
        const T* gRows = a.dout.at(start + q0, h);
        Ops::mm(qn, kn, D, qRows, a.q.st, 1, Kt, kBk, S, kBk, false, nullptr);  // S = scale·log2(e)·Q Kᵀ
        Ops::bwd_probs(S, kBk, qn, kn, lse + q0, a.causal, q0 - k0 + 1);       // P
        Ops::mm(kn, D, qn, S, 1, kBk, gRows, a.dout.st, dVt, D, accKV, nullptr);  // dV += Pᵀ dO
        Ops::mm(qn, kn, D, gRows, a.dout.st, 1, Vt, kBk, dP, kBk, false, nullptr);  // dP = dO Vᵀ
        Ops::bwd_dscores(S, dP, kBk, qn, kn, delta + q0, a.scale);               // dS
        Ops::mm(qn, D, kn, dP, kBk, 1, kRows, a.k.st, dq + q0 * ldq, ldq, accQ, nullptr);  // dQ += dS K
        Ops::mm(kn, D, qn, dP, 1, kBk, qRows, a.q.st, dKt, D, accKV, nullptr);  // dK += dSᵀ Q
      }
      for (int64_t j = 0; j < kn; j++) {
        const int64_t row = (start + k0 + j) * dstHeads + dstH;
        std::copy(dKt + j * D, dKt + (j + 1) * D, dkDst + row * D);
        std::copy(dVt + j * D, dVt + (j + 1) * D, dvDst + row * D);
      }
    }
  });

  if (dqScatter) {  // padding rows copy unwritten bytes here; zero_gaps below overwrites them
    parallel_for(a.T_, std::max<int64_t>(1, 16384 / (Hq * D)), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; t++)
        for (int64_t h = 0; h < Hq; h++) std::memcpy(a.dq + (t * Hq + h) * D, dqBase + t * D + h * dqHead, sizeof(T) * D);
    });
  }
  if (grouped) {  // dk[t][hk] = Σ_g dkh[t][hk·G + g], in order g = 0..G-1 (padding rows of dkh are zero)
    parallel_for(a.T_, std::max<int64_t>(1, 4096 / (Hq * D)), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; t++)
        for (int64_t hk = 0; hk < Hkv; hk++) {
          T* ok = a.dk + (t * Hkv + hk) * D;
          T* ov = a.dv + (t * Hkv + hk) * D;
          const T* ik = dkDst + (t * Hq + hk * G) * D;
          const T* iv = dvDst + (t * Hq + hk * G) * D;
          for (int64_t d = 0; d < D; d++) {
            T sk = ik[d], sv = iv[d];
            for (int64_t g = 1; g < G; g++) {
              sk += ik[g * D + d];
              sv += iv[g * D + d];
            }
            ok[d] = sk;
            ov[d] = sv;
          }
        }
    });
  }
  zero_gaps(a.dq, Hq * D, a.T_, a.seqs);
  zero_gaps(a.dk, Hkv * D, a.T_, a.seqs);
  zero_gaps(a.dv, Hkv * D, a.T_, a.seqs);
}

template <typename T>
void run_backward(const Napi::CallbackInfo& info, const char* op) {
  auto dims = ints(info, 11, op, "dims [T, Hq, Hkv, D]", 4);
  auto st = ints(info, 12, op, "strides [qT, qH, kT, kH, vT, vH, oT, oH, gT, gH]", 10);
  const int64_t T_ = dims[0], Hq = dims[1], Hkv = dims[2], D = dims[3];
  check(T_ >= 0 && Hq >= 1 && Hkv >= 1 && D >= 1 && Hq % Hkv == 0,
        std::string(op) + ": invalid dims " + shapeStr({T_, Hq, Hkv, D}) + " (need Hq a multiple of Hkv)");
  BwdArgs<T> a;
  a.q = rows_of(arr<T>(info, 0, op, "q"), T_, Hq, D, st[0], st[1], op, "q");
  a.k = rows_of(arr<T>(info, 1, op, "k"), T_, Hkv, D, st[2], st[3], op, "k");
  a.v = rows_of(arr<T>(info, 2, op, "v"), T_, Hkv, D, st[4], st[5], op, "v");
  a.out = rows_of(arr<T>(info, 3, op, "out"), T_, Hq, D, st[6], st[7], op, "out");
  a.dout = rows_of(arr<T>(info, 4, op, "dout"), T_, Hq, D, st[8], st[9], op, "dout");
  auto lse = arr<T>(info, 5, op, "lse");
  auto dq = arr<T>(info, 6, op, "dq");
  auto dk = arr<T>(info, 7, op, "dk");
  auto dv = arr<T>(info, 8, op, "dv");
  need(lse, T_ * Hq, op, "lse");
  need(dq, T_ * Hq * D, op, "dq");
  need(dk, T_ * Hkv * D, op, "dk");
  need(dv, T_ * Hkv * D, op, "dv");
  a.lse = lse.ptr;
  a.dq = dq.ptr;
  a.dk = dk.ptr;
  a.dv = dv.ptr;
  a.seqs = seqs_of(arr<int32_t>(info, 9, op, "seqStarts"), arr<int32_t>(info, 10, op, "seqLens"), T_, op);
  a.T_ = T_;
  a.Hq = Hq;
  a.Hkv = Hkv;
  a.D = D;
  a.causal = boolean(info, 13);
  a.scale = static_cast<T>(f64(info, 14, op, "scale"));
  if constexpr (std::is_same_v<T, float>) {
    if (isa() == Isa::Avx512) return backward<float, Avx512Ops>(a);
  }
  backward<T, PortableOps<T>>(a);
}

}  // namespace

// attentionBackward(q, k, v, out, dout, lse, dq, dk, dv, seqStarts, seqLens,
//                   dims [T, Hq, Hkv, D], strides [qT, qH, kT, kH, vT, vH, oT, oH, gT, gH], causal, scale)
// dq [T, Hq, D], dk and dv [T, Hkv, D] are contiguous and fully overwritten.
SV_KERNEL(attentionBackward) {
  const char* op = "attentionBackward";
  checkArgc(info, 15, op);
  if (is_f64(info, 0)) run_backward<double>(info, op);
  else run_backward<float>(info, op);
  return info.Env().Undefined();
}

}  // namespace attn
}  // namespace sv
