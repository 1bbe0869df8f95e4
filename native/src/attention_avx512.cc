// AVX-512 (f32) building blocks of the attention kernels; contracts in
// attention_kernels.h. Only called when sv::isa() reports AVX-512.
//
// Fast exp2: x = n + r with n = round(x) and |r| ≤ 1/2 exact, 2^r by its
// degree-7 Taylor polynomial (Horner, FMA), scaled by 2^n with vscalefps.
// Inputs below −126 (where 2^x leaves the normal range) give exactly 0, so
// −inf → 0 and no denormals reach the accumulators; NaN stays NaN.
// Measured max relative error against double-precision exp2 over
// [−126, 127]: 7.0e-8 (below one f32 ulp; the attention test sweeps it).
#include "attention_kernels.h"
#include <immintrin.h>

// GCC 12 flags the intentionally undefined pass-through operand inside
// _mm512_roundscale_ps, _mm512_scalef_ps and _mm512_reduce_*_ps as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define SV_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define SV_AVX512_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"), always_inline)) inline

namespace sv {
namespace attn {
namespace {

SV_AVX512_INLINE __m512 exp2_512(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.5252734e-5f);  // (ln 2)^k / k!, k = 7 … 0
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.5403530e-4f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3333558e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512 y = _mm512_scalef_ps(p, n);
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_LT_OQ);
  return _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
}

SV_AVX512_INLINE __mmask16 tail_mask(int64_t n) {  // lowest n lanes, n in [0, 16]
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// One register tile of mm: MR rows × NV vectors of 16 columns; the last
// vector is masked by `last`. MR·NV ≤ 24 accumulators + NV loads + 1 broadcast.
template <int MR, int NV>
SV_AVX512 void mm_tile(int64_t K, const float* A, int64_t ars, int64_t ats, const float* B, int64_t ldb, float* C,
                       int64_t ldc, __mmask16 last, bool acc, const float* colscale) {
  __m512 c[MR][NV];
  if (acc) {
    __m512 cs[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      const __mmask16 mk = v == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      cs[v] = colscale ? _mm512_maskz_loadu_ps(mk, colscale + 16 * v) : _mm512_set1_ps(1.0f);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        const __mmask16 mk = v == NV - 1 ? last : static_cast<__mmask16>(0xffff);
        c[r][v] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, C + r * ldc + 16 * v), cs[v]);
      }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_ps();
  }
  for (int64_t t = 0; t < K; t++) {
    const float* b = B + t * ldb;
    const float* a = A + t * ats;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m512 av = _mm512_set1_ps(a[r * ars]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) c[r][v] = _mm512_fmadd_ps(av, bv[v], c[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      if (v == NV - 1) _mm512_mask_storeu_ps(C + r * ldc + 16 * v, last, c[r][v]);
      else _mm512_storeu_ps(C + r * ldc + 16 * v, c[r][v]);
    }
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, __mmask16, bool,
                        const float*);
constexpr int kMR = 6;
constexpr int kNV = 4;
#define SV_ROW(mr) {&mm_tile<mr, 1>, &mm_tile<mr, 2>, &mm_tile<mr, 3>, &mm_tile<mr, 4>}
const TileFn kTiles[kMR][kNV] = {SV_ROW(1), SV_ROW(2), SV_ROW(3), SV_ROW(4), SV_ROW(5), SV_ROW(6)};
#undef SV_ROW

// Sums each of 16 vectors: out lane k = Σ lanes of v[k] (transpose-and-add tree).
SV_AVX512_INLINE __m512 reduce16(const __m512* v) {
  __m512 s[8], u[4];
#pragma GCC unroll 8
  for (int k = 0; k < 8; k++)  // lane-wise [a0+a2, b0+b2, a1+a3, b1+b3]
    s[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {  // lane ℓ: partial sums of keys 4k..4k+3 over that lane
    const __m512d x = _mm512_castps_pd(s[2 * k]), y = _mm512_castps_pd(s[2 * k + 1]);
    u[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  const __m512 x01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 x23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1)));
}

SV_AVX512 void mm_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t ats, const float* B,
                       int64_t ldb, float* C, int64_t ldc, bool acc, const float* colscale) {
  for (int64_t n0 = 0; n0 < N; n0 += 16 * kNV) {
    const int64_t nn = std::min<int64_t>(16 * kNV, N - n0);
    const int nv = static_cast<int>((nn + 15) / 16);
    const __mmask16 last = tail_mask(nn - 16 * (nv - 1));
    const float* cs = colscale ? colscale + n0 : nullptr;
    for (int64_t r0 = 0; r0 < M; r0 += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, M - r0));
      kTiles[mr - 1][nv - 1](K, A + r0 * ars, ars, ats, B + n0, ldb, C + r0 * ldc + n0, ldc, last, acc, cs);
    }
  }
}

// In-register 16×16 transpose: r[k] (row k) becomes column k.
SV_AVX512_INLINE void transpose16(__m512* r) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int k = 0; k < 8; k++) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {  // lane L of r[4k+c]: column 4L+c of rows 4k..4k+3
    r[4 * k] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
    r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xdd);
  }
}

SV_AVX512 void transpose_impl(const float* src, int64_t ss, int64_t R, int64_t C, float* dst, int64_t ds, float scale,
                              const float* colScale) {
  for (int64_t r0 = 0; r0 < R; r0 += 16) {
    const int64_t rn = std::min<int64_t>(16, R - r0);
    const __mmask16 rmask = tail_mask(rn);
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
      const int64_t cn = std::min<int64_t>(16, C - c0);
      const __mmask16 cmask = tail_mask(cn);
      __m512 v[16];
#pragma GCC unroll 16
      for (int k = 0; k < 16; k++)
        v[k] = k < rn ? _mm512_maskz_loadu_ps(cmask, src + (r0 + k) * ss + c0) : _mm512_setzero_ps();
      transpose16(v);
      for (int64_t k = 0; k < cn; k++) {
        const float f = colScale ? scale * colScale[c0 + k] : scale;
        _mm512_mask_storeu_ps(dst + (c0 + k) * ds + r0, rmask, _mm512_mul_ps(v[k], _mm512_set1_ps(f)));
      }
    }
  }
}

// Lanes at or past ncols are loaded as -inf (they hold whatever the scratch
// held) and never stored, so the tile needs no clearing.
SV_AVX512 void fwd_softmax_impl(float* St, int64_t ld, int64_t nk, int64_t ncols, float* m, float* l, float* alpha) {
  const __m512 ninf = _mm512_set1_ps(neg_inf<float>());
  for (int64_t i0 = 0; i0 < ncols; i0 += 16) {
    const __mmask16 mk = tail_mask(ncols - i0);
    const __m512 mold = _mm512_mask_loadu_ps(ninf, mk, m + i0);
    __m512 mx0 = mold, mx1 = ninf;
    int64_t j = 0;
    for (; j + 1 < nk; j += 2) {
      mx0 = _mm512_max_ps(mx0, _mm512_mask_loadu_ps(ninf, mk, St + j * ld + i0));
      mx1 = _mm512_max_ps(mx1, _mm512_mask_loadu_ps(ninf, mk, St + (j + 1) * ld + i0));
    }
    if (j < nk) mx0 = _mm512_max_ps(mx0, _mm512_mask_loadu_ps(ninf, mk, St + j * ld + i0));
    const __m512 mx = _mm512_max_ps(mx0, mx1);
    const __m512 mu = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(mx, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
    const __m512 a = exp2_512(_mm512_sub_ps(mold, mu));
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (j = 0; j + 1 < nk; j += 2) {
      const __m512 p0 = exp2_512(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, mk, St + j * ld + i0), mu));
      const __m512 p1 = exp2_512(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, mk, St + (j + 1) * ld + i0), mu));
      _mm512_mask_storeu_ps(St + j * ld + i0, mk, p0);
      _mm512_mask_storeu_ps(St + (j + 1) * ld + i0, mk, p1);
      s0 = _mm512_add_ps(s0, p0);
      s1 = _mm512_add_ps(s1, p1);
    }
    if (j < nk) {
      const __m512 p0 = exp2_512(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, mk, St + j * ld + i0), mu));
      _mm512_mask_storeu_ps(St + j * ld + i0, mk, p0);
      s0 = _mm512_add_ps(s0, p0);
    }
    const __m512 lold = _mm512_maskz_loadu_ps(mk, l + i0);
    _mm512_mask_storeu_ps(l + i0, mk, _mm512_fmadd_ps(lold, a, _mm512_add_ps(s0, s1)));
    _mm512_mask_storeu_ps(m + i0, mk, mx);
    _mm512_mask_storeu_ps(alpha + i0, mk, a);
  }
}

SV_AVX512 void bwd_probs_impl(float* S, int64_t ld, int64_t M, int64_t N, const float* lse, bool causal,
                              int64_t causalShift) {
  for (int64_t i = 0; i < M; i++) {
    const int64_t lim = causal ? std::clamp<int64_t>(i + causalShift, 0, N) : N;
    const __m512 L = _mm512_set1_ps(lse[i]);
    float* s = S + i * ld;
    for (int64_t j0 = 0; j0 < N; j0 += 16) {
      const __mmask16 store = tail_mask(N - j0);
      const __mmask16 valid = tail_mask(std::max<int64_t>(0, lim - j0));
      const __m512 p = exp2_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(valid, s + j0), L));
      _mm512_mask_storeu_ps(s + j0, store, _mm512_maskz_mov_ps(valid, p));
    }
  }
}

SV_AVX512 void bwd_dscores_impl(const float* P, float* dP, int64_t ld, int64_t M, int64_t N, const float* delta,
                                float scale) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < M; i++) {
    const __m512 dl = _mm512_set1_ps(delta[i]);
    for (int64_t j0 = 0; j0 < N; j0 += 16) {
      const __mmask16 mk = tail_mask(N - j0);
      const __m512 p = _mm512_maskz_loadu_ps(mk, P + i * ld + j0);
      const __m512 dp = _mm512_maskz_loadu_ps(mk, dP + i * ld + j0);
      _mm512_mask_storeu_ps(dP + i * ld + j0, mk, _mm512_mul_ps(_mm512_mul_ps(sc, p), _mm512_sub_ps(dp, dl)));
    }
  }
}

// 16 keys at a time: one accumulator per key along the head dim, then a
// transpose-reduce gives the 16 dot products as one vector.
SV_AVX512 void dots_impl(int64_t nq, int64_t D, const float* Q, const float* K, int64_t ks, int64_t nk, float* S,
                         int64_t ldS) {
  for (int64_t j0 = 0; j0 < nk; j0 += 16) {
    const int64_t jn = std::min<int64_t>(16, nk - j0);
    const float* krow[16];
    for (int jj = 0; jj < 16; jj++) krow[jj] = K + (j0 + std::min<int64_t>(jj, jn - 1)) * ks;  // tail: repeat a valid row
    for (int64_t r = 0; r < nq; r++) {
      const float* q = Q + r * D;
      __m512 acc[16];
#pragma GCC unroll 16
      for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_setzero_ps();
      for (int64_t d0 = 0; d0 < D; d0 += 16) {
        const __mmask16 dm = tail_mask(D - d0);
        const __m512 qv = _mm512_maskz_loadu_ps(dm, q + d0);
#pragma GCC unroll 16
        for (int jj = 0; jj < 16; jj++) acc[jj] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(dm, krow[jj] + d0), qv, acc[jj]);
      }
      _mm512_mask_storeu_ps(S + r * ldS + j0, tail_mask(jn), reduce16(acc));
    }
  }
}

SV_AVX512 void row_softmax_impl(float* s, int64_t n, float& mOut, float& lOut) {
  const __m512 ninf = _mm512_set1_ps(neg_inf<float>());
  __m512 mx = ninf;
  for (int64_t j = 0; j < n; j += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, tail_mask(n - j), s + j));
  const float m = _mm512_reduce_max_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  if (n > 0) {
    const __m512 mv = _mm512_set1_ps(m);
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mk = tail_mask(n - j);
      const __m512 p = _mm512_maskz_mov_ps(mk, exp2_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), mv)));
      _mm512_mask_storeu_ps(s + j, mk, p);
      sum = _mm512_add_ps(sum, p);
    }
  }
  mOut = m;
  lOut = _mm512_reduce_add_ps(sum);
}

SV_AVX512 void exp2_impl(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, mk, exp2_512(_mm512_maskz_loadu_ps(mk, x + i)));
  }
}

}  // namespace

void Avx512Ops::mm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t ats, const float* B,
                   int64_t ldb, float* C, int64_t ldc, bool acc, const float* colscale) {
  mm_impl(M, N, K, A, ars, ats, B, ldb, C, ldc, acc, colscale);
}
void Avx512Ops::fwd_softmax(float* St, int64_t ld, int64_t nk, int64_t ncols, float* m, float* l, float* alpha) {
  fwd_softmax_impl(St, ld, nk, ncols, m, l, alpha);
}
void Avx512Ops::bwd_probs(float* S, int64_t ld, int64_t M, int64_t N, const float* lse, bool causal, int64_t causalShift) {
  bwd_probs_impl(S, ld, M, N, lse, causal, causalShift);
}
void Avx512Ops::bwd_dscores(const float* P, float* dP, int64_t ld, int64_t M, int64_t N, const float* delta, float scale) {
  bwd_dscores_impl(P, dP, ld, M, N, delta, scale);
}
void Avx512Ops::dots(int64_t nq, int64_t D, const float* Q, const float* K, int64_t ks, int64_t nk, float* S, int64_t ldS) {
  dots_impl(nq, D, Q, K, ks, nk, S, ldS);
}
void Avx512Ops::row_softmax(float* s, int64_t n, float& mOut, float& lOut) { row_softmax_impl(s, n, mOut, lOut); }
void Avx512Ops::exp2(const float* x, float* y, int64_t n) { exp2_impl(x, y, n); }
void Avx512Ops::transpose(const float* src, int64_t ss, int64_t R, int64_t C, float* dst, int64_t ds, float scale,
                          const float* colScale) {
  transpose_impl(src, ss, R, C, dst, ds, scale, colScale);
}

}  // namespace attn
}  // namespace sv
