// Quantisation and dequantisation of Linear weights (format in quant.h).
//   quantizeWeights(bits, G, w, wDt, N, K, q, scales)   w: f32 or bf16 [N, K] bytes
//   dequantizeWeights(bits, G, q, scales, N, K, out)    out: f32 [N, K]
// Both run once per weight (load / quantize time), split over rows.
#include "common.h"
#include "dtype.h"
#include "quant.h"
#include "threadpool.h"
#include <algorithm>
#include <cmath>

namespace sv {
namespace quant {

void dequant_rows(int bits, int64_t G, int64_t K, const uint8_t* q, const uint16_t* scales, int64_t n0, int64_t n1,
                  float* dst) {
  const int64_t ng = K / G, rb = row_bytes(bits, K);
  for (int64_t n = n0; n < n1; n++) {
    float* o = dst + (n - n0) * K;
    const uint8_t* qr = q + n * rb;
    const uint16_t* sr = scales + n * ng;
    for (int64_t g = 0; g < ng; g++) {
      const float s = f16_to_f32(sr[g]);
      if (bits == 8) {
        const int8_t* qi = reinterpret_cast<const int8_t*>(qr) + g * G;
        for (int64_t k = 0; k < G; k++) o[g * G + k] = s * static_cast<float>(qi[k]);
      } else {
        for (int64_t b = 0; b < G / 32; b++) {
          const uint8_t* blk = qr + (g * G + b * 32) / 2;
          float* ob = o + g * G + b * 32;
          for (int j = 0; j < 16; j++) {
            ob[j] = s * static_cast<float>((blk[j] & 0xF) - 8);
            ob[j + 16] = s * static_cast<float>((blk[j] >> 4) - 8);
          }
        }
      }
    }
  }
}

namespace {

void quant_row(int bits, int64_t G, int64_t K, const float* w, uint8_t* q, uint16_t* scales) {
  for (int64_t g = 0; g < K / G; g++) {
    const float* wg = w + g * G;
    if (bits == 8) {
      float amax = 0;
      for (int64_t k = 0; k < G; k++) amax = std::max(amax, std::fabs(wg[k]));
      const uint16_t sh = f32_to_f16(amax / 127.0f);
      const float s = f16_to_f32(sh);  // quantise against the scale actually stored
      const float inv = s > 0 ? 1.0f / s : 0.0f;
      int8_t* qg = reinterpret_cast<int8_t*>(q) + g * G;
      for (int64_t k = 0; k < G; k++) qg[k] = static_cast<int8_t>(std::clamp(std::nearbyint(wg[k] * inv), -127.0f, 127.0f));
      scales[g] = sh;
    } else {
      float m = 0;
      for (int64_t k = 0; k < G; k++)
        if (std::fabs(wg[k]) > std::fabs(m)) m = wg[k];
      const uint16_t sh = f32_to_f16(m / -8.0f);
      const float s = f16_to_f32(sh);
      const float inv = s != 0 ? 1.0f / s : 0.0f;
      for (int64_t b = 0; b < G / 32; b++) {
        uint8_t* blk = q + (g * G + b * 32) / 2;
        const float* wb = wg + b * 32;
        for (int j = 0; j < 16; j++) {
          const int lo = static_cast<int>(std::clamp(std::nearbyint(wb[j] * inv), -8.0f, 7.0f)) + 8;
          const int hi = static_cast<int>(std::clamp(std::nearbyint(wb[j + 16] * inv), -8.0f, 7.0f)) + 8;
          blk[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
      }
      scales[g] = sh;
    }
  }
}

void check_format(int bits, int64_t G, int64_t N, int64_t K, const char* op) {
  check(bits == 4 || bits == 8, std::string(op) + ": bits must be 4 or 8, got " + std::to_string(bits));
  check(G >= 32 && G % 32 == 0, std::string(op) + ": group size must be a positive multiple of 32, got " + std::to_string(G));
  check(N >= 0 && K >= 0 && K % G == 0,
        std::string(op) + ": K = " + std::to_string(K) + " must be a multiple of the group size " + std::to_string(G) +
            " (N = " + std::to_string(N) + ")");
}

}  // namespace
}  // namespace quant

SV_KERNEL(quantizeWeights) {
  const char* op = "quantizeWeights";
  checkArgc(info, 8, op);
  const int bits = static_cast<int>(i64(info, 0, op, "bits"));
  const int64_t G = i64(info, 1, op, "groupSize");
  auto w = arr<uint8_t>(info, 2, op, "w");
  const int wdt = static_cast<int>(i64(info, 3, op, "wDt"));
  const int64_t N = i64(info, 4, op, "N"), K = i64(info, 5, op, "K");
  auto q = arr<uint8_t>(info, 6, op, "q");
  auto scales = arr<uint16_t>(info, 7, op, "scales");
  quant::check_format(bits, G, N, K, op);
  check(wdt == F32 || wdt == BF16, std::string(op) + ": weights must be float32 or bfloat16, got " + dt_name(wdt));
  need(w, N * K * dt_bytes(wdt), op, "w");
  need(q, N * quant::row_bytes(bits, K), op, "q");
  need(scales, N * (K / G), op, "scales");
  parallel_for(N, 16, [&](int64_t n0, int64_t n1) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; n++) {
      const float* src;
      if (wdt == F32) src = reinterpret_cast<const float*>(w.ptr) + n * K;
      else {
        const uint16_t* b = reinterpret_cast<const uint16_t*>(w.ptr) + n * K;
        for (int64_t k = 0; k < K; k++) row[k] = bf16_to_f32(b[k]);
        src = row.data();
      }
      quant::quant_row(bits, G, K, src, q.ptr + n * quant::row_bytes(bits, K), scales.ptr + n * (K / G));
    }
  });
  return info.Env().Undefined();
}

SV_KERNEL(dequantizeWeights) {
  const char* op = "dequantizeWeights";
  checkArgc(info, 7, op);
  const int bits = static_cast<int>(i64(info, 0, op, "bits"));
  const int64_t G = i64(info, 1, op, "groupSize");
  auto q = arr<uint8_t>(info, 2, op, "q");
  auto scales = arr<uint16_t>(info, 3, op, "scales");
  const int64_t N = i64(info, 4, op, "N"), K = i64(info, 5, op, "K");
  auto out = arr<float>(info, 6, op, "out");
  quant::check_format(bits, G, N, K, op);
  need(q, N * quant::row_bytes(bits, K), op, "q");
  need(scales, N * (K / G), op, "scales");
  need(out, N * K, op, "out");
  parallel_for(N, 16, [&](int64_t n0, int64_t n1) {
    quant::dequant_rows(bits, G, K, q.ptr, scales.ptr, n0, n1, out.ptr + n0 * K);
  });
  return info.Env().Undefined();
}

}  // namespace sv
