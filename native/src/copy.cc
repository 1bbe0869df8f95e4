// Layout and type kernels: strided copy (makes views contiguous), dtype cast,
// fill, and in-place accumulation (gradient sums).
#include "common.h"
#include "dtype.h"
#include "threadpool.h"
#include <cmath>

namespace sv {
namespace {

// Largest element index (relative to `offset`) touched by shape/strides, -1 if empty.
int64_t max_index(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, int64_t offset) {
  int64_t m = offset;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return -1;
    m += (shape[d] - 1) * strides[d];
  }
  return m;
}

template <int B>
struct Elem { uint8_t b[B]; };

template <int B>
void copy_typed(uint8_t* dst, const uint8_t* src, const std::vector<int64_t>& shape,
                const std::vector<int64_t>& ss, const std::vector<int64_t>& ds, int64_t n) {
  using E = Elem<B>;
  const int nd = static_cast<int>(shape.size());
  const int64_t inner = nd ? shape[nd - 1] : 1;
  const int64_t sInner = nd ? ss[nd - 1] : 1, dInner = nd ? ds[nd - 1] : 1;
  const int64_t rows = inner ? n / inner : 0;
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(nd > 0 ? nd - 1 : 0);
    for (int64_t r = r0; r < r1; r++) {
      int64_t rem = r, so = 0, dof = 0;
      for (int d = nd - 2; d >= 0; d--) {
        int64_t i = rem % shape[d];
        rem /= shape[d];
        so += i * ss[d];
        dof += i * ds[d];
      }
      const E* s = reinterpret_cast<const E*>(src) + so;
      E* t = reinterpret_cast<E*>(dst) + dof;
      if (sInner == 1 && dInner == 1) std::memcpy(t, s, sizeof(E) * inner);
      else for (int64_t i = 0; i < inner; i++) t[i * dInner] = s[i * sInner];
    }
  });
}

}  // namespace

// copyStrided(dst: Uint8Array, dstOffset, dstStrides, src: Uint8Array, srcOffset, srcStrides, shape, elemBytes)
// Offsets and strides are in elements. Both arrays view whole storages.
SV_KERNEL(copyStrided) {
  const char* op = "copyStrided";
  checkArgc(info, 8, op);
  auto dst = arr<uint8_t>(info, 0, op, "dst");
  int64_t doff = i64(info, 1, op, "dstOffset");
  auto ds = int_list(info, 2, op, "dstStrides");
  auto src = arr<uint8_t>(info, 3, op, "src");
  int64_t soff = i64(info, 4, op, "srcOffset");
  auto ss = int_list(info, 5, op, "srcStrides");
  auto shape = int_list(info, 6, op, "shape");
  int64_t eb = i64(info, 7, op, "elemBytes");
  check(ds.size() == shape.size() && ss.size() == shape.size(), "copyStrided: strides and shape ranks differ");
  check(eb == 1 || eb == 2 || eb == 4 || eb == 8, "copyStrided: elemBytes must be 1, 2, 4 or 8");
  int64_t n = 1;
  for (size_t d = 0; d < shape.size(); d++) {
    check(shape[d] >= 0 && ss[d] >= 0 && ds[d] >= 0, "copyStrided: negative shape or stride");
    n *= shape[d];
  }
  if (n == 0) return info.Env().Undefined();
  int64_t smax = max_index(shape, ss, soff), dmax = max_index(shape, ds, doff);
  check(soff >= 0 && (smax + 1) * eb <= static_cast<int64_t>(src.len),
        "copyStrided: source view reaches element " + std::to_string(smax) + " beyond its storage of " +
            std::to_string(src.len / eb) + " elements");
  check(doff >= 0 && (dmax + 1) * eb <= static_cast<int64_t>(dst.len),
        "copyStrided: destination view reaches element " + std::to_string(dmax) + " beyond its storage of " +
            std::to_string(dst.len / eb) + " elements");
  uint8_t* d = dst.ptr + doff * eb;
  const uint8_t* s = src.ptr + soff * eb;
  switch (eb) {
    case 1: copy_typed<1>(d, s, shape, ss, ds, n); break;
    case 2: copy_typed<2>(d, s, shape, ss, ds, n); break;
    case 4: copy_typed<4>(d, s, shape, ss, ds, n); break;
    case 8: copy_typed<8>(d, s, shape, ss, ds, n); break;
  }
  return info.Env().Undefined();
}

namespace {
template <typename S>
inline double load_as_double(const S* p, int64_t i, int dt) {
  if constexpr (std::is_same_v<S, uint16_t>) return dt == BF16 ? bf16_to_f32(p[i]) : f16_to_f32(p[i]);
  else return static_cast<double>(p[i]);
}

template <typename D>
inline void store_from_double(D* p, int64_t i, double v, int dt) {
  if constexpr (std::is_same_v<D, uint16_t>) p[i] = dt == BF16 ? f32_to_bf16(static_cast<float>(v)) : f32_to_f16(static_cast<float>(v));
  else if constexpr (std::is_integral_v<D>) p[i] = static_cast<D>(std::trunc(v));
  else p[i] = static_cast<D>(v);
}

template <typename S, typename D>
void cast_loop(const uint8_t* src, int sdt, uint8_t* dst, int ddt, int64_t n) {
  const S* s = reinterpret_cast<const S*>(src);
  D* d = reinterpret_cast<D*>(dst);
  parallel_for(n, 65536, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<S, float> && std::is_same_v<D, uint16_t>) {
      if (ddt == BF16) { for (int64_t i = b; i < e; i++) d[i] = f32_to_bf16(s[i]); return; }
    }
    if constexpr (std::is_same_v<S, uint16_t> && std::is_same_v<D, float>) {
      if (sdt == BF16) { for (int64_t i = b; i < e; i++) d[i] = bf16_to_f32(s[i]); return; }
    }
    for (int64_t i = b; i < e; i++) store_from_double<D>(d, i, load_as_double<S>(s, i, sdt), ddt);
  });
}

template <typename S>
void cast_from(const uint8_t* src, int sdt, uint8_t* dst, int ddt, int64_t n) {
  switch (ddt) {
    case F32: cast_loop<S, float>(src, sdt, dst, ddt, n); break;
    case F64: cast_loop<S, double>(src, sdt, dst, ddt, n); break;
    case BF16: case F16: cast_loop<S, uint16_t>(src, sdt, dst, ddt, n); break;
    case I32: cast_loop<S, int32_t>(src, sdt, dst, ddt, n); break;
    case I64: cast_loop<S, int64_t>(src, sdt, dst, ddt, n); break;
    case U8: cast_loop<S, uint8_t>(src, sdt, dst, ddt, n); break;
    case I8: cast_loop<S, int8_t>(src, sdt, dst, ddt, n); break;
  }
}
}  // namespace

// cast(src: Uint8Array, srcDtype, dst: Uint8Array, dstDtype, n): contiguous element-wise conversion.
SV_KERNEL(cast) {
  const char* op = "cast";
  checkArgc(info, 5, op);
  auto src = arr<uint8_t>(info, 0, op, "src");
  int sdt = static_cast<int>(i64(info, 1, op, "srcDtype"));
  auto dst = arr<uint8_t>(info, 2, op, "dst");
  int ddt = static_cast<int>(i64(info, 3, op, "dstDtype"));
  int64_t n = i64(info, 4, op, "n");
  check(dt_bytes(sdt) && dt_bytes(ddt), "cast: unknown dtype code");
  need(src, n * dt_bytes(sdt), op, "src");
  need(dst, n * dt_bytes(ddt), op, "dst");
  switch (sdt) {
    case F32: cast_from<float>(src.ptr, sdt, dst.ptr, ddt, n); break;
    case F64: cast_from<double>(src.ptr, sdt, dst.ptr, ddt, n); break;
    case BF16: case F16: cast_from<uint16_t>(src.ptr, sdt, dst.ptr, ddt, n); break;
    case I32: cast_from<int32_t>(src.ptr, sdt, dst.ptr, ddt, n); break;
    case I64: cast_from<int64_t>(src.ptr, sdt, dst.ptr, ddt, n); break;
    case U8: cast_from<uint8_t>(src.ptr, sdt, dst.ptr, ddt, n); break;
    case I8: cast_from<int8_t>(src.ptr, sdt, dst.ptr, ddt, n); break;
  }
  return info.Env().Undefined();
}

// fill(dst: Uint8Array, dtype, value, n)
SV_KERNEL(fill) {
  const char* op = "fill";
  checkArgc(info, 4, op);
  auto dst = arr<uint8_t>(info, 0, op, "dst");
  int dt = static_cast<int>(i64(info, 1, op, "dtype"));
  double v = f64(info, 2, op, "value");
  int64_t n = i64(info, 3, op, "n");
  check(dt_bytes(dt), "fill: unknown dtype code");
  need(dst, n * dt_bytes(dt), op, "dst");
  auto run = [&](auto* p, auto val) {
    parallel_for(n, 65536, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) p[i] = val; });
  };
  switch (dt) {
    case F32: run(reinterpret_cast<float*>(dst.ptr), static_cast<float>(v)); break;
    case F64: run(reinterpret_cast<double*>(dst.ptr), v); break;
    case BF16: run(reinterpret_cast<uint16_t*>(dst.ptr), f32_to_bf16(static_cast<float>(v))); break;
    case F16: run(reinterpret_cast<uint16_t*>(dst.ptr), f32_to_f16(static_cast<float>(v))); break;
    case I32: run(reinterpret_cast<int32_t*>(dst.ptr), static_cast<int32_t>(v)); break;
    case I64: run(reinterpret_cast<int64_t*>(dst.ptr), static_cast<int64_t>(v)); break;
    case U8: run(reinterpret_cast<uint8_t*>(dst.ptr), static_cast<uint8_t>(v)); break;
    case I8: run(reinterpret_cast<int8_t*>(dst.ptr), static_cast<int8_t>(v)); break;
  }
  return info.Env().Undefined();
}

// accumulate(dst, src, n): dst += src, float32 or float64 (both the same type).
SV_KERNEL(accumulate) {
  const char* op = "accumulate";
  checkArgc(info, 3, op);
  int64_t n = i64(info, 2, op, "n");
  if (info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    auto d = arr<double>(info, 0, op, "dst");
    auto s = arr<double>(info, 1, op, "src");
    need(d, n, op, "dst"); need(s, n, op, "src");
    parallel_for(n, 65536, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) d.ptr[i] += s.ptr[i]; });
  } else {
    auto d = arr<float>(info, 0, op, "dst");
    auto s = arr<float>(info, 1, op, "src");
    need(d, n, op, "dst"); need(s, n, op, "src");
    parallel_for(n, 65536, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) d.ptr[i] += s.ptr[i]; });
  }
  return info.Env().Undefined();
}

}  // namespace sv
