// Rotary position embedding, rotate-half convention (HF): for the first R
// (rotary dim) channels of every head, with h = R/2,
//   y[j]   = x[j]·c1[j] − x[j+h]·s1[j]
//   y[j+h] = x[j+h]·c2[j] + x[j]·s2[j]          (j < h)
// where the table row is either half width (c1 = c2 = cos[0:h], the usual
// cat(freqs, freqs) layout) or full width (c1 = cos[0:h], c2 = cos[h:R]).
// Channels R..D pass through. The inverse (transpose, used for gradients) is
//   x[j] = y[j]·c1[j] + y[j+h]·s2[j],  x[j+h] = y[j+h]·c2[j] − y[j]·s1[j].
#include "index_ops.h"
#include "cpu.h"
#include <cstring>

namespace sv {
namespace {

struct RopeDims {
  int64_t N, H, D, Nc, W, R;
  bool full, inverse;
};

// One token row (all heads). sA/sB are the sin slices used in the first/second
// half; sg = −1 for the inverse, whose sin slices are also swapped.
template <typename T>
static inline __attribute__((always_inline)) void rope_row(const T* x, T* y, const T* c1, const T* c2, const T* sA,
                                                         const T* sB, T sg, int64_t H, int64_t D, int64_t R) {
  const int64_t h = R / 2;
  for (int64_t hd = 0; hd < H; hd++) {
    const T* xr = x + hd * D;
    T* yr = y + hd * D;
    for (int64_t j = 0; j < h; j++) {
      const T a = xr[j], b = xr[j + h];
      yr[j] = a * c1[j] - sg * (b * sA[j]);
      yr[j + h] = b * c2[j] + sg * (a * sB[j]);
    }
    for (int64_t j = R; j < D; j++) yr[j] = xr[j];
  }
}

template <typename T>
static inline __attribute__((always_inline)) void rope_rows(const T* x, T* y, const T* cos, const T* sin, const RopeDims& d,
                                                          int64_t b, int64_t e) {
  const int64_t h = d.R / 2;
  for (int64_t n = b; n < e; n++) {
    const T* c = cos + (n % d.Nc) * d.W;
    const T* s = sin + (n % d.Nc) * d.W;
    const T* c2 = d.full ? c + h : c;
    const T* s2 = d.full ? s + h : s;
    if (!d.inverse) rope_row<T>(x + n * d.H * d.D, y + n * d.H * d.D, c, c2, s, s2, T(1), d.H, d.D, d.R);
    else rope_row<T>(x + n * d.H * d.D, y + n * d.H * d.D, c, c2, s2, s, T(-1), d.H, d.D, d.R);
  }
}

template <typename T>
void rope_portable(const T* x, T* y, const T* cos, const T* sin, const RopeDims& d, int64_t b, int64_t e) {
  rope_rows<T>(x, y, cos, sin, d, b, e);
}

template <typename T>
__attribute__((target("avx2,fma"))) void rope_avx2(const T* x, T* y, const T* cos, const T* sin, const RopeDims& d, int64_t b, int64_t e) {
  rope_rows<T>(x, y, cos, sin, d, b, e);
}

template <typename T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))) void rope_avx512(const T* x, T* y, const T* cos, const T* sin,
                                                                                 const RopeDims& d, int64_t b, int64_t e) {
  rope_rows<T>(x, y, cos, sin, d, b, e);
}

template <typename T>
void rope_run(const T* x, T* y, const T* cos, const T* sin, const RopeDims& d) {
  const Isa level = isa();
  parallel_for(d.N, std::max<int64_t>(1, 16384 / std::max<int64_t>(d.H * d.D, 1)), [&](int64_t b, int64_t e) {
    if (level == Isa::Avx512) rope_avx512<T>(x, y, cos, sin, d, b, e);
    else if (level == Isa::Avx2) rope_avx2<T>(x, y, cos, sin, d, b, e);
    else rope_portable<T>(x, y, cos, sin, d, b, e);
  });
}

}  // namespace

// ropeApply(x: F32|F64 [N, H, D], N, H, D, cos: same type [Nc, W], sin, Nc, W, R, inverse: bool, out: [N, H, D])
// Table row of token n is n mod Nc (so N may be a multiple of Nc: tables shared over a batch).
// W must be R/2 (half table) or R (full table); R must be even and <= D. out may alias x.
SV_KERNEL(ropeApply) {
  const char* op = "ropeApply";
  checkArgc(info, 11, op);
  RopeDims d;
  d.N = i64(info, 1, op, "N");
  d.H = i64(info, 2, op, "H");
  d.D = i64(info, 3, op, "D");
  d.Nc = i64(info, 6, op, "Nc");
  d.W = i64(info, 7, op, "W");
  d.R = i64(info, 8, op, "R");
  d.inverse = boolean(info, 9);
  check(d.R >= 2 && d.R % 2 == 0 && d.R <= d.D,
        "ropeApply: rotary dim " + std::to_string(d.R) + " must be even and in [2, " + std::to_string(d.D) + "]");
  check(d.W == d.R / 2 || d.W == d.R,
        "ropeApply: table width " + std::to_string(d.W) + " must be R/2 = " + std::to_string(d.R / 2) + " or R = " + std::to_string(d.R));
  d.full = d.W == d.R && d.W != d.R / 2;
  check(d.Nc >= 1 && d.N >= 0 && d.N % d.Nc == 0,
        "ropeApply: " + std::to_string(d.N) + " token rows is not a multiple of " + std::to_string(d.Nc) + " table rows");
  SV_FLOAT_DISPATCH(info, 0, op, "x", {
    auto x = arr<T>(info, 0, op, "x");
    auto cos = arr<T>(info, 4, op, "cos");
    auto sin = arr<T>(info, 5, op, "sin");
    auto out = arr<T>(info, 10, op, "out");
    need3(x, d.N, d.H, d.D, op, "x");
    need3(out, d.N, d.H, d.D, op, "out");
    need3(cos, d.Nc, d.W, 1, op, "cos");
    need3(sin, d.Nc, d.W, 1, op, "sin");
    rope_run<T>(x.ptr, out.ptr, cos.ptr, sin.ptr, d);
  });
  return info.Env().Undefined();
}

}  // namespace sv
