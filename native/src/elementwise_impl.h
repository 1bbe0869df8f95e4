// Body of the strided binary kernels (compiled once per ISA, see
// elementwise_isa.h). The op is a template functor, so each inner loop is a
// plain loop GCC vectorises; the stride-1 and stride-0 (broadcast) cases get
// their own loops.

// Elements per parallel chunk: enough that waking the pool pays off.
constexpr int64_t kEwGrain = 32768;

template <typename T, class Op>
inline void binary_segment(T* __restrict o, const T* __restrict a, int64_t sa, const T* __restrict b, int64_t sb,
                           int64_t n, const Op& op) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = op(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T bv = *b;
    for (int64_t i = 0; i < n; i++) o[i] = op(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const T av = *a;
    for (int64_t i = 0; i < n; i++) o[i] = op(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = op(a[i * sa], b[i * sb]);
  }
}

template <typename T, class Op>
void binary_apply(T* out, const T* a, const T* b, const Strided<2>& L, const Op& op) {
  const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
  for_each_segment<2>(L, kEwGrain, [&](int64_t o, const std::array<int64_t, 2>& at, int64_t n) {
    binary_segment(out + o, a + at[0], sa, b + at[1], sb, n, op);
  });
}

template <typename T>
void binary_run(int code, T* out, const T* a, const T* b, const Strided<2>& L, T alpha, T beta) {
  auto go = [&](auto op) { binary_apply(out, a, b, L, op); };
  switch (code) {
    case BIN_ADD: go([](T x, T y) { return x + y; }); break;
    case BIN_SUB: go([](T x, T y) { return x - y; }); break;
    case BIN_MUL: go([](T x, T y) { return x * y; }); break;
    case BIN_DIV: go([](T x, T y) { return x / y; }); break;
    case BIN_MAX: go([](T x, T y) { return max_nan(x, y); }); break;
    case BIN_MIN: go([](T x, T y) { return min_nan(x, y); }); break;
    case BIN_POW: go([](T x, T y) { return static_cast<T>(std::pow(x, y)); }); break;
    case BIN_ADD_SCALED: go([alpha](T x, T y) { return x + alpha * y; }); break;
    case BIN_MUL_SCALED: go([alpha](T x, T y) { return alpha * x * y; }); break;
    case BIN_SWIGLU: go([](T x, T y) { return act_fwd<ACT_SILU>(x) * y; }); break;
    case BIN_MAX_MASK: go([](T x, T y) { return x > y ? T(1) : (x == y ? T(0.5) : T(0)); }); break;
    case BIN_MIN_MASK: go([](T x, T y) { return x < y ? T(1) : (x == y ? T(0.5) : T(0)); }); break;
    case BIN_EXP_SUB: go([](T x, T y) { return exp_t<T>(x - y); }); break;
    case BIN_SQRT_BWD: go([](T g, T y) { return T(0.5) * g / y; }); break;
    case BIN_RSQRT_BWD: go([](T g, T y) { return T(-0.5) * g * y * y * y; }); break;
    case BIN_ABS_BWD: go([](T g, T x) { return x > T(0) ? g : (x < T(0) ? -g : T(0)); }); break;
    case BIN_CLAMP_BWD: go([alpha, beta](T g, T x) { return (x >= alpha && x <= beta) ? g : T(0); }); break;
    case BIN_POW_SCALAR_BWD:
      go([alpha](T g, T x) { return g * alpha * static_cast<T>(std::pow(x, alpha - T(1))); });
      break;
    case BIN_TANH_BWD: go([](T g, T y) { return g * (T(1) - y * y); }); break;
    case BIN_SIGMOID_BWD: go([](T g, T y) { return g * y * (T(1) - y); }); break;
    case BIN_RELU_BWD: go([](T g, T x) { return g * act_grad<ACT_RELU>(x); }); break;
    case BIN_GELU_BWD: go([](T g, T x) { return g * act_grad<ACT_GELU>(x); }); break;
    case BIN_GELU_TANH_BWD: go([](T g, T x) { return g * act_grad<ACT_GELU_TANH>(x); }); break;
    case BIN_QUICK_GELU_BWD: go([](T g, T x) { return g * act_grad<ACT_QUICK_GELU>(x); }); break;
    case BIN_SILU_BWD: go([](T g, T x) { return g * act_grad<ACT_SILU>(x); }); break;
  }
}
