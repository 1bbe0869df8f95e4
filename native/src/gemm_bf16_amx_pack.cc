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

namespace {

// dst[j * dld + (k - k0)] = b[k * ldb + jb + j] for columns j < cols (<= 32) and k in [k0, k1).
// Blocks of 32 K values x 32 columns: unpacking rows k and k+1 (16-bit lanes)
// makes each column's K pair one 32-bit word, in the order columns
// 8L+0..3 (low unpack) and 8L+4..7 (high unpack) for 128-bit lane L; two 16x16
// word transposes then give each column its 32 K values (one 64-byte store).
// Port-5 shuffles bound this loop: ~5 per 64 output bytes.
void transpose_cols32(const uint16_t* b, int64_t ldb, int64_t k0, int64_t k1, int64_t jb, int cols, uint16_t* dst, int64_t dld) {
  const __mmask32 m = cols >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((1u << cols) - 1);
  int64_t k = k0;
  for (; k + 32 <= k1; k += 32) {
    __m512i lo[16], hi[16];
    for (int p = 0; p < 16; p++) {
      const uint16_t* r = b + (k + 2 * p) * ldb + jb;
      const __m512i r0 = _mm512_maskz_loadu_epi16(m, r), r1 = _mm512_maskz_loadu_epi16(m, r + ldb);
      lo[p] = _mm512_unpacklo_epi16(r0, r1);
      hi[p] = _mm512_unpackhi_epi16(r0, r1);
    }
    transpose16(lo);
    transpose16(hi);
    for (int j = 0; j < 16; j++) {  // word position j = 4L + c holds column 8L + c (lo) or 8L + 4 + c (hi)
      const int col = 8 * (j >> 2) + (j & 3);
      if (col < cols) _mm512_storeu_si512(dst + col * dld + (k - k0), lo[j]);
      if (col + 4 < cols) _mm512_storeu_si512(dst + (col + 4) * dld + (k - k0), hi[j]);
    }
  }
  for (int j = 0; j < cols; j++)
    for (int64_t kk = k; kk < k1; kk++) dst[j * dld + (kk - k0)] = b[kk * ldb + jb + j];
}

}  // namespace

void amx_transpose_rows(const uint16_t* b, int64_t ldb, int64_t K, int64_t j0, int64_t cols, int64_t rows, int64_t k0,
                        int64_t kv, uint16_t* dst, int64_t dld) {
  const int64_t k1 = std::min(K, k0 + kv), kr = k1 - k0;
  // K blocks outer, column blocks inner: the 32 source rows of a block are read along their length (a few
  // pages, lines reused from L1 across column blocks). Column-block-outer order reads one line per row
  // down a column strip, a TLB miss per line, and measured ~1.5x slower on the MoE experts.
  int64_t k = k0;
  for (; k + 32 <= k1; k += 32) {
    // The next block's rows, over this call's columns: each row contributes only cols*2 bytes per page,
    // too little for the hardware prefetchers to pick the stream up in time.
    for (int64_t kk = k + 32; kk < std::min(k + 64, k1); kk++)
      for (int64_t j = 0; j < cols; j += 32) _mm_prefetch(reinterpret_cast<const char*>(b + kk * ldb + j0 + j), _MM_HINT_T1);
    for (int64_t jb = 0; jb < cols; jb += 32) {
      const int ch = static_cast<int>(std::min<int64_t>(32, cols - jb));
      transpose_cols32(b, ldb, k, k + 32, j0 + jb, ch, dst + jb * dld + (k - k0), dld);
    }
  }
  for (int64_t j = 0; j < cols; j++) {  // the K tail, then zeros to dld
    for (int64_t kk = k; kk < k1; kk++) dst[j * dld + (kk - k0)] = b[kk * ldb + j0 + j];
    std::memset(dst + j * dld + kr, 0, static_cast<size_t>(dld - kr) * 2);
  }
  for (int64_t j = cols; j < rows; j++) std::memset(dst + j * dld, 0, static_cast<size_t>(dld) * 2);
}

void amx_transpose_b(const uint16_t* b, int64_t ldb, int64_t K, int64_t j0, int64_t j1, uint16_t* dst, int64_t kpad) {
  amx_transpose_rows(b, ldb, K, j0, j1 - j0, j1 - j0, 0, K, dst + j0 * kpad, kpad);
}

}  // namespace gemm
}  // namespace sv
