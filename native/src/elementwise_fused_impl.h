// Body of the fused elementwise kernels (compiled once per ISA, see
// elementwise_isa.h): bias + activation over rows, its backward with the
// bias gradient as a column sum, the SwiGLU backward, and the SwiGLU and
// activation rows that fused GEMM epilogues apply to blocks still in cache.

// y[r, j] = act(x[r, j] + bias[j]); bias may be null.
template <typename T>
void bias_act_fwd(const T* x, const T* bias, T* y, int64_t rows, int64_t D, int act) {
  with_act(act, [&](auto tag) {
    constexpr int A = decltype(tag)::value;
    parallel_for(rows, D > 0 ? (16384 + D - 1) / D : rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const T* __restrict xr = x + r * D;
        T* __restrict yr = y + r * D;
        if (bias) {
          const T* __restrict b = bias;
          for (int64_t j = 0; j < D; j++) yr[j] = act_fwd<A, T>(xr[j] + b[j]);
        } else {
          for (int64_t j = 0; j < D; j++) yr[j] = act_fwd<A, T>(xr[j]);
        }
      }
    });
  });
}

// gx = g * act'(x + bias); gbias (if not null) = column sums of gx, summed in
// fixed row blocks so the result does not depend on the thread count.
template <typename T>
void bias_act_bwd(const T* g, const T* x, const T* bias, T* gx, T* gbias, int64_t rows, int64_t D, int act) {
  const int64_t nblk = fixed_row_blocks(rows, D);
  std::vector<T> partial(gbias ? nblk * D : 0, T(0));
  with_act(act, [&](auto tag) {
    constexpr int A = decltype(tag)::value;
    parallel_for(nblk, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; blk++) {
        T* __restrict acc = gbias ? partial.data() + blk * D : nullptr;
        for (int64_t r = rows * blk / nblk; r < rows * (blk + 1) / nblk; r++) {
          const T* __restrict gr = g + r * D;
          const T* __restrict xr = x + r * D;
          T* __restrict o = gx + r * D;
          if (bias) {
            const T* __restrict b = bias;
            for (int64_t j = 0; j < D; j++) o[j] = gr[j] * act_grad<A, T>(xr[j] + b[j]);
          } else {
            for (int64_t j = 0; j < D; j++) o[j] = gr[j] * act_grad<A, T>(xr[j]);
          }
          if (acc) for (int64_t j = 0; j < D; j++) acc[j] += o[j];
        }
      }
    });
  });
  if (!gbias) return;
  for (int64_t j = 0; j < D; j++) gbias[j] = T(0);
  for (int64_t blk = 0; blk < nblk; blk++) {
    const T* __restrict p = partial.data() + blk * D;
    for (int64_t j = 0; j < D; j++) gbias[j] += p[j];
  }
}

// For y = silu(gate) * up: ggate = g * up * silu'(gate), gup = g * silu(gate).
template <typename T>
void swiglu_bwd(const T* g, const T* gate, const T* up, T* ggate, T* gup, int64_t n) {
  parallel_for(n, 16384, [&](int64_t b, int64_t e) {
    const T* __restrict gp = g;
    const T* __restrict a = gate;
    const T* __restrict u = up;
    T* __restrict ga = ggate;
    T* __restrict gu = gup;
    for (int64_t i = b; i < e; i++) {
      T s = sigmoid_t<T>(a[i]);
      gu[i] = gp[i] * a[i] * s;
      ga[i] = gp[i] * u[i] * s * (T(1) + a[i] * (T(1) - s));
    }
  });
}

// out[r, j] = silu(gate[r, j]) * up[r, j] for r < rows, j < cols (row strides ldg, ldu, ldo; out may be
// up itself), the formula of the swiglu binary op. Serial: callers run it on one block of a parallel task.
inline void swiglu_rows(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out, int64_t ldo,
                        int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float* __restrict g = gate + r * ldg;
    const float* u = up + r * ldu;
    float* o = out + r * ldo;
    for (int64_t j = 0; j < cols; j++) o[j] = act_fwd<ACT_SILU>(g[j]) * u[j];
  }
}

// y[r, j] = act(y[r, j]) in place for r < rows, j < cols (row stride ldy). Serial, like swiglu_rows.
inline void act_rows(float* y, int64_t ldy, int64_t rows, int64_t cols, int act) {
  with_act(act, [&](auto tag) {
    constexpr int A = decltype(tag)::value;
    for (int64_t r = 0; r < rows; r++) {
      float* __restrict p = y + r * ldy;
      for (int64_t j = 0; j < cols; j++) p[j] = act_fwd<A, float>(p[j]);
    }
  });
}
