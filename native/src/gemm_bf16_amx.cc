// AMX path of the opt-in bf16-compute GEMM (see gemm_bf16.h): activations
// rounded to bf16, K pairs multiplied by TDPBF16PS, f32 accumulation.
//
// Why transposed: the weight W = op(B)^T is [N][K] bf16 ("linear" layout), so
// the pair (k, k+1) of one output column is already one 32-bit word of W's
// row. W is therefore the tile A operand read in place (16 rows of W per
// tile, any row stride) and nothing of it is repacked; the activations, small
// next to W in prefill, are packed once per call as tile B operands
// (gemm_bf16_amx_pack.cc). The tiles hold C^T, transposed back in the
// epilogue (gemm_bf16_amx_kernel.cc). A [K, N]-stored B (the Hub's MoE
// experts) takes the other formulation, gemm_bf16_amx_kn.cc.
//
// Blocking: C is cut into tasks = (group of up to 256 W rows) x (chunk of up to
// 512 rows of op(A), sized so the chunk's packed depth block is ~1 MiB),
// claimed dynamically by the pool. A chunk's activations are packed by the
// first tasks that reach it (their threads share its 16-row tiles). Inside a
// task the depth is cut into blocks of at most 2048 K values; per block, each
// 32-row W panel (streamed from memory once, the next panel prefetched into L2
// meanwhile, then reused from L2) runs against every 32-row block of the
// chunk's packed activations (L2-resident for the whole group). Partial sums
// between depth blocks stay in tile layout in a per-thread buffer; the last
// block applies alpha, beta and bias, with streaming stores for a large C.
// Each C element's sum is computed in the same order whatever the blocking and
// the thread count, so results do not depend on either.
//
// Measured (dev VM, 1 thread, best of runs): ~1.1-1.2 TFLOP/s on prefill
// shapes, ~2x that on 2 threads; the tile loads, not TDPBF16PS, bound it (the
// same loop without loads ran ~2x faster, with operands in L1 ~1.35x).
#include "gemm_bf16.h"
#include "epilogue_rows.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <immintrin.h>
#include <memory>
#include <thread>
#include <cpuid.h>
#include <cstdint>
#include <sys/syscall.h>
#include <unistd.h>

namespace sv {
namespace gemm {

namespace {

constexpr int64_t kPanelRows = 32;        // W rows per panel (two tiles)
constexpr int64_t kBlockSteps = 64;       // depth block: at most 64 steps = 2048 K values
constexpr int64_t kChunkBytes = 1 << 20;  // packed activations per task (see chunk_rows)
constexpr int64_t kGroupRows = 256;       // W rows per task at most
constexpr int64_t kStreamBytes = int64_t(16) << 20;  // C larger than this (and beta 0): streaming stores

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Owned by the thread that calls the GEMM (packed activations);
// used by the pool's threads during that call only.
thread_local Buf tls_x;
// Task scratch of whichever thread runs the task.
thread_local Buf tls_part, tls_wpad, tls_wtail, tls_gate;

bool detect_amx() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
  if (!tile || !bf16) return false;
  // Linux gives a process AMX tile data state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

}  // namespace

bool bf16_amx_available() {
  static const bool ok = detect_amx();
  return ok;
}

void gemm_bf16_amx(const GemmF32& g) {
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || K <= 0) return;
  if (!g.transB) return gemm_bf16_amx_kn(g);  // a [K, N]-stored weight: the tile B operand (gemm_bf16_amx_kn.cc)
  const int64_t steps = ceil_div(K, kAmxStepK);
  const int64_t mtiles = ceil_div(M, 16), xpanel = steps * 256;  // uint32 per packed 16-row tile
  const int64_t kblocks = ceil_div(steps, kBlockSteps), bsteps = ceil_div(steps, kblocks);
  // Activation rows per task: the chunk's packed depth block (rows x block K x 2 bytes) fills about half of L2,
  // so it stays there while the task's W panels stream past; more rows = fewer passes over W.
  const int64_t chunk_rows = std::clamp<int64_t>(kChunkBytes / (2 * bsteps * kAmxStepK) / 32 * 32, 64, 512);
  const int64_t ctiles = std::min(mtiles, ceil_div(ceil_div(mtiles, ceil_div(mtiles, chunk_rows / 16)), 2) * 2);
  const int64_t mchunks = ceil_div(mtiles, ctiles);  // balanced chunks of an even number of 16-row tiles
  // Smaller W groups when there would be too few tasks to keep every thread busy.
  int64_t group = kGroupRows;
  while (group > kPanelRows && ceil_div(N, group) * mchunks < 4 * num_threads()) group /= 2;
  const int64_t groups = ceil_div(N, group), tasks = groups * mchunks;
  const bool serial = 2.0 * M * N * K < double(1 << 21);
  // Activation chunks per task round (see run_task); one where the tasks run on this thread alone.
  const int64_t cpr = serial || in_parallel_region() ? 1 : std::min<int64_t>(num_threads(), mchunks);
  // A C much larger than L2 written once (beta 0) is not worth the read-for-ownership of its lines.
  // Streaming only where every C row segment (32 columns from a multiple of 32) starts on a cache line.
  const bool stream = g.beta == 0.0f && 4.0 * M * N > double(kStreamBytes) && g.ldc % 16 == 0 &&
                      std::all_of(g.pC.begin(), g.pC.end(),
                                  [&](int64_t off) { return (reinterpret_cast<uintptr_t>(g.c + off) & 63) == 0; });
  uint32_t* xp = tls_x.get(static_cast<size_t>(mtiles * xpanel));

  for (size_t item = 0; item < g.pA.size(); item++) {
    const float* a = g.a + g.pA[item];
    const uint16_t* b = static_cast<const uint16_t*>(g.b) + g.pB[item];
    float* c = g.c + g.pC[item];
    const uint16_t* w = b;
    const int64_t wld = g.ldb;
    // Activations are packed chunk by chunk by the first tasks that need them (their threads share the chunk's
    // 16-row tiles), so reading op(A) from memory overlaps the other thread's tile work.
    std::unique_ptr<std::atomic<int64_t>[]> claimed(new std::atomic<int64_t>[mchunks]);
    std::unique_ptr<std::atomic<int64_t>[]> packed(new std::atomic<int64_t>[mchunks]);
    for (int64_t ci = 0; ci < mchunks; ci++) {
      claimed[ci].store(0);
      packed[ci].store(0);
    }
    auto ensure_packed = [&](int64_t ci) {
      const int64_t mt0 = ci * ctiles, mtc = std::min(ctiles, mtiles - mt0);
      if (packed[ci].load(std::memory_order_acquire) == mtc) return;
      for (int64_t t; (t = claimed[ci].fetch_add(1)) < mtc;) {
        amx_pack_x(a, g.lda, g.transA, M, K, mt0 + t, steps, xp + (mt0 + t) * xpanel);
        packed[ci].fetch_add(1, std::memory_order_release);
      }
      for (int spins = 0; packed[ci].load(std::memory_order_acquire) < mtc; spins++) {
        if (spins < 4096) _mm_pause();
        else std::this_thread::yield();  // the packer was descheduled
      }
    };

    // Fused gate/up (g.up): each panel runs once against the gate weight into a scratch block, once against
    // the up weight into C, and SwiGLU combines the two while the block is still in cache.
    const uint16_t* wup = g.up ? static_cast<const uint16_t*>(g.up) + g.pB[item] : nullptr;
    auto run_task = [&](int64_t t) {
      // Tasks in rounds of one activation chunk per thread, W groups outer within a round: the threads
      // claim alternately, so each keeps working on its own chunk (packed, in its L2) while they walk the
      // same W groups together and one read of a group from memory serves both (Qwen2.5-VL-3B prefill,
      // where W is read once per chunk: 0-6% faster than a chunk at a time in three paired runs).
      const int64_t round = t / (groups * cpr), c0 = round * cpr, nc = std::min(cpr, mchunks - c0);
      const int64_t r = t - round * groups * cpr;
      const int64_t gi = r / nc, ci = c0 + r % nc;
      ensure_packed(ci);
      const int64_t n0 = gi * group, n1 = std::min(N, n0 + group);
      const int64_t mt0 = ci * ctiles, mtc = std::min(ctiles, mtiles - mt0), m0 = 16 * mt0;
      const int64_t mr = std::min(M - m0, 16 * mtc);
      const int64_t panels = ceil_div(n1 - n0, kPanelRows), part_per_panel = ceil_div(mtc, 2) * kAmxPartBlock;
      const int nw = wup ? 2 : 1;  // weights per panel
      float* part = kblocks > 1
                        ? reinterpret_cast<float*>(tls_part.get(static_cast<size_t>(nw * panels * part_per_panel)))
                        : nullptr;
      float* gate_block = wup ? reinterpret_cast<float*>(tls_gate.get(static_cast<size_t>(mr * kPanelRows))) : nullptr;
      uint16_t* wtail = reinterpret_cast<uint16_t*>(tls_wtail.get(kPanelRows * kAmxStepK / 2));
      for (int64_t kb = 0; kb < kblocks; kb++) {
        const int64_t s0 = kb * bsteps, ns = std::min(bsteps, steps - s0);
        const int64_t k0 = s0 * kAmxStepK, kv = std::min(ns * kAmxStepK, K - k0);
        const bool last = kb == kblocks - 1;
        for (int64_t pi = 0; pi < panels; pi++) {
          const int64_t pn0 = n0 + pi * kPanelRows;
          const int prow = static_cast<int>(std::min<int64_t>(kPanelRows, N - pn0));
          for (int wi = 0; wi < nw; wi++) {
            const uint16_t* wm = wi == 0 ? w : wup;  // this pass's weight
            const uint16_t* wrows = wm + pn0 * wld;
            AmxPanel p;
            if (prow < kPanelRows) {  // rows past N do not exist: padded copy of the panel's block
              const int64_t dld = ns * kAmxStepK;
              uint16_t* wpad = reinterpret_cast<uint16_t*>(tls_wpad.get(static_cast<size_t>(kPanelRows * dld / 2)));
              amx_copy_w(wrows, wld, prow, k0, kv, wpad, dld);
              p.w = wpad;
              p.wld = dld;
              p.steps = ns;
            } else {
              p.w = wrows + k0;
              p.wld = wld;
              p.steps = kv / kAmxStepK;
              if (p.steps < ns) {  // ragged last step: reading in place would run past the row
                amx_copy_w(wrows, wld, prow, k0 + p.steps * kAmxStepK, kv - p.steps * kAmxStepK, wtail, kAmxStepK);
                p.tail = wtail;
              }
            }
            // Prefetched meanwhile: the up panel of the same rows after the gate pass, else the next panel.
            const uint16_t* next = wi + 1 < nw ? wup + pn0 * wld
                                   : pi + 1 < panels && pn0 + 2 * kPanelRows <= N ? w + (pn0 + kPanelRows) * wld
                                                                                  : nullptr;
            if (next && prow == kPanelRows) {
              p.next = reinterpret_cast<const char*>(next + k0);
              p.next_ld = wld * 2;
              p.next_rows = kPanelRows;
              p.next_bytes = kv * 2;
            }
            AmxOut o;
            const bool to_gate = wi == 0 && wup;
            o.c = to_gate ? gate_block : c + m0 * g.ldc + pn0;
            o.ldc = to_gate ? kPanelRows : g.ldc;
            o.mr = mr;
            o.nvalid = prow;
            o.alpha = g.alpha;
            o.beta = g.beta;
            const float* bias = wi == 0 ? g.bias : g.up_bias;
            o.bias = bias ? bias + pn0 : nullptr;
            o.stream = stream && !wup && !g.act;  // the fused epilogues read C back
            float* pp = part ? part + (wi * panels + pi) * part_per_panel : nullptr;
            amx_panel_run(p, xp + mt0 * xpanel + s0 * 256, xpanel, mtc, pp, kb > 0, last ? &o : nullptr);
          }
          if (last && (wup || g.act)) {
            float* cb = c + m0 * g.ldc + pn0;
            if (wup) swiglu_rows_f32(gate_block, kPanelRows, cb, g.ldc, cb, g.ldc, mr, prow);
            else act_rows_f32(cb, g.ldc, mr, prow, g.act);
          }
        }
      }
    };
    // Tiles are configured per participating thread, around all of its tasks.
    bf16_run_dynamic(tasks, serial, amx_tiles_configure, run_task, amx_tiles_release);
  }
}

}  // namespace gemm
}  // namespace sv
