// Portable f32 GEMM pieces (baseline x86-64 / any CPU): a 4x16 microkernel
// written as plain loops over a local accumulator tile, which the compiler
// vectorises with whatever the baseline offers. Also the reference path that
// tests compare the SIMD paths against.
#include "gemm.h"
#include "gemm_pack_generic.h"

namespace sv {
namespace gemm {
namespace {

constexpr int MR = 4, NR = 16;

template <int ROWS>
void ukr(int64_t kc, const float* __restrict ap, const float* __restrict bp, float* c, int64_t ldc, int nvalid,
         float alpha, float beta, const float* bias) {
  float acc[ROWS][NR] = {};
  for (int64_t k = 0; k < kc; k++) {
    for (int r = 0; r < ROWS; r++) {
      const float av = ap[r];
      for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
    }
    ap += ROWS;
    bp += NR;
  }
  for (int r = 0; r < ROWS; r++) {
    float* cr = c + r * ldc;
    for (int j = 0; j < nvalid; j++) {
      float v = alpha * acc[r][j] + (bias ? bias[j] : 0.0f);
      if (beta != 0.0f) v += beta * cr[j];
      cr[j] = v;
    }
  }
}

}  // namespace

const KernelSet& kernels_portable() {
  static const KernelSet ks = {
      "portable", MR, NR,
      {nullptr, ukr<1>, ukr<2>, ukr<3>, ukr<4>, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
       nullptr, nullptr, nullptr, nullptr, nullptr},
      pack_a_generic, pack_b_generic<NR, float>, pack_b_generic<NR, uint16_t>,
      /*KC=*/256, /*G=*/8, /*CP=*/16,
  };
  return ks;
}

}  // namespace gemm
}  // namespace sv
