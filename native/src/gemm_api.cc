// JS entry point of the matrix multiplication kernels:
//
//   gemm(dt, a, aOff, b, bOff, bDt, c, cOff, desc, alpha, beta, bias, biasOff)
//
// dt: element type of A, C and bias (F32 or F64); bDt: element type of B (F32,
// BF16 with dt F32, or F64). a, b, c, bias: Uint8Array views of whole storages;
// offsets in elements. desc (Float64Array):
//   [M, N, K, transA, transB, lda, ldb, ldc, nb, then nb x (size, strideA, strideB, strideC)]
// computes, for every batch index, C = alpha * op(A) op(B) + beta * C + bias.
// A batch dim with strideC == 0 (and size > 1) is summed into C (the gradient
// of a broadcast operand); beta applies once. beta == 0 never reads C.
// The caller guarantees that distinct batch items of C do not overlap.
#include "common.h"
#include "dtype.h"
#include "gemm.h"
#include <algorithm>

namespace sv {
namespace {

struct BatchDim {
  int64_t size, sa, sb, sc;
};

struct Plan {
  int64_t M, N, K, lda, ldb, ldc;
  bool ta, tb;
  std::vector<BatchDim> par, red;
};

// Drops size-1 dims, merges dims that are contiguous for all three operands,
// then splits them into parallel and reduction (strideC == 0) dims.
void simplify(std::vector<BatchDim> dims, Plan& pl) {
  std::vector<BatchDim> kept;
  for (const BatchDim& d : dims)
    if (d.size != 1) kept.push_back(d);
  std::vector<BatchDim> merged;
  for (const BatchDim& d : kept) {
    if (!merged.empty()) {
      BatchDim& o = merged.back();
      if (o.sa == d.sa * d.size && o.sb == d.sb * d.size && o.sc == d.sc * d.size) {
        o = {o.size * d.size, d.sa, d.sb, d.sc};
        continue;
      }
    }
    merged.push_back(d);
  }
  for (const BatchDim& d : merged) (d.sc == 0 ? pl.red : pl.par).push_back(d);
}

// One parallel dim over a shared B whose items are consecutive row blocks of A
// and C: fold it into M (one big GEMM instead of many small ones).
void fold_into_m(Plan& pl) {
  if (pl.par.size() != 1) return;
  const BatchDim d = pl.par[0];
  if (d.sb != 0 || d.sc < pl.N) return;
  if (pl.M == 1) {
    if (pl.ta && pl.lda != 1) return;
    pl.lda = d.sa;
    pl.ldc = d.sc;
  } else {
    if (pl.ta || d.sa != pl.M * pl.lda || d.sc != pl.M * pl.ldc) return;
  }
  pl.ta = false;
  pl.M *= d.size;
  pl.par.clear();
}

// One reduction dim whose items continue op(A)'s columns and op(B)'s rows in
// memory (e.g. the weight gradient of x[B, S, in]): it is just a longer K.
void fold_into_k(Plan& pl) {
  if (pl.red.size() != 1) return;
  const BatchDim d = pl.red[0];
  const bool a_ok = pl.ta ? d.sa == pl.K * pl.lda : d.sa == pl.K;
  const bool b_ok = pl.tb ? d.sb == pl.K : d.sb == pl.K * pl.ldb;
  if (!a_ok || !b_ok) return;
  pl.K *= d.size;
  pl.red.clear();
}

// Offsets of every index of `dims` (row-major), for the operand picked by `s`.
template <typename S>
std::vector<int64_t> offsets(const std::vector<BatchDim>& dims, S s) {
  std::vector<int64_t> out{0};
  for (const BatchDim& d : dims) {
    std::vector<int64_t> next;
    next.reserve(out.size() * d.size);
    for (int64_t o : out)
      for (int64_t i = 0; i < d.size; i++) next.push_back(o + i * s(d));
    out.swap(next);
  }
  return out;
}

// Largest element index touched by a rows x cols matrix (strides rs, cs) in every batch item.
int64_t extent(int64_t rows, int64_t cols, int64_t rs, int64_t cs, const std::vector<BatchDim>& dims,
               int64_t BatchDim::*s) {
  if (rows == 0 || cols == 0) return -1;
  int64_t m = (rows - 1) * rs + (cols - 1) * cs;
  for (const BatchDim& d : dims) m += (d.size - 1) * (d.*s);
  return m;
}

void check_extent(const Arr<uint8_t>& buf, int64_t off, int64_t maxIdx, int eb, const char* what) {
  if (maxIdx < 0) return;
  check(off >= 0 && (off + maxIdx + 1) * eb <= static_cast<int64_t>(buf.len),
        std::string("gemm: operand ") + what + " reaches element " + std::to_string(off + maxIdx) +
            " beyond its storage of " + std::to_string(buf.len / eb) + " elements");
}

}  // namespace

SV_KERNEL(gemm) {
  const char* op = "gemm";
  checkArgc(info, 13, op);
  const int dt = static_cast<int>(i64(info, 0, op, "dt"));
  auto a = arr<uint8_t>(info, 1, op, "a");
  const int64_t aOff = i64(info, 2, op, "aOff");
  auto b = arr<uint8_t>(info, 3, op, "b");
  const int64_t bOff = i64(info, 4, op, "bOff");
  const int bdt = static_cast<int>(i64(info, 5, op, "bDt"));
  auto c = arr<uint8_t>(info, 6, op, "c");
  const int64_t cOff = i64(info, 7, op, "cOff");
  auto desc = arr<double>(info, 8, op, "desc");
  const double alpha = f64(info, 9, op, "alpha"), beta = f64(info, 10, op, "beta");
  const bool hasBias = !info[11].IsNull() && !info[11].IsUndefined();
  Arr<uint8_t> bias;
  int64_t biasOff = 0;
  if (hasBias) {
    bias = arr<uint8_t>(info, 11, op, "bias");
    biasOff = i64(info, 12, op, "biasOff");
  }
  check(dt == F32 || dt == F64, "gemm: dt must be float32 or float64, got " + dt_name(dt));
  check(dt == F32 ? (bdt == F32 || bdt == BF16) : bdt == F64,
        "gemm: B of type " + dt_name(bdt) + " is not supported with " + dt_name(dt) + " A and C");
  need(desc, 9, op, "desc");
  const double* d = desc.ptr;
  Plan pl;
  pl.M = static_cast<int64_t>(d[0]);
  pl.N = static_cast<int64_t>(d[1]);
  pl.K = static_cast<int64_t>(d[2]);
  pl.ta = d[3] != 0;
  pl.tb = d[4] != 0;
  pl.lda = static_cast<int64_t>(d[5]);
  pl.ldb = static_cast<int64_t>(d[6]);
  pl.ldc = static_cast<int64_t>(d[7]);
  const int64_t nb = static_cast<int64_t>(d[8]);
  check(pl.M >= 0 && pl.N >= 0 && pl.K >= 0 && nb >= 0,
        "gemm: negative size M=" + std::to_string(pl.M) + " N=" + std::to_string(pl.N) + " K=" + std::to_string(pl.K));
  check(pl.lda >= 0 && pl.ldb >= 0 && pl.ldc >= 0, "gemm: negative leading dimension");
  check(pl.M <= 1 || pl.ldc >= pl.N, "gemm: ldc " + std::to_string(pl.ldc) + " < N " + std::to_string(pl.N));
  need(desc, 9 + 4 * nb, op, "desc");
  std::vector<BatchDim> dims;
  for (int64_t i = 0; i < nb; i++) {
    const double* q = d + 9 + 4 * i;
    BatchDim bd{static_cast<int64_t>(q[0]), static_cast<int64_t>(q[1]), static_cast<int64_t>(q[2]),
                static_cast<int64_t>(q[3])};
    check(bd.size >= 0 && bd.sa >= 0 && bd.sb >= 0 && bd.sc >= 0, "gemm: negative batch size or stride");
    if (bd.size == 0) return info.Env().Undefined();
    dims.push_back(bd);
  }
  if (pl.M == 0 || pl.N == 0) return info.Env().Undefined();

  const int eb = dt == F32 ? 4 : 8, beb = dt_bytes(bdt);
  // Bounds of everything the kernel may touch, before touching anything.
  check_extent(a, aOff, pl.K ? extent(pl.M, pl.K, pl.ta ? 1 : pl.lda, pl.ta ? pl.lda : 1, dims, &BatchDim::sa) : -1,
               eb, "A");
  check_extent(b, bOff, pl.K ? extent(pl.K, pl.N, pl.tb ? 1 : pl.ldb, pl.tb ? pl.ldb : 1, dims, &BatchDim::sb) : -1,
               beb, "B");
  check_extent(c, cOff, extent(pl.M, pl.N, pl.ldc, 1, dims, &BatchDim::sc), eb, "C");
  if (hasBias) check_extent(bias, biasOff, pl.N - 1, eb, "bias");

  simplify(dims, pl);
  fold_into_m(pl);
  fold_into_k(pl);
  auto sA = [](const BatchDim& x) { return x.sa; };
  auto sB = [](const BatchDim& x) { return x.sb; };
  auto sC = [](const BatchDim& x) { return x.sc; };

  if (dt == F32) {
    gemm::GemmF32 g;
    g.M = pl.M; g.N = pl.N; g.K = pl.K;
    g.a = reinterpret_cast<const float*>(a.ptr) + aOff;
    g.lda = pl.lda; g.transA = pl.ta;
    g.b = b.ptr + bOff * beb;
    g.btype = bdt == BF16 ? gemm::B_BF16 : gemm::B_F32;
    g.ldb = pl.ldb; g.transB = pl.tb;
    g.c = reinterpret_cast<float*>(c.ptr) + cOff;
    g.ldc = pl.ldc;
    g.alpha = static_cast<float>(alpha);
    g.beta = static_cast<float>(beta);
    g.bias = hasBias ? reinterpret_cast<const float*>(bias.ptr) + biasOff : nullptr;
    g.pA = offsets(pl.par, sA); g.pB = offsets(pl.par, sB); g.pC = offsets(pl.par, sC);
    g.rA = offsets(pl.red, sA); g.rB = offsets(pl.red, sB);
    gemm::gemm_f32(g);
  } else {
    gemm::GemmF64 g;
    g.M = pl.M; g.N = pl.N; g.K = pl.K;
    g.a = reinterpret_cast<const double*>(a.ptr) + aOff;
    g.lda = pl.lda; g.transA = pl.ta;
    g.b = reinterpret_cast<const double*>(b.ptr) + bOff;
    g.ldb = pl.ldb; g.transB = pl.tb;
    g.c = reinterpret_cast<double*>(c.ptr) + cOff;
    g.ldc = pl.ldc;
    g.alpha = alpha;
    g.beta = beta;
    g.bias = hasBias ? reinterpret_cast<const double*>(bias.ptr) + biasOff : nullptr;
    g.pA = offsets(pl.par, sA); g.pB = offsets(pl.par, sB); g.pC = offsets(pl.par, sC);
    g.rA = offsets(pl.red, sA); g.rB = offsets(pl.red, sB);
    gemm::gemm_f64(g);
  }
  return info.Env().Undefined();
}

}  // namespace sv
