// Operand preparation for the AMX bf16 GEMM (see gemm_bf16_amx.cc): the
// activations packed as tile B operands (bf16 K pairs, 16 rows of op(A) per
// tile row), and the few weight pieces that cannot be read in place (a panel
// with fewer than 32 rows, a ragged last K step, a [K, N]-stored weight).
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
#include "gemm_bf16.h"
#include <algorithm>
#include <cstring>
#include <immintrin.h>

namespace sv {
namespace gemm {

namespace {

constexpr int64_t kPrefetchSteps = 4;  // activation rows read ahead of the packing, in 32-value steps

// f32 -> bf16 bits (nearest even, NaN quiet) in the high half of each lane,
// exactly as bf16_round.
inline __m512i round_hi(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
}

// 32 floats (lo: K values 0-15, hi: 16-31) -> 16 bf16 pairs in K order.
inline __m512i pairs32(__m512 lo, __m512 hi) {
  // 16-bit lanes 1, 3, ..., 31 of lo then of hi (index bit 5 selects hi).
  const __m512i idx = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                       31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return _mm512_permutex2var_epi16(round_hi(lo), idx, round_hi(hi));
}

// 16 floats -> their bf16 bits in the low half of each 32-bit lane.
inline __m512i round_lo(__m512 v) { return _mm512_srli_epi32(round_hi(v), 16); }

inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// 16x16 transpose of 32-bit lanes (same scheme as the kernel's epilogue).
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 4; g++) {
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int q = 0; q < 4; q++) {
    const __m512i v = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x88), w = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xDD);
    const __m512i x = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x88), y = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xDD);
    r[q] = _mm512_shuffle_i32x4(v, x, 0x88);
    r[8 + q] = _mm512_shuffle_i32x4(v, x, 0xDD);
    r[4 + q] = _mm512_shuffle_i32x4(w, y, 0x88);
    r[12 + q] = _mm512_shuffle_i32x4(w, y, 0xDD);
  }
}

}  // namespace

void amx_pack_x(const float* a, int64_t lda, bool transA, int64_t M, int64_t K, int64_t mt, int64_t steps,
                uint32_t* dst) {
  const int64_t i0 = 16 * mt;
  const int mr = static_cast<int>(std::min<int64_t>(16, M - i0));
  const __mmask16 mrows = lanes(mr);
  for (int64_t s = 0; s < steps; s++) {
    const int64_t k0 = s * kAmxStepK, kv = std::min<int64_t>(kAmxStepK, K - k0);
    uint32_t* out = dst + s * 256;
    if (!transA) {
      // Row r of the block as 16 pairs, then transposed to [pair][row].
      const __mmask16 m0 = lanes(kv), m1 = lanes(kv - 16);
      __m512i r[16];
      for (int q = 0; q < 16; q++) {
        if (q < mr) {
          const float* src = a + (i0 + q) * lda + k0;
          // 16 row streams are more than the hardware prefetcher runs ahead on: ask for a few steps ahead.
          if (s + kPrefetchSteps < steps) {
            _mm_prefetch(reinterpret_cast<const char*>(src + kPrefetchSteps * kAmxStepK), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(src + kPrefetchSteps * kAmxStepK + 16), _MM_HINT_T0);
          }
          r[q] = pairs32(_mm512_maskz_loadu_ps(m0, src), _mm512_maskz_loadu_ps(m1, src + 16));
        } else {
          r[q] = _mm512_setzero_si512();
        }
      }
      transpose16(r);
      for (int q = 0; q < 16; q++) _mm512_store_si512(out + 16 * q, r[q]);
    } else {
      // op(A)[i, k] = a[k*lda + i]: a pair row is two K rows of 16 contiguous m values.
      for (int p = 0; p < 16; p++) {
        const int64_t k = k0 + 2 * p;
        const __m512 lo = k < K ? _mm512_maskz_loadu_ps(mrows, a + k * lda + i0) : _mm512_setzero_ps();
        const __m512 hi = k + 1 < K ? _mm512_maskz_loadu_ps(mrows, a + (k + 1) * lda + i0) : _mm512_setzero_ps();
        const __m512i v = _mm512_or_si512(round_lo(lo), _mm512_slli_epi32(round_lo(hi), 16));
        _mm512_store_si512(out + 16 * p, v);
      }
    }
  }
}

void amx_pack_a_rows(const float* a, int64_t lda, bool transA, int64_t M, int64_t K, int64_t mt, int64_t steps,
                     uint16_t* dst) {
  const int64_t i0 = 16 * mt;
  const int mr = static_cast<int>(std::min<int64_t>(16, M - i0));
  for (int q = 0; q < 16; q++) {
    uint16_t* out = dst + 32 * q;
    if (q >= mr) {
      for (int64_t s = 0; s < steps; s++) _mm512_store_si512(out + 512 * s, _mm512_setzero_si512());
      continue;
    }
    for (int64_t s = 0; s < steps; s++) {
      const int64_t k0 = s * kAmxStepK;
      __m512 lo, hi;
      if (!transA) {
        const float* src = a + (i0 + q) * lda + k0;
        lo = _mm512_maskz_loadu_ps(lanes(K - k0), src);
        hi = _mm512_maskz_loadu_ps(lanes(K - k0 - 16), src + 16);
      } else {  // op(A)[i, k] = a[k*lda + i]: gathered one value at a time (rare: transposed activations)
        alignas(64) float v[32] = {};
        for (int64_t k = k0; k < std::min(K, k0 + kAmxStepK); k++) v[k - k0] = a[k * lda + i0 + q];
        lo = _mm512_load_ps(v);
        hi = _mm512_load_ps(v + 16);
      }
      _mm512_store_si512(out + 512 * s, pairs32(lo, hi));  // 32 bf16 in K order
    }
  }
}

void amx_pack_b_pairs(const uint16_t* b, int64_t ldb, int64_t K, int64_t n0, int64_t cols, int64_t s0, int64_t ns,
                      uint16_t* dst) {
  const int64_t strips = (cols + 31) / 32;
  for (int64_t q = 0; q < 16 * ns; q++) {  // pair rows: 16 per step
    const int64_t s = q >> 4, p = q & 15, k = (s0 + s) * kAmxStepK + 2 * p;
    // Rows k and k+1 read along their length (two streams the hardware prefetcher follows); the
    // low/high 16-bit unpacks make each column's K pair one 32-bit word (1 shuffle per 64 bytes out).
    const uint16_t* r0 = b + k * ldb + n0;
    const uint16_t* r1 = r0 + ldb;
    uint16_t* out = dst + s * 1024 + 32 * p;
    for (int64_t st = 0; st < strips; st++) {
      const int64_t c = 32 * st, left = cols - c;
      const __mmask32 m = left >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((1u << left) - 1);
      const __m512i x0 = k < K ? _mm512_maskz_loadu_epi16(m, r0 + c) : _mm512_setzero_si512();
      const __m512i x1 = k + 1 < K ? _mm512_maskz_loadu_epi16(m, r1 + c) : _mm512_setzero_si512();
      _mm512_store_si512(out + st * ns * 1024, _mm512_unpacklo_epi16(x0, x1));
      _mm512_store_si512(out + st * ns * 1024 + 512, _mm512_unpackhi_epi16(x0, x1));
    }
  }
}

void amx_copy_w(const uint16_t* w, int64_t wld, int rows, int64_t k0, int64_t kv, uint16_t* dst, int64_t dld) {
  for (int r = 0; r < 32; r++) {
    uint16_t* d = dst + r * dld;
    if (r < rows) {
      std::memcpy(d, w + r * wld + k0, static_cast<size_t>(kv) * 2);
      std::memset(d + kv, 0, static_cast<size_t>(dld - kv) * 2);
    } else {
      std::memset(d, 0, static_cast<size_t>(dld) * 2);
    }
  }
}

}  // namespace gemm
}  // namespace sv
