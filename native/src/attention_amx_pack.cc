// Operand packing of the bf16 AMX attention forward (layouts: attention_amx.h).
// f32 → bf16 rounding here is round-to-nearest-even with NaN kept quiet,
// bit-identical to gemm::bf16_round, so the tests can round in JS the same way.
// Everything here runs only where amx_attention_available() (attention_amx.cc)
// is true, so the whole file is compiled for AVX-512 (the packing loops are
// lambdas on the thread pool, which would not inherit a function attribute).
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "attention_amx.h"
#include <immintrin.h>

#define SV_PACK_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

namespace sv {
namespace attn {
namespace {

SV_PACK_TARGET inline __mmask16 lanes(int64_t n) {  // lowest n lanes, n clamped to [0, 16]
  return n >= 16 ? static_cast<__mmask16>(0xffff) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1u);
}

// 16 floats → 16 bf16, nearest even, NaN quiet (same bits as gemm::bf16_round).
SV_PACK_TARGET inline __m256i round16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

// One f32 row of D values → Dp bf16 (Dp a multiple of 32), zero past D.
SV_PACK_TARGET inline void round_row(const float* src, int64_t D, int64_t Dp, uint16_t* dst) {
  for (int64_t d0 = 0; d0 < Dp; d0 += 16) {
    const __m512 x = _mm512_maskz_loadu_ps(lanes(D - d0), src + d0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + d0), round16(x));
  }
}

// Tokens [t0, t0+n) of all heads, `rows` packed rows (n ≤ rows ≤ 64, rows − n
// zero rows), read token by token: Q rows at Qa + (h·RS + row0 + t)·Dp, K
// groups at Ka + (hk·RS + row0 + g)·Dp/2, V pair rows at Va + (hk·RS/2 + (row0 + t)/2)·Dv.
SV_PACK_TARGET void pack_tokens_impl(const Rows<const float>& q, const Rows<const float>& k, const Rows<const float>& v,
                                     int64_t t0, int64_t n, int64_t rows, int64_t Hq, int64_t Hkv, int64_t D, int64_t Dp,
                                     int64_t Dv, int64_t RS, int64_t row0, uint16_t* Qa, uint32_t* Ktmp, uint32_t* Ka,
                                     uint32_t* Va) {
  const int64_t Dp2 = Dp / 2;
  for (int64_t t = 0; t < rows; t++) {
    for (int64_t h = 0; h < Hq; h++) {
      uint16_t* dq = Qa + (h * RS + row0 + t) * Dp;
      if (t < n) round_row(q.at(t0 + t, h), D, Dp, dq);
      else std::memset(dq, 0, sizeof(uint16_t) * Dp);
    }
    for (int64_t hk = 0; hk < Hkv; hk++) {
      uint16_t* dk = reinterpret_cast<uint16_t*>(Ktmp + (hk * 64 + t) * Dp2);
      if (t < n) round_row(k.at(t0 + t, hk), D, Dp, dk);
      else std::memset(dk, 0, sizeof(uint32_t) * Dp2);
    }
  }
  for (int64_t pr = 0; pr < rows / 2; pr++) {
    for (int64_t hk = 0; hk < Hkv; hk++) {
      const float* r0 = 2 * pr < n ? v.at(t0 + 2 * pr, hk) : nullptr;
      const float* r1 = 2 * pr + 1 < n ? v.at(t0 + 2 * pr + 1, hk) : nullptr;
      uint32_t* out = Va + (hk * (RS / 2) + row0 / 2 + pr) * Dv;
      for (int64_t d0 = 0; d0 < Dv; d0 += 16) {
        const __mmask16 m = lanes(D - d0);
        const __m512i a = r0 ? _mm512_cvtepu16_epi32(round16(_mm512_maskz_loadu_ps(m, r0 + d0))) : _mm512_setzero_si512();
        const __m512i c = r1 ? _mm512_cvtepu16_epi32(round16(_mm512_maskz_loadu_ps(m, r1 + d0))) : _mm512_setzero_si512();
        _mm512_storeu_si512(out + d0, _mm512_or_si512(a, _mm512_slli_epi32(c, 16)));
      }
    }
  }
  // K: [key][pair] rows → groups of [pair][16 keys].
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(static_cast<int>(Dp2)));
  for (int64_t hk = 0; hk < Hkv; hk++)
    for (int64_t g0 = 0; g0 < rows; g0 += 16) {
      const uint32_t* src = Ktmp + (hk * 64 + g0) * Dp2;
      uint32_t* dst = Ka + (hk * RS + row0 + g0) * Dp2;
      for (int64_t p = 0; p < Dp2; p++) _mm512_storeu_si512(dst + p * 16, _mm512_i32gather_epi32(idx, src + p, 4));
    }
}

}  // namespace

void amx_pack_short(const Rows<const float>& q, const Rows<const float>& k, const Rows<const float>& v, int64_t t0,
                    int64_t L, int64_t Hq, int64_t Hkv, int64_t D, int64_t Dp, int64_t Dv, uint16_t* Qa, uint32_t* Ktmp,
                    uint32_t* Ka, uint32_t* Va) {
  pack_tokens_impl(q, k, v, t0, L, round_up(L, kAmxPad), Hq, Hkv, D, Dp, Dv, kAmxShortMax, 0, Qa, Ktmp, Ka, Va);
}

AmxGeom amx_geometry(const Seqs& seqs, int64_t T_, int64_t Hq, int64_t Hkv, int64_t D, int64_t sharedAbove) {
  AmxGeom g;
  g.T = T_;
  g.Hq = Hq;
  g.Hkv = Hkv;
  g.D = D;
  g.Dp = round_up(D, 32);
  g.Dv = round_up(D, 16);
  g.pst.assign(static_cast<size_t>(seqs.n), -1);
  int64_t p = 0;
  for (int64_t s = 0; s < seqs.n; s++) {
    if (seqs.len[s] <= sharedAbove) continue;
    g.pst[s] = p;
    p += round_up(seqs.len[s], kAmxPad);
  }
  g.P = p;
  return g;
}

void amx_pack_long(const Rows<const float>& q, const Rows<const float>& k, const Rows<const float>& v, const Seqs& seqs,
                   const AmxGeom& g, uint16_t* Qp, uint32_t* Kp, uint32_t* Vp) {
  constexpr int64_t kChunk = 64;  // tokens per work item (a multiple of kAmxPad)
  std::vector<std::pair<int64_t, int64_t>> items;  // (sequence, first token)
  for (int64_t s = 0; s < seqs.n; s++)
    if (g.pst[s] >= 0)
      for (int64_t k0 = 0; k0 < seqs.len[s]; k0 += kChunk) items.emplace_back(s, k0);
  parallel_for(static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e) {
    std::vector<uint32_t> ktmp(static_cast<size_t>(g.Hkv * kChunk * g.Dp / 2));
    for (int64_t it = b; it < e; it++) {
      const auto [s, k0] = items[it];
      const int64_t L = seqs.len[s], rows = std::min(kChunk, round_up(L, kAmxPad) - k0);
      pack_tokens_impl(q, k, v, seqs.start[s] + k0, L - k0, rows, g.Hq, g.Hkv, g.D, g.Dp, g.Dv, g.P, g.pst[s] + k0, Qp,
                       ktmp.data(), Kp, Vp);
    }
  });
}

}  // namespace attn
}  // namespace sv
