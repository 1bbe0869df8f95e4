// Portable quantised GEMV (plain loops): the reference the AVX-512 kernel is
// tested against. Per group, the dequantised weight scale*q (int8) or
// scale*(u-8) (int4) times x, accumulated in f32 in a fixed order.
#include "dtype.h"
#include "quant.h"

namespace sv {
namespace quant {

void qgemv_portable(const QGemv& g, int64_t n0, int64_t n1) {
  const int64_t ng = g.K / g.G, rb = row_bytes(g.bits, g.K);
  for (int64_t n = n0; n < n1; n++) {
    const uint8_t* qr = g.q + n * rb;
    const uint16_t* sr = g.scales + n * ng;
    for (int r = 0; r < g.R; r++) {
      const float* x = g.x + r * g.ldx;
      float part[16] = {};
      for (int64_t gi = 0; gi < ng; gi++) {
        const float s = f16_to_f32(sr[gi]);
        for (int64_t k = gi * g.G; k < (gi + 1) * g.G; k += 32) {
          for (int j = 0; j < 16; j++) {
            float w0, w1;
            if (g.bits == 8) {
              const int8_t* qi = reinterpret_cast<const int8_t*>(qr);
              w0 = s * static_cast<float>(qi[k + j]);
              w1 = s * static_cast<float>(qi[k + 16 + j]);
            } else {
              const uint8_t b = qr[k / 2 + j];
              w0 = s * static_cast<float>((b & 0xF) - 8);
              w1 = s * static_cast<float>((b >> 4) - 8);
            }
            part[j] += w0 * x[k + j] + w1 * x[k + 16 + j];
          }
        }
      }
      float sum = 0;
      for (int j = 0; j < 16; j++) sum += part[j];
      g.out[r * g.ldo + n] = sum + (g.bias ? g.bias[n] : 0.0f);
    }
  }
}

}  // namespace quant
}  // namespace sv
