// f64 GEMM: straightforward row-at-a-time loops (used by float64 gradient
// checks, where exactness matters and speed does not), parallel over rows.
// Same batching and layout conventions as the f32 GEMM (see gemm.h).
#include "gemm.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <new>
#include <vector>

namespace sv {
namespace gemm {

void gemm_f64(const GemmF64& g) {
  const int64_t M = g.M, N = g.N, K = g.K;
  const int64_t P = static_cast<int64_t>(g.pC.size()), R = static_cast<int64_t>(g.rA.size());
  if (M <= 0 || N <= 0 || P == 0) return;
  const int64_t work_per_row = std::max<int64_t>(1, N * K * R);
  std::atomic<bool> failed{false};  // an exception must not escape a pool worker
  parallel_for(P * M, std::max<int64_t>(1, 65536 / work_per_row), [&](int64_t b, int64_t e) {
    std::vector<double> acc;
    try {
      acc.resize(static_cast<size_t>(N));
    } catch (const std::bad_alloc&) {
      failed.store(true);
      return;
    }
    for (int64_t t = b; t < e; t++) {
      const int64_t p = t / M, i = t % M;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t r = 0; r < R; r++) {
        const double* a = g.a + g.pA[p] + g.rA[r];
        const double* bm = g.b + g.pB[p] + g.rB[r];
        const int64_t ak = g.transA ? g.lda : 1;  // stride of A[i, k] along k
        const double* arow = a + (g.transA ? i : i * g.lda);
        if (g.transB) {
          for (int64_t j = 0; j < N; j++) {
            const double* brow = bm + j * g.ldb;
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += arow[k * ak] * brow[k];
            acc[j] += s;
          }
        } else {
          for (int64_t k = 0; k < K; k++) {
            const double aik = arow[k * ak];
            const double* brow = bm + k * g.ldb;
            for (int64_t j = 0; j < N; j++) acc[j] += aik * brow[j];
          }
        }
      }
      double* crow = g.c + g.pC[p] + i * g.ldc;
      for (int64_t j = 0; j < N; j++) {
        double v = g.alpha * acc[j] + (g.bias ? g.bias[j] : 0.0);
        if (g.beta != 0.0) v += g.beta * crow[j];
        crow[j] = v;
      }
    }
  });
  if (failed.load()) throw std::bad_alloc();
}

}  // namespace gemm
}  // namespace sv
