// Kernels behind the grouped (mixture-of-experts) GEMM of grouped_gemm.cc.
#pragma once
#include <cstdint>

namespace sv {
namespace grouped {

// Widest column run one streaming pass covers (R x this many f32 accumulators stay in L1).
constexpr int64_t kStreamMaxCols = 2048;

// AVX-512 only (call when isa() allows): for R <= 4 rows of x (stride ldx),
// dst[r*ldd + j] = sum_k x[r*ldx + k] * w[k*ldw + j] for j in [0, n), with w
// (f32, or bf16 when `bf16`) read row by row, whole rows at a time.
void stream_gemv_avx512(int R, int64_t K, int64_t n, const float* x, int64_t ldx, const void* w, bool bf16, int64_t ldw,
                        float* dst, int64_t ldd);

}  // namespace grouped
}  // namespace sv
