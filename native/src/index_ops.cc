// Row gather/scatter kernels: index validation, int64 -> int32 index
// conversion, indexSelect (any element size), indexAdd (scatter-add of rows,
// f32/f64) and embedding lookup (f32/f64/bf16/f16 weights).
//
// Layout convention: a tensor indexed along one dim is viewed as
// [outer, size, inner] (dims before, the indexed dim, dims after).
#include "index_ops.h"
#include "dtype.h"
#include <algorithm>
#include <atomic>
#include <cstring>
#include <sstream>
#include <vector>

namespace sv {

void check_index_range(const int32_t* idx, int64_t n, int64_t bound, const char* op, const char* what) {
  if (n <= 0) return;
  // Unsigned compare catches negatives too. Indices are int32, so a bound above
  // INT32_MAX only rules out negative values.
  const uint32_t ub = bound > INT32_MAX ? 0x80000000u : static_cast<uint32_t>(bound < 0 ? 0 : bound);
  std::atomic<bool> bad{false};
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    uint32_t any = 0;
    for (int64_t i = b; i < e; i++) any |= static_cast<uint32_t>(static_cast<uint32_t>(idx[i]) >= ub);
    if (any) bad.store(true);
  });
  if (!bad.load()) return;
  for (int64_t i = 0; i < n; i++) {
    if (static_cast<uint32_t>(idx[i]) >= ub) {
      std::ostringstream s;
      s << op << ": index " << idx[i] << " at position " << i << " of '" << what << "' is out of range [0, " << bound << ")";
      throw KernelError(s.str());
    }
  }
}

bool is_f64_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>().TypedArrayType();
    if (t == napi_float64_array) return true;
    if (t == napi_float32_array) return false;
  }
  throw KernelError(std::string(op) + ": argument '" + what + "' must be a Float32Array or Float64Array");
}

// indicesToInt32(src: BigInt64Array, dst: Int32Array, n, bound, op: string, what: string)
// Converts int64 indices to int32, failing (naming op and position) on any value outside [0, bound).
SV_KERNEL(indicesToInt32) {
  const char* kop = "indicesToInt32";
  checkArgc(info, 6, kop);
  auto src = arr<int64_t>(info, 0, kop, "src");
  auto dst = arr<int32_t>(info, 1, kop, "dst");
  int64_t n = i64(info, 2, kop, "n");
  int64_t bound = i64(info, 3, kop, "bound");
  std::string op = info[4].ToString().Utf8Value(), what = info[5].ToString().Utf8Value();
  need(src, n, kop, "src");
  need(dst, n, kop, "dst");
  for (int64_t i = 0; i < n; i++) {
    int64_t v = src.ptr[i];
    if (v < 0 || v >= bound || v > INT32_MAX) {
      std::ostringstream s;
      s << op << ": index " << v << " at position " << i << " of '" << what << "' is out of range [0, " << bound << ")";
      throw KernelError(s.str());
    }
    dst.ptr[i] = static_cast<int32_t>(v);
  }
  return info.Env().Undefined();
}

namespace {

template <typename E>
void select_rows_typed(const uint8_t* x, uint8_t* out, const int32_t* idx, int64_t outer, int64_t size, int64_t n) {
  const E* xs = reinterpret_cast<const E*>(x);
  E* os = reinterpret_cast<E*>(out);
  parallel_for(outer * n, 8192, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      int64_t o = r / n, k = r % n;
      os[r] = xs[o * size + idx[k]];
    }
  });
}

}  // namespace

// indexSelect(x: Uint8Array, outer, size, inner, elemBytes, idx: Int32Array, n, out: Uint8Array)
// out[o, k, :] = x[o, idx[k], :] for k < n. Works for any element type (a byte copy).
SV_KERNEL(indexSelect) {
  const char* op = "indexSelect";
  checkArgc(info, 8, op);
  auto x = arr<uint8_t>(info, 0, op, "x");
  int64_t outer = i64(info, 1, op, "outer"), size = i64(info, 2, op, "size"), inner = i64(info, 3, op, "inner");
  int64_t eb = i64(info, 4, op, "elemBytes");
  auto idx = arr<int32_t>(info, 5, op, "idx");
  int64_t n = i64(info, 6, op, "n");
  auto out = arr<uint8_t>(info, 7, op, "out");
  check(eb == 1 || eb == 2 || eb == 4 || eb == 8, "indexSelect: elemBytes must be 1, 2, 4 or 8");
  need3(x, outer, size, inner * eb, op, "x");
  need(idx, n, op, "idx");
  need3(out, outer, n, inner * eb, op, "out");
  check_index_range(idx.ptr, n, size, op, "idx");
  const int64_t rowBytes = inner * eb;
  if (outer * n == 0 || rowBytes == 0) return info.Env().Undefined();
  if (rowBytes == 4) { select_rows_typed<uint32_t>(x.ptr, out.ptr, idx.ptr, outer, size, n); return info.Env().Undefined(); }
  if (rowBytes == 8) { select_rows_typed<uint64_t>(x.ptr, out.ptr, idx.ptr, outer, size, n); return info.Env().Undefined(); }
  parallel_for(outer * n, std::max<int64_t>(1, 32768 / rowBytes), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      int64_t o = r / n, k = r % n;
      std::memcpy(out.ptr + r * rowBytes, x.ptr + (o * size + idx.ptr[k]) * rowBytes, rowBytes);
    }
  });
  return info.Env().Undefined();
}

namespace {

// Width (elements) of the column chunks that scatter-adds are split into.
// Each element is summed over k in ascending order whatever the chunking, so
// results do not depend on the thread count.
int64_t column_chunk(int64_t inner) {
  int64_t cw = (inner / 8 + 15) / 16 * 16;
  return std::max<int64_t>(16, cw);
}

template <typename T>
void index_add_rows(T* dst, const T* src, const int32_t* idx, int64_t outer, int64_t size, int64_t inner, int64_t n) {
  if (outer == 1 && n >= 2 * size) {
    // Many source rows per destination row (mixture-of-experts combine: top-k rows per token): each
    // destination row gathers its sources, whole rows read front to back, in ascending k (the order of
    // the column-chunked loop below, so results are identical).
    std::vector<int64_t> start(size + 1, 0), pos(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; k++) start[idx[k] + 1]++;
    for (int64_t i = 0; i < size; i++) start[i + 1] += start[i];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t k = 0; k < n; k++) pos[fill[idx[k]]++] = k;
    parallel_for(size, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, inner * (n / size))), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        T* __restrict d = dst + i * inner;
        for (int64_t j = start[i]; j < start[i + 1]; j++) {
          const T* __restrict s = src + pos[j] * inner;
          for (int64_t c = 0; c < inner; c++) d[c] += s[c];
        }
      }
    });
    return;
  }
  const int64_t cw = column_chunk(inner), nch = (inner + cw - 1) / cw;
  parallel_for(outer * nch, 1, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; w++) {
      const int64_t o = w / nch, c0 = (w % nch) * cw, c1 = std::min(inner, c0 + cw);
      for (int64_t k = 0; k < n; k++) {
        T* d = dst + (o * size + idx[k]) * inner;
        const T* s = src + (o * n + k) * inner;
        for (int64_t c = c0; c < c1; c++) d[c] += s[c];
      }
    }
  });
}

}  // namespace

// indexAdd(dst: F32|F64, outer, size, inner, idx: Int32Array, n, src: same type)
// dst[o, idx[k], :] += src[o, k, :] in place (deterministic; repeated indices accumulate).
SV_KERNEL(indexAdd) {
  const char* op = "indexAdd";
  checkArgc(info, 7, op);
  int64_t outer = i64(info, 1, op, "outer"), size = i64(info, 2, op, "size"), inner = i64(info, 3, op, "inner");
  auto idx = arr<int32_t>(info, 4, op, "idx");
  int64_t n = i64(info, 5, op, "n");
  need(idx, n, op, "idx");
  SV_FLOAT_DISPATCH(info, 0, op, "dst", {
    auto dst = arr<T>(info, 0, op, "dst");
    auto src = arr<T>(info, 6, op, "src");
    need3(dst, outer, size, inner, op, "dst");
    need3(src, outer, n, inner, op, "src");
    check_index_range(idx.ptr, n, size, op, "idx");
    index_add_rows<T>(dst.ptr, src.ptr, idx.ptr, outer, size, inner, n);
  });
  return info.Env().Undefined();
}

namespace {

template <typename W, typename O, typename Conv>
void embed_rows(const W* w, O* out, const int32_t* ids, int64_t n, int64_t d, Conv conv) {
  parallel_for(n, std::max<int64_t>(1, 8192 / std::max<int64_t>(d, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const W* row = w + static_cast<int64_t>(ids[r]) * d;
      O* o = out + r * d;
      for (int64_t c = 0; c < d; c++) o[c] = conv(row[c]);
    }
  });
}

}  // namespace

// embedding(weight: Uint8Array, dtype, V, D, ids: Int32Array, n, out: Float32Array|Float64Array)
// out[r, :] = weight[ids[r], :]. float32/bfloat16/float16 weights -> Float32Array; float64 -> Float64Array.
SV_KERNEL(embedding) {
  const char* op = "embedding";
  checkArgc(info, 7, op);
  auto w = arr<uint8_t>(info, 0, op, "weight");
  int dt = static_cast<int>(i64(info, 1, op, "dtype"));
  int64_t V = i64(info, 2, op, "V"), D = i64(info, 3, op, "D");
  auto ids = arr<int32_t>(info, 4, op, "ids");
  int64_t n = i64(info, 5, op, "n");
  check(dt == F32 || dt == F64 || dt == BF16 || dt == F16,
        "embedding: weight dtype must be float32, float64, bfloat16 or float16, got " + dt_name(dt));
  need3(w, V, D, dt_bytes(dt), op, "weight");
  need(ids, n, op, "ids");
  check_index_range(ids.ptr, n, V, op, "ids");
  if (dt == F64) {
    auto out = arr<double>(info, 6, op, "out");
    need3(out, n, D, 1, op, "out");
    embed_rows(reinterpret_cast<const double*>(w.ptr), out.ptr, ids.ptr, n, D, [](double v) { return v; });
    return info.Env().Undefined();
  }
  auto out = arr<float>(info, 6, op, "out");
  need3(out, n, D, 1, op, "out");
  if (dt == F32) embed_rows(reinterpret_cast<const float*>(w.ptr), out.ptr, ids.ptr, n, D, [](float v) { return v; });
  else if (dt == BF16) embed_rows(reinterpret_cast<const uint16_t*>(w.ptr), out.ptr, ids.ptr, n, D, [](uint16_t h) { return bf16_to_f32(h); });
  else embed_rows(reinterpret_cast<const uint16_t*>(w.ptr), out.ptr, ids.ptr, n, D, [](uint16_t h) { return f16_to_f32(h); });
  return info.Env().Undefined();
}

}  // namespace sv
