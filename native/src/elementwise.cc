// Strided, broadcasting binary elementwise kernel (ewBinary). The output is a
// fresh contiguous array; inputs are whole storages with an element offset
// and output-aligned strides (0 = broadcast). float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_ops.h"
#include "elementwise_strided.h"
#include <cmath>
#include <cstdint>
#include <type_traits>

#define SV_ISA_BODY "elementwise_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

// ewBinary(code, out, a, aOffset, aStrides, b, bOffset, bStrides, shape, alpha, beta)
SV_KERNEL(ewBinary) {
  const char* op = "ewBinary";
  checkArgc(info, 11, op);
  int64_t code = i64(info, 0, op, "code");
  check(code >= 0 && code < BIN_COUNT, "ewBinary: unknown op code " + std::to_string(code));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto out = arr<T>(info, 1, op, "out");
    auto a = arr<T>(info, 2, op, "a");
    auto b = arr<T>(info, 5, op, "b");
    auto shape = int_list(info, 8, op, "shape");
    Strided<2> L = make_strided<2>(op, shape, {int_list(info, 4, op, "aStrides"), int_list(info, 7, op, "bStrides")},
                                   {i64(info, 3, op, "aOffset"), i64(info, 6, op, "bOffset")}, {a.len, b.len},
                                   {"a", "b"});
    need(out, L.numel, op, "out");
    T alpha = static_cast<T>(f64(info, 9, op, "alpha")), beta = static_cast<T>(f64(info, 10, op, "beta"));
    SV_ISA_CALL_T(T, binary_run, static_cast<int>(code), out.ptr, a.ptr, b.ptr, L, alpha, beta);
  };
  if (ew_is_f64(info, 1)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
