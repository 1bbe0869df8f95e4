// Machine-limit probes for the benchmarks: f32 FMA peak and DRAM read
// bandwidth, each run on n pool threads at the same time.
//
//   probeFmaPeak(threads, bits /* 512 | 256 */, iters) -> GFLOP/s
//   probeReadBandwidth(threads, mib, reps)             -> GB/s (best of reps)
#include "common.h"
#include "cpu.h"
#include "threadpool.h"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace sv {
namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(tid) for tid in [0, n) on n distinct pool threads that start
// together (a spin barrier; it gives up after 2 s so a busy pool cannot hang
// the probe). Returns each thread's elapsed seconds, measured after the barrier.
template <typename F>
std::vector<double> on_threads(int n, F&& fn) {
  std::vector<double> secs(n, 0.0);
  std::atomic<int> arrived{0};
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t tid = b; tid < e; tid++) {
      arrived.fetch_add(1);
      const auto deadline = Clock::now() + std::chrono::seconds(2);
      while (arrived.load() < n && Clock::now() < deadline) {
      }
      const auto t0 = Clock::now();
      fn(static_cast<int>(tid));
      secs[tid] = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  });
  return secs;
}

__attribute__((target("avx512f"))) float fma_loop_512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fma_loop_256(int64_t iters) {
  __m256 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  }
  float out[8], s = 0;
  for (int i = 1; i < 16; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  _mm256_storeu_ps(out, acc[0]);
  for (float v : out) s += v;
  return s;
}

__attribute__((target("avx512f"))) double sum_512(const float* p, int64_t n) {
  __m512 acc[8];
  for (int i = 0; i < 8; i++) acc[i] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
#pragma GCC unroll 8
    for (int u = 0; u < 8; u++) acc[u] = _mm512_add_ps(acc[u], _mm512_load_ps(p + i + 16 * u));
  }
  for (int u = 1; u < 8; u++) acc[0] = _mm512_add_ps(acc[0], acc[u]);
  double s = _mm512_reduce_add_ps(acc[0]);
  for (; i < n; i++) s += p[i];
  return s;
}

double sum_plain(const float* p, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int u = 0; u < 16; u++) acc[u] += p[i + u];
  double s = 0;
  for (float v : acc) s += v;
  for (; i < n; i++) s += p[i];
  return s;
}

volatile float g_sink;

}  // namespace

SV_KERNEL(probeFmaPeak) {
  const char* op = "probeFmaPeak";
  checkArgc(info, 3, op);
  const int64_t threads = i64(info, 0, op, "threads"), bits = i64(info, 1, op, "bits"), iters = i64(info, 2, op, "iters");
  check(threads >= 1 && threads <= num_threads(),
        "probeFmaPeak: threads must be in 1.." + std::to_string(num_threads()) + ", got " + std::to_string(threads));
  check(bits == 512 || bits == 256, "probeFmaPeak: bits must be 512 or 256");
  check(iters >= 1, "probeFmaPeak: iters must be positive");
  if (bits == 512) check(cpu().avx512f, "probeFmaPeak: this CPU has no AVX-512");
  else check(cpu().avx2 && cpu().fma, "probeFmaPeak: this CPU has no AVX2/FMA");
  auto secs = on_threads(static_cast<int>(threads), [&](int) {
    g_sink = bits == 512 ? fma_loop_512(iters) : fma_loop_256(iters);
  });
  const double lanes = bits == 512 ? 16 : 8;
  const double flops = static_cast<double>(threads) * iters * 16 * lanes * 2;
  return Napi::Number::New(info.Env(), flops / *std::max_element(secs.begin(), secs.end()) / 1e9);
}

SV_KERNEL(probeReadBandwidth) {
  const char* op = "probeReadBandwidth";
  checkArgc(info, 3, op);
  const int64_t threads = i64(info, 0, op, "threads"), mib = i64(info, 1, op, "mib"), reps = i64(info, 2, op, "reps");
  check(threads >= 1 && threads <= num_threads(),
        "probeReadBandwidth: threads must be in 1.." + std::to_string(num_threads()) + ", got " + std::to_string(threads));
  check(mib >= 1 && mib <= 8192, "probeReadBandwidth: mib must be in 1..8192");
  check(reps >= 1, "probeReadBandwidth: reps must be positive");
  const int64_t n = (mib << 20) / 4;
  float* buf = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(n) * 4));
  if (!buf) throw KernelError("probeReadBandwidth: out of memory");
  // First touch in parallel, so pages are really backed before timing.
  parallel_for(n, 1 << 20, [&](int64_t b, int64_t e) { std::fill(buf + b, buf + e, 1.0f); });
  const bool wide = isa() == Isa::Avx512;
  double best = 0;
  for (int64_t rep = 0; rep < reps; rep++) {
    auto secs = on_threads(static_cast<int>(threads), [&](int tid) {
      // 64-byte aligned slices so every thread streams whole cache lines.
      const int64_t per = ((n / threads) / 16) * 16;
      const int64_t b = tid * per, e = tid == threads - 1 ? n : b + per;
      g_sink = static_cast<float>(wide ? sum_512(buf + b, e - b) : sum_plain(buf + b, e - b));
    });
    best = std::max(best, static_cast<double>(n) * 4 / *std::max_element(secs.begin(), secs.end()) / 1e9);
  }
  std::free(buf);
  return Napi::Number::New(info.Env(), best);
}

}  // namespace sv
