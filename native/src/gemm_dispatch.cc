// Chooses how an f32 GEMM runs: GEMV streaming kernels when op(A) has at
// most 4 rows (decode) or op(B) at most 4 columns, the packed GEMM otherwise;
// and which instruction set's kernels.
#include "gemm.h"
#include "gemm_bf16.h"  // bf16-compute hook (opt-in), see gemm_f32 below
#include "cpu.h"
#include "dtype.h"
#include "threadpool.h"
#include <algorithm>

namespace sv {
namespace gemm {

const KernelSet& kernels_for_isa() {
  switch (isa()) {
    case Isa::Avx512: return kernels_avx512();
    case Isa::Avx2: return kernels_avx2();
    default: return kernels_portable();
  }
}

namespace {

// K == 0: C = beta * C + bias for every item.
void scale_only(const GemmF32& g) {
  const int64_t P = static_cast<int64_t>(g.pC.size());
  parallel_for(P * g.M, std::max<int64_t>(1, 4096 / std::max<int64_t>(g.N, 1)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      float* row = g.c + g.pC[t / g.M] + (t % g.M) * g.ldc;
      for (int64_t j = 0; j < g.N; j++) {
        const float v = g.beta == 0.0f ? 0.0f : g.beta * row[j];
        row[j] = v + (g.bias ? g.bias[j] : 0.0f);
      }
    }
  });
}

// Copies `rows` vectors of length K with element stride `es` and vector stride `vs` into dst[rows][K].
void gather_rows(const float* src, int64_t rows, int64_t K, int64_t vs, int64_t es, float* dst) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t k = 0; k < K; k++) dst[r * K + k] = src[r * vs + k * es];
}

// Thin problems as GEMV: x = the <= 4 short vectors, W = the streamed operand.
bool try_gemv(const GemmF32& g) {
  if (g.rA.size() != 1) return false;  // reductions over broadcast dims: packed path
  const int64_t P = static_cast<int64_t>(g.pA.size());
  GemvDot v;
  v.K = g.K;
  v.alpha = g.alpha;
  v.beta = g.beta;
  std::vector<int64_t> offX(P), offW(P), offOut(P);
  bool axpy;
  std::vector<float> tmp;  // gathered x when its K values are strided
  const float* xbase;
  if (g.M <= kGemvMaxR) {
    // x_r = row r of op(A); W_j = column j of op(B).
    v.R = static_cast<int>(g.M);
    v.J = g.N;
    v.w = g.b;
    v.wtype = g.btype;
    v.ldw = g.ldb;
    axpy = !g.transB;
    v.sr = g.ldc;
    v.sj = 1;
    v.bias = g.bias;
    if (!g.transA || g.M == 1) {
      xbase = g.a;
      v.ldx = g.lda;
      for (int64_t p = 0; p < P; p++) offX[p] = g.pA[p];
      if (g.transA) {  // M == 1 stored as a column: K values at stride lda
        if (g.lda != 1) return false;
      }
    } else {
      tmp.resize(static_cast<size_t>(P * g.M * g.K));
      for (int64_t p = 0; p < P; p++) gather_rows(g.a + g.pA[p], g.M, g.K, 1, g.lda, tmp.data() + p * g.M * g.K);
      xbase = tmp.data();
      v.ldx = g.K;
      for (int64_t p = 0; p < P; p++) offX[p] = p * g.M * g.K;
    }
    for (int64_t p = 0; p < P; p++) { offW[p] = g.pB[p]; offOut[p] = g.pC[p]; }
  } else if (g.N <= kGemvMaxR && g.btype == B_F32) {
    // Transposed view of the problem: x_r = column r of op(B); W_j = row j of op(A).
    const float* b = static_cast<const float*>(g.b);
    v.R = static_cast<int>(g.N);
    v.J = g.M;
    v.w = g.a;
    v.wtype = B_F32;
    v.ldw = g.lda;
    axpy = g.transA;
    v.sr = 1;
    v.sj = g.ldc;
    v.bias_r = g.bias;
    if (g.transB) {
      xbase = b;
      v.ldx = g.ldb;
      for (int64_t p = 0; p < P; p++) offX[p] = g.pB[p];
    } else {
      tmp.resize(static_cast<size_t>(P * g.N * g.K));
      for (int64_t p = 0; p < P; p++) gather_rows(b + g.pB[p], g.N, g.K, 1, g.ldb, tmp.data() + p * g.N * g.K);
      xbase = tmp.data();
      v.ldx = g.K;
      for (int64_t p = 0; p < P; p++) offX[p] = p * g.N * g.K;
    }
    for (int64_t p = 0; p < P; p++) { offW[p] = g.pA[p]; offOut[p] = g.pC[p]; }
  } else {
    return false;
  }
  v.x = xbase;
  v.out = g.c;
  gemv_run(v, axpy, offX, offW, offOut);
  return true;
}

}  // namespace

void gemm_f32(const GemmF32& g) {
  if (g.M <= 0 || g.N <= 0 || g.pC.empty()) return;
  if (g.K == 0) return scale_only(g);
  if (try_gemv(g)) return;
  // --- bf16-compute hook (opt-in via setMatmulPrecision('bf16'); off by default) ---
  if (bf16_gemm_applies(g)) return gemm_bf16_compute(g);
  // --- end bf16-compute hook ---
  gemm_f32_packed(g, kernels_for_isa());
}

}  // namespace gemm
}  // namespace sv
