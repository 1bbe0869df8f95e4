// Body of the fused cross-entropy kernels over logits [N, V] (compiled once
// per ISA, see elementwise_isa.h). The forward keeps only two numbers per
// row (max and log-sum-exp); the backward recomputes softmax from them, so
// the log-prob matrix is never materialised. Rows are independent (one thread each).

inline int64_t ce_grain(int64_t V) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1)); }

// loss[i] = (1-eps)*(lse_i - x[i, t_i]) + eps*(lse_i - mean_j x[i, j]); 0 for ignored rows.
// Saves each row's max m_i and log-sum ls_i = log(sum_j exp(x[i, j] - m_i)) separately
// (lse_i = m_i + ls_i), so large logits keep their precision in both passes.
template <typename T>
void cross_entropy_fwd(const T* x, const int32_t* tgt, T* loss, T* rowMax, T* rowLogSum, int64_t N, int64_t V,
                       int32_t ignore, T smoothing) {
  parallel_for(N, ce_grain(V), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const int32_t t = tgt[i];
      if (t == ignore) {
        loss[i] = rowMax[i] = rowLogSum[i] = T(0);
        continue;
      }
      const T* xr = x + i * V;
      const T m = row_max(xr, V);
      const T ls = std::log(row_sum_exp(xr, m, V));  // NaN/inf rows make everything NaN, as in torch
      rowMax[i] = m;
      rowLogSum[i] = ls;
      T v = ls - (xr[t] - m);
      if (smoothing != T(0)) v = (T(1) - smoothing) * v + smoothing * (ls - (row_sum(xr, V) / T(V) - m));
      loss[i] = v;
    }
  });
}

// gx[i, j] = s_i * (softmax(x)[i, j] - eps/V - (1-eps)*[j == t_i]), s_i = g[i*gStride]*gScale; 0 for ignored rows.
template <typename T>
void cross_entropy_bwd(const T* x, const int32_t* tgt, const T* rowMax, const T* rowLogSum, const T* g,
                       int64_t gStride, T gScale, T* gx, int64_t N, int64_t V, int32_t ignore, T smoothing) {
  parallel_for(N, ce_grain(V), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      T* __restrict o = gx + i * V;
      const int32_t t = tgt[i];
      if (t == ignore) {
        for (int64_t j = 0; j < V; j++) o[j] = T(0);
        continue;
      }
      const T* __restrict xr = x + i * V;
      const T s = g[i * gStride] * gScale, m = rowMax[i], ls = rowLogSum[i], off = smoothing / T(V);
      for (int64_t j = 0; j < V; j++) o[j] = s * (exp_t<T>((xr[j] - m) - ls) - off);
      o[t] -= s * (T(1) - smoothing);
    }
  });
}
