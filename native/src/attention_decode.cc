// Attention of a few new tokens against a KV cache (generation).
//
// Cache layout: k and v are [B, Hkv, Smax, D] (strides for b, h and the
// position are free; the head dim is contiguous), and positions
// [0, lengths[b]) of sequence b are valid. With the position axis inside the
// head axis, one (sequence, kv head) is a single contiguous run of keys, which
// decode streams once per step — the work is bound by memory bandwidth, so
// that is the access pattern to optimise. The caller appends a step's keys
// and values with copies into k[b, :, len, :] (prefill: k[b, :, 0:n, :])
// before calling this kernel, and passes the new lengths.
//
// q and out are [B, Tq, Hq, D] contiguous: Tq new tokens per sequence (1 for
// plain decode, a few for speculative/chunked steps), already in the cache
// at positions len−Tq … len−1; new token t sees positions < len − Tq + t + 1
// (causal among the new tokens). Grouped-query attention: the Hq/Hkv query
// heads of a group read their kv head together, so the cache is read once
// per group.
//
// Split-K: a (sequence, kv head) is cut into chunks of kDecodeChunk keys;
// each chunk task produces a partial (max, sum, unnormalised output) per
// query row, and a combine pass merges the chunks in order. Chunks depend
// only on the lengths, so B = 1 still keeps every core busy and results are
// the same for any thread count.
#include "attention_kernels.h"
#include "cpu.h"

namespace sv {
namespace attn {
namespace {

template <typename T>
struct DecArgs {
  const T* q;
  T* out;
  const T *k, *v;
  int64_t kb, kh, ks, vb, vh, vs;
  const int32_t* lengths;
  int64_t B, Tq, Hq, Hkv, D, Smax;
  T scale;
};

template <typename T, typename Ops>
void decode(const DecArgs<T>& a) {
  const int64_t D = a.D, G = a.Hq / a.Hkv, nq = G * a.Tq, CH = kDecodeChunk;
  int64_t maxSplits = 0;
  for (int64_t b = 0; b < a.B; b++) maxSplits = std::max<int64_t>(maxSplits, (a.lengths[b] + CH - 1) / CH);
  struct Task { int32_t b, hk, chunk; };
  std::vector<Task> tasks;
  for (int64_t b = 0; b < a.B; b++)
    for (int64_t hk = 0; hk < a.Hkv; hk++)
      for (int64_t c = 0; c * CH < a.lengths[b]; c++)
        tasks.push_back({static_cast<int32_t>(b), static_cast<int32_t>(hk), static_cast<int32_t>(c)});
  // Partials per (b, hk, chunk): output [nq][D] and (max, sum) [nq][2].
  const int64_t nparts = a.B * a.Hkv * maxSplits;
  Buf<T> partO(static_cast<size_t>(nparts * nq * D));
  Buf<T> partML(static_cast<size_t>(nparts * nq * 2));
  const int64_t per = nq * D + nq * CH;  // Qs [nq][D], S [nq][CH]
  const int64_t nslots = slots_for(static_cast<int64_t>(tasks.size()));
  Buf<T> scratch(static_cast<size_t>(per * nslots));

  run_tasks(static_cast<int64_t>(tasks.size()), nslots, [&](int64_t slot, int64_t ti) {
    const int64_t b = tasks[ti].b, hk = tasks[ti].hk, c = tasks[ti].chunk;
    const int64_t len = a.lengths[b], c0 = c * CH, cn = std::min(CH, len - c0);
    T* Qs = scratch.get() + slot * per;
    T* S = Qs + nq * D;
    for (int64_t g = 0; g < G; g++)
      for (int64_t t = 0; t < a.Tq; t++) {
        const T* qr = a.q + ((b * a.Tq + t) * a.Hq + hk * G + g) * D;
        T* dst = Qs + (g * a.Tq + t) * D;
        for (int64_t d = 0; d < D; d++) dst[d] = a.scale * kLog2e<T> * qr[d];  // log2-unit scores
      }
    const T* kr = a.k + b * a.kb + hk * a.kh + c0 * a.ks;
    const T* vr = a.v + b * a.vb + hk * a.vh + c0 * a.vs;
    Ops::dots(nq, D, Qs, kr, a.ks, cn, S, CH);
    const int64_t part = (b * a.Hkv + hk) * maxSplits + c;
    T* ml = partML.get() + part * nq * 2;
    for (int64_t r = 0; r < nq; r++) {
      const int64_t t = r % a.Tq;
      const int64_t vis = std::clamp<int64_t>(len - a.Tq + t + 1 - c0, 0, cn);
      Ops::row_softmax(S + r * CH, vis, ml[2 * r], ml[2 * r + 1]);
      std::fill(S + r * CH + vis, S + r * CH + cn, T(0));
    }
    Ops::mm(nq, D, cn, S, CH, 1, vr, a.vs, partO.get() + part * nq * D, D, false, nullptr);
  });

  // Combine: out = Σ_c 2^(m_c − M) O_c / Σ_c 2^(m_c − M) l_c, chunks in order.
  parallel_for(a.B * a.Tq * a.Hq, std::max<int64_t>(1, 2048 / D), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; row++) {
      const int64_t h = row % a.Hq, t = (row / a.Hq) % a.Tq, b = row / (a.Hq * a.Tq);
      const int64_t hk = h / G, r = (h % G) * a.Tq + t;
      const int64_t nsp = (a.lengths[b] + CH - 1) / CH;
      const int64_t base = (b * a.Hkv + hk) * maxSplits;
      T M = neg_inf<T>();
      for (int64_t c = 0; c < nsp; c++) M = std::max(M, partML.get()[((base + c) * nq + r) * 2]);
      T* o = a.out + row * D;
      std::fill(o, o + D, T(0));
      T wsum = 0;
      for (int64_t c = 0; c < nsp; c++) {
        const T* ml = partML.get() + ((base + c) * nq + r) * 2;
        const T w = ml[0] == neg_inf<T>() ? T(0) : std::exp2(ml[0] - M);
        wsum += w * ml[1];
        const T* po = partO.get() + ((base + c) * nq + r) * D;
        for (int64_t d = 0; d < D; d++) o[d] += w * po[d];
      }
      const T inv = wsum > T(0) ? T(1) / wsum : T(0);
      for (int64_t d = 0; d < D; d++) o[d] *= inv;
    }
  });
}

template <typename T>
void run_decode(const Napi::CallbackInfo& info, const char* op) {
  auto dims = ints(info, 5, op, "dims [B, Tq, Hq, Hkv, D, Smax]", 6);
  auto ksd = ints(info, 6, op, "kStrides [b, h, s]", 3);
  auto vsd = ints(info, 7, op, "vStrides [b, h, s]", 3);
  DecArgs<T> a;
  a.B = dims[0], a.Tq = dims[1], a.Hq = dims[2], a.Hkv = dims[3], a.D = dims[4], a.Smax = dims[5];
  check(a.B >= 0 && a.Tq >= 1 && a.Hq >= 1 && a.Hkv >= 1 && a.D >= 1 && a.Smax >= 0 && a.Hq % a.Hkv == 0,
        std::string(op) + ": invalid dims [B, Tq, Hq, Hkv, D, Smax] = " +
            shapeStr({a.B, a.Tq, a.Hq, a.Hkv, a.D, a.Smax}) + " (need Hq a multiple of Hkv)");
  auto q = arr<T>(info, 0, op, "q");
  auto k = arr<T>(info, 1, op, "kCache");
  auto v = arr<T>(info, 2, op, "vCache");
  auto lengths = arr<int32_t>(info, 3, op, "lengths");
  auto out = arr<T>(info, 4, op, "out");
  need(q, a.B * a.Tq * a.Hq * a.D, op, "q");
  need(out, a.B * a.Tq * a.Hq * a.D, op, "out");
  need(lengths, a.B, op, "lengths");
  for (int64_t b = 0; b < a.B; b++) {
    const int64_t len = lengths.ptr[b];
    check(len >= a.Tq && len <= a.Smax, std::string(op) + ": lengths[" + std::to_string(b) + "] = " +
                                            std::to_string(len) + " must be in [Tq, Smax] = [" + std::to_string(a.Tq) +
                                            ", " + std::to_string(a.Smax) + "]");
  }
  for (int64_t s : {ksd[0], ksd[1], ksd[2], vsd[0], vsd[1], vsd[2]}) check(s >= 0, std::string(op) + ": negative cache stride");
  if (a.B > 0 && a.Smax > 0) {
    need(k, (a.B - 1) * ksd[0] + (a.Hkv - 1) * ksd[1] + (a.Smax - 1) * ksd[2] + a.D, op, "kCache");
    need(v, (a.B - 1) * vsd[0] + (a.Hkv - 1) * vsd[1] + (a.Smax - 1) * vsd[2] + a.D, op, "vCache");
  }
  a.q = q.ptr, a.out = out.ptr, a.k = k.ptr, a.v = v.ptr, a.lengths = lengths.ptr;
  a.kb = ksd[0], a.kh = ksd[1], a.ks = ksd[2], a.vb = vsd[0], a.vh = vsd[1], a.vs = vsd[2];
  a.scale = static_cast<T>(f64(info, 8, op, "scale"));
  if constexpr (std::is_same_v<T, float>) {
    if (isa() == Isa::Avx512) return decode<float, Avx512Ops>(a);
  }
  decode<T, PortableOps<T>>(a);
}

}  // namespace

// attentionDecode(q, kCache, vCache, lengths: Int32Array, out, dims [B, Tq, Hq, Hkv, D, Smax],
//                 kStrides [b, h, s], vStrides [b, h, s], scale). f32 or f64. Layout: file header.
SV_KERNEL(attentionDecode) {
  const char* op = "attentionDecode";
  checkArgc(info, 9, op);
  if (is_f64(info, 0)) run_decode<double>(info, op);
  else run_decode<float>(info, op);
  return info.Env().Undefined();
}

// attentionFastExp2(x: Float32Array, y: Float32Array): y = 2^x by the attention kernels' fast exp2
// (AVX-512 path; std::exp2 where AVX-512 is unavailable). For the accuracy test.
SV_KERNEL(attentionFastExp2) {
  const char* op = "attentionFastExp2";
  checkArgc(info, 2, op);
  auto x = arr<float>(info, 0, op, "x");
  auto y = arr<float>(info, 1, op, "y");
  need(y, static_cast<int64_t>(x.len), op, "y");
  if (isa() == Isa::Avx512) Avx512Ops::exp2(x.ptr, y.ptr, static_cast<int64_t>(x.len));
  else for (size_t i = 0; i < x.len; i++) y.ptr[i] = std::exp2(x.ptr[i]);
  return info.Env().Undefined();
}

}  // namespace attn
}  // namespace sv
