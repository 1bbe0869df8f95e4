// Counter-based random numbers (SplitMix64 over seed + element index): the
// value at index i depends only on (seed, i), so results do not depend on the
// thread count or on how the range is split.
#include "common.h"
#include "threadpool.h"
#include <cmath>

namespace sv {
namespace {

inline uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1): 53 random bits, never exactly 0.
inline double unit(uint64_t seed, uint64_t i, uint64_t stream) {
  uint64_t r = splitmix(seed * 0x2545f4914f6cdd1dull + (i << 1) + stream);
  return (static_cast<double>(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

template <typename T>
void fill_random(T* p, int64_t n, int kind, double a, double b, uint64_t seed) {
  parallel_for(n, 32768, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) {
      double v;
      if (kind == 0) v = a + (b - a) * unit(seed, i, 0);
      else {  // Box-Muller on two streams of the same counter
        double u1 = unit(seed, i, 0), u2 = unit(seed, i, 1);
        v = a + b * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      }
      p[i] = static_cast<T>(v);
    }
  });
}

}  // namespace

// randomFill(dst: Float32Array|Float64Array, n, kind (0 uniform [a,b), 1 normal mean a std b), a, b, seed)
SV_KERNEL(randomFill) {
  const char* op = "randomFill";
  checkArgc(info, 6, op);
  int64_t n = i64(info, 1, op, "n");
  int kind = static_cast<int>(i64(info, 2, op, "kind"));
  double a = f64(info, 3, op, "a"), b = f64(info, 4, op, "b");
  uint64_t seed = static_cast<uint64_t>(i64(info, 5, op, "seed"));
  check(kind == 0 || kind == 1, "randomFill: kind must be 0 (uniform) or 1 (normal)");
  if (info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    auto d = arr<double>(info, 0, op, "dst");
    need(d, n, op, "dst");
    fill_random(d.ptr, n, kind, a, b, seed);
  } else {
    auto d = arr<float>(info, 0, op, "dst");
    need(d, n, op, "dst");
    fill_random(d.ptr, n, kind, a, b, seed);
  }
  return info.Env().Undefined();
}

// dropoutMask(dst: Float32Array|Float64Array, n, p, seed): 0 with probability p, else 1/(1-p).
SV_KERNEL(dropoutMask) {
  const char* op = "dropoutMask";
  checkArgc(info, 4, op);
  int64_t n = i64(info, 1, op, "n");
  double p = f64(info, 2, op, "p");
  uint64_t seed = static_cast<uint64_t>(i64(info, 3, op, "seed"));
  check(p >= 0 && p < 1, "dropoutMask: p must be in [0, 1), got " + std::to_string(p));
  double keep = 1.0 / (1.0 - p);
  auto run = [&](auto* d) {
    parallel_for(n, 32768, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; i++) d[i] = unit(seed, i, 0) < p ? 0 : keep;
    });
  };
  if (info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    auto d = arr<double>(info, 0, op, "dst");
    need(d, n, op, "dst");
    run(d.ptr);
  } else {
    auto d = arr<float>(info, 0, op, "dst");
    need(d, n, op, "dst");
    run(d.ptr);
  }
  return info.Env().Undefined();
}

}  // namespace sv
