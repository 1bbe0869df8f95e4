// Shared helpers for the seedvl native addon: argument unpacking with bounds
// information, error reporting, kernel registration. No model knowledge here.
#pragma once
#include <napi.h>
#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>
#include <functional>
#include <sstream>

namespace sv {

// A typed view over a JS TypedArray: pointer plus element count, so every
// kernel can check the extent it will touch before touching it.
template <typename T>
struct Arr {
  T* ptr = nullptr;
  size_t len = 0;
};

// Error raised inside kernels; converted to a JS Error at the binding boundary.
struct KernelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string shapeStr(std::initializer_list<int64_t> dims) {
  std::ostringstream s;
  s << "[";
  bool first = true;
  for (auto d : dims) { if (!first) s << ","; s << d; first = false; }
  s << "]";
  return s.str();
}

template <typename T> struct ArrTraits;
template <> struct ArrTraits<float> { static constexpr napi_typedarray_type type = napi_float32_array; static constexpr const char* name = "Float32Array"; };
template <> struct ArrTraits<double> { static constexpr napi_typedarray_type type = napi_float64_array; static constexpr const char* name = "Float64Array"; };
template <> struct ArrTraits<int32_t> { static constexpr napi_typedarray_type type = napi_int32_array; static constexpr const char* name = "Int32Array"; };
template <> struct ArrTraits<uint16_t> { static constexpr napi_typedarray_type type = napi_uint16_array; static constexpr const char* name = "Uint16Array"; };
template <> struct ArrTraits<uint8_t> { static constexpr napi_typedarray_type type = napi_uint8_array; static constexpr const char* name = "Uint8Array"; };
template <> struct ArrTraits<int8_t> { static constexpr napi_typedarray_type type = napi_int8_array; static constexpr const char* name = "Int8Array"; };
template <> struct ArrTraits<int64_t> { static constexpr napi_typedarray_type type = napi_bigint64_array; static constexpr const char* name = "BigInt64Array"; };

// Unpack argument `i` of `info` as a TypedArray of element type T.
// `op` and `what` name the kernel and the argument in the error message.
template <typename T>
Arr<T> arr(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray()) {
    throw KernelError(std::string(op) + ": argument '" + what + "' must be a " + ArrTraits<T>::name);
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != ArrTraits<T>::type) {
    throw KernelError(std::string(op) + ": argument '" + what + "' must be a " + ArrTraits<T>::name);
  }
  Arr<T> a;
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  if (ab.ByteLength() == 0 && ta.ElementLength() > 0) {
    throw KernelError(std::string(op) + ": argument '" + what + "' refers to freed memory");
  }
  a.ptr = reinterpret_cast<T*>(static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset());
  a.len = ta.ElementLength();
  return a;
}

inline int64_t i64(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw KernelError(std::string(op) + ": argument '" + what + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}

inline double f64(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw KernelError(std::string(op) + ": argument '" + what + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// Argument `i` as a JS array of integers (shapes, strides).
inline std::vector<int64_t> int_list(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsArray()) throw KernelError(std::string(op) + ": argument '" + what + "' must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) throw KernelError(std::string(op) + ": argument '" + what + "' must be an array of integers");
    out[k] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}

inline bool boolean(const Napi::CallbackInfo& info, size_t i) {
  return info[i].ToBoolean().Value();
}

// Throws unless `need` elements fit in `a`, naming op, argument and sizes.
template <typename T>
void need(const Arr<T>& a, int64_t need, const char* op, const char* what) {
  if (need < 0 || static_cast<uint64_t>(need) > a.len) {
    std::ostringstream s;
    s << op << ": argument '" << what << "' needs " << need << " elements but has " << a.len;
    throw KernelError(s.str());
  }
}

inline void check(bool ok, const std::string& msg) {
  if (!ok) throw KernelError(msg);
}

void checkArgc(const Napi::CallbackInfo& info, size_t n, const char* op);

// Registration: each kernel file defines a static Registrar that adds its
// functions to the exports when the module loads.
using Binding = std::function<Napi::Value(const Napi::CallbackInfo&)>;
struct Entry { const char* name; Napi::Value (*fn)(const Napi::CallbackInfo&); };
std::vector<Entry>& registry();
struct Registrar {
  Registrar(const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) { registry().push_back({name, fn}); }
};

}  // namespace sv

// Defines a JS-visible function `name` whose body may throw KernelError.
#define SV_KERNEL(name)                                                              \
  static Napi::Value sv_impl_##name(const Napi::CallbackInfo& info);                 \
  static Napi::Value sv_wrap_##name(const Napi::CallbackInfo& info) {                \
    try {                                                                            \
      return sv_impl_##name(info);                                                   \
    } catch (const sv::KernelError& e) {                                             \
      throw Napi::Error::New(info.Env(), e.what());                                  \
    } catch (const std::bad_alloc&) {                                                \
      throw Napi::Error::New(info.Env(), std::string(#name) + ": out of memory");   \
    }                                                                                \
  }                                                                                  \
  static sv::Registrar sv_reg_##name(#name, &sv_wrap_##name);                        \
  static Napi::Value sv_impl_##name(const Napi::CallbackInfo& info)
