// Plain packers for op(A) panels and op(B) strips, used by the AVX2 and
// portable kernel sets (the AVX-512 set has register-transposing ones).
// Everything here is in an anonymous namespace on purpose: each kernel file
// compiles its own copy for its own target, so no out-of-line copy built for
// one instruction set can be picked by the linker for another.
#pragma once
#include "gemm.h"
#include "dtype.h"
#include <cstdint>

namespace sv {
namespace gemm {
namespace {

// dst[k][r] = op(A)[i0 + r, k0 + k] for r < mr, k < kc.
inline void pack_a_generic(const float* a, int64_t lda, bool transA, int64_t i0, int mr, int64_t k0, int64_t kc,
                           float* dst) {
  if (transA) {
    for (int64_t k = 0; k < kc; k++) {
      const float* s = a + (k0 + k) * lda + i0;
      for (int r = 0; r < mr; r++) dst[k * mr + r] = s[r];
    }
    return;
  }
  for (int r = 0; r < mr; r++) {
    const float* s = a + (i0 + r) * lda + k0;
    for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = s[k];
  }
}

inline float to_f32(float v) { return v; }
inline float to_f32(uint16_t v) { return bf16_to_f32(v); }

// Strip s of dst (at dst + s*sstride) is [kc][NR] with dst[k][j] = op(B)[k0 + k, j0 + s*NR + j],
// zero past column n.
template <int NR, typename T>
void pack_b_generic(const void* bv, int64_t ldb, bool transB, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                    float* dst, int64_t sstride) {
  const T* b = static_cast<const T*>(bv);
  for (int64_t st = 0; st * NR < n; st++) {
    float* d = dst + st * sstride;
    const int64_t js = j0 + st * NR;
    const int nr = static_cast<int>(n - st * NR < NR ? n - st * NR : NR);
    if (!transB) {
      for (int64_t k = 0; k < kc; k++) {
        const T* s = b + (k0 + k) * ldb + js;
        for (int j = 0; j < nr; j++) d[k * NR + j] = to_f32(s[j]);
        for (int j = nr; j < NR; j++) d[k * NR + j] = 0.0f;
      }
      continue;
    }
    for (int j = 0; j < NR; j++) {
      if (j >= nr) {
        for (int64_t k = 0; k < kc; k++) d[k * NR + j] = 0.0f;
        continue;
      }
      const T* s = b + (js + j) * ldb + k0;
      for (int64_t k = 0; k < kc; k++) d[k * NR + j] = to_f32(s[k]);
    }
  }
}

}  // namespace
}  // namespace gemm
}  // namespace sv
