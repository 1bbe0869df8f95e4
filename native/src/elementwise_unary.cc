// Strided unary elementwise kernel (ewUnary) and the broadcasting select
// (ewWhere). The output is a fresh contiguous array; inputs are whole
// storages with an element offset and output-aligned strides. float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_ops.h"
#include "elementwise_strided.h"
#include <cmath>
#include <cstdint>
#include <type_traits>

#define SV_ISA_BODY "elementwise_unary_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

// ewUnary(code, out, x, xOffset, xStrides, shape, alpha, beta)
SV_KERNEL(ewUnary) {
  const char* op = "ewUnary";
  checkArgc(info, 8, op);
  int64_t code = i64(info, 0, op, "code");
  check(code >= 0 && code < UN_COUNT, "ewUnary: unknown op code " + std::to_string(code));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto out = arr<T>(info, 1, op, "out");
    auto x = arr<T>(info, 2, op, "x");
    auto shape = int_list(info, 5, op, "shape");
    Strided<1> L = make_strided<1>(op, shape, {int_list(info, 4, op, "xStrides")}, {i64(info, 3, op, "xOffset")},
                                   {x.len}, {"x"});
    need(out, L.numel, op, "out");
    T alpha = static_cast<T>(f64(info, 6, op, "alpha")), beta = static_cast<T>(f64(info, 7, op, "beta"));
    SV_ISA_CALL_T(T, unary_run, static_cast<int>(code), out.ptr, x.ptr, L, alpha, beta);
  };
  if (ew_is_f64(info, 1)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// ewWhere(out, cond, cOffset, cStrides, a, aOffset, aStrides, b, bOffset, bStrides, shape)
SV_KERNEL(ewWhere) {
  const char* op = "ewWhere";
  checkArgc(info, 11, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto out = arr<T>(info, 0, op, "out");
    auto c = arr<uint8_t>(info, 1, op, "cond");
    auto a = arr<T>(info, 4, op, "a");
    auto b = arr<T>(info, 7, op, "b");
    auto shape = int_list(info, 10, op, "shape");
    Strided<3> L = make_strided<3>(
        op, shape, {int_list(info, 3, op, "cStrides"), int_list(info, 6, op, "aStrides"), int_list(info, 9, op, "bStrides")},
        {i64(info, 2, op, "cOffset"), i64(info, 5, op, "aOffset"), i64(info, 8, op, "bOffset")}, {c.len, a.len, b.len},
        {"cond", "a", "b"});
    need(out, L.numel, op, "out");
    SV_ISA_CALL_T(T, where_run, out.ptr, c.ptr, a.ptr, b.ptr, L);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
