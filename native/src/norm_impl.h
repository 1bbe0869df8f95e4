// Body of the LayerNorm / RMSNorm kernels over the last dim of a contiguous
// [rows, D] view (compiled once per ISA, see elementwise_isa.h). Forward
// saves per-row mean/rstd; backward produces dx and, as column sums over
// fixed row blocks (thread-count invariant), dweight and dbias.

inline int64_t norm_grain(int64_t D) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)); }

template <typename T>
void layer_norm_fwd(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t D, T eps) {
  parallel_for(rows, norm_grain(D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const T* __restrict xr = x + r * D;
      T* __restrict yr = y + r * D;
      const T mu = row_sum(xr, D) / T(D);
      const T rs = T(1) / std::sqrt(row_sq_dev(xr, mu, D) / T(D) + eps);
      mean[r] = mu;
      rstd[r] = rs;
      if (w && b) for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
      else if (w) for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs * w[j];
      else if (b) for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs + b[j];
      else for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs;
    }
  });
}

// Adds the per-block partial column sums (nblk x D each) into dst in block order.
template <typename T>
inline void combine_blocks(const std::vector<T>& part, int64_t nblk, int64_t D, T* dst) {
  if (!dst) return;
  for (int64_t j = 0; j < D; j++) dst[j] = T(0);
  for (int64_t k = 0; k < nblk; k++)
    for (int64_t j = 0; j < D; j++) dst[j] += part[k * D + j];
}

// xhat = (x - mean) * rstd, gh = g * w:
// gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)); gw = sum g * xhat; gb = sum g.
template <typename T>
void layer_norm_bwd(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* gx, T* gw, T* gb,
                    int64_t rows, int64_t D) {
  const int64_t nblk = fixed_row_blocks(rows, D);
  std::vector<T> pw(gw ? nblk * D : 0, T(0)), pb(gb ? nblk * D : 0, T(0));
  parallel_for(nblk, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> xh(D), gh(D);
    for (int64_t blk = b0; blk < b1; blk++) {
      for (int64_t r = rows * blk / nblk; r < rows * (blk + 1) / nblk; r++) {
        const T* __restrict gr = g + r * D;
        const T* __restrict xr = x + r * D;
        T* __restrict o = gx + r * D;
        const T mu = mean[r], rs = rstd[r];
        for (int64_t j = 0; j < D; j++) xh[j] = (xr[j] - mu) * rs;
        if (w) for (int64_t j = 0; j < D; j++) gh[j] = gr[j] * w[j];
        else for (int64_t j = 0; j < D; j++) gh[j] = gr[j];
        const T a = row_sum(gh.data(), D) / T(D), c = row_dot(gh.data(), xh.data(), D) / T(D);
        for (int64_t j = 0; j < D; j++) o[j] = rs * (gh[j] - a - xh[j] * c);
        if (gw) {
          T* __restrict acc = pw.data() + blk * D;
          for (int64_t j = 0; j < D; j++) acc[j] += gr[j] * xh[j];
        }
        if (gb) {
          T* __restrict acc = pb.data() + blk * D;
          for (int64_t j = 0; j < D; j++) acc[j] += gr[j];
        }
      }
    }
  });
  combine_blocks(pw, nblk, D, gw);
  combine_blocks(pb, nblk, D, gb);
}

template <typename T>
void rms_norm_fwd(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t D, T eps) {
  parallel_for(rows, norm_grain(D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const T* __restrict xr = x + r * D;
      T* __restrict yr = y + r * D;
      const T rs = T(1) / std::sqrt(row_dot(xr, xr, D) / T(D) + eps);
      rstd[r] = rs;
      if (w) for (int64_t j = 0; j < D; j++) yr[j] = xr[j] * rs * w[j];
      else for (int64_t j = 0; j < D; j++) yr[j] = xr[j] * rs;
    }
  });
}

// xhat = x * rstd, gh = g * w: gx = rstd * (gh - xhat * mean(gh * xhat)); gw = sum g * xhat.
template <typename T>
void rms_norm_bwd(const T* g, const T* x, const T* w, const T* rstd, T* gx, T* gw, int64_t rows, int64_t D) {
  const int64_t nblk = fixed_row_blocks(rows, D);
  std::vector<T> pw(gw ? nblk * D : 0, T(0));
  parallel_for(nblk, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> xh(D), gh(D);
    for (int64_t blk = b0; blk < b1; blk++) {
      for (int64_t r = rows * blk / nblk; r < rows * (blk + 1) / nblk; r++) {
        const T* __restrict gr = g + r * D;
        const T* __restrict xr = x + r * D;
        T* __restrict o = gx + r * D;
        const T rs = rstd[r];
        for (int64_t j = 0; j < D; j++) xh[j] = xr[j] * rs;
        if (w) for (int64_t j = 0; j < D; j++) gh[j] = gr[j] * w[j];
        else for (int64_t j = 0; j < D; j++) gh[j] = gr[j];
        const T c = row_dot(gh.data(), xh.data(), D) / T(D);
        for (int64_t j = 0; j < D; j++) o[j] = rs * (gh[j] - xh[j] * c);
        if (gw) {
          T* __restrict acc = pw.data() + blk * D;
          for (int64_t j = 0; j < D; j++) acc[j] += gr[j] * xh[j];
        }
      }
    }
  });
  combine_blocks(pw, nblk, D, gw);
}
