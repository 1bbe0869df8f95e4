// probeDpbf16Peak(threads, iters) -> GFLOP/s of vdpbf16ps (zmm, 16 independent
// accumulators; 64 FLOP per instruction), the arithmetic ceiling of the
// bf16-compute GEMM, measured like probeFmaPeak so the bench can report
// both ratios. Its throughput differs a lot between CPUs (on some it is half
// the f32 FMA rate in FLOP, on others twice), so it is measured, not assumed.
#include "common.h"
#include "cpu.h"
#include "threadpool.h"
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

namespace sv {
namespace {

using Clock = std::chrono::steady_clock;
volatile float g_dp_sink;

__attribute__((target("avx512f,avx512bw,avx512bf16"))) float dpbf16_loop(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  // bf16 pairs (1e-6, 1e-6) x (1.0, 1.0): the sums stay finite and normal.
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x35863586), b = (__m512bh)_mm512_set1_epi32(0x3f803f80);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace

SV_KERNEL(probeDpbf16Peak) {
  const char* op = "probeDpbf16Peak";
  checkArgc(info, 2, op);
  const int64_t threads = i64(info, 0, op, "threads"), iters = i64(info, 1, op, "iters");
  check(threads >= 1 && threads <= num_threads(),
        "probeDpbf16Peak: threads must be in 1.." + std::to_string(num_threads()) + ", got " + std::to_string(threads));
  check(iters >= 1, "probeDpbf16Peak: iters must be positive");
  check(cpu().avx512f && cpu().avx512bf16, "probeDpbf16Peak: this CPU has no avx512_bf16");
  std::vector<double> secs(static_cast<size_t>(threads), 0.0);
  std::atomic<int> arrived{0};
  const int n = static_cast<int>(threads);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t tid = b; tid < e; tid++) {
      arrived.fetch_add(1);
      const auto deadline = Clock::now() + std::chrono::seconds(2);
      while (arrived.load() < n && Clock::now() < deadline) {
      }
      const auto t0 = Clock::now();
      g_dp_sink = dpbf16_loop(iters);
      secs[tid] = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  });
  const double flops = static_cast<double>(threads) * iters * 16 * 64;
  return Napi::Number::New(info.Env(), flops / *std::max_element(secs.begin(), secs.end()) / 1e9);
}

}  // namespace sv
