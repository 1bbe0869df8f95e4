// Fused cross-entropy over logits [N, V] with int32 targets: ignore index,
// label smoothing, target bounds checks. float32/float64.
#include "common.h"
#include "threadpool.h"
#include "elementwise_strided.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#define SV_ISA_BODY "loss_impl.h"
#include "elementwise_isa_body.h"

namespace sv {

namespace {
// Every target is ignoreIndex or a class in [0, V); the message names the row.
void check_targets(const int32_t* t, int64_t N, int64_t V, int32_t ignore) {
  for (int64_t i = 0; i < N; i++) {
    if (t[i] == ignore) continue;
    if (t[i] < 0 || t[i] >= V) {
      throw KernelError("crossEntropy: target " + std::to_string(t[i]) + " at row " + std::to_string(i) +
                        " is out of range for " + std::to_string(V) + " classes (ignoreIndex " +
                        std::to_string(ignore) + ")");
    }
  }
}
}  // namespace

// crossEntropyForward(logits, targets, loss, stats, N, V, ignoreIndex, smoothing) -> { sum, count }
// stats [2N] receives each row's max then each row's log-sum-exp-minus-max (the backward's input).
// sum adds the non-ignored row losses in row order (in double).
SV_KERNEL(crossEntropyForward) {
  const char* op = "crossEntropyForward";
  checkArgc(info, 8, op);
  int64_t N = i64(info, 4, op, "N"), V = i64(info, 5, op, "V");
  check(N >= 0 && V >= 0, "crossEntropyForward: negative size " + shapeStr({N, V}));
  int32_t ignore = static_cast<int32_t>(i64(info, 6, op, "ignoreIndex"));
  double smoothing = f64(info, 7, op, "smoothing");
  auto tgt = arr<int32_t>(info, 1, op, "targets");
  need(tgt, N, op, "targets");
  check_targets(tgt.ptr, N, V, ignore);
  double sum = 0;
  int64_t count = 0;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "logits");
    auto loss = arr<T>(info, 2, op, "loss");
    auto stats = arr<T>(info, 3, op, "stats");
    need(x, N * V, op, "logits");
    need(loss, N, op, "loss");
    need(stats, 2 * N, op, "stats");
    SV_ISA_CALL_T(T, cross_entropy_fwd, x.ptr, tgt.ptr, loss.ptr, stats.ptr, stats.ptr + N, N, V, ignore,
                static_cast<T>(smoothing));
    for (int64_t i = 0; i < N; i++) {
      if (tgt.ptr[i] == ignore) continue;
      sum += static_cast<double>(loss.ptr[i]);
      count++;
    }
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  Napi::Object res = Napi::Object::New(info.Env());
  res.Set("sum", sum);
  res.Set("count", static_cast<double>(count));
  return res;
}

// crossEntropyBackward(logits, targets, stats, g, gStride, gScale, gx, N, V, ignoreIndex, smoothing)
SV_KERNEL(crossEntropyBackward) {
  const char* op = "crossEntropyBackward";
  checkArgc(info, 11, op);
  int64_t gStride = i64(info, 4, op, "gStride");
  int64_t N = i64(info, 7, op, "N"), V = i64(info, 8, op, "V");
  check(N >= 0 && V >= 0, "crossEntropyBackward: negative size " + shapeStr({N, V}));
  check(gStride == 0 || gStride == 1, "crossEntropyBackward: gStride must be 0 or 1");
  int32_t ignore = static_cast<int32_t>(i64(info, 9, op, "ignoreIndex"));
  double gScale = f64(info, 5, op, "gScale"), smoothing = f64(info, 10, op, "smoothing");
  auto tgt = arr<int32_t>(info, 1, op, "targets");
  need(tgt, N, op, "targets");
  check_targets(tgt.ptr, N, V, ignore);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto x = arr<T>(info, 0, op, "logits");
    auto stats = arr<T>(info, 2, op, "stats");
    auto g = arr<T>(info, 3, op, "g");
    auto gx = arr<T>(info, 6, op, "gx");
    need(x, N * V, op, "logits");
    need(stats, 2 * N, op, "stats");
    need(g, N == 0 ? 0 : (N - 1) * gStride + 1, op, "g");
    need(gx, N * V, op, "gx");
    SV_ISA_CALL_T(T, cross_entropy_bwd, x.ptr, tgt.ptr, stats.ptr, stats.ptr + N, g.ptr, gStride, static_cast<T>(gScale), gx.ptr, N, V,
                ignore, static_cast<T>(smoothing));
  };
  if (ew_is_f64(info, 0)) run(double{});
  else run(float{});
  return info.Env().Undefined();
}

}  // namespace sv
