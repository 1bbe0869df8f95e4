// Shared helpers for the indexing kernels (index_ops*.cc, topk.cc, pool.cc,
// rope*.cc): index validation with precise error messages, float-type
// dispatch on the TypedArray type of an argument, and integer-list unpacking.
#pragma once
#include "common.h"
#include "threadpool.h"
#include <cstdint>
#include <string>
#include <vector>

namespace sv {

// Throws unless every idx[i] (i < n) lies in [0, bound). The message names the
// op, the argument, the first bad position and its value, and the bound, e.g.
// "indexSelect: index 12 at position 3 of 'idx' is out of range [0, 10)".
// Runs before any kernel touches memory through the indices.
void check_index_range(const int32_t* idx, int64_t n, int64_t bound, const char* op, const char* what);

// True if argument i is a Float64Array, false if a Float32Array; throws otherwise.
bool is_f64_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what);

// An argument that is a JS array of integers.

// Checks outer·size·inner (products of non-negative dims) fits the array.
template <typename T>
void need3(const Arr<T>& a, int64_t d0, int64_t d1, int64_t d2, const char* op, const char* what) {
  check(d0 >= 0 && d1 >= 0 && d2 >= 0, std::string(op) + ": negative dimension for '" + what + "'");
  need(a, d0 * d1 * d2, op, what);
}

// Dispatches `body` with T = float or double depending on argument i's array type.
#define SV_FLOAT_DISPATCH(info, i, op, what, ...)                  \
  do {                                                             \
    if (::sv::is_f64_arg(info, i, op, what)) {                     \
      using T = double;                                            \
      __VA_ARGS__                                                  \
    } else {                                                       \
      using T = float;                                             \
      __VA_ARGS__                                                  \
    }                                                              \
  } while (0)

}  // namespace sv
