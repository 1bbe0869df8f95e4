// Body of the reduction kernels over a contiguous [outer, R, inner] view
// (compiled once per ISA, see elementwise_isa.h). Every partition of the work
// depends only on the sizes, never on the thread count, so sums are
// reproducible across setNumThreads (and max is exact anyway).

constexpr int64_t kRowBlock = 32768;  // a long row is summed in blocks of this many
constexpr int64_t kColTile = 256;     // columns accumulated together (one L1-resident tile)

// acc[j] = sum over r < rows of x[r*stride + j], j < len.
template <typename T>
inline void col_sum(const T* x, int64_t rows, int64_t stride, int64_t len, T* __restrict acc) {
  for (int64_t j = 0; j < len; j++) acc[j] = T(0);
  for (int64_t r = 0; r < rows; r++) {
    const T* __restrict xr = x + r * stride;
    for (int64_t j = 0; j < len; j++) acc[j] += xr[j];
  }
}

template <typename T>
void reduce_sum(const T* x, T* out, int64_t outer, int64_t R, int64_t inner, T scale) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    const int64_t nb = R > kRowBlock ? (R + kRowBlock - 1) / kRowBlock : 1;
    if (nb == 1) {
      parallel_for(outer, std::max<int64_t>(1, kRowBlock / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; o++) out[o] = scale * row_sum(x + o * R, R);
      });
      return;
    }
    std::vector<T> part(outer * nb);
    parallel_for(outer * nb, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; t++) {
        int64_t o = t / nb, s = (t % nb) * kRowBlock;
        part[t] = row_sum(x + o * R + s, std::min(kRowBlock, R - s));
      }
    });
    for (int64_t o = 0; o < outer; o++) {
      T s = 0;
      for (int64_t k = 0; k < nb; k++) s += part[o * nb + k];
      out[o] = scale * s;
    }
    return;
  }
  // Column sums. With few outputs, split R into fixed blocks for parallelism.
  const int64_t nblk = outer * inner >= 4096 ? 1 : fixed_row_blocks(R, inner);
  const int64_t ntiles = (inner + kColTile - 1) / kColTile;
  std::vector<T> part(nblk > 1 ? nblk * outer * inner : 0);
  T* dst = nblk > 1 ? part.data() : out;
  const int64_t tasks = outer * nblk * ntiles;
  const int64_t work = std::max<int64_t>(1, (R / nblk) * std::min(inner, kColTile));
  parallel_for(tasks, std::max<int64_t>(1, kRowBlock / work), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      int64_t tile = t % ntiles, ob = t / ntiles, blk = ob % nblk, o = ob / nblk;
      int64_t r0 = R * blk / nblk, r1 = R * (blk + 1) / nblk, j0 = tile * kColTile;
      int64_t len = std::min(kColTile, inner - j0);
      col_sum(x + (o * R + r0) * inner + j0, r1 - r0, inner, len, dst + (blk * outer + o) * inner + j0);
    }
  });
  const int64_t n = outer * inner;
  if (nblk > 1) {
    for (int64_t i = 0; i < n; i++) out[i] = part[i];
    for (int64_t blk = 1; blk < nblk; blk++) {
      const T* __restrict p = part.data() + blk * n;
      for (int64_t i = 0; i < n; i++) out[i] += p[i];
    }
  }
  if (scale != T(1)) for (int64_t i = 0; i < n; i++) out[i] *= scale;
}

// Max over R with the index of its first occurrence (a NaN wins: max
// propagates NaN like torch). Needs R >= 1.
template <typename T>
void reduce_max(const T* x, T* out, int32_t* idx, int64_t outer, int64_t R, int64_t inner) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kRowBlock / R), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; o++) {
        const T* xr = x + o * R;
        T m = row_max(xr, R);
        int64_t i = 0;
        if (m != m) while (xr[i] == xr[i]) i++;
        else while (xr[i] != m) i++;
        out[o] = m;
        idx[o] = static_cast<int32_t>(i);
      }
    });
    return;
  }
  const int64_t ntiles = (inner + kColTile - 1) / kColTile;
  parallel_for(outer * ntiles, std::max<int64_t>(1, kRowBlock / (R * std::min(inner, kColTile))),
               [&](int64_t b, int64_t e) {
                 for (int64_t t = b; t < e; t++) {
                   int64_t o = t / ntiles, j0 = (t % ntiles) * kColTile, len = std::min(kColTile, inner - j0);
                   T* __restrict m = out + o * inner + j0;
                   int32_t* __restrict id = idx + o * inner + j0;
                   const T* x0 = x + o * R * inner + j0;
                   for (int64_t j = 0; j < len; j++) {
                     m[j] = x0[j];
                     id[j] = 0;
                   }
                   for (int64_t r = 1; r < R; r++) {
                     const T* __restrict xr = x0 + r * inner;
                     for (int64_t j = 0; j < len; j++) {
                       T v = xr[j];
                       bool take = v > m[j] || (v != v && m[j] == m[j]);
                       m[j] = take ? v : m[j];
                       id[j] = take ? static_cast<int32_t>(r) : id[j];
                     }
                   }
                 }
               });
}

// gx (zeroed by the caller) gets g at each argmax position. idx is validated.
template <typename T>
void reduce_max_bwd(const T* g, const int32_t* idx, T* gx, int64_t outer, int64_t R, int64_t inner) {
  parallel_for(outer * inner, 65536, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      int64_t o = t / inner, j = t % inner;
      gx[(o * R + idx[t]) * inner + j] = g[t];
    }
  });
}

// out[r] = log(sum_i exp(x[r, i])), computed stably; -inf for R == 0.
template <typename T>
void logsumexp_rows(const T* x, T* out, int64_t rows, int64_t R) {
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const T* xr = x + r * R;
      T m = row_max(xr, R);
      if (m != m || m == __builtin_inf() || m == -__builtin_inf()) out[r] = m;
      else out[r] = m + std::log(row_sum_exp(xr, m, R));
    }
  });
}
