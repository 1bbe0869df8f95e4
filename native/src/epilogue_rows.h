// Elementwise epilogues over a block of rows, for fused GEMMs that apply them
// while the block is in cache (grouped experts, gate/up projections, linear +
// activation): the AVX-512 or portable build of the elementwise ops' formulas.
#pragma once
#include <cstdint>

namespace sv {

// out[r, j] = silu(gate[r, j]) * up[r, j], r < rows, j < cols; row strides ldg, ldu, ldo; out may be up.
void swiglu_rows_f32(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out, int64_t ldo,
                     int64_t rows, int64_t cols);
// y[r, j] = act(y[r, j]) in place, act an ActCode (elementwise_math.h), as the activation ops compute it.
void act_rows_f32(float* y, int64_t ldy, int64_t rows, int64_t cols, int act);

}  // namespace sv
