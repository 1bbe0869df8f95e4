// Portable GEMV kernels (plain loops; the reference the AVX-512 ones are
// tested against). See GemvDot in gemm.h for the contract.
#include "gemm.h"
#include "dtype.h"

namespace sv {
namespace gemm {
namespace {

inline float wval(const void* w, int wtype, int64_t i) {
  return wtype == B_BF16 ? bf16_to_f32(static_cast<const uint16_t*>(w)[i]) : static_cast<const float*>(w)[i];
}

inline void store(const GemvDot& g, int r, int64_t j, float dot) {
  float* o = g.out + r * g.sr + j * g.sj;
  float v = g.alpha * dot + (g.bias ? g.bias[j] : 0.0f) + (g.bias_r ? g.bias_r[r] : 0.0f);
  if (g.beta != 0.0f) v += g.beta * *o;
  *o = v;
}

void dot_any(const GemvDot& g, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; j++) {
    for (int r = 0; r < g.R; r++) {
      const float* x = g.x + r * g.ldx;
      float part[8] = {};  // fixed partial sums: same order at every thread count
      int64_t k = 0;
      for (; k + 8 <= g.K; k += 8)
        for (int u = 0; u < 8; u++) part[u] += x[k + u] * wval(g.w, g.wtype, j * g.ldw + k + u);
      float s = 0;
      for (; k < g.K; k++) s += x[k] * wval(g.w, g.wtype, j * g.ldw + k);
      for (int u = 0; u < 8; u++) s += part[u];
      store(g, r, j, s);
    }
  }
}

constexpr int64_t kAxpyMaxJ = 1024;  // gemv_run keeps axpy column chunks this small

void axpy_any(const GemvDot& g, int64_t j0, int64_t j1) {
  const int64_t n = j1 - j0;
  float acc[kGemvMaxR * kAxpyMaxJ] = {};  // on the stack: nothing here may throw in a pool worker
  for (int64_t k = 0; k < g.K; k++) {
    for (int r = 0; r < g.R; r++) {
      const float xr = g.x[r * g.ldx + k];
      float* a = acc + r * n;
      for (int64_t j = 0; j < n; j++) a[j] += xr * wval(g.w, g.wtype, k * g.ldw + j0 + j);
    }
  }
  for (int r = 0; r < g.R; r++)
    for (int64_t j = 0; j < n; j++) store(g, r, j0 + j, acc[r * n + j]);
}

}  // namespace

const GemvKernels& gemv_portable() {
  static const GemvKernels k = {dot_any, dot_any, axpy_any, axpy_any, nullptr};
  return k;
}

}  // namespace gemm
}  // namespace sv
