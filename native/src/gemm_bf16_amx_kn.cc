// AMX path of the bf16-compute GEMM (see gemm_bf16.h) for a weight stored
// [K, N] (op(B) = B): mixture-of-experts checkpoints on the Hub store their
// experts as [in, out], and we read them in place as views of the file.
//
// Why a second formulation: TDPBF16PS multiplies 32-bit words that hold a K
// pair. In a [K, N] weight the pair (k, k+1) of a column lies in rows k and
// k+1, so interleaving row pairs (16-bit unpacks, one shuffle per 64 bytes)
// makes the weight a tile B operand; the activations are the tile A operand
// and the tiles hold C itself. Transposing the weight into [N, K] rows for
// the other path took about five shuffles per 64 bytes and bound the MoE
// expert layers on port 5.
//
// Blocking: tasks = (column group) x (activation chunk of up to 512 rows).
// Inside a call already running on the pool (the grouped MoE kernel runs one
// expert per task) the group is the whole width, so the weight is read whole
// row after whole row, the pattern that streams at full bandwidth; otherwise
// the columns are split so every thread has work. Per depth block (about
// 768 KiB of interleaved weight, L2 resident) the group's row pairs are
// interleaved into tile order, then each 32-column strip runs against every
// 32-row block of the chunk; partial sums between depth blocks stay in tile
// layout in a per-thread buffer. Each C element's sum runs in the same K order
// whatever the blocking, so results do not depend on the thread count.
//
// Measured (dev VM, 2 threads, 128 experts x 32 rows as Hub views, one MoE layer): gate/up
// (2048 -> 2 x 768) 48-57 ms against 81 with the transposer and 44 with contiguous [out, in]
// copies; down (768 -> 2048) 23-25 ms against 41 and 21. Interleaving runs near the read
// bandwidth; what the copies still gain is the overlap of their memory stream with the tiles.
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
#include "gemm_bf16.h"
#include "threadpool.h"
#include <algorithm>
#include <cstdint>
#include <immintrin.h>

namespace sv {
namespace gemm {

namespace {

constexpr int64_t kStrip = 32;                // C columns per strip (two 16-column tiles)
constexpr int64_t kChunkTiles = 32;           // 16-row activation tiles per task at most (512 rows)
constexpr int64_t kBlockBytes = 768 << 10;    // interleaved weight per depth block
constexpr int64_t kPartBytes = 1 << 20;       // partial sums per task at most
constexpr int64_t kStepB = 2 * 512;           // uint16 per strip and step: two B tiles
constexpr int64_t kStepA = 512;               // uint16 per 16-row activation tile and step

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t m) { return cdiv(a, m) * m; }
inline __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

// The calling thread's packed activations (read by the pool's threads during its call);
// interleaved weight blocks and partial sums of whichever thread runs a task.
thread_local Buf tls_a, tls_b, tls_part;

// One 32-row x 32-column block of C over ns steps. Tiles: tmm0/1 = rows 0-15 x the strip's
// two column tiles, tmm2/3 = rows 16-31; tmm4/5 the weight tiles of a step, tmm6/7 the
// activation tiles of rows 0-15 / 16-31. Starts from `from` (tile layout) or zero, ends in `to`.
template <int MT>
void strip_block(const uint16_t* bt, const uint16_t* a0, const uint16_t* a1, int64_t ns, const float* from, float* to) {
  if (from) {
    _tile_loadd(0, from, 64);
    _tile_loadd(1, from + 256, 64);
    if (MT == 2) {
      _tile_loadd(2, from + 512, 64);
      _tile_loadd(3, from + 768, 64);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if (MT == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  for (int64_t s = 0; s < ns; s++) {
    _tile_loadd(4, bt + s * kStepB, 64);
    _tile_loadd(6, a0 + s * kStepA, 64);
    _tile_dpbf16ps(0, 6, 4);
    _tile_loadd(5, bt + s * kStepB + 512, 64);
    _tile_dpbf16ps(1, 6, 5);
    if (MT == 2) {
      _tile_loadd(7, a1 + s * kStepA, 64);
      _tile_dpbf16ps(2, 7, 4);
      _tile_dpbf16ps(3, 7, 5);
    }
  }
  _tile_stored(0, to, 64);
  _tile_stored(1, to + 256, 64);
  if (MT == 2) {
    _tile_stored(2, to + 512, 64);
    _tile_stored(3, to + 768, 64);
  }
}

struct Out {
  float* c;  // C at the block's row 0, strip column 0
  int64_t ldc, mr;
  int nvalid;
  float alpha, beta;
  const float* bias;  // at the strip's column 0, or null
};

// Writes C rows [0, mr) x columns [0, nvalid) of a 32x32 block from its tiles (acc, as strip_block
// stores them), putting the columns back in order: the first tile of a strip holds columns 8L+0..3
// of each 8-column group L, the second 8L+4..7.
void epilogue(const float* acc, int mts, const Out& o) {
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const __mmask16 m0 = lanes(o.nvalid), m1 = lanes(o.nvalid - 16);
  const __m512 va = _mm512_set1_ps(o.alpha), vb = _mm512_set1_ps(o.beta);
  const __m512 bias0 = o.bias ? _mm512_maskz_loadu_ps(m0, o.bias) : _mm512_setzero_ps();
  const __m512 bias1 = o.bias ? _mm512_maskz_loadu_ps(m1, o.bias + 16) : _mm512_setzero_ps();
  for (int j = 0; j < mts; j++) {
    const int64_t rows = std::min<int64_t>(16, o.mr - 16 * j);
    const float* lo = acc + 512 * j;
    const float* hi = lo + 256;
    for (int64_t q = 0; q < rows; q++) {
      const __m512 l = _mm512_load_ps(lo + 16 * q), h = _mm512_load_ps(hi + 16 * q);
      float* row = o.c + (16 * j + q) * o.ldc;
      __m512 v0 = _mm512_mul_ps(_mm512_permutex2var_ps(l, first, h), va);
      __m512 v1 = _mm512_mul_ps(_mm512_permutex2var_ps(l, second, h), va);
      if (o.beta != 0.0f) {
        v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), v0);
        v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), v1);
      }
      _mm512_mask_storeu_ps(row, m0, _mm512_add_ps(v0, bias0));
      _mm512_mask_storeu_ps(row + 16, m1, _mm512_add_ps(v1, bias1));
    }
  }
}


}  // namespace

void gemm_bf16_amx_kn(const GemmF32& g) {
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int64_t steps = cdiv(K, kAmxStepK), mtiles = cdiv(M, 16), apanel = steps * kStepA;
  // Balanced chunks of an even number of 16-row tiles.
  const int64_t ctiles = std::min(mtiles, round_up(cdiv(mtiles, cdiv(mtiles, kChunkTiles)), 2));
  const int64_t mchunks = cdiv(mtiles, ctiles), mpairs = cdiv(ctiles, 2);
  const bool nested = in_parallel_region();
  const int nt = nested ? 1 : num_threads();
  // Whole weight rows per task where the call is already one task of a pool job (MoE experts): measured
  // faster than narrower groups with deeper depth blocks for 32 and for 128 activation rows alike.
  int64_t group = N;
  if (nt > 1 && mchunks < 4 * nt) group = std::min(group, std::max(kStrip, round_up(cdiv(N, cdiv(4 * nt, mchunks)), kStrip)));
  while (group > kStrip && cdiv(group, kStrip) * mpairs * kAmxPartBlock * 4 > kPartBytes)
    group = round_up(cdiv(group, 2), kStrip);
  const int64_t groups = cdiv(N, group), tasks = groups * mchunks, gstrips = cdiv(group, kStrip);
  const int64_t kblocks = cdiv(steps, std::clamp<int64_t>(kBlockBytes / (gstrips * kStepB * 2), 1, steps));
  const int64_t bsteps = cdiv(steps, kblocks);
  const bool serial = nested || 2.0 * M * N * K < double(1 << 21);
  uint16_t* ap = reinterpret_cast<uint16_t*>(tls_a.get(static_cast<size_t>(mtiles * apanel / 2)));
  auto none = [] {};

  for (size_t item = 0; item < g.pA.size(); item++) {
    const float* a = g.a + g.pA[item];
    const uint16_t* b = static_cast<const uint16_t*>(g.b) + g.pB[item];
    float* c = g.c + g.pC[item];
    bf16_run_dynamic(mtiles, serial, none,
                     [&](int64_t t) { amx_pack_a_rows(a, g.lda, g.transA, M, K, t, steps, ap + t * apanel); }, none);
    auto run_task = [&](int64_t t) {
      const int64_t n0 = (t % groups) * group, cols = std::min(N, n0 + group) - n0, strips = cdiv(cols, kStrip);
      const int64_t mt0 = (t / groups) * ctiles, mtc = std::min(ctiles, mtiles - mt0), mp = cdiv(mtc, 2);
      uint16_t* bt = reinterpret_cast<uint16_t*>(tls_b.get(static_cast<size_t>(strips * bsteps * kStepB / 2)));
      float* part = kblocks > 1 ? reinterpret_cast<float*>(tls_part.get(static_cast<size_t>(strips * mp * kAmxPartBlock)))
                                : nullptr;
      alignas(64) float tmp[1024];
      for (int64_t kb = 0; kb < kblocks; kb++) {
        const int64_t s0 = kb * bsteps, ns = std::min(bsteps, steps - s0);
        const bool last = kb == kblocks - 1;
        amx_pack_b_pairs(b, g.ldb, K, n0, cols, s0, ns, bt);
        // The next block's rows, one line per 4 KiB of each, asked for while the tiles work on this block: the
        // L2 streamer follows each such start through its page, so the next interleaving pass finds its rows
        // on the way (one touch per row measured ~7% faster on 32-row experts; prefetching every line slower:
        // the fill buffers it holds starve the tile loads).
        const int64_t k1 = (s0 + ns) * kAmxStepK, nrows = last ? 0 : std::min(K, k1 + bsteps * kAmxStepK) - k1;
        const int64_t per_row = cdiv(cols * 2, 4096), ntouch = nrows * per_row;
        for (int64_t st = 0; st < strips; st++) {
          for (int64_t i = ntouch * st / strips; i < ntouch * (st + 1) / strips; i++)
            _mm_prefetch(reinterpret_cast<const char*>(b + (k1 + i / per_row) * g.ldb + n0) + (i % per_row) * 4096, _MM_HINT_T1);
          for (int64_t pi = 0; pi < mp; pi++) {
            const int64_t mt = mt0 + 2 * pi;
            const uint16_t* a0 = ap + mt * apanel + s0 * kStepA;
            // kAmxPartBlock floats per block: 4 KiB of tiles plus a line, so the next block's tile loads
            // do not alias (mod 4 KiB) the stores of this one still in flight.
            float* pb = part ? part + (st * mp + pi) * kAmxPartBlock : nullptr;
            const float* from = kb > 0 ? pb : nullptr;
            float* to = last ? tmp : pb;
            const int mts = mt + 1 < mt0 + mtc ? 2 : 1;
            if (mts == 2) strip_block<2>(bt + st * ns * kStepB, a0, a0 + apanel, ns, from, to);
            else strip_block<1>(bt + st * ns * kStepB, a0, nullptr, ns, from, to);
            if (!last) continue;
            const int64_t col = n0 + kStrip * st, row = 16 * mt;
            Out o{c + row * g.ldc + col, g.ldc, M - row, static_cast<int>(std::min<int64_t>(kStrip, n0 + cols - col)),
                  g.alpha, g.beta, g.bias ? g.bias + col : nullptr};
            epilogue(tmp, mts, o);
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
