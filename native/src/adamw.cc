// Optimizer kernels: fused in-place AdamW step, and the pieces of gradient
// clipping (squared norm, in-place scale). Contiguous float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_strided.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#define SV_ISA_BODY "adamw_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

// adamwStep(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step)
SV_KERNEL(adamwStep) {
  const char* op = "adamwStep";
  checkArgc(info, 11, op);
  int64_t n = i64(info, 4, op, "n");
  double lr = f64(info, 5, op, "lr"), b1 = f64(info, 6, op, "beta1"), b2 = f64(info, 7, op, "beta2");
  double eps = f64(info, 8, op, "eps"), wd = f64(info, 9, op, "weightDecay");
  int64_t step = i64(info, 10, op, "step");
  check(n >= 0, "adamwStep: negative size");
  check(step >= 1, "adamwStep: step must be >= 1, got " + std::to_string(step));
  check(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "adamwStep: betas must be in [0, 1)");
  const double bc1 = 1 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(b2, static_cast<double>(step));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto p = arr<T>(info, 0, op, "param");
    auto g = arr<T>(info, 1, op, "grad");
    auto m = arr<T>(info, 2, op, "m");
    auto v = arr<T>(info, 3, op, "v");
    need(p, n, op, "param");
    need(g, n, op, "grad");
    need(m, n, op, "m");
    need(v, n, op, "v");
    SV_ISA_CALL_T(T, adamw_update, p.ptr, g.ptr, m.ptr, v.ptr, n, static_cast<T>(1 - lr * wd), static_cast<T>(b1),
                static_cast<T>(b2), static_cast<T>(lr / bc1), static_cast<T>(1 / std::sqrt(bc2)), static_cast<T>(eps));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// sumSquares(x, n) -> number (accumulated in double)
SV_KERNEL(sumSquares) {
  const char* op = "sumSquares";
  checkArgc(info, 2, op);
  int64_t n = i64(info, 1, op, "n");
  check(n >= 0, "sumSquares: negative size");
  double s = 0;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    need(x, n, op, "x");
    s = SV_ISA_CALL_T(T, sum_squares, x.ptr, n);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return Napi::Number::New(info.Env(), s);
}

// scaleInPlace(x, n, s): x *= s
SV_KERNEL(scaleInPlace) {
  const char* op = "scaleInPlace";
  checkArgc(info, 3, op);
  int64_t n = i64(info, 1, op, "n");
  check(n >= 0, "scaleInPlace: negative size");
  double s = f64(info, 2, op, "s");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    need(x, n, op, "x");
    SV_ISA_CALL_T(T, scale_inplace, x.ptr, n, static_cast<T>(s));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
