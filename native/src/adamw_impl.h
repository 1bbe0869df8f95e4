// Body of the optimizer kernels (compiled once per ISA, see
// elementwise_isa.h): the fused in-place AdamW update, and the squared-norm
// reduction and in-place scale behind gradient-norm clipping.

constexpr int64_t kOptGrain = 16384;

// PyTorch's AdamW: p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
// p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
template <typename T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, T decay, T b1, T b2, T stepSize, T invSqrtBc2, T eps) {
  parallel_for(n, kOptGrain, [&](int64_t b, int64_t e) {
    T* __restrict pp = p;
    const T* __restrict gp = g;
    T* __restrict mp = m;
    T* __restrict vp = v;
    for (int64_t i = b; i < e; i++) {
      const T gi = gp[i];
      const T mi = b1 * mp[i] + (T(1) - b1) * gi;
      const T vi = b2 * vp[i] + (T(1) - b2) * gi * gi;
      mp[i] = mi;
      vp[i] = vi;
      pp[i] = pp[i] * decay - stepSize * mi / (std::sqrt(vi) * invSqrtBc2 + eps);
    }
  });
}

// sum x^2 in double: fixed 64Ki-element blocks (each summed in 4Ki runs),
// combined in block order, so the result is thread-count invariant.
template <typename T>
double sum_squares(const T* x, int64_t n) {
  constexpr int64_t kBlock = 65536, kRun = 4096;
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(nb, 0.0);
  parallel_for(nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; k++) {
      double s = 0;
      const int64_t end = std::min(n, (k + 1) * kBlock);
      for (int64_t i = k * kBlock; i < end; i += kRun) {
        const int64_t len = std::min(kRun, end - i);
        s += static_cast<double>(row_dot(x + i, x + i, len));
      }
      part[k] = s;
    }
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

template <typename T>
void scale_inplace(T* x, int64_t n, T s) {
  parallel_for(n, 65536, [&](int64_t b, int64_t e) {
    T* __restrict p = x;
    for (int64_t i = b; i < e; i++) p[i] *= s;
  });
}
