// Body of the row softmax / log-softmax kernels and their backward passes
// (compiled once per ISA, see elementwise_isa.h). Rows are contiguous and
// handled whole by one thread, so results never depend on the thread count.

inline int64_t softmax_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

template <typename T>
void softmax_fwd(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  parallel_for(rows, softmax_grain(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const T* __restrict xr = x + r * n;
      T* __restrict yr = y + r * n;
      const T m = row_max(xr, n);
      if (log) {
        // (x - m) - log(s), not x - (m + log(s)): keeps precision for large logits
        const T ls = std::log(row_sum_exp(xr, m, n));
        for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - m) - ls;
      } else {
        const T inv = T(1) / row_exp_sum(xr, m, yr, n);
        for (int64_t i = 0; i < n; i++) yr[i] *= inv;
      }
    }
  });
}

// softmax: gx = y * (g - sum(g*y)); log-softmax: gx = g - exp(y) * sum(g).
template <typename T>
void softmax_bwd(const T* g, const T* y, T* gx, int64_t rows, int64_t n, bool log) {
  parallel_for(rows, softmax_grain(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const T* __restrict gr = g + r * n;
      const T* __restrict yr = y + r * n;
      T* __restrict o = gx + r * n;
      if (log) {
        const T s = row_sum(gr, n);
        for (int64_t i = 0; i < n; i++) o[i] = gr[i] - exp_t<T>(yr[i]) * s;
      } else {
        const T d = row_dot(gr, yr, n);
        for (int64_t i = 0; i < n; i++) o[i] = yr[i] * (gr[i] - d);
      }
    }
  });
}
