// AVX-512 VNNI quantised GEMV (decode): activations are quantised to int8 per
// block of 32 (scale = absmax/127, like llama.cpp's Q8 activations) and the
// weight × activation products run as vpdpbusd (u8 × s8 → s32, 64 products
// per instruction). The unsigned operand is the weight: int4 values are
// stored as u = q + 8 already; int8 values become q + 128 with one XOR. The
// offsets come back out exactly as -8·Σx or -128·Σx per block, folded into the
// accumulator's initial value. Each chunk's s32 sums are then scaled by
// (activation scale × weight scale) per lane in f32.
//
// Prepared activations (vnni_prep_x), per chunk of one row: the x values in the
// order the weight bytes pair with them (int4: for each of the 4 blocks its
// values 0..15 [low nibbles], then for each block its values 16..31 [high
// nibbles]), 16 s32 lane offsets, 16 f32 lane scales.
#include "quant_vnni.h"
#include "cpu.h"
#include "dtype.h"
// GCC's intrinsic headers trip these for the undefined upper lanes of cast/set helpers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

namespace sv {
namespace quant {

namespace {
std::atomic<bool> g_vnni{true};
}
bool vnni_enabled() { return g_vnni.load() && cpu().avx512vnni && isa() == Isa::Avx512; }
void set_vnni_enabled(bool on) { g_vnni.store(on); }

int64_t vnni_chunk_weights(int bits) { return bits == 8 ? 64 : 128; }

bool vnni_supported(int bits, int64_t G, int64_t K) {
  if (K % vnni_chunk_weights(bits) != 0) return false;
  return bits == 8 ? G % 64 == 0 : (G == 32 || G % 128 == 0);
}

int64_t vnni_prep_bytes(int bits, int64_t K) { return (K / vnni_chunk_weights(bits)) * vnni_chunk_prep(bits); }

void vnni_prep_x(int bits, const float* x, int64_t K, uint8_t* dst) {
  const int64_t cw = vnni_chunk_weights(bits), nblk = cw / 32, cp = vnni_chunk_prep(bits);
  for (int64_t c = 0; c < K / cw; c++) {
    uint8_t* p = dst + c * cp;
    int8_t* xs = reinterpret_cast<int8_t*>(p);
    int32_t off[16] = {};
    float sc[16];
    for (int64_t b = 0; b < nblk; b++) {
      const float* xb = x + c * cw + b * 32;
      float amax = 0;
      for (int j = 0; j < 32; j++) amax = std::max(amax, std::fabs(xb[j]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      int8_t q[32];
      int32_t sum = 0;
      for (int j = 0; j < 32; j++) {
        q[j] = static_cast<int8_t>(std::nearbyint(xb[j] * inv));
        sum += q[j];
      }
      const float s = amax / 127.0f;
      if (bits == 8) {
        std::memcpy(xs + b * 32, q, 32);
        off[b * 8] = -128 * sum;
        for (int l = 0; l < 8; l++) sc[b * 8 + l] = s;
      } else {
        std::memcpy(xs + b * 16, q, 16);
        std::memcpy(xs + 64 + b * 16, q + 16, 16);
        off[b * 4] = -8 * sum;
        for (int l = 0; l < 4; l++) sc[b * 4 + l] = s;
      }
    }
    std::memcpy(p + cw, off, 64);
    std::memcpy(p + cw + 64, sc, 64);
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")

namespace {

// One chunk's weight scale(s) as 16 lanes: one value (scalar per chunk) or
// four (int4, G == 32: one per 32-weight block, lanes 4b..4b+3).
template <int BITS, bool PER_BLOCK>
__attribute__((always_inline)) inline __m512 weight_scales(const QGemv& g, int64_t n, int64_t c) {
  const int64_t ng = g.K / g.G;
  const uint16_t* s = g.scales + n * ng;
  if constexpr (PER_BLOCK) {
    const __m128 four = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + c * 4)));
    const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(four));
  } else {
    const int64_t cw = BITS == 8 ? 64 : 128;
    return _mm512_set1_ps(_cvtsh_ss(s[(c * cw) / g.G]));
  }
}

template <int R, int JB, int BITS, bool PER_BLOCK>
__attribute__((always_inline)) inline void block(const QGemv& g, const uint8_t* prep, int64_t prepRow, int64_t n) {
  constexpr int64_t cw = BITS == 8 ? 64 : 128, cp = cw + 128;
  const int64_t rb = BITS == 8 ? g.K : g.K / 2, chunks = g.K / cw;
  __m512 acc[JB][R];
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++) acc[j][r] = _mm512_setzero_ps();
  const __m512i nib = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t c = 0; c < chunks; c++) {
    for (int j = 0; j < JB; j++) {
      // Software prefetch of the next row block (same chunk): keeps several DRAM streams in flight.
      _mm_prefetch(reinterpret_cast<const char*>(g.q + (n + 2 * JB + j) * rb + c * 64), _MM_HINT_T0);
      const __m512i w = _mm512_loadu_si512(g.q + (n + j) * rb + c * 64);
      const __m512 sw = weight_scales<BITS, PER_BLOCK>(g, n + j, c);
      for (int r = 0; r < R; r++) {
        const uint8_t* xp = prep + r * prepRow + c * cp;
        __m512i s = _mm512_loadu_si512(xp + cw);  // the offsets: -128·Σx or -8·Σx per block
        if constexpr (BITS == 8) {
          s = _mm512_dpbusd_epi32(s, _mm512_xor_si512(w, flip), _mm512_loadu_si512(xp));
        } else {
          s = _mm512_dpbusd_epi32(s, _mm512_and_si512(w, nib), _mm512_loadu_si512(xp));
          s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(w, 4), nib), _mm512_loadu_si512(xp + 64));
        }
        const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_loadu_ps(reinterpret_cast<const float*>(xp + cw + 64)));
        acc[j][r] = _mm512_fmadd_ps(t, sw, acc[j][r]);
      }
    }
  }
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++) g.out[r * g.ldo + n + j] = _mm512_reduce_add_ps(acc[j][r]) + (g.bias ? g.bias[n + j] : 0.0f);
}

template <int R, int BITS, bool PER_BLOCK>
void rows(const QGemv& g, const uint8_t* prep, int64_t n0, int64_t n1) {
  const int64_t prepRow = vnni_prep_bytes(BITS, g.K);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) block<R, 4, BITS, PER_BLOCK>(g, prep, prepRow, n);
  for (; n < n1; n++) block<R, 1, BITS, PER_BLOCK>(g, prep, prepRow, n);
}

template <int BITS, bool PER_BLOCK>
void by_r(const QGemv& g, const uint8_t* prep, int64_t n0, int64_t n1) {
  switch (g.R) {
    case 1: return rows<1, BITS, PER_BLOCK>(g, prep, n0, n1);
    case 2: return rows<2, BITS, PER_BLOCK>(g, prep, n0, n1);
    case 3: return rows<3, BITS, PER_BLOCK>(g, prep, n0, n1);
    default: return rows<4, BITS, PER_BLOCK>(g, prep, n0, n1);
  }
}

}  // namespace

void qgemv_vnni(const QGemv& g, const uint8_t* prep, int64_t n0, int64_t n1) {
  if (g.bits == 8) return by_r<8, false>(g, prep, n0, n1);
  if (g.G == 32) return by_r<4, true>(g, prep, n0, n1);
  return by_r<4, false>(g, prep, n0, n1);
}

#pragma GCC pop_options

}  // namespace quant
}  // namespace sv
