// AMX path of the opt-in bf16-compute GEMM (see gemm_bf16.h): the same
// operands as the vdpbf16ps path (activations rounded to bf16, K pairs, f32
// accumulation), multiplied by TDPBF16PS on 16x16 tiles.
//
// Tiles: C 32x32 as four 16x16 f32 tiles (tmm0-3), A as two 16-row x 16-pair
// tiles (tmm4-5), B as two 16-pair x 16-column tiles (tmm6-7). A panels are
// packed [32 rows][kp_pad pairs] (rows contiguous along K, as tileloadd reads
// them); B strips are the shared [kp_pad][32] layout, read as two tiles with a
// 128-byte stride. kp_pad rounds a depth block up to 16 pairs with zeros.
// Blocking and work split are those of the vdpbf16ps driver: depth blocks,
// A packed once per block, column groups of G strips as pool tasks, each C
// element computed by one task in a fixed order (thread-count independent).
#include "gemm_bf16.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <cpuid.h>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <mutex>
#include <new>
#include <sys/syscall.h>
#include <unistd.h>

namespace sv {
namespace gemm {

namespace {

constexpr int MA = 32, SN = kBf16StripN;  // C block: 32 rows x 32 columns
constexpr int64_t KCP = 256;              // K pairs per depth block
constexpr int64_t G = 4;                  // strips per column group

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

thread_local Buf tls_b;

bool detect_amx() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
  if (!tile || !bf16) return false;
  // Linux gives a process AMX tile data state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

#define SV_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

// Rounds 16 floats to bf16 exactly like bf16_round (nearest even, NaN quiet).
SV_AMX_TARGET inline __m256i round16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

// Packs rows [i0, i0+mr) of op(A), K values [k0, k0+2*kp), into dst[MA][kp_pad]
// (row stride kp_pad pairs); rows past mr, the K value past K and pairs past kp are zero.
SV_AMX_TARGET void pack_a(const float* a, int64_t lda, bool transA, int64_t K, int64_t i0, int mr, int64_t k0,
                          int64_t kp, int64_t kp_pad, uint32_t* dst) {
  for (int r = 0; r < MA; r++) {
    uint32_t* row = dst + r * kp_pad;
    int64_t p = 0;
    if (r < mr) {
      const int64_t i = i0 + r;
      if (!transA) {
        const float* src = a + i * lda + k0;
        const int64_t kv = std::min<int64_t>(2 * kp, K - k0);  // K values in this block
        for (; 2 * p + 32 <= kv; p += 16) {                     // 32 values -> 16 pairs
          const __m256i lo = round16(_mm512_loadu_ps(src + 2 * p));
          const __m256i hi = round16(_mm512_loadu_ps(src + 2 * p + 16));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + p), lo);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + p + 8), hi);
        }
      }
      for (; p < kp; p++) {
        const int64_t k = k0 + 2 * p;
        const float v0 = transA ? a[k * lda + i] : a[i * lda + k];
        const float v1 = k + 1 < K ? (transA ? a[(k + 1) * lda + i] : a[i * lda + k + 1]) : 0.0f;
        row[p] = uint32_t(bf16_round(v0)) | (uint32_t(bf16_round(v1)) << 16);
      }
    }
    for (; p < kp_pad; p++) row[p] = 0;
  }
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

SV_AMX_TARGET void tiles_configure() {
  TileConfig tc;
  for (int t = 0; t < 8; t++) {
    tc.colsb[t] = 64;
    tc.rows[t] = 16;
  }
  // Not _tile_loadconfig: g++ 12 does not see that builtin read the struct and
  // drops the colsb/rows stores (measured: tiles left unconfigured, SIGILL).
  __asm__ volatile("ldtilecfg %0" : : "m"(tc));
}

SV_AMX_TARGET void tiles_release() { _tile_release(); }

// One 32x32 C block over kp_pad pairs: C = first ? alpha*acc + beta*C + bias : C + alpha*acc.
SV_AMX_TARGET void block(int64_t kp_pad, const uint32_t* ap, const uint32_t* bp, float* c, int64_t ldc, int mr,
                         int nvalid, float alpha, float beta, const float* bias, bool first) {
  alignas(64) float acc[MA * SN];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const long sa = kp_pad * 4, sb = SN * 4;
  for (int64_t kk = 0; kk < kp_pad; kk += 16) {
    _tile_loadd(4, ap + kk, sa);
    _tile_loadd(5, ap + 16 * kp_pad + kk, sa);
    _tile_loadd(6, bp + kk * SN, sb);
    _tile_loadd(7, bp + kk * SN + 16, sb);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, acc, SN * 4);
  _tile_stored(1, acc + 16, SN * 4);
  _tile_stored(2, acc + 16 * SN, SN * 4);
  _tile_stored(3, acc + 16 * SN + 16, SN * 4);

  const __mmask16 m0 = nvalid >= 16 ? 0xffff : static_cast<__mmask16>((1u << nvalid) - 1);
  const __mmask16 m1 = nvalid >= 32 ? 0xffff : nvalid <= 16 ? 0 : static_cast<__mmask16>((1u << (nvalid - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  for (int r = 0; r < mr; r++) {
    float* row = c + r * ldc;
    __m512 v0 = _mm512_mul_ps(_mm512_load_ps(acc + r * SN), va);
    __m512 v1 = _mm512_mul_ps(_mm512_load_ps(acc + r * SN + 16), va);
    if (first) {
      if (beta != 0.0f) {
        v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), v0);
        v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), v1);
      }
      v0 = _mm512_add_ps(v0, bias0);
      v1 = _mm512_add_ps(v1, bias1);
    } else {
      v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), v0);
      v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), v1);
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

}  // namespace

bool bf16_amx_available() {
  static const bool ok = detect_amx();
  return ok;
}

void gemm_bf16_amx(const GemmF32& g) {
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int64_t panels = ceil_div(M, MA), strips = ceil_div(N, SN), groups = ceil_div(strips, G);
  const int64_t KP = ceil_div(K, 2);
  const uint16_t* b = static_cast<const uint16_t*>(g.b);
  Buf abuf;
  const bool serial = 2.0 * M * N * K < double(1 << 21);
  for (size_t item = 0; item < g.pA.size(); item++) {
    const float* a = g.a + g.pA[item];
    const uint16_t* bi = b + g.pB[item];
    float* c = g.c + g.pC[item];
    for (int64_t p0 = 0; p0 < KP; p0 += KCP) {
      const int64_t kp = std::min(KCP, KP - p0), kp_pad = ceil_div(kp, 16) * 16, k0 = 2 * p0;
      const bool first = p0 == 0;
      uint32_t* ap = abuf.get(static_cast<size_t>(panels * MA * kp_pad));
      auto pack_panel = [&](int64_t q) {
        const int mr = static_cast<int>(std::min<int64_t>(MA, M - q * MA));
        pack_a(a, g.lda, g.transA, K, q * MA, mr, k0, kp, kp_pad, ap + q * MA * kp_pad);
      };
      auto run_group = [&](int64_t gi) {
        uint32_t* bp = tls_b.get(static_cast<size_t>(G * kp_pad * SN));
        const int64_t s0 = gi * G, ns = std::min(G, strips - s0);
        for (int64_t s = 0; s < ns; s++)
          bf16_pack_b_strip(bi, g.ldb, g.transB, K, N, k0, kp, kp_pad, (s0 + s) * SN, bp + s * kp_pad * SN);
        for (int64_t q = 0; q < panels; q++) {
          const int mr = static_cast<int>(std::min<int64_t>(MA, M - q * MA));
          for (int64_t s = 0; s < ns; s++) {
            const int64_t j0 = (s0 + s) * SN;
            const int nvalid = static_cast<int>(std::min<int64_t>(SN, N - j0));
            block(kp_pad, ap + q * MA * kp_pad, bp + s * kp_pad * SN, c + q * MA * g.ldc + j0, g.ldc, mr, nvalid,
                  g.alpha, g.beta, first && g.bias ? g.bias + j0 : nullptr, first);
          }
        }
      };
      auto none = [] {};
      bf16_run_dynamic(panels, serial, none, pack_panel, none);
      // Tiles are configured per participating thread, around all of its tasks.
      bf16_run_dynamic(groups, serial, tiles_configure, run_group, tiles_release);
    }
  }
}

}  // namespace gemm
}  // namespace sv
