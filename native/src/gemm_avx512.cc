// AVX-512 f32 GEMM pieces: the 14x32 register-tiled microkernel (28 zmm
// accumulators, A broadcast from memory, two B vectors per k step) and
// packers that transpose 16x16 blocks in registers, so that packing the
// "linear" layout B (weights [N, K], f32 or bf16) costs little next to the
// multiply. Compiled for AVX-512; reached only when sv::isa() allows it.
#include "gemm.h"
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own "undefined" vectors.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <cstdint>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

namespace sv {
namespace gemm {
namespace {

constexpr int MR = 14, NR = 32;

inline __mmask16 low_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

__attribute__((always_inline)) inline void update_row(float* cr, __m512 acc0, __m512 acc1, __m512 va, float beta,
                                                      __m512 vb, __m512 bias0, __m512 bias1, int nvalid) {
  __m512 v0 = _mm512_fmadd_ps(acc0, va, bias0), v1 = _mm512_fmadd_ps(acc1, va, bias1);
  if (nvalid == NR) {
    if (beta != 0.0f) {
      v0 = _mm512_fmadd_ps(_mm512_loadu_ps(cr), vb, v0);
      v1 = _mm512_fmadd_ps(_mm512_loadu_ps(cr + 16), vb, v1);
    }
    _mm512_storeu_ps(cr, v0);
    _mm512_storeu_ps(cr + 16, v1);
  } else {
    const __mmask16 m0 = low_mask(nvalid), m1 = low_mask(nvalid > 16 ? nvalid - 16 : 0);
    if (beta != 0.0f) {
      v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, cr), vb, v0);
      v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, cr + 16), vb, v1);
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
}

// C[0:ROWS, 0:nvalid] = alpha * Ap·Bp + beta * C + bias. The k loop keeps all
// 2*ROWS accumulators in registers; each A element is a broadcast memory operand.
template <int ROWS>
void ukr(int64_t kc, const float* __restrict ap, const float* __restrict bp, float* c, int64_t ldc, int nvalid,
         float alpha, float beta, const float* bias) {
  __m512 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    // The C tile is needed only at the end: fetch its 2*ROWS lines during the
    // first iterations, one per step, so the misses overlap with the FMAs.
    if (k < 2 * ROWS) _mm_prefetch(reinterpret_cast<const char*>(c + (k >> 1) * ldc + (k & 1) * 16), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; r++) {
      const __m512 av = _mm512_set1_ps(ap[r]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
    ap += ROWS;
    bp += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
  if (bias) {
    bias0 = _mm512_maskz_loadu_ps(low_mask(nvalid), bias);
    bias1 = _mm512_maskz_loadu_ps(low_mask(nvalid > 16 ? nvalid - 16 : 0), bias + 16);
  }
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; r++) update_row(c + r * ldc, acc0[r], acc1[r], va, beta, vb, bias0, bias1, nvalid);
}

// In-register transpose of a 16x16 block: r[i] holds row i on entry, column i on exit.
__attribute__((always_inline)) inline void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

inline __m512 load_elems(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load_elems(const uint16_t* p, __mmask16 m) {  // bf16 -> f32 is a 16-bit shift
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Transposes `rows` (<= 16) source rows of contiguous k values into dst[k][..]:
// dst[(kk + t) * dstride + q] = src_q[kk + t] for t < kc, q < lanes (via mask).
template <typename T>
__attribute__((always_inline)) inline void transpose_rows(const T* src, int64_t ld, int rows, int64_t kc, float* dst,
                                                          int64_t dstride, __mmask16 store_mask, bool aligned16) {
  for (int64_t kk = 0; kk < kc; kk += 16) {
    const int64_t kn = kc - kk < 16 ? kc - kk : 16;
    const __mmask16 km = low_mask(kn);
    __m512 v[16];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) {
      // 16 row streams are more than hardware prefetchers follow: fetch ~1 KiB
      // ahead, into L2 (rows 4 KiB apart would all land in one L1 set).
      if (q < rows) _mm_prefetch(reinterpret_cast<const char*>(src + q * ld + kk + 1024 / sizeof(T)), _MM_HINT_T1);
      v[q] = q < rows ? load_elems(src + q * ld + kk, km) : _mm512_setzero_ps();
    }
    transpose16(v);
    float* d = dst + kk * dstride;
    if (aligned16) {
      for (int t = 0; t < kn; t++) _mm512_store_ps(d + t * dstride, v[t]);
    } else {
      for (int t = 0; t < kn; t++) _mm512_mask_storeu_ps(d + t * dstride, store_mask, v[t]);
    }
  }
}

void packA(const float* a, int64_t lda, bool transA, int64_t i0, int mr, int64_t k0, int64_t kc, float* dst) {
  const __mmask16 rm = low_mask(mr);
  if (transA) {  // rows of the stored matrix are k: mr contiguous values each
    const float* s = a + k0 * lda + i0;
    for (int64_t k = 0; k < kc; k++) _mm512_mask_storeu_ps(dst + k * mr, rm, _mm512_maskz_loadu_ps(rm, s + k * lda));
    return;
  }
  transpose_rows<float>(a + i0 * lda + k0, lda, mr, kc, dst, mr, rm, false);
}

template <typename T>
void packB(const void* bv, int64_t ldb, bool transB, int64_t k0, int64_t kc, int64_t j0, int64_t n, float* dst,
           int64_t sstride) {
  const T* b = static_cast<const T*>(bv);
  const int64_t nstrips = (n + NR - 1) / NR;
  if (!transB) {  // rows of B are k: one pass over each row fills every strip
    const T* s = b + k0 * ldb + j0;
    for (int64_t k = 0; k < kc; k++) {
      const T* row = s + k * ldb;
      // Rows are ldb apart (often a multiple of 4 KiB): too far for hardware prefetchers.
      if (k + 8 < kc)
        for (int64_t j = 0; j < n; j += 16) _mm_prefetch(reinterpret_cast<const char*>(row + 8 * ldb + j), _MM_HINT_T1);
      for (int64_t st = 0; st < nstrips; st++) {
        const int64_t left = n - st * NR;
        float* d = dst + st * sstride + k * NR;
        _mm512_store_ps(d, load_elems(row + st * NR, low_mask(left)));
        _mm512_store_ps(d + 16, load_elems(row + st * NR + 16, low_mask(left > 16 ? left - 16 : 0)));
      }
    }
    return;
  }
  // Linear layout: stored rows are output columns j; transpose 16-row halves of each strip.
  for (int64_t st = 0; st < nstrips; st++) {
    for (int h = 0; h < 2; h++) {
      const int64_t left = n - st * NR - 16 * h;  // rows of this half that exist
      const int64_t rows = left < 0 ? 0 : left > 16 ? 16 : left;
      transpose_rows<T>(b + (j0 + st * NR + 16 * h) * ldb + k0, ldb, static_cast<int>(rows), kc,
                        dst + st * sstride + 16 * h, NR, 0xFFFF, true);
    }
  }
}

}  // namespace

// Only called when sv::isa() reports AVX-512 (it is compiled for it).
const KernelSet& kernels_avx512() {
  static const KernelSet ks = {
      "avx512", MR, NR,
      {nullptr, ukr<1>, ukr<2>, ukr<3>, ukr<4>, ukr<5>, ukr<6>, ukr<7>, ukr<8>, ukr<9>, ukr<10>, ukr<11>, ukr<12>,
       ukr<13>, ukr<14>, nullptr, nullptr},
      packA, packB<float>, packB<uint16_t>,
      /*KC=*/256, /*G=*/4, /*CP=*/4,
  };
  return ks;
}

}  // namespace gemm
}  // namespace sv

#pragma GCC pop_options
