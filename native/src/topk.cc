// Top-k along the last dim: values sorted descending, ties broken by the lower
// index, NaN ranked above every number (as torch.topk does).
#include "index_ops.h"
#include <algorithm>
#include <vector>

namespace sv {
namespace {

// True if (va, ia) ranks before (vb, ib). A strict total order on (value, index) pairs.
template <typename T>
inline bool ranks_before(T va, int32_t ia, T vb, int32_t ib) {
  const bool na = va != va, nb = vb != vb;
  if (na || nb) return (na && nb) ? ia < ib : na;
  if (va != vb) return va > vb;
  return ia < ib;
}

template <typename T>
struct Cand {
  T v;
  int32_t i;
};

// Selection with a size-k heap whose top is the worst kept candidate. Elements
// arrive in index order, so a newcomer displaces the top only if it is strictly
// larger (or NaN over a number); `thr` skips that comparison for most elements.
template <typename T>
void topk_heap(const T* x, int64_t L, int64_t k, T* vals, int32_t* inds, std::vector<Cand<T>>& heap) {
  auto worse_on_top = [](const Cand<T>& a, const Cand<T>& b) { return ranks_before(a.v, a.i, b.v, b.i); };
  heap.clear();
  for (int64_t i = 0; i < k; i++) heap.push_back({x[i], static_cast<int32_t>(i)});
  std::make_heap(heap.begin(), heap.end(), worse_on_top);
  T thr = heap.front().v;
  bool thrNan = thr != thr;
  for (int64_t i = k; i < L; i++) {
    const T v = x[i];
    if (v <= thr || thrNan) continue;  // not strictly better (a NaN v fails v <= thr and is handled below)
    std::pop_heap(heap.begin(), heap.end(), worse_on_top);
    heap.back() = {v, static_cast<int32_t>(i)};
    std::push_heap(heap.begin(), heap.end(), worse_on_top);
    thr = heap.front().v;
    thrNan = thr != thr;
  }
  std::sort_heap(heap.begin(), heap.end(), worse_on_top);  // ascending by worse_on_top = best first
  for (int64_t j = 0; j < k; j++) {
    vals[j] = heap[j].v;
    inds[j] = heap[j].i;
  }
}

// Small k: keep the best k sorted (descending) and insert by shifting. A
// newcomer has a larger index than every kept entry, so it goes after equal
// values: it moves up only past entries it strictly beats.
template <typename T>
inline bool beats_earlier(T v, T kept) {
  if (kept != kept) return false;  // a kept NaN outranks anything that comes later
  return v != v || v > kept;
}

template <typename T>
void topk_insert(const T* x, int64_t L, int64_t k, T* vals, int32_t* inds) {
  auto insert = [&](T v, int64_t i, int64_t j) {  // j: the free slot at the end
    while (j > 0 && beats_earlier(v, vals[j - 1])) {
      vals[j] = vals[j - 1];
      inds[j] = inds[j - 1];
      j--;
    }
    vals[j] = v;
    inds[j] = static_cast<int32_t>(i);
  };
  for (int64_t i = 0; i < k; i++) insert(x[i], i, i);
  // The worst kept value, in registers: most elements fail `v > last` at once.
  T last = vals[k - 1];
  bool lastNan = last != last;
  for (int64_t i = k; i < L; i++) {
    const T v = x[i];
    if (v <= last || lastNan) continue;  // a NaN v fails v <= last and is inserted
    insert(v, i, k - 1);
    last = vals[k - 1];
    lastNan = last != last;
  }
}

template <typename T>
void topk_sort(const T* x, int64_t L, int64_t k, T* vals, int32_t* inds, std::vector<int32_t>& order) {
  order.resize(L);
  for (int64_t i = 0; i < L; i++) order[i] = static_cast<int32_t>(i);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [x](int32_t a, int32_t b) { return ranks_before(x[a], a, x[b], b); });
  for (int64_t j = 0; j < k; j++) {
    vals[j] = x[order[j]];
    inds[j] = order[j];
  }
}

}  // namespace

// topk(x: F32|F64 [rows, L], rows, L, k, values: same type [rows, k], indices: Int32Array [rows, k])
SV_KERNEL(topk) {
  const char* op = "topk";
  checkArgc(info, 6, op);
  int64_t rows = i64(info, 1, op, "rows"), L = i64(info, 2, op, "L"), k = i64(info, 3, op, "k");
  auto inds = arr<int32_t>(info, 5, op, "indices");
  check(L >= 0 && L < INT32_MAX, "topk: row length " + std::to_string(L) + " out of range");
  check(k >= 0 && k <= L, "topk: k = " + std::to_string(k) + " must be in [0, " + std::to_string(L) + "]");
  need3(inds, rows, k, 1, op, "indices");
  SV_FLOAT_DISPATCH(info, 0, op, "x", {
    auto x = arr<T>(info, 0, op, "x");
    auto vals = arr<T>(info, 4, op, "values");
    need3(x, rows, L, 1, op, "x");
    need3(vals, rows, k, 1, op, "values");
    if (k == 0 || rows == 0) return info.Env().Undefined();
    const bool useInsert = k <= 16, useHeap = k * 8 <= L;
    parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(L, 1)), [&](int64_t b, int64_t e) {
      std::vector<Cand<T>> heap;
      std::vector<int32_t> order;
      for (int64_t r = b; r < e; r++) {
        if (useInsert) topk_insert<T>(x.ptr + r * L, L, k, vals.ptr + r * k, inds.ptr + r * k);
        else if (useHeap) topk_heap<T>(x.ptr + r * L, L, k, vals.ptr + r * k, inds.ptr + r * k, heap);
        else topk_sort<T>(x.ptr + r * L, L, k, vals.ptr + r * k, inds.ptr + r * k, order);
      }
    });
  });
  return info.Env().Undefined();
}

}  // namespace sv
