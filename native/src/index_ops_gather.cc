// Element-wise gather along one dim (torch.gather) and its adjoint, scatter-add.
// x/dst are viewed as [outer, size, inner]; idx, out and src as [outer, n, inner].
#include "index_ops.h"
#include <algorithm>

namespace sv {
namespace {

template <typename E>
void gather_typed(const uint8_t* xb, uint8_t* ob, const int32_t* idx, int64_t outer, int64_t size, int64_t inner, int64_t n) {
  const E* x = reinterpret_cast<const E*>(xb);
  E* out = reinterpret_cast<E*>(ob);
  parallel_for(outer * n, std::max<int64_t>(1, 8192 / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const int64_t o = r / n;
      const int32_t* ir = idx + r * inner;
      const E* xo = x + o * size * inner;
      E* orow = out + r * inner;
      for (int64_t i = 0; i < inner; i++) orow[i] = xo[static_cast<int64_t>(ir[i]) * inner + i];
    }
  });
}

}  // namespace

// gather(x: Uint8Array, outer, size, inner, elemBytes, idx: Int32Array, n, out: Uint8Array)
// out[o, j, i] = x[o, idx[o, j, i], i].
SV_KERNEL(gather) {
  const char* op = "gather";
  checkArgc(info, 8, op);
  auto x = arr<uint8_t>(info, 0, op, "x");
  int64_t outer = i64(info, 1, op, "outer"), size = i64(info, 2, op, "size"), inner = i64(info, 3, op, "inner");
  int64_t eb = i64(info, 4, op, "elemBytes");
  auto idx = arr<int32_t>(info, 5, op, "idx");
  int64_t n = i64(info, 6, op, "n");
  auto out = arr<uint8_t>(info, 7, op, "out");
  check(eb == 1 || eb == 2 || eb == 4 || eb == 8, "gather: elemBytes must be 1, 2, 4 or 8");
  need3(x, outer, size, inner * eb, op, "x");
  need3(idx, outer, n, inner, op, "idx");
  need3(out, outer, n, inner * eb, op, "out");
  check_index_range(idx.ptr, outer * n * inner, size, op, "idx");
  switch (eb) {
    case 1: gather_typed<uint8_t>(x.ptr, out.ptr, idx.ptr, outer, size, inner, n); break;
    case 2: gather_typed<uint16_t>(x.ptr, out.ptr, idx.ptr, outer, size, inner, n); break;
    case 4: gather_typed<uint32_t>(x.ptr, out.ptr, idx.ptr, outer, size, inner, n); break;
    case 8: gather_typed<uint64_t>(x.ptr, out.ptr, idx.ptr, outer, size, inner, n); break;
  }
  return info.Env().Undefined();
}

namespace {

// Work is split over (outer, column chunk); inside a unit j runs in ascending
// order, so every destination element sums its sources in a fixed order
// whatever the thread count, and no two units write the same element.
template <typename T>
void scatter_add_typed(T* dst, const T* src, const int32_t* idx, int64_t outer, int64_t size, int64_t inner, int64_t n) {
  const int64_t cw = inner <= 64 ? inner : std::max<int64_t>(64, (inner / 8 + 15) / 16 * 16);
  const int64_t nch = cw ? (inner + cw - 1) / cw : 0;
  parallel_for(outer * nch, 1, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; w++) {
      const int64_t o = w / nch, c0 = (w % nch) * cw, c1 = std::min(inner, c0 + cw);
      T* d = dst + o * size * inner;
      for (int64_t j = 0; j < n; j++) {
        const int64_t r = (o * n + j) * inner;
        for (int64_t i = c0; i < c1; i++) d[static_cast<int64_t>(idx[r + i]) * inner + i] += src[r + i];
      }
    }
  });
}

}  // namespace

// scatterAdd(dst: F32|F64, outer, size, inner, idx: Int32Array, n, src: same type)
// dst[o, idx[o, j, i], i] += src[o, j, i] in place (the adjoint of gather).
SV_KERNEL(scatterAdd) {
  const char* op = "scatterAdd";
  checkArgc(info, 7, op);
  int64_t outer = i64(info, 1, op, "outer"), size = i64(info, 2, op, "size"), inner = i64(info, 3, op, "inner");
  auto idx = arr<int32_t>(info, 4, op, "idx");
  int64_t n = i64(info, 5, op, "n");
  need3(idx, outer, n, inner, op, "idx");
  SV_FLOAT_DISPATCH(info, 0, op, "dst", {
    auto dst = arr<T>(info, 0, op, "dst");
    auto src = arr<T>(info, 6, op, "src");
    need3(dst, outer, size, inner, op, "dst");
    need3(src, outer, n, inner, op, "src");
    check_index_range(idx.ptr, outer * n * inner, size, op, "idx");
    scatter_add_typed<T>(dst.ptr, src.ptr, idx.ptr, outer, size, inner, n);
  });
  return info.Env().Undefined();
}

}  // namespace sv
