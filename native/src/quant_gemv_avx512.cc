// AVX-512 quantised GEMV for decode: JB weight rows are streamed together and
// each weight is converted to f32 once and used for all R <= 4 activation
// rows. Weights are dequantised in registers (int8: cvt and one multiply by
// the group scale; int4: nibble split, cvt, one FMA scale*u - 8*scale), so the
// result equals the dequantise-then-f32 reference up to summation order.
// Reached only when sv::isa() allows AVX-512.
#include "quant.h"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <cstdint>

#pragma GCC push_options
// avx512bf16 only for the intrinsic of dequant_rows_bf16_avx512 (called where the CPU has it); the
// rest uses no bf16 type, so nothing else here can come out as a bf16 instruction.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")

namespace sv {
namespace quant {
namespace {

inline float scale_of(const uint16_t* s, int64_t i) { return _cvtsh_ss(s[i]); }

template <int R, int JB>
__attribute__((always_inline)) inline void block8(const QGemv& g, int64_t n) {
  __m512 acc[JB][R];
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++) acc[j][r] = _mm512_setzero_ps();
  const int64_t ng = g.K / g.G;
  const int8_t* q[JB];
  for (int j = 0; j < JB; j++) q[j] = reinterpret_cast<const int8_t*>(g.q) + (n + j) * g.K;
  for (int64_t gi = 0; gi < ng; gi++) {
    __m512 s[JB];
    for (int j = 0; j < JB; j++) s[j] = _mm512_set1_ps(scale_of(g.scales, (n + j) * ng + gi));
    for (int64_t k = gi * g.G; k < (gi + 1) * g.G; k += 16) {
      __m512 xv[R];
      for (int r = 0; r < R; r++) xv[r] = _mm512_loadu_ps(g.x + r * g.ldx + k);
      for (int j = 0; j < JB; j++) {
        if ((k & 63) == 0) _mm_prefetch(reinterpret_cast<const char*>(q[j] + 2 * JB * g.K + k), _MM_HINT_T0);  // two row blocks ahead
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q[j] + k));
        const __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), s[j]);
        for (int r = 0; r < R; r++) acc[j][r] = _mm512_fmadd_ps(w, xv[r], acc[j][r]);
      }
    }
  }
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++)
      g.out[r * g.ldo + n + j] = _mm512_reduce_add_ps(acc[j][r]) + (g.bias ? g.bias[n + j] : 0.0f);
}

template <int R, int JB>
__attribute__((always_inline)) inline void block4(const QGemv& g, int64_t n) {
  __m512 acc[JB][R];
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++) acc[j][r] = _mm512_setzero_ps();
  const int64_t ng = g.K / g.G;
  const uint8_t* q[JB];
  for (int j = 0; j < JB; j++) q[j] = g.q + (n + j) * (g.K / 2);
  const __m128i lowMask = _mm_set1_epi8(0x0F);
  for (int64_t gi = 0; gi < ng; gi++) {
    __m512 s[JB], off[JB];
    for (int j = 0; j < JB; j++) {
      const float sc = scale_of(g.scales, (n + j) * ng + gi);
      s[j] = _mm512_set1_ps(sc);
      off[j] = _mm512_set1_ps(-8.0f * sc);
    }
    for (int64_t k = gi * g.G; k < (gi + 1) * g.G; k += 32) {
      __m512 x0[R], x1[R];
      for (int r = 0; r < R; r++) {
        x0[r] = _mm512_loadu_ps(g.x + r * g.ldx + k);
        x1[r] = _mm512_loadu_ps(g.x + r * g.ldx + k + 16);
      }
      for (int j = 0; j < JB; j++) {
        if ((k & 127) == 0) _mm_prefetch(reinterpret_cast<const char*>(q[j] + 2 * JB * (g.K / 2) + k / 2), _MM_HINT_T0);
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q[j] + k / 2));
        const __m128i lo = _mm_and_si128(b, lowMask);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), lowMask);
        const __m512 w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), s[j], off[j]);
        const __m512 w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), s[j], off[j]);
        for (int r = 0; r < R; r++) {
          acc[j][r] = _mm512_fmadd_ps(w0, x0[r], acc[j][r]);
          acc[j][r] = _mm512_fmadd_ps(w1, x1[r], acc[j][r]);
        }
      }
    }
  }
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++)
      g.out[r * g.ldo + n + j] = _mm512_reduce_add_ps(acc[j][r]) + (g.bias ? g.bias[n + j] : 0.0f);
}

template <int R>
void rows(const QGemv& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  if (g.bits == 8) {
    for (; n + 4 <= n1; n += 4) block8<R, 4>(g, n);
    for (; n < n1; n++) block8<R, 1>(g, n);
  } else {
    for (; n + 4 <= n1; n += 4) block4<R, 4>(g, n);
    for (; n < n1; n++) block4<R, 1>(g, n);
  }
}

}  // namespace

namespace {

// Dequantises rows [n0, n1) 32 weights at a time (int8: cvt and one multiply by the group scale; int4:
// nibble split, cvt, one FMA scale*u - 8*scale) and hands each pair of 16-value vectors to
// store(row n - n0, k, first 16, next 16).
template <class Store>
inline void dequant_rows_with(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0,
                              int64_t n1, Store store) {
  const int64_t ng = K / G, rb = row_bytes(bits, K);
  const __m128i lowMask = _mm_set1_epi8(0x0F);
  for (int64_t n = n0; n < n1; n++) {
    const uint8_t* qr = q + n * rb;
    for (int64_t gi = 0; gi < ng; gi++) {
      const float sc = scale_of(scales, n * ng + gi);
      const __m512 s = _mm512_set1_ps(sc), off = _mm512_set1_ps(-8.0f * sc);
      for (int64_t k = gi * G; k < (gi + 1) * G; k += 32) {
        if (bits == 8) {
          const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qr + k));
          const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qr + k + 16));
          store(n - n0, k, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b0)), s),
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b1)), s));
        } else {
          const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qr + k / 2));
          const __m128i lo = _mm_and_si128(b, lowMask), hi = _mm_and_si128(_mm_srli_epi16(b, 4), lowMask);
          store(n - n0, k, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), s, off),
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), s, off));
        }
      }
    }
  }
}

}  // namespace

void dequant_rows_avx512(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0, int64_t n1,
                         float* dst) {
  dequant_rows_with(bits, G, K, q, scales, n0, n1, [&](int64_t r, int64_t k, __m512 v0, __m512 v1) {
    _mm512_storeu_ps(dst + r * K + k, v0);
    _mm512_storeu_ps(dst + r * K + k + 16, v1);
  });
}

void dequant_rows_bf16_avx512(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0,
                              int64_t n1, uint16_t* dst) {
  // The f32 values rounded to bf16 (nearest even).
  dequant_rows_with(bits, G, K, q, scales, n0, n1, [&](int64_t r, int64_t k, __m512 v0, __m512 v1) {
    _mm512_storeu_si512(dst + r * K + k, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
  });
}

void qgemv_avx512(const QGemv& g, int64_t n0, int64_t n1) {
  switch (g.R) {
    case 1: return rows<1>(g, n0, n1);
    case 2: return rows<2>(g, n0, n1);
    case 3: return rows<3>(g, n0, n1);
    default: return rows<4>(g, n0, n1);
  }
}

}  // namespace quant
}  // namespace sv

#pragma GCC pop_options
