// MoE dispatch: groups routing slots (token t, choice j -> slot t·k + j) by
// expert with a stable counting sort, so each expert can gather its tokens,
// run once on a contiguous batch, and scatter back.
#include "index_ops.h"

namespace sv {

// moeRoute(ids: Int32Array [T·k], n = T·k, k, numExperts, order: Int32Array [n],
//          tokens: Int32Array [n], offsets: Int32Array [E+1])
// order   = slot ids grouped by expert (ascending slot order inside an expert),
// tokens  = order[i] / k (the token of each slot),
// offsets = start of each expert's group in `order`; offsets[E] = n.
SV_KERNEL(moeRoute) {
  const char* op = "moeRoute";
  checkArgc(info, 7, op);
  auto ids = arr<int32_t>(info, 0, op, "expertIds");
  int64_t n = i64(info, 1, op, "n"), k = i64(info, 2, op, "k"), E = i64(info, 3, op, "numExperts");
  auto order = arr<int32_t>(info, 4, op, "order");
  auto tokens = arr<int32_t>(info, 5, op, "tokens");
  auto offsets = arr<int32_t>(info, 6, op, "offsets");
  check(k >= 1, "moeRoute: k must be >= 1, got " + std::to_string(k));
  check(E >= 1 && E < INT32_MAX, "moeRoute: numExperts must be >= 1, got " + std::to_string(E));
  check(n >= 0 && n % k == 0 && n < INT32_MAX, "moeRoute: " + std::to_string(n) + " slots is not a multiple of k = " + std::to_string(k));
  need(ids, n, op, "expertIds");
  need(order, n, op, "order");
  need(tokens, n, op, "tokens");
  need(offsets, E + 1, op, "offsets");
  check_index_range(ids.ptr, n, E, op, "expertIds");
  std::vector<int64_t> next(E + 1, 0);
  for (int64_t i = 0; i < n; i++) next[ids.ptr[i] + 1]++;
  for (int64_t e = 0; e < E; e++) next[e + 1] += next[e];
  for (int64_t e = 0; e <= E; e++) offsets.ptr[e] = static_cast<int32_t>(next[e]);
  for (int64_t i = 0; i < n; i++) {
    int64_t at = next[ids.ptr[i]]++;
    order.ptr[at] = static_cast<int32_t>(i);
    tokens.ptr[at] = static_cast<int32_t>(i / k);
  }
  return info.Env().Undefined();
}

}  // namespace sv
