// Per query block of the bf16 AMX attention forward (driver: attention_amx.cc;
// numerics and layouts: attention_amx.h). For each key block of 128:
//  - S = Q·Kᵀ on tiles: 32×32 pieces as four 16×16 f32 tiles (tmm0-3), Q rows
//    as A tiles (tmm4-5, 16 rows × 32 head-dim entries), K groups as B tiles
//    (tmm6-7, 16 head-dim pairs × 16 keys), stored to a row-major S[query][key];
//  - online softmax per query row, 16 rows at a time so the running max, the
//    rescale factors and the sums are vector ops (transpose-reduce of 16 row
//    vectors); P rounded to bf16 row-major, which is the A-tile layout of P·V;
//  - O (f32 [64][Dv]) is rescaled in memory where the max moved, loaded as C
//    tiles, and accumulates P·V (B tiles: 16 key pairs × 16 head-dim columns).
// 32-query halves past the block's queries and 32-key pieces past the block's
// keys are skipped, so short windows cost little.
#include "attention_amx.h"
#include <cmath>
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define SV_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))
#define SV_AMX_INLINE \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma"), always_inline)) inline

namespace sv {
namespace attn {
namespace {

constexpr int64_t kQ = kAmxQ, kK = kAmxK;
constexpr int64_t kLdS = kK;  // row stride of S (f32) and P (bf16)
// Lazy rescaling: the running max m only moves when a block's max exceeds it
// by more than kSlack (log2 units), so P entries stay ≤ 2^kSlack (fine for
// bf16 and the f32 sums) and most blocks leave O unscaled (alpha exactly 1).
constexpr float kSlack = 8.0f;
constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// Tile shapes of this kernel (all eight 16 rows × 64 bytes). Kept here rather
// than shared with the GEMM because the kernel's tile numbering depends on it.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

SV_AMX void tiles_configure() {
  TileConfig tc;
  for (int t = 0; t < 8; t++) {
    tc.colsb[t] = 64;
    tc.rows[t] = 16;
  }
  // Inline ldtilecfg, not _tile_loadconfig: g++ 12 drops the config stores
  // before the builtin (see gemm_bf16_amx.cc).
  __asm__ volatile("ldtilecfg %0" : : "m"(tc));
}

SV_AMX_INLINE __mmask16 lanes(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1u);
}

// 2^x for x ≥ −126 (callers clamp): x = n + r, |r| ≤ 1/2, degree-4 Taylor
// polynomial of 2^r (relative error < 4e-5, far below the bf16 rounding of
// P), scaled by 2^n. Lanes outside `keep` are 0.
SV_AMX_INLINE __m512 exp2_bf(__mmask16 keep, __m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(9.6181291e-3f);  // (ln 2)^k / k!, k = 4 … 0
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

// Lane k of the result = op over the 16 lanes of v[k] (transpose-and-combine tree).
template <typename Op>
SV_AMX_INLINE __m512 reduce16(const __m512* v, Op op) {
  __m512 s[8], u[4];
#pragma GCC unroll 8
  for (int k = 0; k < 8; k++) s[k] = op(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {
    const __m512d x = _mm512_castps_pd(s[2 * k]), y = _mm512_castps_pd(s[2 * k + 1]);
    u[k] = op(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  const __m512 x01 = op(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 x23 = op(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return op(_mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1)));
}

struct MaxOp {
  SV_AMX_INLINE __m512 operator()(__m512 x, __m512 y) const { return _mm512_max_ps(x, y); }
};
struct AddOp {
  SV_AMX_INLINE __m512 operator()(__m512 x, __m512 y) const { return _mm512_add_ps(x, y); }
};

// Rows [32a, 32a+32) × keys [32b, 32b+32) of S for b in [bBegin, bEnd): Qs · K-block,
// kb = the block's first 16-key group.
__attribute__((noinline)) SV_AMX void scores(const AmxBlockScratch& w, float* S, int64_t Dp, const uint32_t* kb, int64_t a,
                                            int64_t bBegin, int64_t bEnd) {
  const int64_t Dp2 = Dp / 2;
  const long sq = Dp * 2;
  const uint16_t* qa = w.Qs + a * 32 * Dp;
  for (int64_t b = bBegin; b < bEnd; b++) {
    const uint32_t* k0 = kb + 2 * b * Dp2 * 16;
    const uint32_t* k1 = k0 + Dp2 * 16;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t dd = 0; dd < Dp; dd += 32) {
      _tile_loadd(4, qa + dd, sq);
      _tile_loadd(5, qa + 16 * Dp + dd, sq);
      _tile_loadd(6, k0 + (dd / 2) * 16, 64);
      _tile_loadd(7, k1 + (dd / 2) * 16, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    float* s = S + a * 32 * kLdS + b * 32;
    _tile_stored(0, s, kLdS * 4);
    _tile_stored(1, s + 16, kLdS * 4);
    _tile_stored(2, s + 16 * kLdS, kLdS * 4);
    _tile_stored(3, s + 16 * kLdS + 16, kLdS * 4);
  }
}

// One group of 16 rows [r0, r0+16) over NV vectors of 16 keys; kFull: every
// row sees all 16·NV keys (no masks to build: they would compete with the
// exp arithmetic for the vector ports).
template <int NV, bool kFull>
SV_AMX_INLINE void softmax_rows(const AmxBlockScratch& w, const float* S, int64_t r0, int64_t kn, bool causal,
                                int64_t diag, float c) {
  const __m512 vc = _mm512_set1_ps(c), ninf = _mm512_set1_ps(neg_inf<float>()), lo = _mm512_set1_ps(-126.0f);
  __m512 part[16];
  int64_t lim[16];
  for (int r = 0; r < 16; r++) {
    const int64_t i = r0 + r;
    lim[r] = causal ? std::clamp<int64_t>(i + diag + 1, 0, kn) : kn;
    const float* s = S + i * kLdS;
    __m512 mx = ninf;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      mx = _mm512_max_ps(mx, kFull ? _mm512_loadu_ps(s + 16 * v) : _mm512_mask_loadu_ps(ninf, lanes(lim[r] - 16 * v), s + 16 * v));
    part[r] = mx;
  }
  // Row maxima of the raw scores, then scaled (c > 0: the caller checks).
  const __m512 bmax = _mm512_mul_ps(reduce16(part, MaxOp()), vc);
  const __m512 mold = _mm512_loadu_ps(w.m + r0);
  const __m512 mnew = _mm512_mask_mov_ps(mold, _mm512_cmp_ps_mask(bmax, _mm512_add_ps(mold, _mm512_set1_ps(kSlack)), _CMP_GT_OQ), bmax);
  const __m512 mu = _mm512_mask_mov_ps(mnew, _mm512_cmp_ps_mask(mnew, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
  const __m512 alpha = exp2_bf(0xffff, _mm512_max_ps(_mm512_sub_ps(mold, mu), lo));
  alignas(64) float muv[16];
  _mm512_store_ps(muv, mu);
  for (int r = 0; r < 16; r++) {
    const int64_t i = r0 + r;
    const float* s = S + i * kLdS;
    uint16_t* p = w.P + i * kLdS;
    const __m512 m = _mm512_set1_ps(muv[r]);
    __m512 sum = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int v = 0; v < NV; v += 2) {
      const __m512 x0 = _mm512_max_ps(_mm512_fmsub_ps(_mm512_loadu_ps(s + 16 * v), vc, m), lo);
      const __m512 x1 = _mm512_max_ps(_mm512_fmsub_ps(_mm512_loadu_ps(s + 16 * v + 16), vc, m), lo);
      const __m512 e0 = exp2_bf(kFull ? 0xffff : lanes(lim[r] - 16 * v), x0);
      const __m512 e1 = exp2_bf(kFull ? 0xffff : lanes(lim[r] - 16 * v - 16), x1);
      sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
      _mm512_storeu_si512(p + 16 * v, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0)));  // e0 low, e1 high
    }
    part[r] = sum;
  }
  const __m512 bsum = reduce16(part, AddOp());
  _mm512_storeu_ps(w.l + r0, _mm512_fmadd_ps(_mm512_loadu_ps(w.l + r0), alpha, bsum));
  _mm512_storeu_ps(w.m + r0, mnew);
  _mm512_storeu_ps(w.alpha + r0, alpha);
}

template <int NV>
SV_AMX void softmax_nv(const AmxBlockScratch& w, const float* S, int64_t r0Begin, int64_t r0End, int64_t kn, bool causal,
                       int64_t diag, float c) {
  for (int64_t r0 = r0Begin; r0 < r0End; r0 += 16) {
    // Full when no row of the group is cut by the key count or the diagonal.
    const bool full = kn == 16 * NV && (!causal || r0 + diag + 1 >= kn);
    if (full) softmax_rows<NV, true>(w, S, r0, kn, causal, diag, c);
    else softmax_rows<NV, false>(w, S, r0, kn, causal, diag, c);
  }
}

// Online softmax over rows [r0Begin, r0End) and keys [0, 32nh) of S; row i sees keys
// [0, lim(i)), lim(i) = kn, or clamp(i + diag + 1, 0, kn) when causal (diag = q0 − k0).
__attribute__((noinline)) SV_AMX void softmax_block(const AmxBlockScratch& w, const float* S, int64_t r0Begin,
                                                   int64_t r0End, int64_t nh, int64_t kn, bool causal, int64_t diag,
                                                   float c) {
  static_assert(kK == 128, "softmax_block dispatches 1 to 4 pieces of 32 keys");
  switch (nh) {
    case 1: return softmax_nv<2>(w, S, r0Begin, r0End, kn, causal, diag, c);
    case 2: return softmax_nv<4>(w, S, r0Begin, r0End, kn, causal, diag, c);
    case 3: return softmax_nv<6>(w, S, r0Begin, r0End, kn, causal, diag, c);
    default: return softmax_nv<8>(w, S, r0Begin, r0End, kn, causal, diag, c);
  }
}

// O rows of halves [aBegin, aEnd), columns in whole 32s, = (first ? 0 : alpha·O) + P · V-block
// (vb: the block's first key pair row); the rescale covers every column.
__attribute__((noinline)) SV_AMX void accumulate(const AmxBlockScratch& w, int64_t Dv, const uint32_t* vb, int64_t aBegin,
                                                int64_t aEnd, int64_t nh, bool first) {
  if (!first) {
    for (int64_t i = 32 * aBegin; i < 32 * aEnd; i++) {
      if (w.alpha[i] == 1.0f) continue;  // the usual case with lazy rescaling
      const __m512 a = _mm512_set1_ps(w.alpha[i]);
      float* o = w.O + i * Dv;
      for (int64_t d = 0; d < Dv; d += 16) _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_loadu_ps(o + d), a));
    }
  }
  const long so = Dv * 4, sv = Dv * 4;
  for (int64_t a = aBegin; a < aEnd; a++) {
    const uint16_t* pa = w.P + a * 32 * kLdS;
    for (int64_t c0 = 0; c0 + 32 <= Dv; c0 += 32) {  // a last 16 columns: accumulate_tail
      float* o = w.O + a * 32 * Dv + c0;
      if (first) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      } else {
        _tile_loadd(0, o, so);
        _tile_loadd(1, o + 16, so);
        _tile_loadd(2, o + 16 * Dv, so);
        _tile_loadd(3, o + 16 * Dv + 16, so);
      }
      for (int64_t b = 0; b < nh; b++) {
        _tile_loadd(4, pa + 32 * b, kLdS * 2);
        _tile_loadd(5, pa + 16 * kLdS + 32 * b, kLdS * 2);
        _tile_loadd(6, vb + 16 * b * Dv + c0, sv);
        _tile_loadd(7, vb + 16 * b * Dv + c0 + 16, sv);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, o, so);
      _tile_stored(1, o + 16, so);
      _tile_stored(2, o + 16 * Dv, so);
      _tile_stored(3, o + 16 * Dv + 16, so);
    }
  }
}

// The last 16 columns of O when Dv is an odd number of 16s (head dim 80, 72),
// for all 16-row tiles of the block at once: four independent accumulation
// chains instead of the two a 32-row half would give. O rows are already rescaled.
__attribute__((noinline)) SV_AMX void accumulate_tail(const AmxBlockScratch& w, int64_t Dv, const uint32_t* vb, int64_t qh,
                                                     int64_t nh, bool first) {
  if (Dv % 32 == 0) return;
  const int64_t c0 = Dv - 16;
  const long so = Dv * 4, sv = Dv * 4, sp = kLdS * 2;
  const bool four = qh == 2;
  float* o = w.O + c0;
  if (first) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    _tile_loadd(0, o, so);
    _tile_loadd(1, o + 16 * Dv, so);
    if (four) {
      _tile_loadd(2, o + 32 * Dv, so);
      _tile_loadd(3, o + 48 * Dv, so);
    }
  }
  for (int64_t b = 0; b < nh; b++) {
    const uint16_t* pb = w.P + 32 * b;
    _tile_loadd(6, vb + 16 * b * Dv + c0, sv);
    _tile_loadd(4, pb, sp);
    _tile_loadd(5, pb + 16 * kLdS, sp);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 5, 6);
    if (four) {
      _tile_loadd(7, pb + 32 * kLdS, sp);
      _tile_dpbf16ps(2, 7, 6);
      _tile_loadd(4, pb + 48 * kLdS, sp);
      _tile_dpbf16ps(3, 4, 6);
    }
  }
  _tile_stored(0, o, so);
  _tile_stored(1, o + 16 * Dv, so);
  if (four) {
    _tile_stored(2, o + 32 * Dv, so);
    _tile_stored(3, o + 48 * Dv, so);
  }
}

// One block of up to 64 queries of head h against keys kSeq/vSeq (packed, key 0
// of the sequence), written to out and lse.
SV_AMX void query_block_impl(const AmxArgs& a, const AmxGeom& g, int64_t h, int64_t start, int64_t L, int64_t q0,
                             const uint32_t* kSeq, const uint32_t* vSeq, const AmxBlockScratch& w) {
  const int64_t Dp = g.Dp, Dv = g.Dv;
  const int64_t qn = std::min(kQ, L - q0), qh = (qn + 31) / 32;
  const int64_t kend = a.causal ? q0 + qn : L;
  const float c = a.scale * kLog2e<float>;
  // Output rows (a head's D floats, Hq·D apart) are whole 64-byte lines when D is a multiple of 16.
  const bool streamOut = a.D % 16 == 0 && reinterpret_cast<uintptr_t>(a.out) % 64 == 0;
  std::fill(w.m, w.m + kQ, neg_inf<float>());
  std::fill(w.l, w.l + kQ, 0.0f);
  tiles_configure();
  for (int64_t k0 = 0; k0 < kend; k0 += kK) {
    const int64_t kn = std::min(kK, kend - k0), nh = (kn + 31) / 32;
    // Software pipeline: while the vector units run the softmax of one
    // 32-query half, the tile unit computes the scores of the next half (or
    // of the next key block's first half, into the other S buffer): score
    // pieces are issued between the two 16-row softmax groups, small enough
    // that the out-of-order window covers them.
    float* S = w.S + (k0 / kK % 2) * kQ * kLdS;
    if (k0 == 0) scores(w, S, Dp, kSeq, 0, 0, nh);
    for (int64_t h2 = 0; h2 < qh; h2++) {
      float* Sn = S;  // pending pieces: half h2+1 of this block, or half 0 of the next
      int64_t an = h2 + 1, nn = nh, kNext = k0;
      if (an >= qh) {
        kNext = k0 + kK;
        an = 0;
        nn = kNext < kend ? (std::min(kK, kend - kNext) + 31) / 32 : 0;
        Sn = w.S + (kNext / kK % 2) * kQ * kLdS;
      }
      const int64_t mid = (nn + 1) / 2;
      softmax_block(w, S, 32 * h2, 32 * h2 + 16, nh, kn, a.causal, q0 - k0, c);
      if (nn > 0) scores(w, Sn, Dp, kSeq + kNext * (Dp / 2), an, 0, mid);
      softmax_block(w, S, 32 * h2 + 16, 32 * h2 + 32, nh, kn, a.causal, q0 - k0, c);
      if (nn > 0) scores(w, Sn, Dp, kSeq + kNext * (Dp / 2), an, mid, nn);
      accumulate(w, Dv, vSeq + k0 / 2 * Dv, h2, h2 + 1, nh, k0 == 0);
    }
    accumulate_tail(w, Dv, vSeq + k0 / 2 * Dv, qh, nh, k0 == 0);
  }
  _tile_release();
  for (int64_t i = 0; i < qn; i++) {
    const int64_t row = start + q0 + i;
    const float l = w.l[i];
    a.lse[row * a.Hq + h] = l > 0.0f ? (w.m[i] + std::log2(l)) * kLn2<float> : neg_inf<float>();
    const __m512 inv = _mm512_set1_ps(l > 0.0f ? 1.0f / l : 0.0f);
    float* out = a.out + (row * a.Hq + h) * a.D;
    const float* o = w.O + i * Dv;
    if (streamOut) {  // whole cache lines: non-temporal stores skip reading each line first
      for (int64_t d = 0; d < a.D; d += 16) _mm512_stream_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(o + d), inv));
    } else {
      for (int64_t d = 0; d < a.D; d += 16) {
        const __mmask16 mk = lanes(a.D - d);
        _mm512_mask_storeu_ps(out + d, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + d), inv));
      }
    }
  }
  if (streamOut) _mm_sfence();
}

}  // namespace

int64_t amx_block_scratch_floats(int64_t Dv) { return 2 * kQ * kLdS + kQ * kLdS / 2 + kQ * Dv + 3 * kQ; }

AmxBlockScratch amx_block_scratch(float* base, int64_t Dv) {
  AmxBlockScratch w;
  w.Qs = nullptr;
  w.S = base;
  w.P = reinterpret_cast<uint16_t*>(base + 2 * kQ * kLdS);
  w.O = base + 2 * kQ * kLdS + kQ * kLdS / 2;
  w.m = w.O + kQ * Dv;
  w.l = w.m + kQ;
  w.alpha = w.l + kQ;
  return w;
}

void amx_query_block(const AmxArgs& a, const AmxGeom& g, int64_t h, int64_t start, int64_t L, int64_t q0,
                     const uint32_t* kSeq, const uint32_t* vSeq, const AmxBlockScratch& w) {
  query_block_impl(a, g, h, start, L, q0, kSeq, vSeq, w);
}

}  // namespace attn
}  // namespace sv
