// Reductions over a contiguous [outer, R, inner] view (JS merges the reduced
// dims into R, permuting first when they are not adjacent): sum (with a
// scale, so mean is one pass), max with argmax and its backward, and a fused
// row logsumexp. float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_strided.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#define SV_ISA_BODY "reduce_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

namespace {
void check_dims(int64_t outer, int64_t R, int64_t inner, const char* op) {
  check(outer >= 0 && R >= 0 && inner >= 0,
        std::string(op) + ": negative size " + shapeStr({outer, R, inner}));
}
}  // namespace

// reduceSum(x, out, outer, R, inner, scale): out[o, j] = scale * sum_r x[o, r, j]
SV_KERNEL(reduceSum) {
  const char* op = "reduceSum";
  checkArgc(info, 6, op);
  int64_t outer = i64(info, 2, op, "outer"), R = i64(info, 3, op, "R"), inner = i64(info, 4, op, "inner");
  check_dims(outer, R, inner, op);
  double scale = f64(info, 5, op, "scale");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto out = arr<T>(info, 1, op, "out");
    need(x, outer * R * inner, op, "x");
    need(out, outer * inner, op, "out");
    SV_ISA_CALL_T(T, reduce_sum, x.ptr, out.ptr, outer, R, inner, static_cast<T>(scale));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// reduceMax(x, out, idx: Int32Array, outer, R, inner)
SV_KERNEL(reduceMax) {
  const char* op = "reduceMax";
  checkArgc(info, 6, op);
  int64_t outer = i64(info, 3, op, "outer"), R = i64(info, 4, op, "R"), inner = i64(info, 5, op, "inner");
  check_dims(outer, R, inner, op);
  check(R >= 1 || outer * inner == 0, "reduceMax: cannot take the max over an empty dimension");
  check(R <= INT32_MAX, "reduceMax: reduced size exceeds int32 indices");
  auto idx = arr<int32_t>(info, 2, op, "idx");
  need(idx, outer * inner, op, "idx");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto out = arr<T>(info, 1, op, "out");
    need(x, outer * R * inner, op, "x");
    need(out, outer * inner, op, "out");
    SV_ISA_CALL_T(T, reduce_max, x.ptr, out.ptr, idx.ptr, outer, R, inner);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// reduceMaxBackward(g, idx, gx, outer, R, inner): gx (zeroed) gets g at the argmax.
SV_KERNEL(reduceMaxBackward) {
  const char* op = "reduceMaxBackward";
  checkArgc(info, 6, op);
  int64_t outer = i64(info, 3, op, "outer"), R = i64(info, 4, op, "R"), inner = i64(info, 5, op, "inner");
  check_dims(outer, R, inner, op);
  auto idx = arr<int32_t>(info, 1, op, "idx");
  need(idx, outer * inner, op, "idx");
  for (int64_t t = 0; t < outer * inner; t++) {
    check(idx.ptr[t] >= 0 && idx.ptr[t] < R, "reduceMaxBackward: index " + std::to_string(idx.ptr[t]) +
                                                 " at position " + std::to_string(t) + " is outside [0, " +
                                                 std::to_string(R) + ")");
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = arr<T>(info, 0, op, "g");
    auto gx = arr<T>(info, 2, op, "gx");
    need(g, outer * inner, op, "g");
    need(gx, outer * R * inner, op, "gx");
    SV_ISA_CALL_T(T, reduce_max_bwd, g.ptr, idx.ptr, gx.ptr, outer, R, inner);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// logsumexpRows(x, out, rows, R)
SV_KERNEL(logsumexpRows) {
  const char* op = "logsumexpRows";
  checkArgc(info, 4, op);
  int64_t rows = i64(info, 2, op, "rows"), R = i64(info, 3, op, "R");
  check_dims(rows, R, 1, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto out = arr<T>(info, 1, op, "out");
    need(x, rows * R, op, "x");
    need(out, rows, op, "out");
    SV_ISA_CALL_T(T, logsumexp_rows, x.ptr, out.ptr, rows, R);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
