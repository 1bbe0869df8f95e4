// Operation codes of the elementwise kernels. The numbering is shared with JS
// (BIN and UN in src/tensor/ops/elementwise.ts); append, never renumber.
#pragma once

namespace sv {

enum BinCode {
  BIN_ADD = 0,
  BIN_SUB = 1,
  BIN_MUL = 2,
  BIN_DIV = 3,
  BIN_MAX = 4,
  BIN_MIN = 5,
  BIN_POW = 6,
  BIN_ADD_SCALED = 7,   // a + alpha*b
  BIN_MUL_SCALED = 8,   // alpha*a*b
  BIN_SWIGLU = 9,       // silu(a)*b
  BIN_MAX_MASK = 10,    // d maximum(a,b)/da: 1 if a > b, 0.5 on ties, else 0
  BIN_MIN_MASK = 11,    // d minimum(a,b)/da
  BIN_EXP_SUB = 12,     // exp(a - b)
  // Gradient helpers: a is the incoming gradient, b the saved input or output.
  BIN_SQRT_BWD = 13,        // 0.5*a/b, b = sqrt(x)
  BIN_RSQRT_BWD = 14,       // -0.5*a*b^3, b = rsqrt(x)
  BIN_ABS_BWD = 15,         // a*sign(b)
  BIN_CLAMP_BWD = 16,       // a if alpha <= b <= beta else 0
  BIN_POW_SCALAR_BWD = 17,  // a*alpha*b^(alpha-1)
  BIN_TANH_BWD = 18,        // a*(1 - b^2), b = tanh(x)
  BIN_SIGMOID_BWD = 19,     // a*b*(1 - b), b = sigmoid(x)
  BIN_RELU_BWD = 20,        // a*act'(b) for the activations below, b = x
  BIN_GELU_BWD = 21,
  BIN_GELU_TANH_BWD = 22,
  BIN_QUICK_GELU_BWD = 23,
  BIN_SILU_BWD = 24,
  BIN_COUNT = 25
};

enum UnCode {
  UN_NEG = 0,
  UN_EXP = 1,
  UN_LOG = 2,
  UN_SQRT = 3,
  UN_RSQRT = 4,
  UN_ABS = 5,
  UN_TANH = 6,
  UN_SIGMOID = 7,
  UN_RELU = 8,
  UN_SQUARE = 9,
  UN_GELU = 10,
  UN_GELU_TANH = 11,
  UN_QUICK_GELU = 12,
  UN_SILU = 13,
  UN_ADD_SCALAR = 14,  // x + alpha
  UN_MUL_SCALAR = 15,  // x * alpha
  UN_POW_SCALAR = 16,  // x ^ alpha
  UN_CLAMP = 17,       // min(max(x, alpha), beta)
  UN_AFFINE = 18,      // alpha*x + beta
  UN_COUNT = 19
};

}  // namespace sv
