// Strided, broadcasting iteration for elementwise kernels with K inputs and
// one contiguous output. JS passes each input as its whole storage plus an
// element offset and per-dimension strides already aligned to the output
// shape (0 on broadcast dimensions). make_strided() bounds-checks every view
// against its storage, then merges dimensions that are contiguous for all
// inputs, so the common cases (same-shape contiguous, row bias, column
// scale) run as long stride-1 or stride-0 inner loops.
#pragma once
#include "common.h"
#include "threadpool.h"
#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace sv {

// True when argument i is a Float64Array (kernels are generic over f32/f64).
inline bool ew_is_f64(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

// Optional array argument: null/undefined gives nullptr, else it must hold n elements.
template <typename T>
T* opt_arr(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, int64_t n) {
  if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  Arr<T> a = arr<T>(info, i, op, what);
  need(a, n, op, what);
  return a.ptr;
}

template <int K>
struct Strided {
  std::vector<int64_t> shape;                   // merged dims, outermost first
  std::vector<std::array<int64_t, K>> strides;  // per merged dim, per input
  std::array<int64_t, K> offset{};
  int64_t numel = 0;
  int64_t inner() const { return shape.back(); }
  int64_t inner_stride(int k) const { return strides.back()[k]; }
};

template <int K>
Strided<K> make_strided(const char* op, const std::vector<int64_t>& shape,
                        const std::array<std::vector<int64_t>, K>& strides, const std::array<int64_t, K>& offs,
                        const std::array<size_t, K>& lens, const std::array<const char*, K>& names) {
  Strided<K> L;
  L.numel = 1;
  for (int64_t d : shape) {
    check(d >= 0, std::string(op) + ": negative dimension in shape");
    L.numel *= d;
  }
  for (int k = 0; k < K; k++) {
    check(strides[k].size() == shape.size(),
          std::string(op) + ": '" + names[k] + "' has " + std::to_string(strides[k].size()) +
              " strides for a " + std::to_string(shape.size()) + "-d shape");
    check(offs[k] >= 0, std::string(op) + ": '" + names[k] + "' has a negative offset");
    int64_t last = offs[k];
    for (size_t d = 0; d < shape.size(); d++) {
      check(strides[k][d] >= 0, std::string(op) + ": '" + names[k] + "' has a negative stride");
      if (shape[d] > 0) last += (shape[d] - 1) * strides[k][d];
    }
    if (L.numel > 0) {
      check(last < static_cast<int64_t>(lens[k]),
            std::string(op) + ": '" + names[k] + "' view reaches element " + std::to_string(last) +
                " of a storage with " + std::to_string(lens[k]) + " elements");
    }
  }
  L.offset = offs;
  // Drop size-1 dims, then merge a dim into the previous one when every input
  // steps through both as one run (the output is contiguous, so it always can).
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 1) continue;
    std::array<int64_t, K> s;
    for (int k = 0; k < K; k++) s[k] = strides[k][d];
    if (!L.shape.empty()) {
      bool merge = true;
      for (int k = 0; k < K; k++) merge = merge && L.strides.back()[k] == s[k] * shape[d];
      if (merge) {
        L.shape.back() *= shape[d];
        L.strides.back() = s;
        continue;
      }
    }
    L.shape.push_back(shape[d]);
    L.strides.push_back(s);
  }
  if (L.shape.empty()) {  // a scalar, or all dims of size 1
    L.shape.push_back(L.numel == 0 ? 0 : 1);
    L.strides.push_back(std::array<int64_t, K>{});
  }
  return L;
}

// True when some input walks the innermost dim with a large stride but the
// next dim with a smaller one (a transposed view): row-by-row iteration would
// touch a new cache line per element, so the last two dims go in tiles.
template <int K>
bool wants_tiles(const Strided<K>& L) {
  const size_t nd = L.shape.size();
  if (nd < 2) return false;
  for (int k = 0; k < K; k++) {
    const int64_t si = L.strides[nd - 1][k], so = L.strides[nd - 2][k];
    if (si > 1 && so < si) return true;
  }
  return false;
}

// Tiled traversal of the last two dims (kTile x kTile blocks); segments are
// tile rows. Used for transposed inputs, see wants_tiles().
template <int K, class F>
void for_each_tile_segment(const Strided<K>& L, int64_t grain, const F& f) {
  constexpr int64_t kTile = 32;
  const int nd = static_cast<int>(L.shape.size());
  const int64_t rows = L.shape[nd - 2], cols = L.shape[nd - 1];
  const int64_t tr = (rows + kTile - 1) / kTile, tc = (cols + kTile - 1) / kTile;
  const int64_t outer = L.numel / (rows * cols);
  parallel_for(outer * tr * tc, std::max<int64_t>(1, grain / (kTile * kTile)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      const int64_t o = t / (tr * tc), i0 = (t % (tr * tc)) / tc * kTile, j0 = t % tc * kTile;
      std::array<int64_t, K> base = L.offset;
      int64_t rem = o;
      for (int d = nd - 3; d >= 0; d--) {
        const int64_t c = rem % L.shape[d];
        rem /= L.shape[d];
        for (int k = 0; k < K; k++) base[k] += c * L.strides[d][k];
      }
      const int64_t len = std::min(kTile, cols - j0);
      for (int64_t i = i0; i < std::min(i0 + kTile, rows); i++) {
        std::array<int64_t, K> at;
        for (int k = 0; k < K; k++) at[k] = base[k] + i * L.strides[nd - 2][k] + j0 * L.strides[nd - 1][k];
        f((o * rows + i) * cols + j0, at, len);
      }
    }
  });
}

// Calls f(outIndex, inputIndex[K], len) for runs of the innermost merged dim,
// covering [0, numel) in parallel chunks of at least `grain` elements.
template <int K, class F>
void for_each_segment(const Strided<K>& L, int64_t grain, const F& f) {
  const int nd = static_cast<int>(L.shape.size());
  const int64_t inner = L.shape[nd - 1];
  if (L.numel == 0) return;
  if (wants_tiles(L)) {
    for_each_tile_segment(L, grain, f);
    return;
  }
  parallel_for(L.numel, grain, [&](int64_t b, int64_t e) {
    std::vector<int64_t> coord(nd, 0);
    int64_t row = b / inner, col = b % inner;
    std::array<int64_t, K> base = L.offset;
    for (int d = nd - 2; d >= 0; d--) {
      coord[d] = row % L.shape[d];
      row /= L.shape[d];
      for (int k = 0; k < K; k++) base[k] += coord[d] * L.strides[d][k];
    }
    while (b < e) {
      int64_t len = inner - col < e - b ? inner - col : e - b;
      std::array<int64_t, K> at;
      for (int k = 0; k < K; k++) at[k] = base[k] + col * L.strides[nd - 1][k];
      f(b, at, len);
      b += len;
      col = 0;
      for (int d = nd - 2; d >= 0; d--) {  // next row: odometer carry
        coord[d]++;
        for (int k = 0; k < K; k++) base[k] += L.strides[d][k];
        if (coord[d] < L.shape[d]) break;
        for (int k = 0; k < K; k++) base[k] -= coord[d] * L.strides[d][k];
        coord[d] = 0;
      }
    }
  });
}

}  // namespace sv
