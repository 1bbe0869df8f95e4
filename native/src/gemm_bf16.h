// Opt-in bf16-compute GEMM for f32 activations x bf16 weights (AVX512-BF16).
// Activations are rounded to bf16 (round to nearest even) while A is packed;
// products run through vdpbf16ps with f32 accumulation and f32 output. Off by
// default: setMatmulPrecision('bf16') or SEEDVL_MATMUL_PRECISION=bf16 turns it on.
#pragma once
#include "gemm.h"
#include "threadpool.h"
#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <atomic>
#include <new>

namespace sv {
namespace gemm {

// 64-byte aligned, grow-only packing buffer of uint32 (one per thread per kernel file).
struct Buf {  // 64-byte aligned grow-only buffer of uint32
  uint32_t* p = nullptr;
  size_t cap = 0;
  uint32_t* get(size_t n) {
    if (n <= cap) return p;
    std::free(p);
    p = static_cast<uint32_t*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64));
    if (!p) {
      cap = 0;
      throw std::bad_alloc();
    }
    cap = n;
    return p;
  }
  ~Buf() { std::free(p); }
};

// True when the switch is 'bf16', the CPU has avx512_bf16, the ISA cap allows
// AVX-512, B is bf16 and there are no reduction items: the bf16 path can run g.
bool bf16_gemm_applies(const GemmF32& g);
// C = alpha * bf16(op(A)) op(B) + beta * C + bias, per parallel item. Runs on
// AMX tiles where the CPU and the OS allow them (and bf16_use_amx), else on
// AVX512-BF16 vdpbf16ps.
void gemm_bf16_compute(const GemmF32& g);

// ---- shared by the vdpbf16ps path (gemm_bf16.cc) and the AMX path (gemm_bf16_amx.cc)

// B strips are 32 columns of K pairs: [kp_pad][32] uint32.
constexpr int kBf16StripN = 32;
// Packs op(B) rows (K) [k0, k0+2*kp) x columns [j0, j0+32) into dst[kp_pad][32];
// columns past N, the K value past K and pairs [kp, kp_pad) are zero.
void bf16_pack_b_strip(const uint16_t* b, int64_t ldb, bool transB, int64_t K, int64_t N, int64_t k0, int64_t kp,
                       int64_t kp_pad, int64_t j0, uint32_t* dst);
// f32 -> bf16, round to nearest even (denormals kept); NaN stays a quiet NaN.
uint16_t bf16_round(float f);

// AMX path: true when the CPU has amx_tile + amx_bf16 and the kernel granted
// the tile data permission (asked once per process).
bool bf16_amx_available();
// Tests compare both kernels: false forces the vdpbf16ps path.
extern bool bf16_use_amx;
void gemm_bf16_amx(const GemmF32& g);

// ---- pieces of the AMX path (gemm_bf16_amx*.cc), see gemm_bf16_amx.cc for the design
// The product is computed transposed, C^T = W · X^T: the weight rows (op(B)^T,
// [N][K] bf16) are the tile A operand read in place, the activations are
// packed as the tile B operand. A tile step covers 32 K values (16 pairs).
constexpr int64_t kAmxStepK = 32;
// Packs m-tile mt (rows 16*mt .. +16 of op(A)) for all `steps` K steps into
// dst[steps][16 pairs][16 rows] uint32 (each step one 1 KiB tile), rounding to
// bf16; rows past M and K values past K are zero.
void amx_pack_x(const float* a, int64_t lda, bool transA, int64_t M, int64_t K, int64_t mt, int64_t steps,
                uint32_t* dst);
// Copies K values [k0, k0+kv) of `rows` weight rows (row stride wld) into
// dst[32][dld] (dld >= kv), zero-filling columns past kv and rows past `rows`.
void amx_copy_w(const uint16_t* w, int64_t wld, int rows, int64_t k0, int64_t kv, uint16_t* dst, int64_t dld);

// ---- the [K, N]-stored weight path (gemm_bf16_amx_kn.cc): the weight is the tile B operand.
// A [K, N] weight's K pairs are its row pairs: packing interleaves rows k and k+1 (whole rows, one
// unpack per 64 bytes), the activations are the tile A operand and the tiles hold C itself.
void gemm_bf16_amx_kn(const GemmF32& g);
// Packs m-tile mt (rows 16*mt .. +16 of op(A)) for all `steps` K steps as tile A operands into
// dst[steps][16 rows][32] bf16 (one 1 KiB tile per step), rounding to bf16; rows past M and K
// values past K are zero.
void amx_pack_a_rows(const float* a, int64_t lda, bool transA, int64_t M, int64_t K, int64_t mt, int64_t steps,
                     uint16_t* dst);
// Packs the depth block of K steps [s0, s0+ns) x columns [n0, n0+cols) of a [K][N] bf16 weight (row
// stride ldb) as tile B operands: strip st (32 columns) at step s is the pair of tiles at
// dst + (st*ns + s)*1024, each [16 K pairs][16 columns][2]; the first holds columns 8L+0..3, the
// second 8L+4..7, of each 8-column group L (the order of the 16-bit unpacks; the epilogue puts the
// columns back). K past K and columns past cols are zero.
void amx_pack_b_pairs(const uint16_t* b, int64_t ldb, int64_t K, int64_t n0, int64_t cols, int64_t s0, int64_t ns,
                      uint16_t* dst);

// One weight panel (32 rows = two 16-row tiles) over a depth block: `steps`
// steps read in place from w (row stride wld elements), then, when tail is not
// null, one step from tail ([32][32] values, zero-padded).
struct AmxPanel {
  const uint16_t* w = nullptr;
  int64_t wld = 0, steps = 0;
  const uint16_t* tail = nullptr;
  // The next panel's block, fetched into L2 a few lines per step while this one runs
  // (its first pass would otherwise wait on memory): rows x bytes from next (row stride next_ld bytes).
  const char* next = nullptr;
  int64_t next_ld = 0, next_rows = 0, next_bytes = 0;
};

// Where the last depth block writes: C rows [0, mr) of the chunk (c points at
// its row 0, column n0), columns [0, nvalid) of the panel.
struct AmxOut {
  float* c = nullptr;
  int64_t ldc = 0, mr = 0;
  int nvalid = 0;
  float alpha = 1, beta = 0;
  const float* bias = nullptr;  // at column n0, or null
  bool stream = false;          // C is large and not read (beta 0): non-temporal stores
};
// Runs the panel against m-tiles [0, mtiles) of x (packed X, tile t at
// x + t*xpanel, already at the block's first step), 32 rows at a time. part:
// per 32-row block kAmxPartBlock f32 partial sums in tile layout; load_part adds
// them in; out null stores the sums to part, else the epilogue writes C.
// Tiles must be configured (amx_tiles_configure) on the calling thread.
constexpr int64_t kAmxPartBlock = 1024 + 16;  // floats of partial sums per 32-row block (see the kernel)
void amx_panel_run(const AmxPanel& p, const uint32_t* x, int64_t xpanel, int64_t mtiles, float* part, bool load_part,
                   const AmxOut* out);
void amx_tiles_configure();
void amx_tiles_release();

// Runs task(t) for t in [0, n), claimed dynamically from our own counter;
// each participating thread calls enter() before its first task and leave()
// after its last (AMX tile configuration). The pool job always has
// min(threads, n) chunks, as in gemm_driver.cc: consecutive pool jobs whose
// chunk counts differ can let a late worker run a chunk twice (pool race, see
// the report), which a job of claim-loops survives. bad_alloc from a worker is
// rethrown on the caller.
template <typename Enter, typename Task, typename Leave>
void bf16_run_dynamic(int64_t n, bool serial, Enter&& enter, Task&& task, Leave&& leave) {
  if (n <= 0) return;
  if (serial || n == 1 || num_threads() == 1) {
    enter();
    for (int64_t t = 0; t < n; t++) task(t);
    leave();
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  parallel_for(std::min<int64_t>(num_threads(), n), 1, [&](int64_t, int64_t) {
    try {
      int64_t t = next.fetch_add(1);
      if (t >= n) return;
      enter();
      for (; t < n; t = next.fetch_add(1)) task(t);
      leave();
    } catch (const std::bad_alloc&) {
      failed.store(true);
    }
  });
  if (failed.load()) throw std::bad_alloc();
}

}  // namespace gemm
}  // namespace sv
