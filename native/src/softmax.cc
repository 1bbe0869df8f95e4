// Softmax and log-softmax over the last dim of a contiguous [rows, n] view,
// forward and backward (the backward takes the forward's output).
// float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_strided.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#define SV_ISA_BODY "softmax_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

// softmaxForward(x, y, rows, n, log)
SV_KERNEL(softmaxForward) {
  const char* op = "softmaxForward";
  checkArgc(info, 5, op);
  int64_t rows = i64(info, 2, op, "rows"), n = i64(info, 3, op, "n");
  check(rows >= 0 && n >= 0, "softmaxForward: negative size " + shapeStr({rows, n}));
  bool log = boolean(info, 4);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto y = arr<T>(info, 1, op, "y");
    need(x, rows * n, op, "x");
    need(y, rows * n, op, "y");
    SV_ISA_CALL_T(T, softmax_fwd, x.ptr, y.ptr, rows, n, log);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// softmaxBackward(g, y, gx, rows, n, log)
SV_KERNEL(softmaxBackward) {
  const char* op = "softmaxBackward";
  checkArgc(info, 6, op);
  int64_t rows = i64(info, 3, op, "rows"), n = i64(info, 4, op, "n");
  check(rows >= 0 && n >= 0, "softmaxBackward: negative size " + shapeStr({rows, n}));
  bool log = boolean(info, 5);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = arr<T>(info, 0, op, "g");
    auto y = arr<T>(info, 1, op, "y");
    auto gx = arr<T>(info, 2, op, "gx");
    need(g, rows * n, op, "g");
    need(y, rows * n, op, "y");
    need(gx, rows * n, op, "gx");
    SV_ISA_CALL_T(T, softmax_bwd, g.ptr, y.ptr, gx.ptr, rows, n, log);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
