// The opt-in bf16-compute GEMM (see gemm_bf16.h): the precision switch, the
// dispatch to the AMX kernel (gemm_bf16_amx.cc) where it can run, and the
// AVX512-BF16 (vdpbf16ps) driver, packers and microkernel used otherwise.
// On the dev VM (Intel, AMX) vdpbf16ps reached ~0.5 of the f32 FMA FLOP rate
// (bench/gemm_bf16.bench.ts), so this kernel only pays off on CPUs where
// vdpbf16ps runs at the FMA instruction rate (e.g. AMD Zen 4/5).
//
// vdpbf16ps multiplies pairs of bf16 along K: lane j of the accumulator gets
// a[2j]*b[2j] + a[2j+1]*b[2j+1]. So both operands are packed as 32-bit "K pairs":
//   A panel: [kp][MR] uint32 (row i's pair (k, k+1)), broadcast per row;
//   B strip: [kp][NR] uint32 (column j's pair), loaded as NR/16 vectors.
// An odd K is padded with a zero pair half in both operands (a bf16 weight pad
// of garbage could be Inf/NaN, and 0*Inf is NaN).
//
// Blocking: depth blocks of KCP pairs; per block all of A's MR-row panels are
// packed once (shared, parallel), then column groups of G strips are tasks on
// the pool: a task packs its group's B block into thread-local memory (L2) and
// runs every A panel (L1) against it. Every C element is computed by one task in
// a fixed order, so results do not depend on the thread count.
#include "gemm_bf16.h"
#include "dtype.h"
#include "common.h"
#include "cpu.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <string>

namespace sv {
namespace gemm {

namespace {

constexpr int MR = 12, NR = 32;          // 24 zmm accumulators
constexpr int64_t KCP = 256;             // K pairs per depth block (512 K values)
constexpr int64_t G = 4;                 // NR strips per column group (B block: 128 KiB)

// 0 = f32 (default), 1 = bf16; initialised from SEEDVL_MATMUL_PRECISION.
std::atomic<int> g_precision{[] {
  const char* e = std::getenv("SEEDVL_MATMUL_PRECISION");
  return e && std::string(e) == "bf16" ? 1 : 0;
}()};


thread_local Buf tls_b;

// Packs rows [i0, i0+mr) of op(A), K values [k0, k0+2*kp), into dst[kp][MR]
// (rows past mr and the K value past K are zero), rounding to bf16.
void pack_a(const float* a, int64_t lda, bool transA, int64_t K, int64_t i0, int mr, int64_t k0, int64_t kp,
            uint32_t* dst) {
  for (int r = 0; r < MR; r++) {
    if (r >= mr) {
      for (int64_t p = 0; p < kp; p++) dst[p * MR + r] = 0;
      continue;
    }
    const int64_t i = i0 + r;
    for (int64_t p = 0; p < kp; p++) {
      const int64_t k = k0 + 2 * p;
      const float v0 = transA ? a[k * lda + i] : a[i * lda + k];
      const float v1 = k + 1 < K ? (transA ? a[(k + 1) * lda + i] : a[i * lda + k + 1]) : 0.0f;
      dst[p * MR + r] = uint32_t(f32_to_bf16(v0)) | (uint32_t(f32_to_bf16(v1)) << 16);
    }
  }
}

#define SV_BF16_GEMM_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

// C[0:mr, 0:nvalid] = (first ? alpha*acc + beta*C + bias : C + alpha*acc).
SV_BF16_GEMM_TARGET
void ukr(int64_t kp, const uint32_t* ap, const uint32_t* bp, float* c, int64_t ldc, int mr, int nvalid, float alpha,
         float beta, const float* bias, bool first) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; p++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp + p * NR);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(bp + p * NR + 16);
    const uint32_t* a = ap + p * MR;
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
  const __mmask16 m0 = nvalid >= 16 ? 0xffff : static_cast<__mmask16>((1u << nvalid) - 1);
  const __mmask16 m1 = nvalid >= 32 ? 0xffff : nvalid <= 16 ? 0 : static_cast<__mmask16>((1u << (nvalid - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  for (int r = 0; r < mr; r++) {
    float* row = c + r * ldc;
    __m512 v0 = _mm512_mul_ps(acc[r][0], va), v1 = _mm512_mul_ps(acc[r][1], va);
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

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

bool bf16_use_amx = true;

uint16_t bf16_round(float f) { return f32_to_bf16(f); }

void bf16_pack_b_strip(const uint16_t* b, int64_t ldb, bool transB, int64_t K, int64_t N, int64_t k0, int64_t kp,
                       int64_t kp_pad, int64_t j0, uint32_t* dst) {
  constexpr int SN = kBf16StripN;
  const int nv = static_cast<int>(std::min<int64_t>(SN, N - j0));
  for (int jj = 0; jj < SN; jj++) {
    if (jj >= nv) {
      for (int64_t p = 0; p < kp_pad; p++) dst[p * SN + jj] = 0;
      continue;
    }
    const int64_t j = j0 + jj;
    if (transB) {  // "linear" layout: a column's K values are contiguous, so a pair is one uint32
      const uint16_t* col = b + j * ldb;
      const int64_t full = std::min(kp, (K - k0) / 2);
      for (int64_t p = 0; p < full; p++) {
        uint32_t v;
        std::memcpy(&v, col + k0 + 2 * p, 4);
        dst[p * SN + jj] = v;
      }
      for (int64_t p = full; p < kp; p++) dst[p * SN + jj] = col[k0 + 2 * p];  // odd K: high half zero
    } else {
      for (int64_t p = 0; p < kp; p++) {
        const int64_t k = k0 + 2 * p;
        const uint32_t lo = b[k * ldb + j], hi = k + 1 < K ? b[(k + 1) * ldb + j] : 0;
        dst[p * SN + jj] = lo | (hi << 16);
      }
    }
    for (int64_t p = kp; p < kp_pad; p++) dst[p * SN + jj] = 0;
  }
}

bool bf16_gemm_applies(const GemmF32& g) {
  return g_precision.load(std::memory_order_relaxed) == 1 && g.btype == B_BF16 && g.rA.size() == 1 &&
         isa() == Isa::Avx512 && cpu().avx512bf16;
}

void gemm_bf16_compute(const GemmF32& g) {
  if (bf16_use_amx && bf16_amx_available()) return gemm_bf16_amx(g);
  static_assert(NR == kBf16StripN, "B strips are shared with the AMX path");
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int64_t panels = ceil_div(M, MR), strips = ceil_div(N, NR), groups = ceil_div(strips, G);
  const int64_t KP = ceil_div(K, 2);
  const uint16_t* b = static_cast<const uint16_t*>(g.b);
  Buf abuf;  // packed A of one depth block: panels x [KCP][MR]
  const bool serial = 2.0 * M * N * K < double(1 << 21);
  for (size_t item = 0; item < g.pA.size(); item++) {
    const float* a = g.a + g.pA[item];
    const uint16_t* bi = b + g.pB[item];
    float* c = g.c + g.pC[item];
    for (int64_t p0 = 0; p0 < KP; p0 += KCP) {
      const int64_t kp = std::min(KCP, KP - p0), k0 = 2 * p0;
      const bool first = p0 == 0;
      uint32_t* ap = abuf.get(static_cast<size_t>(panels * kp * MR));
      auto pack_panel = [&](int64_t q) {
        const int mr = static_cast<int>(std::min<int64_t>(MR, M - q * MR));
        pack_a(a, g.lda, g.transA, K, q * MR, mr, k0, kp, ap + q * kp * MR);
      };
      auto run_group = [&](int64_t gi) {
        uint32_t* bp = tls_b.get(static_cast<size_t>(G * kp * NR));
        const int64_t s0 = gi * G, ns = std::min(G, strips - s0);
        for (int64_t s = 0; s < ns; s++)
          bf16_pack_b_strip(bi, g.ldb, g.transB, K, N, k0, kp, kp, (s0 + s) * NR, bp + s * kp * NR);
        for (int64_t q = 0; q < panels; q++) {
          const int mr = static_cast<int>(std::min<int64_t>(MR, M - q * MR));
          for (int64_t s = 0; s < ns; s++) {
            const int64_t j0 = (s0 + s) * NR;
            const int nvalid = static_cast<int>(std::min<int64_t>(NR, N - j0));
            ukr(kp, ap + q * kp * MR, bp + s * kp * NR, c + q * MR * g.ldc + j0, g.ldc, mr, nvalid, g.alpha, g.beta,
                first && g.bias ? g.bias + j0 : nullptr, first);
          }
        }
      };
      auto none = [] {};
      bf16_run_dynamic(panels, serial, none, pack_panel, none);
      bf16_run_dynamic(groups, serial, none, run_group, none);
    }
  }
}

}  // namespace gemm

// setMatmulPrecision('f32'|'bf16'): process-wide opt-in for the bf16-compute
// GEMM (f32 activations x bf16 weights). Returns the previous setting.
SV_KERNEL(setMatmulPrecision) {
  checkArgc(info, 1, "setMatmulPrecision");
  const std::string s = info[0].IsString() ? info[0].ToString().Utf8Value() : std::string("<non-string>");
  int v;
  if (s == "f32") v = 0;
  else if (s == "bf16") v = 1;
  else throw KernelError("setMatmulPrecision: expected 'f32' or 'bf16', got '" + s + "'");
  const int prev = gemm::g_precision.exchange(v);
  return Napi::String::New(info.Env(), prev == 1 ? "bf16" : "f32");
}

// setBf16GemmKernel('amx'|'avx512bf16'), for tests comparing the two kernels;
// returns the kernel bf16 GEMMs now use.
SV_KERNEL(setBf16GemmKernel) {
  checkArgc(info, 1, "setBf16GemmKernel");
  const std::string s = info[0].ToString().Utf8Value();
  if (s == "amx") gemm::bf16_use_amx = true;
  else if (s == "avx512bf16") gemm::bf16_use_amx = false;
  else throw KernelError("setBf16GemmKernel: expected 'amx' or 'avx512bf16', got '" + s + "'");
  return Napi::String::New(info.Env(), gemm::bf16_use_amx && gemm::bf16_amx_available() ? "amx" : "avx512bf16");
}

SV_KERNEL(matmulPrecision) {
  return Napi::String::New(info.Env(), gemm::g_precision.load() == 1 ? "bf16" : "f32");
}

}  // namespace sv
