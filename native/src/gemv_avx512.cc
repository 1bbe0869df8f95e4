// AVX-512 GEMV kernels for decode-sized problems (<= 4 activation rows):
// every weight is loaded once and used for all rows. Weights f32 or bf16;
// bf16 uses vdpbf16ps on CPUs with avx512_bf16 (x pre-split into bf16 hi+lo
// halves so the activations keep ~16 mantissa bits), else a 16-bit shift
// to f32 and FMAs. Accumulation is f32. Reached only when sv::isa() allows it.
#include "gemm.h"
#include "cpu.h"
#include "dtype.h"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <cstdint>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

namespace sv {
namespace gemm {
namespace {

inline __mmask16 mask16(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

inline __m512 loadw(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 loadw(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

inline void store_out(const GemvDot& g, int r, int64_t j, float dot) {
  float* o = g.out + r * g.sr + j * g.sj;
  float v = g.alpha * dot + (g.bias ? g.bias[j] : 0.0f) + (g.bias_r ? g.bias_r[r] : 0.0f);
  if (g.beta != 0.0f) v += g.beta * *o;
  *o = v;
}

// Dot products of R activation rows with JB consecutive weight rows.
template <int R, int JB, typename T>
__attribute__((always_inline)) inline void dot_block(const GemvDot& g, const T* w, int64_t j) {
  __m512 acc[JB][R];
#pragma GCC unroll 4
  for (int q = 0; q < JB; q++)
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[q][r] = _mm512_setzero_ps();
  const int64_t K = g.K;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = mask16(K - k);
    __m512 wv[JB];
#pragma GCC unroll 4
    for (int q = 0; q < JB; q++) wv[q] = loadw(w + (j + q) * g.ldw + k, m);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, g.x + r * g.ldx + k);
#pragma GCC unroll 4
      for (int q = 0; q < JB; q++) acc[q][r] = _mm512_fmadd_ps(wv[q], xv, acc[q][r]);
    }
  }
  for (int q = 0; q < JB; q++)
    for (int r = 0; r < R; r++) store_out(g, r, j + q, _mm512_reduce_add_ps(acc[q][r]));
}

template <int R, typename T>
void dot_rows(const GemvDot& g, int64_t j0, int64_t j1) {
  const T* w = static_cast<const T*>(g.w);
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) dot_block<R, 4, T>(g, w, j);
  for (; j < j1; j++) dot_block<R, 1, T>(g, w, j);
}

template <typename T>
void dot_any(const GemvDot& g, int64_t j0, int64_t j1) {
  switch (g.R) {
    case 1: return dot_rows<1, T>(g, j0, j1);
    case 2: return dot_rows<2, T>(g, j0, j1);
    case 3: return dot_rows<3, T>(g, j0, j1);
    default: return dot_rows<4, T>(g, j0, j1);
  }
}

constexpr int64_t kAxpyMaxJ = 1024;  // gemv_run keeps axpy column chunks this small

// W stored [K][J]: rows of W are streamed and scaled into an L1 accumulator, four k at a time.
template <int R, typename T>
void axpy_rows(const GemvDot& g, int64_t j0, int64_t j1) {
  const T* w = static_cast<const T*>(g.w);
  const int64_t n = j1 - j0;
  alignas(64) float acc[R][kAxpyMaxJ];
  for (int r = 0; r < R; r++)
    for (int64_t j = 0; j < n; j++) acc[r][j] = 0.0f;
  int64_t k = 0;
  for (; k + 4 <= g.K; k += 4) {
    __m512 xs[R][4];
    for (int r = 0; r < R; r++)
      for (int u = 0; u < 4; u++) xs[r][u] = _mm512_set1_ps(g.x[r * g.ldx + k + u]);
    for (int64_t jb = 0; jb < n; jb += 16) {
      const __mmask16 m = mask16(n - jb);
      __m512 wv[4];
      for (int u = 0; u < 4; u++) wv[u] = loadw(w + (k + u) * g.ldw + j0 + jb, m);
      for (int r = 0; r < R; r++) {
        __m512 a = _mm512_load_ps(acc[r] + jb);
        for (int u = 0; u < 4; u++) a = _mm512_fmadd_ps(xs[r][u], wv[u], a);
        _mm512_store_ps(acc[r] + jb, a);
      }
    }
  }
  for (; k < g.K; k++) {
    for (int64_t jb = 0; jb < n; jb += 16) {
      const __m512 wv = loadw(w + k * g.ldw + j0 + jb, mask16(n - jb));
      for (int r = 0; r < R; r++)
        _mm512_store_ps(acc[r] + jb, _mm512_fmadd_ps(_mm512_set1_ps(g.x[r * g.ldx + k]), wv,
                                                     _mm512_load_ps(acc[r] + jb)));
    }
  }
  for (int r = 0; r < R; r++)
    for (int64_t j = 0; j < n; j++) store_out(g, r, j0 + j, acc[r][j]);
}

template <typename T>
void axpy_any(const GemvDot& g, int64_t j0, int64_t j1) {
  switch (g.R) {
    case 1: return axpy_rows<1, T>(g, j0, j1);
    case 2: return axpy_rows<2, T>(g, j0, j1);
    case 3: return axpy_rows<3, T>(g, j0, j1);
    default: return axpy_rows<4, T>(g, j0, j1);
  }
}

// ------------------------------------------------------------ vdpbf16ps path

#define SV_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))

inline __mmask32 mask32(int64_t n) { return n >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((1u << n) - 1); }

template <int R, int JB>
SV_BF16_TARGET __attribute__((always_inline)) inline void dot_block_dp(const GemvDot& g, const uint16_t* w,
                                                                       int64_t j) {
  __m512 acc[JB][R];
#pragma GCC unroll 4
  for (int q = 0; q < JB; q++)
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[q][r] = _mm512_setzero_ps();
  const int64_t K = g.K;
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 m = mask32(K - k);
    __m512bh wv[JB];
#pragma GCC unroll 4
    for (int q = 0; q < JB; q++) wv[q] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (j + q) * g.ldw + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const uint16_t* xr = g.xbf + r * 2 * K;
      const __m512bh xh = (__m512bh)_mm512_maskz_loadu_epi16(m, xr + k);
      const __m512bh xl = (__m512bh)_mm512_maskz_loadu_epi16(m, xr + K + k);
#pragma GCC unroll 4
      for (int q = 0; q < JB; q++) {
        acc[q][r] = _mm512_dpbf16_ps(acc[q][r], wv[q], xh);
        acc[q][r] = _mm512_dpbf16_ps(acc[q][r], wv[q], xl);
      }
    }
  }
  for (int q = 0; q < JB; q++)
    for (int r = 0; r < R; r++) store_out(g, r, j + q, _mm512_reduce_add_ps(acc[q][r]));
}

template <int R>
SV_BF16_TARGET void dot_rows_dp(const GemvDot& g, int64_t j0, int64_t j1) {
  const uint16_t* w = static_cast<const uint16_t*>(g.w);
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) dot_block_dp<R, 4>(g, w, j);
  for (; j < j1; j++) dot_block_dp<R, 1>(g, w, j);
}

SV_BF16_TARGET void dot_bf16_dp(const GemvDot& g, int64_t j0, int64_t j1) {
  switch (g.R) {
    case 1: return dot_rows_dp<1>(g, j0, j1);
    case 2: return dot_rows_dp<2>(g, j0, j1);
    case 3: return dot_rows_dp<3>(g, j0, j1);
    default: return dot_rows_dp<4>(g, j0, j1);
  }
}

void prep_bf16(const float* x, int R, int64_t K, int64_t ldx, uint16_t* dst) {
  for (int r = 0; r < R; r++) {
    const float* xr = x + r * ldx;
    uint16_t* hi = dst + r * 2 * K;
    uint16_t* lo = hi + K;
    for (int64_t k = 0; k < K; k++) {
      hi[k] = f32_to_bf16(xr[k]);
      lo[k] = f32_to_bf16(xr[k] - bf16_to_f32(hi[k]));
    }
  }
}

}  // namespace

// Only called when sv::isa() reports AVX-512 (it is compiled for it).
const GemvKernels& gemv_avx512() {
  static const GemvKernels plain = {dot_any<float>, dot_any<uint16_t>, axpy_any<float>, axpy_any<uint16_t>, nullptr};
  static const GemvKernels with_bf16 = {dot_any<float>, dot_bf16_dp, axpy_any<float>, axpy_any<uint16_t>, prep_bf16};
  return cpu().avx512bf16 && gemv_dpbf16_enabled ? with_bf16 : plain;
}

}  // namespace gemm
}  // namespace sv

#pragma GCC pop_options
