// 2×2 average pooling over the patch grids of packed images: x holds the
// patches of several images (grids t·h·w each) one after another, [N, C].
// Merge-window order: every 2×2 window's four patches are consecutive rows,
// so output m is the mean of rows 4m..4m+3. Raster order: patches are in
// row-major order per frame, and output (r, c) of a frame averages rows
// (2r, 2c), (2r, 2c+1), (2r+1, 2c), (2r+1, 2c+1). Either way the output is
// in raster order over each frame's (h/2)×(w/2) grid, [N/4, C].
#include "index_ops.h"
#include <sstream>

namespace sv {
namespace {

// The four input rows of each output row: tl, tl+dx, tl+dy, tl+dy+dx.
struct PoolPlan {
  std::vector<int64_t> topLeft, rowStep;  // rowStep = dy (1-row offset in input rows)
  int64_t M = 0;
  bool raster = false;
};

PoolPlan make_plan(const Arr<int32_t>& grids, int64_t G, int64_t N, bool raster, const char* op) {
  need(grids, G * 3, op, "grids");
  PoolPlan p;
  p.raster = raster;
  int64_t total = 0;
  for (int64_t g = 0; g < G; g++) {
    const int64_t t = grids.ptr[3 * g], h = grids.ptr[3 * g + 1], w = grids.ptr[3 * g + 2];
    if (t < 1 || h < 2 || w < 2 || h % 2 || w % 2) {
      std::ostringstream s;
      s << op << ": grid " << g << " (t=" << t << ", h=" << h << ", w=" << w << ") needs t >= 1 and even h, w >= 2";
      throw KernelError(s.str());
    }
    total += t * h * w;
  }
  if (total != N) {
    std::ostringstream s;
    s << op << ": the grids hold " << total << " patches but x has " << N << " rows";
    throw KernelError(s.str());
  }
  p.M = N / 4;
  if (!raster) return p;
  p.topLeft.resize(p.M);
  p.rowStep.resize(p.M);
  int64_t m = 0, base = 0;
  for (int64_t g = 0; g < G; g++) {
    const int64_t t = grids.ptr[3 * g], h = grids.ptr[3 * g + 1], w = grids.ptr[3 * g + 2];
    for (int64_t f = 0; f < t; f++, base += h * w)
      for (int64_t r = 0; r < h / 2; r++)
        for (int64_t c = 0; c < w / 2; c++, m++) {
          p.topLeft[m] = base + 2 * r * w + 2 * c;
          p.rowStep[m] = w;
        }
  }
  return p;
}

// The four input rows of output m.
inline void rows_of(const PoolPlan& p, int64_t m, int64_t r[4]) {
  if (!p.raster) {
    r[0] = 4 * m; r[1] = 4 * m + 1; r[2] = 4 * m + 2; r[3] = 4 * m + 3;
  } else {
    const int64_t tl = p.topLeft[m], dy = p.rowStep[m];
    r[0] = tl; r[1] = tl + 1; r[2] = tl + dy; r[3] = tl + dy + 1;
  }
}

}  // namespace

// avgPool2x2(x: F32|F64 [N, C], N, C, grids: Int32Array [G·3] (t, h, w), G, raster: bool, out: [N/4, C])
SV_KERNEL(avgPool2x2) {
  const char* op = "avgPool2x2";
  checkArgc(info, 7, op);
  int64_t N = i64(info, 1, op, "N"), C = i64(info, 2, op, "C"), G = i64(info, 4, op, "G");
  auto grids = arr<int32_t>(info, 3, op, "grids");
  PoolPlan p = make_plan(grids, G, N, boolean(info, 5), op);
  SV_FLOAT_DISPATCH(info, 0, op, "x", {
    auto x = arr<T>(info, 0, op, "x");
    auto out = arr<T>(info, 6, op, "out");
    need3(x, N, C, 1, op, "x");
    need3(out, p.M, C, 1, op, "out");
    parallel_for(p.M, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
      int64_t r[4];
      for (int64_t m = b; m < e; m++) {
        rows_of(p, m, r);
        const T *a = x.ptr + r[0] * C, *bb = x.ptr + r[1] * C, *c = x.ptr + r[2] * C, *d = x.ptr + r[3] * C;
        T* o = out.ptr + m * C;
        for (int64_t k = 0; k < C; k++) o[k] = (((a[k] + bb[k]) + c[k]) + d[k]) * T(0.25);
      }
    });
  });
  return info.Env().Undefined();
}

// avgPool2x2Backward(g: F32|F64 [N/4, C], N, C, grids, G, raster: bool, gx: [N, C])
// Each input row belongs to exactly one window: gx[row] = g[window] / 4.
SV_KERNEL(avgPool2x2Backward) {
  const char* op = "avgPool2x2Backward";
  checkArgc(info, 7, op);
  int64_t N = i64(info, 1, op, "N"), C = i64(info, 2, op, "C"), G = i64(info, 4, op, "G");
  auto grids = arr<int32_t>(info, 3, op, "grids");
  PoolPlan p = make_plan(grids, G, N, boolean(info, 5), op);
  SV_FLOAT_DISPATCH(info, 0, op, "g", {
    auto g = arr<T>(info, 0, op, "g");
    auto gx = arr<T>(info, 6, op, "gx");
    need3(g, p.M, C, 1, op, "g");
    need3(gx, N, C, 1, op, "gx");
    parallel_for(p.M, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
      int64_t r[4];
      for (int64_t m = b; m < e; m++) {
        rows_of(p, m, r);
        const T* gm = g.ptr + m * C;
        for (int q = 0; q < 4; q++) {
          T* o = gx.ptr + r[q] * C;
          for (int64_t k = 0; k < C; k++) o[k] = gm[k] * T(0.25);
        }
      }
    });
  });
  return info.Env().Undefined();
}

}  // namespace sv
