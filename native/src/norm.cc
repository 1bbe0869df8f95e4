// LayerNorm and RMSNorm over the last dim of a contiguous [rows, D] view:
// forward (saving mean/rstd per row) and backward (dx, dweight, dbias).
// Weight and bias are optional (null). float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_strided.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#define SV_ISA_BODY "norm_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

namespace {
void check_rows(int64_t rows, int64_t D, const char* op) {
  check(rows >= 0 && D >= 0, std::string(op) + ": negative size " + shapeStr({rows, D}));
}
}  // namespace

// layerNormForward(x, w|null, b|null, y, mean, rstd, rows, D, eps)
SV_KERNEL(layerNormForward) {
  const char* op = "layerNormForward";
  checkArgc(info, 9, op);
  int64_t rows = i64(info, 6, op, "rows"), D = i64(info, 7, op, "D");
  check_rows(rows, D, op);
  double eps = f64(info, 8, op, "eps");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto y = arr<T>(info, 3, op, "y");
    auto mean = arr<T>(info, 4, op, "mean");
    auto rstd = arr<T>(info, 5, op, "rstd");
    need(x, rows * D, op, "x");
    need(y, rows * D, op, "y");
    need(mean, rows, op, "mean");
    need(rstd, rows, op, "rstd");
    const T* w = opt_arr<T>(info, 1, op, "weight", D);
    const T* b = opt_arr<T>(info, 2, op, "bias", D);
    SV_ISA_CALL_T(T, layer_norm_fwd, x.ptr, w, b, y.ptr, mean.ptr, rstd.ptr, rows, D, static_cast<T>(eps));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// layerNormBackward(g, x, w|null, mean, rstd, gx, gw|null, gb|null, rows, D)
SV_KERNEL(layerNormBackward) {
  const char* op = "layerNormBackward";
  checkArgc(info, 10, op);
  int64_t rows = i64(info, 8, op, "rows"), D = i64(info, 9, op, "D");
  check_rows(rows, D, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = arr<T>(info, 0, op, "g");
    auto x = arr<T>(info, 1, op, "x");
    auto mean = arr<T>(info, 3, op, "mean");
    auto rstd = arr<T>(info, 4, op, "rstd");
    auto gx = arr<T>(info, 5, op, "gx");
    need(g, rows * D, op, "g");
    need(x, rows * D, op, "x");
    need(mean, rows, op, "mean");
    need(rstd, rows, op, "rstd");
    need(gx, rows * D, op, "gx");
    const T* w = opt_arr<T>(info, 2, op, "weight", D);
    T* gw = opt_arr<T>(info, 6, op, "gweight", D);
    T* gb = opt_arr<T>(info, 7, op, "gbias", D);
    SV_ISA_CALL_T(T, layer_norm_bwd, g.ptr, x.ptr, w, mean.ptr, rstd.ptr, gx.ptr, gw, gb, rows, D);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// rmsNormForward(x, w|null, y, rstd, rows, D, eps)
SV_KERNEL(rmsNormForward) {
  const char* op = "rmsNormForward";
  checkArgc(info, 7, op);
  int64_t rows = i64(info, 4, op, "rows"), D = i64(info, 5, op, "D");
  check_rows(rows, D, op);
  double eps = f64(info, 6, op, "eps");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto y = arr<T>(info, 2, op, "y");
    auto rstd = arr<T>(info, 3, op, "rstd");
    need(x, rows * D, op, "x");
    need(y, rows * D, op, "y");
    need(rstd, rows, op, "rstd");
    const T* w = opt_arr<T>(info, 1, op, "weight", D);
    SV_ISA_CALL_T(T, rms_norm_fwd, x.ptr, w, y.ptr, rstd.ptr, rows, D, static_cast<T>(eps));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// rmsNormBackward(g, x, w|null, rstd, gx, gw|null, rows, D)
SV_KERNEL(rmsNormBackward) {
  const char* op = "rmsNormBackward";
  checkArgc(info, 8, op);
  int64_t rows = i64(info, 6, op, "rows"), D = i64(info, 7, op, "D");
  check_rows(rows, D, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = arr<T>(info, 0, op, "g");
    auto x = arr<T>(info, 1, op, "x");
    auto rstd = arr<T>(info, 3, op, "rstd");
    auto gx = arr<T>(info, 4, op, "gx");
    need(g, rows * D, op, "g");
    need(x, rows * D, op, "x");
    need(rstd, rows, op, "rstd");
    need(gx, rows * D, op, "gx");
    const T* w = opt_arr<T>(info, 2, op, "weight", D);
    T* gw = opt_arr<T>(info, 5, op, "gweight", D);
    SV_ISA_CALL_T(T, rms_norm_bwd, g.ptr, x.ptr, w, rstd.ptr, gx.ptr, gw, rows, D);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
