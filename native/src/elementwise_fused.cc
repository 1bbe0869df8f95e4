// Fused elementwise kernels for hot chains: biasAct (bias over the last dim +
// activation) and its backward, and the SwiGLU backward. Contiguous inputs,
// float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_strided.h"
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#define SV_ISA_BODY "elementwise_fused_impl.h"
#include "elementwise_isa_body.h"
#include "epilogue_rows.h"

namespace sv {

void swiglu_rows_f32(const float* gate, int64_t ldg, const float* up, int64_t ldu, float* out, int64_t ldo,
                     int64_t rows, int64_t cols) {
  SV_ISA_CALL(swiglu_rows, gate, ldg, up, ldu, out, ldo, rows, cols);
}

void act_rows_f32(float* y, int64_t ldy, int64_t rows, int64_t cols, int act) {
  SV_ISA_CALL(act_rows, y, ldy, rows, cols, act);
}

namespace {
void check_act(int64_t act, const char* op) {
  check(act >= 0 && act <= 7, std::string(op) + ": unknown activation code " + std::to_string(act));
}
}  // namespace

// biasActForward(x, bias | null, y, rows, D, act)
SV_KERNEL(biasActForward) {
  const char* op = "biasActForward";
  checkArgc(info, 6, op);
  int64_t rows = i64(info, 3, op, "rows"), D = i64(info, 4, op, "D"), act = i64(info, 5, op, "act");
  check(rows >= 0 && D >= 0, "biasActForward: negative size");
  check_act(act, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "x");
    auto y = arr<T>(info, 2, op, "y");
    need(x, rows * D, op, "x");
    need(y, rows * D, op, "y");
    const T* bias = nullptr;
    if (!info[1].IsNull() && !info[1].IsUndefined()) {
      auto b = arr<T>(info, 1, op, "bias");
      need(b, D, op, "bias");
      bias = b.ptr;
    }
    SV_ISA_CALL_T(T, bias_act_fwd, x.ptr, bias, y.ptr, rows, D, static_cast<int>(act));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// biasActBackward(g, x, bias | null, gx, gbias | null, rows, D, act)
SV_KERNEL(biasActBackward) {
  const char* op = "biasActBackward";
  checkArgc(info, 8, op);
  int64_t rows = i64(info, 5, op, "rows"), D = i64(info, 6, op, "D"), act = i64(info, 7, op, "act");
  check(rows >= 0 && D >= 0, "biasActBackward: negative size");
  check_act(act, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = arr<T>(info, 0, op, "g");
    auto x = arr<T>(info, 1, op, "x");
    auto gx = arr<T>(info, 3, op, "gx");
    need(g, rows * D, op, "g");
    need(x, rows * D, op, "x");
    need(gx, rows * D, op, "gx");
    const T* bias = nullptr;
    T* gbias = nullptr;
    if (!info[2].IsNull() && !info[2].IsUndefined()) {
      auto b = arr<T>(info, 2, op, "bias");
      need(b, D, op, "bias");
      bias = b.ptr;
    }
    if (!info[4].IsNull() && !info[4].IsUndefined()) {
      auto gb = arr<T>(info, 4, op, "gbias");
      need(gb, D, op, "gbias");
      gbias = gb.ptr;
    }
    SV_ISA_CALL_T(T, bias_act_bwd, g.ptr, x.ptr, bias, gx.ptr, gbias, rows, D, static_cast<int>(act));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

// swigluBackward(g, gate, up, ggate, gup, n)
SV_KERNEL(swigluBackward) {
  const char* op = "swigluBackward";
  checkArgc(info, 6, op);
  int64_t n = i64(info, 5, op, "n");
  check(n >= 0, "swigluBackward: negative size");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = arr<T>(info, 0, op, "g");
    auto gate = arr<T>(info, 1, op, "gate");
    auto up = arr<T>(info, 2, op, "up");
    auto ggate = arr<T>(info, 3, op, "ggate");
    auto gup = arr<T>(info, 4, op, "gup");
    need(g, n, op, "g");
    need(gate, n, op, "gate");
    need(up, n, op, "up");
    need(ggate, n, op, "ggate");
    need(gup, n, op, "gup");
    SV_ISA_CALL_T(T, swiglu_bwd, g.ptr, gate.ptr, up.ptr, ggate.ptr, gup.ptr, n);
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
