// Weight-only quantised Linear layers: int8 and int4 weights with one f16
// scale per group of G consecutive weights along K (the input dim), f32
// activations and f32 accumulation.
//
// Storage of W [N, K] (PyTorch Linear layout, K % G == 0, G % 32 == 0):
//   int8: q int8 [N, K], w = scale[n, k/G] * q, q in [-127, 127] (scale = absmax / 127).
//   int4: q uint8 [N, K/2]; each 32-weight block of a row is 16 bytes, byte j
//         holding weight j (low nibble) and weight j+16 (high nibble) of the
//         block, stored as u = q + 8 with q in [-8, 7]; w = scale * (u - 8)
//         (GGML Q4_0 rule: scale = m / -8 with m the value of largest |m|).
//   scales: f16 [N, K/G].
// The split nibble layout lets a 16-byte load yield weights 0..15 and 16..31
// of a block with one AND and one shift, matching 16 contiguous x values.
#pragma once
#include <cstdint>

namespace sv {
namespace quant {

// One GEMV problem: out[r, n] = sum_k x[r, k] * w[n, k] + bias[n] for r < R, n in [n0, n1).
struct QGemv {
  int bits = 8;
  int64_t G = 32, K = 0, N = 0;
  int R = 1;
  const float* x = nullptr;  // [R][K], row stride ldx
  int64_t ldx = 0;
  const uint8_t* q = nullptr;      // packed weights (see above), row stride K or K/2 bytes
  const uint16_t* scales = nullptr;  // f16 [N][K/G]
  float* out = nullptr;            // [R][N], row stride ldo
  int64_t ldo = 0;
  const float* bias = nullptr;     // [N] or null
  // int4: sum of x over each group, [R][K/G] (the -8 offset is applied per group as -8 * xsum).
  const float* xsum = nullptr;
};

constexpr int kMaxR = 4;

using QGemvFn = void (*)(const QGemv& g, int64_t n0, int64_t n1);

void qgemv_portable(const QGemv& g, int64_t n0, int64_t n1);
void qgemv_avx512(const QGemv& g, int64_t n0, int64_t n1);

// Row bytes of the packed weights.
inline int64_t row_bytes(int bits, int64_t K) { return bits == 8 ? K : K / 2; }

// Dequantises rows [n0, n1) into dst[(n - n0) * K + k].
void dequant_rows(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0, int64_t n1,
                  float* dst);
void dequant_rows_avx512(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0, int64_t n1,
                         float* dst);
// The same values rounded to bf16 (nearest even), for the AMX prefill path; needs avx512_bf16.
void dequant_rows_bf16_avx512(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0,
                              int64_t n1, uint16_t* dst);

}  // namespace quant
}  // namespace sv
