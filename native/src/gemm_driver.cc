// The ISA-independent f32 GEMM driver: cache blocking, packing and work
// splitting around a KernelSet's microkernel.
//
// The depth (K, times the reduction items laid end to end) is cut into KC
// blocks, and those into "supers" of at most kSuperDepth. Per super, the MR-row
// panels of op(A) are packed (in "rounds" that fit a memory budget), then C is
// cut into tasks = (column group of G NR-wide strips) x (chunk of CP panels).
// A thread packs a column group's op(B) for the whole super once, into its own
// memory (the first chunk packs it block by block, as it gets there), and keeps
// it while it works through that group's chunks. Inside a chunk, for each KC
// block, every A panel (the broadcast operand, in L1) runs against all G strips
// (the vector operand, from L2), as in BLIS; the chunk's C tile (CP*MR rows x
// G*NR columns) stays in L1/L2 across the KC blocks.
//
// Work splitting is dynamic: a thread claims a whole column group, takes its
// chunks from that group's counter, and when no group is left it helps with
// the chunks other threads have not reached yet. Nothing waits on anything
// but the end of the parallel region.
#include "gemm.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>

namespace sv {
namespace gemm {

float* Scratch::get(size_t n) {
  if (n <= cap) return p;
  std::free(p);
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) {
    cap = 0;
    throw std::bad_alloc();
  }
  cap = n;
  return p;
}
Scratch::~Scratch() { std::free(p); }

namespace {

constexpr int64_t kPackedABudget = int64_t(4) << 20;  // floats (16 MiB) of packed A per round
// Depth packed at once: keeps a column group's packed B (G*NR*depth floats,
// 512 KiB for the AVX-512 set) and a chunk's A panels within L2; deeper supers
// measured 5-20% slower for K >= 2048 (B spilling to L3).
constexpr int64_t kSuperDepth = 1024;
constexpr int64_t kPackedBBudget = int64_t(1) << 20;  // floats (4 MiB) of packed B per thread

thread_local Scratch tls_packed_a;  // owned by the thread that calls the GEMM

// The column group whose packed B a thread holds (reused across chunks); its
// first `blocks` depth blocks are packed.
struct PackedB {
  Scratch buf;
  uint64_t call = 0;
  int64_t super = -1, p = -1, grp = -1, blocks = 0;
};

thread_local PackedB tls_packed_b;
std::atomic<uint64_t> g_call_id{1};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Below this many flops one thread finishes before the pool would wake up.
constexpr double kSerialFlops = 1 << 21;

// Runs f(t) for t in [0, n), tasks claimed dynamically by the pool's threads.
template <typename F>
void run_tasks_dynamic(int64_t n, bool serial, F&& f) {
  if (serial || n <= 1 || num_threads() == 1) {
    for (int64_t t = 0; t < n; t++) f(t);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(num_threads(), n), 1, [&](int64_t, int64_t) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(t);
  });
}

// Runs body() on every pool thread (body claims its own work until none is left).
// Scratch allocation is the only thing that can throw; a worker must not let an
// exception escape, so it is reported and rethrown on the calling thread.
template <typename F>
void run_on_pool(bool serial, F&& body) {
  const int nt = num_threads();
  if (serial || nt == 1) return body();
  std::atomic<bool> failed{false};
  parallel_for(nt, 1, [&](int64_t, int64_t) {
    try {
      body();
    } catch (const std::bad_alloc&) {
      failed.store(true);
    }
  });
  if (failed.load()) throw std::bad_alloc();
}

struct Block {  // one KC block of the depth
  int64_t r, k0, kc, d0;  // reduction item, start within K, length, offset within its super
};

struct Segment {  // the panels of one parallel item that belong to a round
  int64_t p;       // parallel item
  int64_t q0, q1;  // panel range within the item
  int64_t slot0;   // index of panel q0 in the round's packed-A buffer
};

}  // namespace

void gemm_f32_packed(const GemmF32& g, const KernelSet& ks) {
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int MR = ks.MR, NR = ks.NR;
  const int64_t KC = ks.KC;
  const int64_t P = static_cast<int64_t>(g.pA.size()), R = static_cast<int64_t>(g.rA.size());
  const int64_t panels = ceil_div(M, MR);  // per parallel item
  const int64_t total_panels = P * panels;
  const PackBFn packB = g.btype == B_BF16 ? ks.packB_bf16 : ks.packB_f32;
  const int bsize = g.btype == B_BF16 ? 2 : 4;
  const uint64_t call = g_call_id.fetch_add(1);
  const bool serial = 2.0 * P * M * N * K * R < kSerialFlops;

  // Depth blocks, grouped into supers.
  std::vector<std::vector<Block>> supers(1);
  int64_t depth = 0;
  for (int64_t r = 0; r < R; r++)
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      if (depth + kc > kSuperDepth && !supers.back().empty()) {
        supers.emplace_back();
        depth = 0;
      }
      supers.back().push_back({r, k0, kc, depth});
      depth += kc;
    }

  for (int64_t si = 0; si < static_cast<int64_t>(supers.size()); si++) {
    const std::vector<Block>& blocks = supers[si];
    const int64_t sdepth = blocks.back().d0 + blocks.back().kc;
    const int64_t panel_floats = MR * sdepth;
    const int64_t per_round = std::max<int64_t>(1, kPackedABudget / panel_floats);
    // Strips per column group: as many as the per-thread packed-B budget allows.
    const int64_t G = std::max<int64_t>(1, std::min<int64_t>(ks.G, kPackedBBudget / (NR * sdepth)));
    const int64_t groups_per_item = ceil_div(N, NR * G);
    // Microkernel steps: consecutive blocks merged up to KC deep (packed depth is
    // contiguous), so many short reduction items do not mean many short calls.
    struct Step { int64_t end, d0, kc; };  // blocks [.., end) are needed; depth [d0, d0+kc)
    std::vector<Step> steps;
    for (size_t bi = 0; bi < blocks.size(); bi++) {
      if (!steps.empty() && steps.back().kc + blocks[bi].kc <= KC) {
        steps.back().kc += blocks[bi].kc;
        steps.back().end = static_cast<int64_t>(bi) + 1;
      } else {
        steps.push_back({static_cast<int64_t>(bi) + 1, blocks[bi].d0, blocks[bi].kc});
      }
    }

    for (int64_t start = 0; start < total_panels; start += per_round) {
      const int64_t end = std::min(total_panels, start + per_round);
      float* ap = tls_packed_a.get(static_cast<size_t>((end - start) * panel_floats));

      // 1. Pack op(A): panel s of the round is [sdepth][mr] at ap + s * panel_floats.
      run_tasks_dynamic(end - start, serial, [&](int64_t s) {
        const int64_t q = start + s, p = q / panels, i0 = (q % panels) * MR;
        const int mr = static_cast<int>(std::min<int64_t>(MR, M - i0));
        float* dst = ap + s * panel_floats;
        for (const Block& b : blocks)
          ks.packA(g.a + g.pA[p] + g.rA[b.r], g.lda, g.transA, i0, mr, b.k0, b.kc, dst + b.d0 * mr);
      });

      // 2. The round's segments; column groups per segment; chunks per group.
      std::vector<Segment> segs;
      for (int64_t q = start; q < end;) {
        const int64_t p = q / panels, q0 = q % panels, q1 = std::min(panels, q0 + (end - q));
        segs.push_back({p, q0, q1, q - start});
        q += q1 - q0;
      }
      const int64_t ngroups = static_cast<int64_t>(segs.size()) * groups_per_item;
      std::vector<int64_t> nchunks(ngroups);
      for (int64_t gi = 0; gi < ngroups; gi++) {
        const Segment& sg = segs[gi / groups_per_item];
        nchunks[gi] = ceil_div(sg.q1 - sg.q0, ks.CP);
      }
      std::unique_ptr<std::atomic<int64_t>[]> next_chunk(new std::atomic<int64_t>[ngroups]);
      for (int64_t gi = 0; gi < ngroups; gi++) next_chunk[gi].store(0);
      std::atomic<int64_t> next_group{0};

      // Runs chunk c of group gi on the calling thread.
      auto run_chunk = [&](int64_t gi, int64_t c) {
        const Segment& sg = segs[gi / groups_per_item];
        const int64_t grp = gi % groups_per_item;
        const int64_t j0 = grp * NR * G;
        const int64_t nstrips = std::min<int64_t>(G, ceil_div(N - j0, NR));
        const int64_t strip_floats = sdepth * NR;
        PackedB& pb = tls_packed_b;
        float* bp = pb.buf.get(static_cast<size_t>(G * strip_floats));
        if (pb.call != call || pb.super != si || pb.p != sg.p || pb.grp != grp) {
          pb.call = call;
          pb.super = si;
          pb.p = sg.p;
          pb.grp = grp;
          pb.blocks = 0;  // packed lazily, block by block, by the first chunk below
        }
        const int64_t ncols = std::min(N - j0, G * NR);
        const char* bitem = static_cast<const char*>(g.b) + g.pB[sg.p] * bsize;
        const int64_t qa = sg.q0 + c * ks.CP, qb = std::min(sg.q1, qa + ks.CP);
        float* cbase = g.c + g.pC[sg.p];
        for (const Step& b : steps) {
          for (; pb.blocks < b.end; pb.blocks++) {
            const Block& pk = blocks[pb.blocks];
            packB(bitem + g.rB[pk.r] * bsize, g.ldb, g.transB, pk.k0, pk.kc, j0, ncols, bp + pk.d0 * NR, strip_floats);
          }
          const bool first = si == 0 && b.d0 == 0;
          const float beta = first ? g.beta : 1.0f;
          for (int64_t q = qa; q < qb; q++) {
            const int64_t i0 = q * MR;
            const int mr = static_cast<int>(std::min<int64_t>(MR, M - i0));
            const float* a = ap + (sg.slot0 + q - sg.q0) * panel_floats + b.d0 * mr;
            for (int64_t s = 0; s < nstrips; s++) {
              const int64_t js = j0 + s * NR;
              const int nvalid = static_cast<int>(std::min<int64_t>(NR, N - js));
              const float* bias = first && g.bias ? g.bias + js : nullptr;
              ks.ukr[mr](b.kc, a, bp + s * strip_floats + b.d0 * NR, cbase + i0 * g.ldc + js, g.ldc, nvalid,
                         g.alpha, beta, bias);
            }
          }
        }
      };

      run_on_pool(serial, [&] {
        // Own groups first (their packed B is reused chunk after chunk) ...
        for (int64_t gi; (gi = next_group.fetch_add(1)) < ngroups;)
          for (int64_t c; (c = next_chunk[gi].fetch_add(1)) < nchunks[gi];) run_chunk(gi, c);
        // ... then help with what is left of the others'.
        for (int64_t gi = 0; gi < ngroups; gi++)
          for (int64_t c; (c = next_chunk[gi].fetch_add(1)) < nchunks[gi];) run_chunk(gi, c);
      });
    }
  }
}

}  // namespace gemm
}  // namespace sv
