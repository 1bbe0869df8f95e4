// AVX2+FMA f32 GEMM pieces: a 6x16 microkernel (12 ymm accumulators, two B
// vectors, one broadcast) with the plain packers. Compiled for AVX2; reached
// only when sv::isa() allows it.
#include "gemm.h"
#include "dtype.h"  // before the target pragma: its inline std code must stay baseline
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <cstdint>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "gemm_pack_generic.h"

namespace sv {
namespace gemm {
namespace {

constexpr int MR = 6, NR = 16;

inline __m256i lane_mask(int n) {  // first n (0..8) lanes set
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

template <int ROWS>
void ukr(int64_t kc, const float* __restrict ap, const float* __restrict bp, float* c, int64_t ldc, int nvalid,
         float alpha, float beta, const float* bias) {
  __m256 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++) {
      const __m256 av = _mm256_broadcast_ss(ap + r);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
    ap += ROWS;
    bp += NR;
  }
  const __m256i m0 = lane_mask(nvalid < 8 ? nvalid : 8), m1 = lane_mask(nvalid > 8 ? nvalid - 8 : 0);
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
  if (bias) {
    bias0 = _mm256_maskload_ps(bias, m0);
    bias1 = _mm256_maskload_ps(bias + 8, m1);
  }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; r++) {  // unrolled, so the accumulators stay in registers
    float* cr = c + r * ldc;
    __m256 v0 = _mm256_fmadd_ps(acc0[r], va, bias0), v1 = _mm256_fmadd_ps(acc1[r], va, bias1);
    if (beta != 0.0f) {
      v0 = _mm256_fmadd_ps(_mm256_maskload_ps(cr, m0), vb, v0);
      v1 = _mm256_fmadd_ps(_mm256_maskload_ps(cr + 8, m1), vb, v1);
    }
    _mm256_maskstore_ps(cr, m0, v0);
    _mm256_maskstore_ps(cr + 8, m1, v1);
  }
}

}  // namespace

// Only called when sv::isa() allows AVX2 (it is compiled for it).
const KernelSet& kernels_avx2() {
  static const KernelSet ks = {
      "avx2", MR, NR,
      {nullptr, ukr<1>, ukr<2>, ukr<3>, ukr<4>, ukr<5>, ukr<6>, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
       nullptr, nullptr, nullptr, nullptr},
      pack_a_generic, pack_b_generic<NR, float>, pack_b_generic<NR, uint16_t>,
      /*KC=*/256, /*G=*/8, /*CP=*/8,
  };
  return ks;
}

}  // namespace gemm
}  // namespace sv

#pragma GCC pop_options
