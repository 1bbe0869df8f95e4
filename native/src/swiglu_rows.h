// SwiGLU over a block of rows, for the fused GEMM epilogues (grouped experts,
// gate/up projections): the AVX-512 or portable build of the swiglu op's formula.
#pragma once
#include <cstdint>

namespace sv {

// out[r, j] = silu(gate[r, j]) * up[r, j], r < rows, j < cols; row strides ldg, ldu, ldo; out may be up.
void swiglu_rows_f32(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out, int64_t ldo,
                     int64_t rows, int64_t cols);

}  // namespace sv
