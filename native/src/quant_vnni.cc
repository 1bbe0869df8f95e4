// AVX-512 VNNI quantised GEMV (decode): activations are quantised to int8 per
// block of 32 (scale = absmax/127, like llama.cpp's Q8 activations) and the
// weight × activation products run as vpdpbusd (u8 × s8 → s32, 64 products
// per instruction). The unsigned operand is the weight: int4 values are
// stored as u = q + 8 already; int8 values become q + 128 with one XOR. The
// offsets come back out exactly as -8·Σx or -128·Σx per block, folded into the
// accumulator's initial value. Each chunk's s32 sums are then scaled by
// (activation scale × weight scale) per lane in f32.
//
// int4 decode (1-2 activation rows) sums 4 chunks in int32 first (block_grouped):
// the 16 lanes of each chunk reduce to one sum per 128-bit lane (one int4
// block, or a quarter of an int8 chunk), 4 chunks share one int→float
// conversion and one multiply by each scale. Those sums are exact, so the
// result differs from the per-chunk kernel only in float summation order.
//
// Prepared activations (vnni_prep_x), per chunk of one row: the x values in the
// order the weight bytes pair with them (int4: for each of the 4 blocks its
// values 0..15 [low nibbles], then for each block its values 16..31 [high
// nibbles]), 16 s32 lane offsets, 16 f32 lane scales; after the last chunk, per
// group of 4 chunks, 16 f32 activation scales in block_grouped's lane order.
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

int64_t vnni_prep_bytes(int bits, int64_t K) {
  const int64_t chunks = K / vnni_chunk_weights(bits);
  return chunks * vnni_chunk_prep(bits) + (chunks / 4) * 64;
}

// The 32 values at xb quantised to int8 (round half to even, as nearbyint in
// the default rounding mode); returns the scale, stores the values and their sum.
static float quantize_block32(const float* xb, int8_t* q, int32_t* sum);

void vnni_prep_x(int bits, const float* x, int64_t K, uint8_t* dst) {
  const int64_t cw = vnni_chunk_weights(bits), nblk = cw / 32, cp = vnni_chunk_prep(bits);
  for (int64_t c = 0; c < K / cw; c++) {
    uint8_t* p = dst + c * cp;
    int8_t* xs = reinterpret_cast<int8_t*>(p);
    int32_t off[16] = {};
    float sc[16];
    for (int64_t b = 0; b < nblk; b++) {
      int8_t q[32];
      int32_t sum = 0;
      const float s = quantize_block32(x + c * cw + b * 32, q, &sum);
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
  // Per group of 4 chunks: the activation scales in the order of the reduced
  // block sums (lane 4q + x = chunk x, 128-bit lane q; see block_grouped).
  const int64_t chunks = K / cw;
  float* ts = reinterpret_cast<float*>(dst + chunks * cp);
  for (int64_t grp = 0; grp < chunks / 4; grp++)
    for (int q = 0; q < 4; q++)
      for (int xk = 0; xk < 4; xk++) {
        float v;
        std::memcpy(&v, dst + (grp * 4 + xk) * cp + cw + 64 + 16 * q, 4);
        ts[grp * 16 + 4 * q + xk] = v;
      }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")

// Vectorised (the scalar loop with nearbyint cost ~4 ns per value, 45 us per
// 11008-wide row: more than the GEMV itself for small N).
static float quantize_block32(const float* xb, int8_t* q, int32_t* sum) {
  const __m512 a = _mm512_loadu_ps(xb), b = _mm512_loadu_ps(xb + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const __m512 inv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
  const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, inv)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, inv));
  *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(qa));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(qb));
  return amax / 127.0f;
}

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

// Software prefetch distance of block_grouped in weight rows (2-32 measured the same).
constexpr int64_t kPrefetchRows = 8;

// Sums the four 32-bit lanes of each 128-bit lane of a, b, c, d: lane 4q + x of
// the result is the sum over 128-bit lane q of the x-th input (x = 0..3 for a..d).
__attribute__((always_inline)) inline __m512i hsum4x4(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

// Weight scales of chunks c0..c0+3 in the reduced order (lane 4q + x: chunk x, 128-bit lane q).
template <int BITS, bool PER_BLOCK>
__attribute__((always_inline)) inline __m512 grouped_weight_scales(const QGemv& g, int64_t n, int64_t c0) {
  const int64_t ng = g.K / g.G;
  const uint16_t* s = g.scales + n * ng;
  if constexpr (PER_BLOCK) {
    // int4, G == 32: 16 consecutive block scales, block 4x + q goes to lane 4q + x.
    const __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + c0 * 4)));
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, v);
  } else {
    constexpr int64_t cw = BITS == 8 ? 64 : 128;
    const __m128 four = _mm_set_ps(_cvtsh_ss(s[((c0 + 3) * cw) / g.G]), _cvtsh_ss(s[((c0 + 2) * cw) / g.G]),
                                   _cvtsh_ss(s[((c0 + 1) * cw) / g.G]), _cvtsh_ss(s[(c0 * cw) / g.G]));
    return _mm512_broadcast_f32x4(four);
  }
}

// Same result as block() up to float summation order, with the int32 sums of
// 4 chunks reduced per 128-bit lane first, so the int→float conversion and
// the two scale multiplies run once per 4 chunks instead of once per chunk.
template <int R, int JB, int BITS, bool PER_BLOCK>
__attribute__((always_inline)) inline void block_grouped(const QGemv& g, const uint8_t* prep, int64_t prepRow, int64_t n) {
  constexpr int64_t cw = BITS == 8 ? 64 : 128, cp = cw + 128;
  const int64_t rb = BITS == 8 ? g.K : g.K / 2, chunks = g.K / cw, groups = chunks / 4;
  __m512 acc[JB][R];
  for (int j = 0; j < JB; j++)
    for (int r = 0; r < R; r++) acc[j][r] = _mm512_setzero_ps();
  const __m512i nib = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t grp = 0; grp < groups; grp++) {
    __m512 xs[R];
    for (int r = 0; r < R; r++) xs[r] = _mm512_loadu_ps(reinterpret_cast<const float*>(prep + r * prepRow + chunks * cp + grp * 64));
    for (int j = 0; j < JB; j++) {
      const __m512 sw = grouped_weight_scales<BITS, PER_BLOCK>(g, n + j, grp * 4);
      __m512i s[4][R];
      for (int xk = 0; xk < 4; xk++) {
        const int64_t c = grp * 4 + xk;
        _mm_prefetch(reinterpret_cast<const char*>(g.q + (n + kPrefetchRows + j) * rb + c * 64), _MM_HINT_T0);
        const __m512i w = _mm512_loadu_si512(g.q + (n + j) * rb + c * 64);
        for (int r = 0; r < R; r++) {
          const uint8_t* xp = prep + r * prepRow + c * cp;
          __m512i t = _mm512_loadu_si512(xp + cw);  // the offsets: -128·Σx or -8·Σx per block
          if constexpr (BITS == 8) {
            t = _mm512_dpbusd_epi32(t, _mm512_xor_si512(w, flip), _mm512_loadu_si512(xp));
          } else {
            t = _mm512_dpbusd_epi32(t, _mm512_and_si512(w, nib), _mm512_loadu_si512(xp));
            t = _mm512_dpbusd_epi32(t, _mm512_and_si512(_mm512_srli_epi16(w, 4), nib), _mm512_loadu_si512(xp + 64));
          }
          s[xk][r] = t;
        }
      }
      for (int r = 0; r < R; r++) {
        const __m512 v = _mm512_cvtepi32_ps(hsum4x4(s[0][r], s[1][r], s[2][r], s[3][r]));
        acc[j][r] = _mm512_fmadd_ps(_mm512_mul_ps(v, xs[r]), sw, acc[j][r]);
      }
    }
  }
  // Chunks after the last full group: one at a time.
  for (int64_t c = groups * 4; c < chunks; c++) {
    for (int j = 0; j < JB; j++) {
      const __m512i w = _mm512_loadu_si512(g.q + (n + j) * rb + c * 64);
      const __m512 sw = weight_scales<BITS, PER_BLOCK>(g, n + j, c);
      for (int r = 0; r < R; r++) {
        const uint8_t* xp = prep + r * prepRow + c * cp;
        __m512i t = _mm512_loadu_si512(xp + cw);
        if constexpr (BITS == 8) {
          t = _mm512_dpbusd_epi32(t, _mm512_xor_si512(w, flip), _mm512_loadu_si512(xp));
        } else {
          t = _mm512_dpbusd_epi32(t, _mm512_and_si512(w, nib), _mm512_loadu_si512(xp));
          t = _mm512_dpbusd_epi32(t, _mm512_and_si512(_mm512_srli_epi16(w, 4), nib), _mm512_loadu_si512(xp + 64));
        }
        const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(t), _mm512_loadu_ps(reinterpret_cast<const float*>(xp + cw + 64)));
        acc[j][r] = _mm512_fmadd_ps(f, sw, acc[j][r]);
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
  if constexpr (R <= 2 && BITS == 4) {
    // int4 decode: one weight row at a time, so each thread reads one
    // sequential stream (3B-shaped model: ~4-8% faster per token than the
    // per-chunk kernel over 4 interleaved rows; for int8 it measured slower).
    for (; n < n1; n++) block_grouped<R, 1, BITS, PER_BLOCK>(g, prep, prepRow, n);
  } else {
    // int8, and 3-4 activation rows (batched decode, prefill: compute-bound):
    // the per-chunk kernel over 4 weight rows measured faster.
    for (; n + 4 <= n1; n += 4) block<R, 4, BITS, PER_BLOCK>(g, prep, prepRow, n);
    for (; n < n1; n++) block<R, 1, BITS, PER_BLOCK>(g, prep, prepRow, n);
  }
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
