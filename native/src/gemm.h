// Matrix multiplication: shared types for the f32 GEMM driver, its per-ISA
// microkernels and packers, the GEMV (streaming) kernels and the f64 loops.
//
// Conventions (all sizes and strides in elements, row-major):
//   op(A) is M x K: A[i,k] = a[i*lda + k], or a[k*lda + i] when transA.
//   op(B) is K x N: B[k,j] = b[k*ldb + j], or b[j*ldb + k] when transB
//                   ("linear" layout: weights stored [N, K]).
//   C is M x N:     C[i,j] = c[i*ldc + j].
// Batching: "parallel" items p each get their own C (offsets pA/pB/pC);
// "reduction" items r (broadcast dims whose C stride is 0) are summed into
// the same C, i.e. they extend K (offsets rA/rB added to the item's).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sv {
namespace gemm {

// ---------------------------------------------------------------- f32 GEMM

// One call of the register-tiled microkernel: C[0:mr, 0:nvalid] (row stride ldc)
//   = alpha * Ap·Bp + beta * C + bias      (beta == 0: C is not read; bias may be null)
// Ap: packed panel [kc][mr]; Bp: packed strip [kc][NR], 64-byte aligned.
using UkrFn = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int nvalid,
                       float alpha, float beta, const float* bias);

// Packs rows [i0, i0+mr) x cols [k0, k0+kc) of op(A) into dst[kc][mr].
using PackAFn = void (*)(const float* a, int64_t lda, bool transA, int64_t i0, int mr, int64_t k0, int64_t kc,
                         float* dst);
// Packs rows [k0, k0+kc) x cols [j0, j0+n) of op(B) as ceil(n/NR) strips: strip s (columns
// j0+s*NR ...) goes to dst + s*sstride as [kc][NR], columns past n zero-filled.
// b points at f32 or bf16 (uint16) elements depending on the function.
using PackBFn = void (*)(const void* b, int64_t ldb, bool transB, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                         float* dst, int64_t sstride);

constexpr int kMaxMR = 16;

// Everything the ISA-independent driver needs from one instruction set.
struct KernelSet {
  const char* name;
  int MR, NR;
  UkrFn ukr[kMaxMR + 1];  // ukr[mr] handles a panel of mr rows, 1 <= mr <= MR
  PackAFn packA;
  PackBFn packB_f32;
  PackBFn packB_bf16;
  // Cache blocking: KC = depth of a packed block (elements); G = NR-wide strips per
  // column group (their packed B, G*KC*NR floats per block, is reused from L2 by
  // every A panel); CP = MR-row panels per task (its C tile stays in L2).
  int KC, G, CP;
};

const KernelSet& kernels_avx512();
const KernelSet& kernels_avx2();
const KernelSet& kernels_portable();
// The set for the current sv::isa().
const KernelSet& kernels_for_isa();

enum BType : int { B_F32 = 0, B_BF16 = 2 };

struct GemmF32 {
  int64_t M = 0, N = 0, K = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  bool transA = false;
  const void* b = nullptr;  // float or uint16 (bf16)
  int btype = B_F32;
  int64_t ldb = 0;
  bool transB = false;
  float* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1, beta = 0;
  const float* bias = nullptr;  // N values added to every row, or null
  // Fused gate/up projection (AMX bf16 path only, see gemm_fused.cc): a second bf16 weight laid out as b
  // (transB); C = silu(op(A) op(B) + bias) * (op(A) op(Up) + up_bias), with alpha 1 and beta 0.
  const void* up = nullptr;
  const float* up_bias = nullptr;  // N values, or null
  // AMX bf16 path only (see gemm_fused.cc): an activation (ActCode, elementwise_math.h) applied to C after the
  // bias, block by block while in cache; 0 = none. Not with `up`.
  int act = 0;
  std::vector<int64_t> pA{0}, pB{0}, pC{0};  // parallel items
  std::vector<int64_t> rA{0}, rB{0};          // reduction items
};

// Packed, blocked, multi-threaded GEMM (any M, N, K; uses the given kernels).
void gemm_f32_packed(const GemmF32& g, const KernelSet& ks);
// Dispatcher: picks GEMV for thin problems, else the packed GEMM for the current ISA.
void gemm_f32(const GemmF32& g);

// ---------------------------------------------------------------- GEMV

// Streams the rows of W (J rows of K contiguous values, row stride ldw) once and
// computes, for each of R <= 4 contiguous vectors x_r (stride ldx):
//   out[r*sr + j*sj] = alpha * dot(x_r, W_j) + beta * out[...] + bias[j] + bias_r[r]
// (beta == 0: out is not read; either bias may be null).
struct GemvDot {
  int R = 1;
  int64_t J = 0, K = 0;
  const float* x = nullptr;
  int64_t ldx = 0;
  const void* w = nullptr;
  int wtype = B_F32;
  int64_t ldw = 0;
  float* out = nullptr;
  int64_t sr = 0, sj = 1;
  float alpha = 1, beta = 0;
  const float* bias = nullptr;
  const float* bias_r = nullptr;
  // bf16 W on CPUs with avx512_bf16: x split as x = hi + lo into two bf16
  // vectors per row ([r][hi K | lo K]), so dot products run as vdpbf16ps pairs
  // while keeping ~16 mantissa bits of x. Filled by gemv_run via prep_bf16.
  const uint16_t* xbf = nullptr;
};
// Same contraction with W stored transposed: W_j[k] = w[k*ldw + j] (rows of length J streamed).
using GemvAxpy = GemvDot;

constexpr int kGemvMaxR = 4;
// Computes columns [j0, j1) of the result.
using GemvFn = void (*)(const GemvDot& g, int64_t j0, int64_t j1);
struct GemvKernels {
  GemvFn dot_f32, dot_bf16, axpy_f32, axpy_bf16;
  // Non-null when dot_bf16 reads g.xbf: writes R rows of [hi K | lo K] to dst.
  void (*prep_bf16)(const float* x, int R, int64_t K, int64_t ldx, uint16_t* dst);
};
const GemvKernels& gemv_avx512();
// Tests turn the vdpbf16ps path off to compare it with the shift-and-FMA one.
extern bool gemv_dpbf16_enabled;
const GemvKernels& gemv_portable();

// Multi-threaded GEMV driver: runs `g` once per item (offsets added to x, w, out),
// splitting every item's J range into tasks claimed dynamically.
void gemv_run(const GemvDot& g, bool axpy, const std::vector<int64_t>& offX, const std::vector<int64_t>& offW,
              const std::vector<int64_t>& offOut);

// ---------------------------------------------------------------- f64

struct GemmF64 {
  int64_t M = 0, N = 0, K = 0;
  const double* a = nullptr;
  int64_t lda = 0;
  bool transA = false;
  const double* b = nullptr;
  int64_t ldb = 0;
  bool transB = false;
  double* c = nullptr;
  int64_t ldc = 0;
  double alpha = 1, beta = 0;
  const double* bias = nullptr;
  std::vector<int64_t> pA{0}, pB{0}, pC{0};
  std::vector<int64_t> rA{0}, rB{0};
};
void gemm_f64(const GemmF64& g);

// ---------------------------------------------------------------- helpers

// A cache-line aligned, grow-only scratch buffer (one per thread where used).
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  float* get(size_t n);
  ~Scratch();
};

}  // namespace gemm
}  // namespace sv
