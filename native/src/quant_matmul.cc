// quantMatmul(bits, G, x, M, K, N, q, scales, bias, out):
//   out[M, N] = x[M, K] · dequant(q, scales)[N, K]ᵀ + bias     (f32 x, out, bias)
// Decode-sized M (<= kGemvMaxM): streaming GEMV; up to 4 rows (decode, batched
// decode) one contiguous range of weight rows per thread, each weight read
// once for all rows; more rows: tasks over N claimed dynamically, each task's
// weight slice read from DRAM once and reused from cache for every group of 4
// activation rows. Larger M (prefill): under the bf16 switch on AMX, tiles of
// weight rows dequantised to bf16 go through the AMX GEMM (run_gemm_amx);
// else the VNNI int8 kernel where the format allows, or tiles dequantised to
// f32 through the packed f32 GEMM.
#include "common.h"
#include "cpu.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "quant.h"
#include "quant_vnni.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <vector>

namespace sv {
namespace quant {
namespace {

constexpr int64_t kGemvMaxM = 16;
// Rows from which the AMX prefill path (run_gemm_amx) beats the VNNI kernel (2048 -> 11008: int4 at
// 17 rows 2.16 vs 2.07 ms, at 24 rows 2.16 vs 3.18 ms; int8 ahead from 16 rows).
inline int64_t amx_min_rows(int bits) { return bits == 4 ? 20 : 16; }
constexpr int64_t kTaskBytes = 64 << 10;  // weight bytes per prefill-sized GEMV task

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

QGemvFn gemv_kernel() { return isa() == Isa::Avx512 ? qgemv_avx512 : qgemv_portable; }

// Prepared (int8) activations, reused from call to call: a decode token runs
// ~250 quantised matmuls, and a fresh buffer each time was one more heap
// allocation (and page faults) per call. Only the calling JS thread fills it;
// pool workers read it while that thread waits in parallel_for. Buffers for
// long prefills are not kept.
constexpr size_t kKeepPrepBytes = 1 << 20;
thread_local std::vector<uint8_t> t_prep;

// Decode (M <= kMaxR: each weight is read once for every row): one contiguous
// range of weight rows per thread, so each thread streams one long run of
// memory forward, the pattern the hardware prefetchers follow best (the DRAM
// probe reads the same way). A thread takes its range's blocks from the front;
// once it runs out it takes the back half of what another thread has left
// as its new range, so a thread that starts late (woken late, its core busy
// with another process) only shifts work instead of delaying the whole call.
// Claims are one uncontended compare-exchange per ~64 KiB block.
constexpr int64_t kDecodeMaxM = kMaxR;
constexpr int64_t kBlockBytes = 64 << 10;
constexpr int kMaxRanges = 256;  // setNumThreads allows up to 256 threads

// Blocks [front, back) of one thread's range not yet taken, packed as
// back << 32 | front so both ends move by one compare-exchange. Only the
// thread running the range resets it (after it ran out).
struct alignas(64) BlockRange {
  std::atomic<uint64_t> fb{0};
  static uint64_t pack(uint64_t front, uint64_t back) { return (back << 32) | front; }
  void reset(int64_t front, int64_t back) { fb.store(pack(front, back), std::memory_order_relaxed); }
  // The next block from the front; -1 when none is left.
  int64_t take_front() {
    uint64_t cur = fb.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t f = static_cast<uint32_t>(cur), b = static_cast<uint32_t>(cur >> 32);
      if (f >= b) return -1;
      if (fb.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return f;
    }
  }
  // Takes the back half (at least one block) of what is left: [*lo, *hi); false when nothing is left.
  bool take_back_half(int64_t* lo, int64_t* hi) {
    uint64_t cur = fb.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t f = static_cast<uint32_t>(cur), b = static_cast<uint32_t>(cur >> 32);
      if (f >= b) return false;
      const uint32_t mid = f + (b - f) / 2;
      if (fb.compare_exchange_weak(cur, pack(f, mid), std::memory_order_relaxed)) {
        *lo = mid;
        *hi = b;
        return true;
      }
    }
  }
};
thread_local BlockRange t_ranges[kMaxRanges];

void run_gemv(QGemv g, int64_t M) {
  const QGemvFn fn = gemv_kernel();
  const int64_t rb = row_bytes(g.bits, g.K);
  // int8 activations + VNNI dot products where the CPU and the format allow it.
  const bool vnni = vnni_enabled() && vnni_supported(g.bits, g.G, g.K);
  const int64_t prepRow = vnni ? vnni_prep_bytes(g.bits, g.K) : 0;
  std::vector<uint8_t> prepLong;
  uint8_t* prep = nullptr;
  if (vnni) {
    const size_t need = static_cast<size_t>(M * prepRow);
    std::vector<uint8_t>& buf = need <= kKeepPrepBytes ? t_prep : prepLong;
    if (buf.size() < need) buf.resize(need);
    prep = buf.data();
    for (int64_t m = 0; m < M; m++) vnni_prep_x(g.bits, g.x + m * g.ldx, g.K, prep + m * prepRow);
  }
  auto rows = [&](int64_t n0, int64_t n1) {
    for (int64_t r0 = 0; r0 < M; r0 += kMaxR) {
      QGemv item = g;
      item.R = static_cast<int>(std::min<int64_t>(kMaxR, M - r0));
      item.x = g.x + r0 * g.ldx;
      item.out = g.out + r0 * g.ldo;
      if (vnni) qgemv_vnni(item, prep + r0 * prepRow, n0, n1);
      else fn(item, n0, n1);
    }
  };
  const int nt = num_threads();
  if (nt == 1 || g.N * rb < (32 << 10)) {
    rows(0, g.N);
    return;
  }
  if (M <= kDecodeMaxM) {
    const int64_t blk = std::max<int64_t>(4, (kBlockBytes / std::max<int64_t>(rb, 1)) / 4 * 4);
    const int64_t blocks = ceil_div(g.N, blk);
    const int parts = static_cast<int>(std::min<int64_t>({nt, blocks, kMaxRanges}));
    if (parts == 1 || blocks > INT32_MAX) {
      rows(0, g.N);
      return;
    }
    BlockRange* ranges = t_ranges;
    for (int p = 0; p < parts; p++) ranges[p].reset(blocks * p / parts, blocks * (p + 1) / parts);
    parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; p++) {
        for (;;) {
          for (int64_t b; (b = ranges[p].take_front()) >= 0;) rows(b * blk, std::min(g.N, (b + 1) * blk));
          int64_t lo = 0, hi = 0;
          bool took = false;
          for (int64_t o = 1; o < parts && !took; o++) took = ranges[(p + o) % parts].take_back_half(&lo, &hi);
          if (!took) break;
          ranges[p].reset(lo, hi);
        }
      }
    });
    return;
  }
  // Prefill-sized M (compute-bound): small tasks claimed dynamically balance the load.
  int64_t cn = std::max<int64_t>(4, (kTaskBytes / std::max<int64_t>(rb, 1)) / 4 * 4);
  cn = std::min(cn, std::max<int64_t>(4, ceil_div(ceil_div(g.N, 4 * nt), 4) * 4));
  const int64_t tasks = ceil_div(g.N, cn);
  if (tasks == 1) {
    rows(0, g.N);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(nt, tasks), 1, [&](int64_t, int64_t) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) rows(t * cn, std::min(g.N, t * cn + cn));
  });
}

// The GEMM of activation rows x against weight rows [n0, n1) held in `tile` (f32 or bf16, row stride K).
gemm::GemmF32 tile_gemm(const QGemv& g, int64_t M, const void* tile, int btype, int64_t n0, int64_t n1) {
  gemm::GemmF32 mm;
  mm.M = M;
  mm.N = n1 - n0;
  mm.K = g.K;
  mm.a = g.x;
  mm.lda = g.ldx;
  mm.b = tile;
  mm.btype = btype;
  mm.ldb = g.K;
  mm.transB = true;
  mm.c = g.out + n0;
  mm.ldc = g.ldo;
  mm.bias = g.bias ? g.bias + n0 : nullptr;
  return mm;
}

void run_gemm(const QGemv& g, int64_t M) {
  const int64_t nb = std::max<int64_t>(16, std::min<int64_t>(g.N, ((1 << 20) / std::max<int64_t>(g.K, 1)) / 16 * 16));
  std::vector<float> tile(static_cast<size_t>(nb * g.K));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t n1 = std::min(g.N, n0 + nb);
    parallel_for(n1 - n0, 8, [&](int64_t a, int64_t b) {
      (isa() == Isa::Avx512 ? dequant_rows_avx512 : dequant_rows)(g.bits, g.G, g.K, g.q, g.scales, n0 + a, n0 + b, tile.data() + a * g.K);
    });
    gemm::gemm_f32(tile_gemm(g, M, tile.data(), gemm::B_F32, n0, n1));
  }
}

// Under the bf16 compute switch on a CPU with AMX tiles: tiles of weight rows are dequantised to bf16
// (about 8 MiB at a time) and multiplied by the AMX GEMM, which reads them in place. Prefill then runs
// at bf16 GEMM speed instead of the VNNI dot-product kernel's (2048 -> 11008, 2 threads, 512 rows:
// int4 13.2 ms vs 67.7, int8 13.7 vs 95.0; 64 rows: 2.9 vs 8.3 and 3.2 vs 10.9). The activations are
// rounded to bf16 as everywhere under the switch (the VNNI path rounds them to int8; against the f32
// product of the dequantised weights the bf16 path measured about half its error).
thread_local gemm::Buf t_bf16_tile;  // the dequantised bf16 weight tile, 64-byte aligned

bool amx_prefill_applies(const QGemv& g, int64_t M) {
  if (M < amx_min_rows(g.bits) || isa() != Isa::Avx512) return false;
  return gemm::bf16_gemm_applies(tile_gemm(g, M, nullptr, gemm::B_BF16, 0, g.N)) && gemm::bf16_use_amx &&
         gemm::bf16_amx_available();
}

void run_gemm_amx(const QGemv& g, int64_t M) {
  const int64_t nb = std::clamp<int64_t>((int64_t(8) << 20) / (2 * g.K) / 32 * 32, 32, ceil_div(g.N, 32) * 32);
  uint16_t* tile = reinterpret_cast<uint16_t*>(t_bf16_tile.get(static_cast<size_t>(nb * g.K / 2)));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t n1 = std::min(g.N, n0 + nb);
    parallel_for(n1 - n0, 8, [&](int64_t a, int64_t b) {
      dequant_rows_bf16_avx512(g.bits, g.G, g.K, g.q, g.scales, n0 + a, n0 + b, tile + a * g.K);
    });
    gemm::gemm_f32(tile_gemm(g, M, tile, gemm::B_BF16, n0, n1));
  }
}

}  // namespace
}  // namespace quant

// quantInt8Activations(on?): whether decode-sized quantised matmuls may quantise
// activations to int8 for VNNI dot products (default on). Returns the setting
// in effect (false on CPUs without avx512_vnni); with no argument, only reads it.
SV_KERNEL(quantInt8Activations) {
  if (info.Length() > 0 && info[0].IsBoolean()) quant::set_vnni_enabled(info[0].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), quant::vnni_enabled());
}

SV_KERNEL(quantMatmul) {
  const char* op = "quantMatmul";
  checkArgc(info, 10, op);
  const int bits = static_cast<int>(i64(info, 0, op, "bits"));
  const int64_t G = i64(info, 1, op, "groupSize");
  auto x = arr<float>(info, 2, op, "x");
  const int64_t M = i64(info, 3, op, "M"), K = i64(info, 4, op, "K"), N = i64(info, 5, op, "N");
  auto q = arr<uint8_t>(info, 6, op, "q");
  auto scales = arr<uint16_t>(info, 7, op, "scales");
  const bool hasBias = !info[8].IsNull() && !info[8].IsUndefined();
  Arr<float> bias;
  if (hasBias) bias = arr<float>(info, 8, op, "bias");
  auto out = arr<float>(info, 9, op, "out");
  check(bits == 4 || bits == 8, std::string(op) + ": bits must be 4 or 8, got " + std::to_string(bits));
  check(G >= 32 && G % 32 == 0, std::string(op) + ": group size must be a positive multiple of 32, got " + std::to_string(G));
  check(M >= 0 && N >= 0 && K >= 0 && K % G == 0,
        std::string(op) + ": sizes M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N) +
            " (K must be a multiple of the group size " + std::to_string(G) + ")");
  need(x, M * K, op, "x");
  need(q, N * quant::row_bytes(bits, K), op, "q");
  need(scales, N * (K / G), op, "scales");
  if (hasBias) need(bias, N, op, "bias");
  need(out, M * N, op, "out");
  if (M == 0 || N == 0) return info.Env().Undefined();
  quant::QGemv g;
  g.bits = bits;
  g.G = G;
  g.K = K;
  g.N = N;
  g.x = x.ptr;
  g.ldx = K;
  g.q = q.ptr;
  g.scales = scales.ptr;
  g.out = out.ptr;
  g.ldo = N;
  g.bias = hasBias ? bias.ptr : nullptr;
  if (K == 0) {
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) out.ptr[m * N + n] = hasBias ? bias.ptr[n] : 0.0f;
  } else if (quant::amx_prefill_applies(g, M)) {
    quant::run_gemm_amx(g, M);
  } else if (M <= quant::kGemvMaxM || (quant::vnni_enabled() && quant::vnni_supported(bits, G, K))) {
    // With VNNI the 4-row int8 dot-product kernel is also the fastest prefill path
    // (measured on 11008x2048 int4: M = 64 in 7.6 ms vs 19.8 ms dequantise-then-GEMM, ~380 GFLOP/s).
    quant::run_gemv(g, M);
  } else {
    quant::run_gemm(g, M);
  }
  return info.Env().Undefined();
}

}  // namespace sv
