// The AMX microkernel of the bf16-compute GEMM (see gemm_bf16_amx.cc): one
// 32-row weight panel against the packed activations, 32 C^T columns (= C
// rows) at a time, and the transposing epilogue that writes C.
//
// Tile registers: tmm0..3 accumulate C^T (tmm0 = panel rows 0-15 x m 0-15,
// tmm1 = rows 0-15 x m 16-31, tmm2/3 the same for rows 16-31); tmm4/5 hold
// the two weight tiles of a step (loaded straight from the weight, any row
// stride), tmm6/7 the two activation tiles (packed, 1 KiB each).
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,prfchw")
#include "gemm_bf16.h"
#include <algorithm>
#include <cstdlib>
#include <immintrin.h>

namespace sv {
namespace gemm {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// In-register transpose of a 16x16 block of 32-bit lanes: r[i][j] -> r[j][i].
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // u[4g+q], lane L: rows 4g..4g+3 at column 4L+q.
  for (int g = 0; g < 4; g++) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int q = 0; q < 4; q++) {
    const __m512 v = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), w = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD);
    const __m512 x = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88), y = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
    r[q] = _mm512_shuffle_f32x4(v, x, 0x88);       // column q      (lane 0)
    r[8 + q] = _mm512_shuffle_f32x4(v, x, 0xDD);   // column 8 + q  (lane 2)
    r[4 + q] = _mm512_shuffle_f32x4(w, y, 0x88);   // column 4 + q  (lane 1)
    r[12 + q] = _mm512_shuffle_f32x4(w, y, 0xDD);  // column 12 + q (lane 3)
  }
}

inline int64_t ceil_div_(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline __mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

// acc: the four C^T tiles (1 KiB each, tile t at acc + 256*t). Writes C rows
// [0, mr) (mr <= 32) x columns [0, nvalid) (<= 32) of this 32x32 block.
void epilogue(const float* acc, int mts, const AmxOut& o, float* c, int64_t mr) {
  const __m512 va = _mm512_set1_ps(o.alpha), vb = _mm512_set1_ps(o.beta);
  for (int i = 0; i < 2; i++) {  // panel rows 16i.. = C columns
    const __mmask16 m = lanes(o.nvalid - 16 * i);
    if (!m) break;
    const __m512 bias = o.bias ? _mm512_maskz_loadu_ps(m, o.bias + 16 * i) : _mm512_setzero_ps();
    for (int j = 0; j < mts; j++) {  // m-tile = C rows 16j..
      const int rows = static_cast<int>(std::min<int64_t>(16, mr - 16 * j));
      if (rows <= 0) break;
      __m512 r[16];
      const float* t = acc + 256 * (2 * i + j);
      for (int q = 0; q < 16; q++) r[q] = _mm512_load_ps(t + 16 * q);
      transpose16(r);
      for (int q = 0; q < rows; q++) {
        float* row = c + (16 * j + q) * o.ldc + 16 * i;
        __m512 v = _mm512_mul_ps(r[q], va);
        if (o.beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, row), v);
        v = _mm512_add_ps(v, bias);
        if (o.stream && m == 0xffff && (reinterpret_cast<uintptr_t>(row) & 63) == 0) _mm512_stream_ps(row, v);
        else _mm512_mask_storeu_ps(row, m, v);
      }
    }
  }
}

// C rows a block prefetches for writing, one row per tile step.
struct CPrefetch {
  const char* c = nullptr;  // first C row of the block, or null
  int64_t ld = 0, rows = 0, last = 0;  // row stride (bytes), rows, offset of a row's last byte
  void row(int64_t q) const {
    const char* r = c + q * ld;
    __builtin_prefetch(r, 1, 3);
    __builtin_prefetch(r + 64, 1, 3);
    __builtin_prefetch(r + last, 1, 3);
  }
};

// Walks the next panel's lines (row by row) for prefetching into L2.
struct NextPanel {
  const char* row;
  int64_t ld, rows, bytes, r = 0, off = 0;
  NextPanel(const AmxPanel& p) : row(p.next), ld(p.next_ld), rows(p.next ? p.next_rows : 0), bytes(p.next_bytes) {}
  void fetch(int n) {
    for (; n > 0 && r < rows; n--) {
      _mm_prefetch(row + off, _MM_HINT_T1);
      off += 64;
      if (off >= bytes) {
        off = 0;
        r++;
        row += ld;
      }
    }
  }
};

// One 32-row x (16*MT)-column block of C^T over the panel's depth: starts from
// `from` (tile layout) or zero, ends in `to`.
template <int MT>
void block(const AmxPanel& p, const uint32_t* x0, const uint32_t* x1, const float* from, float* to,
           const CPrefetch& pf, NextPanel& np, int per_step) {
  if (from) {
    _tile_loadd(0, from, 64);
    _tile_loadd(2, from + 512, 64);
    if (MT == 2) {
      _tile_loadd(1, from + 256, 64);
      _tile_loadd(3, from + 768, 64);
    }
  } else {
    _tile_zero(0);
    _tile_zero(2);
    if (MT == 2) {
      _tile_zero(1);
      _tile_zero(3);
    }
  }
  const long ws = p.wld * 2;
  const uint16_t* w0 = p.w;
  const uint16_t* w1 = p.w + 16 * p.wld;
  const int64_t pf_rows = pf.c ? pf.rows : 0;
  for (int64_t s = 0; s < p.steps; s++) {
    if (s < pf_rows) pf.row(s);
    np.fetch(per_step);
    _tile_loadd(4, w0 + s * kAmxStepK, ws);
    _tile_loadd(6, x0 + s * 256, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(5, w1 + s * kAmxStepK, ws);
    _tile_dpbf16ps(2, 5, 6);
    if (MT == 2) {
      _tile_loadd(7, x1 + s * 256, 64);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  for (int64_t q = p.steps; q < pf_rows; q++) pf.row(q);
  if (p.tail) {
    const int64_t s = p.steps;
    _tile_loadd(4, p.tail, 64);
    _tile_loadd(5, p.tail + 16 * kAmxStepK, 64);
    _tile_loadd(6, x0 + s * 256, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(2, 5, 6);
    if (MT == 2) {
      _tile_loadd(7, x1 + s * 256, 64);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, to, 64);
  _tile_stored(2, to + 512, 64);
  if (MT == 2) {
    _tile_stored(1, to + 256, 64);
    _tile_stored(3, to + 768, 64);
  }
}

}  // namespace

void amx_tiles_configure() {
  TileConfig tc;
  for (int t = 0; t < 8; t++) {
    tc.colsb[t] = 64;
    tc.rows[t] = 16;
  }
  // Not _tile_loadconfig: g++ 12 does not see that builtin read the struct and
  // drops the colsb/rows stores (measured: tiles left unconfigured, SIGILL).
  __asm__ volatile("ldtilecfg %0" : : "m"(tc));
}

void amx_tiles_release() { _tile_release(); }

void amx_panel_run(const AmxPanel& p, const uint32_t* x, int64_t xpanel, int64_t mtiles, float* part, bool load_part,
                   const AmxOut* out) {
  alignas(64) float tmp[1024];
  NextPanel np(p);
  // Spread the next panel's lines over this panel's steps (with some slack).
  const int64_t total_steps = ceil_div_(mtiles, 2) * (p.steps + (p.tail ? 1 : 0));
  const int per_step =
      total_steps > 0 ? static_cast<int>(std::min<int64_t>(16, np.rows * ceil_div_(np.bytes, 64) / total_steps + 1)) : 0;
  for (int64_t mt = 0; mt < mtiles; mt += 2) {
    const int mts = mt + 1 < mtiles ? 2 : 1;
    // kAmxPartBlock floats per 32-row block: 4 KiB of tiles plus a line, so the next block's tile loads
    // do not alias (mod 4 KiB) the stores of this one still in flight.
    float* pb = part ? part + kAmxPartBlock * (mt / 2) : nullptr;
    const float* from = load_part ? pb : nullptr;
    float* acc = out ? tmp : pb;
    // The block's C rows, asked for (for writing) during the tile work so their read-for-ownership overlaps it.
    CPrefetch pf;
    if (out && !out->stream) {
      pf.c = reinterpret_cast<const char*>(out->c + 16 * mt * out->ldc);
      pf.ld = out->ldc * 4;
      pf.rows = std::min<int64_t>(32, out->mr - 16 * mt);
      pf.last = 4 * out->nvalid - 4;
    }
    const uint32_t* x0 = x + mt * xpanel;
    if (mts == 2) block<2>(p, x0, x0 + xpanel, from, acc, pf, np, per_step);
    else block<1>(p, x0, nullptr, from, acc, pf, np, per_step);
    if (out) epilogue(acc, mts, *out, out->c + 16 * mt * out->ldc, out->mr - 16 * mt);
  }
  if (out && out->stream) _mm_sfence();  // streaming stores are weakly ordered: drain before C is handed on
}

}  // namespace gemm
}  // namespace sv
