// Math shared by the elementwise, reduction, softmax, norm, loss and optimizer
// kernels, written so that GCC vectorises the loops that call it: the float
// paths are branch-free polynomials (no libm calls, selects instead of ifs),
// and row reductions use GCC vector extensions with four accumulators.
// float64 paths call libm (they serve gradient checks, where accuracy matters
// more than speed).
//
// A body header: expanded inside sv::ew_portable and sv::ew_avx512 by
// elementwise_isa_body.h (hence no include guard); needs <cmath>, <cstdint>,
// <type_traits>.

template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(SV_VEC_BYTES))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(SV_VEC_BYTES))); };

template <typename V, typename T>
inline V vload(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}

// NaN-propagating max/min for scalars (std::max drops a NaN in the second place).
template <typename T> inline T max_nan(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T> inline T min_nan(T a, T b) { return (a < b || a != a) ? a : b; }

// ---------------------------------------------------------------- exp, tanh, erf

// Cephes expf: exp(x) = 2^n * p(r), |r| <= ln2/2; about 1 ulp.
inline float exp_f32(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504f;
  float xc = x > hi ? hi : (x < lo ? lo : x);
  float fx = xc * 1.44269504088896341f;
  fx = (fx + 12582912.0f) - 12582912.0f;  // round to nearest with SSE2 only
  float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  int32_t n = static_cast<int32_t>(fx);
  float scale = __builtin_bit_cast(float, static_cast<uint32_t>(n + 127) << 23);
  float res = p * scale;
  res = x < lo ? 0.0f : res;  // exact 0 for masked (-inf) logits
  res = x > hi ? __builtin_inff() : res;
  return res;  // NaN in, NaN out (p is NaN)
}

template <typename T> inline T exp_t(T x) {
  if constexpr (sizeof(T) == 8) return std::exp(x);
  else return exp_f32(x);
}

inline float tanh_f32(float x) {
  float ax = x < 0 ? -x : x;
  // |x| < 0.625: Cephes odd polynomial (avoids cancellation in the exp form).
  float z = x * x;
  float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z +
                  1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
  float axc = ax > 10.0f ? 10.0f : ax;  // tanh(10) rounds to 1 in float; keeps NaN
  float e = exp_f32(2.0f * axc);
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  return ax < 0.625f ? small : big;
}

template <typename T> inline T tanh_t(T x) {
  if constexpr (sizeof(T) == 8) return std::tanh(x);
  else return tanh_f32(x);
}

// Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), the form PyTorch vectorises.
inline float erf_f32(float x) {
  float ax = x < 0 ? -x : x;
  float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  float r = 1.0f - p * exp_f32(-ax * ax);
  return x < 0 ? -r : r;
}

template <typename T> inline T erf_t(T x) {
  if constexpr (sizeof(T) == 8) return std::erf(x);
  else return erf_f32(x);
}

// d/dx of 0.5*x*(1 + erf(x/sqrt2)): the erf approximation and the normal pdf
// share one exp(-x^2/2).
inline float gelu_grad_f32(float x) {
  const float z = x * 0.70710678118654752440f;
  const float az = z < 0 ? -z : z;
  const float e = exp_f32(-az * az);
  const float t = 1.0f / (1.0f + 0.3275911f * az);
  const float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  float erf = 1.0f - p * e;
  erf = z < 0 ? -erf : erf;
  return 0.5f * (1.0f + erf) + x * 0.39894228040143267794f * e;
}

template <typename T> inline T sigmoid_t(T x) { return T(1) / (T(1) + exp_t<T>(-x)); }

// ---------------------------------------------------------------- activations
// Codes shared with JS (ACT in src/tensor/ops/activation.ts).
enum ActCode { ACT_NONE = 0, ACT_RELU = 1, ACT_GELU = 2, ACT_GELU_TANH = 3, ACT_QUICK_GELU = 4, ACT_SILU = 5,
               ACT_SIGMOID = 6, ACT_TANH = 7 };

template <int A, typename T> inline T act_fwd(T x) {
  if constexpr (A == ACT_NONE) return x;
  else if constexpr (A == ACT_RELU) return x < T(0) ? T(0) : x;  // keeps NaN
  else if constexpr (A == ACT_GELU) return T(0.5) * x * (T(1) + erf_t<T>(x * T(0.70710678118654752440)));
  else if constexpr (A == ACT_GELU_TANH) {
    T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
    return T(0.5) * x * (T(1) + tanh_t<T>(u));
  } else if constexpr (A == ACT_QUICK_GELU) return x * sigmoid_t<T>(T(1.702) * x);
  else if constexpr (A == ACT_SILU) return x * sigmoid_t<T>(x);
  else if constexpr (A == ACT_SIGMOID) return sigmoid_t<T>(x);
  else return tanh_t<T>(x);
}

// d act(x) / dx, from the pre-activation x.
template <int A, typename T> inline T act_grad(T x) {
  if constexpr (A == ACT_NONE) return T(1);
  else if constexpr (A == ACT_RELU) return x > T(0) ? T(1) : T(0);
  else if constexpr (A == ACT_GELU) {
    if constexpr (sizeof(T) == 4) return gelu_grad_f32(x);
    T cdf = T(0.5) * (T(1) + erf_t<T>(x * T(0.70710678118654752440)));
    return cdf + x * T(0.39894228040143267794) * exp_t<T>(T(-0.5) * x * x);
  } else if constexpr (A == ACT_GELU_TANH) {
    const T k = T(0.79788456080286535588), c = T(0.044715);
    T t = tanh_t<T>(k * (x + c * x * x * x));
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3) * c * x * x);
  } else if constexpr (A == ACT_QUICK_GELU) {
    T s = sigmoid_t<T>(T(1.702) * x);
    return s * (T(1) + T(1.702) * x * (T(1) - s));
  } else if constexpr (A == ACT_SILU) {
    T s = sigmoid_t<T>(x);
    return s * (T(1) + x * (T(1) - s));
  } else if constexpr (A == ACT_SIGMOID) {
    T s = sigmoid_t<T>(x);
    return s * (T(1) - s);
  } else {
    T t = tanh_t<T>(x);
    return T(1) - t * t;
  }
}

// Calls f(std::integral_constant<int, A>{}) for the runtime activation code A.
template <class F> inline void with_act(int act, F&& f) {
  switch (act) {
    case ACT_NONE: f(std::integral_constant<int, ACT_NONE>{}); break;
    case ACT_RELU: f(std::integral_constant<int, ACT_RELU>{}); break;
    case ACT_GELU: f(std::integral_constant<int, ACT_GELU>{}); break;
    case ACT_GELU_TANH: f(std::integral_constant<int, ACT_GELU_TANH>{}); break;
    case ACT_QUICK_GELU: f(std::integral_constant<int, ACT_QUICK_GELU>{}); break;
    case ACT_SILU: f(std::integral_constant<int, ACT_SILU>{}); break;
    case ACT_SIGMOID: f(std::integral_constant<int, ACT_SIGMOID>{}); break;
    default: f(std::integral_constant<int, ACT_TANH>{}); break;
  }
}

// Number of fixed row blocks for a column reduction over [rows, cols]: it
// depends only on the sizes, so partial sums combine in the same order
// whatever the thread count (results are thread-count invariant).
inline int64_t fixed_row_blocks(int64_t rows, int64_t cols) {
  int64_t want = rows * (cols > 0 ? cols : 1) / 65536;
  if (want > 32) want = 32;
  if (want > rows) want = rows;
  return want < 1 ? 1 : want;
}

// ---------------------------------------------------------------- row reductions
// Four vector accumulators hide the add latency; the combination order is
// fixed, so a result depends only on n and the ISA, never on threads.

template <typename T> inline T row_sum(const T* x, int64_t n) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  V a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    a0 += vload<V>(x + i);
    a1 += vload<V>(x + i + L);
    a2 += vload<V>(x + i + 2 * L);
    a3 += vload<V>(x + i + 3 * L);
  }
  for (; i + L <= n; i += L) a0 += vload<V>(x + i);
  a0 = (a0 + a1) + (a2 + a3);
  T s = 0;
  for (int j = 0; j < L; j++) s += a0[j];
  for (; i < n; i++) s += x[i];
  return s;
}

// sum_i a[i] * b[i]
template <typename T> inline T row_dot(const T* a, const T* b, int64_t n) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  V a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    a0 += vload<V>(a + i) * vload<V>(b + i);
    a1 += vload<V>(a + i + L) * vload<V>(b + i + L);
    a2 += vload<V>(a + i + 2 * L) * vload<V>(b + i + 2 * L);
    a3 += vload<V>(a + i + 3 * L) * vload<V>(b + i + 3 * L);
  }
  for (; i + L <= n; i += L) a0 += vload<V>(a + i) * vload<V>(b + i);
  a0 = (a0 + a1) + (a2 + a3);
  T s = 0;
  for (int j = 0; j < L; j++) s += a0[j];
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// sum_i (x[i] - c)^2
template <typename T> inline T row_sq_dev(const T* x, T c, int64_t n) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  V a0 = {}, a1 = {}, vc = {};
  vc += c;
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    V d0 = vload<V>(x + i) - vc, d1 = vload<V>(x + i + L) - vc;
    a0 += d0 * d0;
    a1 += d1 * d1;
  }
  for (; i + L <= n; i += L) {
    V d = vload<V>(x + i) - vc;
    a0 += d * d;
  }
  a0 += a1;
  T s = 0;
  for (int j = 0; j < L; j++) s += a0[j];
  for (; i < n; i++) s += (x[i] - c) * (x[i] - c);
  return s;
}

// Largest element, NaN if any element is NaN; -inf for n == 0.
template <typename T> inline T row_max(const T* x, int64_t n) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  const T ninf = -__builtin_inf();
  V m0 = {}, m1 = {};
  m0 += ninf;
  m1 += ninf;
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    V v0 = vload<V>(x + i), v1 = vload<V>(x + i + L);
    m0 = (v0 > m0) | (v0 != v0) ? v0 : m0;
    m1 = (v1 > m1) | (v1 != v1) ? v1 : m1;
  }
  for (; i + L <= n; i += L) {
    V v = vload<V>(x + i);
    m0 = (v > m0) | (v != v) ? v : m0;
  }
  T m = ninf;
  for (int j = 0; j < L; j++) m = max_nan(m, max_nan(m0[j], m1[j]));
  for (; i < n; i++) m = max_nan(m, x[i]);
  return m;
}

// y[i] = exp(x[i] - c); returns their sum, added up chunk by chunk while the
// chunk is still in L1.
template <typename T> inline T row_exp_sum(const T* x, T c, T* y, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t len = n - i < 256 ? n - i : 256;
    const T* __restrict xs = x + i;
    T* __restrict ys = y + i;
    for (int64_t j = 0; j < len; j++) ys[j] = exp_t<T>(xs[j] - c);
    s += row_sum(ys, len);
  }
  return s;
}

// sum_i exp(x[i] - c), via a small buffer so the exp loop vectorises.
template <typename T> inline T row_sum_exp(const T* x, T c, int64_t n) {
  T buf[256];
  T s = 0;
  for (int64_t i = 0; i < n; i += 256) {
    int64_t len = n - i < 256 ? n - i : 256;
    for (int64_t j = 0; j < len; j++) buf[j] = exp_t<T>(x[i + j] - c);
    s += row_sum(buf, len);
  }
  return s;
}
