// Body of the grouped GEMM's fused SwiGLU (compiled once per ISA, see
// elementwise_isa.h): the same SiLU as the elementwise kernels, so the fused
// result equals silu(gate) * up computed by the swiglu op on this machine.

// out[r, j] = silu(gate[r, j]) * up[r, j] for r < rows, j < cols; gate and up
// rows at stride ldi, out rows at stride ldo.
inline void swiglu_rows(const float* gate, const float* up, int64_t ldi, float* out, int64_t ldo, int64_t rows,
                        int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float* __restrict g = gate + r * ldi;
    const float* __restrict u = up + r * ldi;
    float* __restrict o = out + r * ldo;
    for (int64_t j = 0; j < cols; j++) o[j] = act_fwd<ACT_SILU, float>(g[j]) * u[j];
  }
}
