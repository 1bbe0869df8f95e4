// Body of the strided unary and where kernels (compiled once per ISA, see
// elementwise_isa.h); same scheme as elementwise_impl.h.

constexpr int64_t kEwGrain = 32768;  // elements per parallel chunk

template <typename T, class Op>
void unary_apply(T* out, const T* x, const Strided<1>& L, const Op& op) {
  const int64_t sx = L.inner_stride(0);
  for_each_segment<1>(L, kEwGrain, [&](int64_t o, const std::array<int64_t, 1>& at, int64_t n) {
    T* __restrict dst = out + o;
    const T* __restrict src = x + at[0];
    if (sx == 1) {
      for (int64_t i = 0; i < n; i++) dst[i] = op(src[i]);
    } else {
      for (int64_t i = 0; i < n; i++) dst[i] = op(src[i * sx]);
    }
  });
}

template <typename T>
void unary_run(int code, T* out, const T* x, const Strided<1>& L, T alpha, T beta) {
  auto go = [&](auto op) { unary_apply(out, x, L, op); };
  switch (code) {
    case UN_NEG: go([](T v) { return -v; }); break;
    case UN_EXP: go([](T v) { return exp_t<T>(v); }); break;
    case UN_LOG: go([](T v) { return std::log(v); }); break;
    case UN_SQRT: go([](T v) { return std::sqrt(v); }); break;
    case UN_RSQRT: go([](T v) { return T(1) / std::sqrt(v); }); break;
    case UN_ABS: go([](T v) { return v < T(0) ? -v : v; }); break;
    case UN_TANH: go([](T v) { return act_fwd<ACT_TANH>(v); }); break;
    case UN_SIGMOID: go([](T v) { return act_fwd<ACT_SIGMOID>(v); }); break;
    case UN_RELU: go([](T v) { return act_fwd<ACT_RELU>(v); }); break;
    case UN_SQUARE: go([](T v) { return v * v; }); break;
    case UN_GELU: go([](T v) { return act_fwd<ACT_GELU>(v); }); break;
    case UN_GELU_TANH: go([](T v) { return act_fwd<ACT_GELU_TANH>(v); }); break;
    case UN_QUICK_GELU: go([](T v) { return act_fwd<ACT_QUICK_GELU>(v); }); break;
    case UN_SILU: go([](T v) { return act_fwd<ACT_SILU>(v); }); break;
    case UN_ADD_SCALAR: go([alpha](T v) { return v + alpha; }); break;
    case UN_MUL_SCALAR: go([alpha](T v) { return v * alpha; }); break;
    case UN_POW_SCALAR:
      if (alpha == T(2)) go([](T v) { return v * v; });
      else if (alpha == T(1)) go([](T v) { return v; });
      else if (alpha == T(0.5)) go([](T v) { return std::sqrt(v); });
      else if (alpha == T(-1)) go([](T v) { return T(1) / v; });
      else go([alpha](T v) { return static_cast<T>(std::pow(v, alpha)); });
      break;
    case UN_CLAMP:  // min(max(v, lo), hi) like torch (hi wins if lo > hi); NaN stays NaN
      go([alpha, beta](T v) {
        T r = v < alpha ? alpha : v;
        return r > beta ? beta : r;
      });
      break;
    case UN_AFFINE: go([alpha, beta](T v) { return alpha * v + beta; }); break;
  }
}

// out = cond ? a : b, with cond a uint8 mask (nonzero = true).
template <typename T>
void where_run(T* out, const uint8_t* c, const T* a, const T* b, const Strided<3>& L) {
  const int64_t sc = L.inner_stride(0), sa = L.inner_stride(1), sb = L.inner_stride(2);
  for_each_segment<3>(L, kEwGrain, [&](int64_t o, const std::array<int64_t, 3>& at, int64_t n) {
    T* __restrict dst = out + o;
    const uint8_t* __restrict cp = c + at[0];
    const T* __restrict ap = a + at[1];
    const T* __restrict bp = b + at[2];
    if (sc == 1 && sa == 1 && sb == 1) {
      for (int64_t i = 0; i < n; i++) dst[i] = cp[i] ? ap[i] : bp[i];
    } else {
      for (int64_t i = 0; i < n; i++) dst[i] = cp[i * sc] ? ap[i * sa] : bp[i * sb];
    }
  });
}
