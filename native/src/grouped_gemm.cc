// Grouped GEMM for mixture-of-experts layers: rows [offsets[e], offsets[e+1])
// of x go through expert weight e, all experts in one call.
//
// Why one kernel: a JS loop of one gemm per expert wakes the pool once per
// expert and matrix (decode: 8 experts x 3 matrices of tiny GEMVs per layer)
// and leaves the second core idle at the tail of every call. Here every
// non-empty expert becomes one or more (expert, column block) tasks, all
// claimed dynamically from one pool job; each task runs the ordinary GEMM
// dispatcher (gemm_f32: GEMV streaming kernels for <= 4 rows, the packed
// f32 GEMM or the opt-in bf16/AMX GEMM above) serially on its block, so the
// precision switch and the ISA cap apply exactly as for a single matmul.
//
// With `up` weights given, the task computes the gate and up blocks of the
// same columns and writes silu(gate) * up (SwiGLU), so the two [rows, N]
// intermediates never reach memory.
//
// Every output element is computed by one task with a fixed summation order:
// results do not depend on the thread count.
#include "grouped_gemm.h"
#include "common.h"
#include "cpu.h"
#include "dtype.h"
#include "gemm.h"
#include "epilogue_rows.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <new>
#include <vector>

namespace sv {

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t m) { return ceil_div(a, m) * m; }

// One expert's weight: op(B)[k, j] = W[j, k] as a linear weight [N, K].
struct ExpertW {
  const uint8_t* base = nullptr;
  int64_t off = 0;     // elements
  bool trans = true;   // true: W[j,k] = w[j*ld + k] (rows contiguous); false: w[k*ld + j]
  int64_t ld = 0;
};

// Reads E weight descriptors: stores (JS Array of Uint8Array, one per expert)
// and desc (Float64Array [E x 3]: offset, trans, ld), checking that every
// expert with rows reaches only its own storage.
std::vector<ExpertW> read_weights(const Napi::CallbackInfo& info, size_t iStores, size_t iDesc, int64_t E,
                                  int64_t N, int64_t K, int eb, const int32_t* offsets, const char* op,
                                  const char* what) {
  Napi::Value sv = info[iStores];
  check(sv.IsArray(), std::string(op) + ": argument '" + what + "' must be an Array of Uint8Array");
  Napi::Array stores = sv.As<Napi::Array>();
  check(static_cast<int64_t>(stores.Length()) == E,
        std::string(op) + ": " + std::to_string(stores.Length()) + " " + what + " storages for " + std::to_string(E) + " experts");
  auto desc = arr<double>(info, iDesc, op, "weight descriptors");
  need(desc, 3 * E, op, "weight descriptors");
  std::vector<ExpertW> w(E);
  for (int64_t e = 0; e < E; e++) {
    if (offsets[e + 1] == offsets[e]) continue;  // never touched
    Napi::Value v = stores[static_cast<uint32_t>(e)];
    check(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array,
          std::string(op) + ": " + what + " storage " + std::to_string(e) + " must be a Uint8Array");
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    const int64_t bytes = static_cast<int64_t>(ta.ByteLength());
    check(!(ab.ByteLength() == 0 && bytes > 0), std::string(op) + ": " + what + " " + std::to_string(e) + " refers to freed memory");
    ExpertW& x = w[e];
    x.base = static_cast<const uint8_t*>(ab.Data()) + ta.ByteOffset();
    x.off = static_cast<int64_t>(desc.ptr[3 * e]);
    x.trans = desc.ptr[3 * e + 1] != 0;
    x.ld = static_cast<int64_t>(desc.ptr[3 * e + 2]);
    check(x.off >= 0 && x.ld >= (x.trans ? K : N),
          std::string(op) + ": " + what + " " + std::to_string(e) + " has offset " + std::to_string(x.off) + " and row stride " +
              std::to_string(x.ld) + " (need >= " + std::to_string(x.trans ? K : N) + ")");
    const int64_t last = x.off + (x.trans ? (N - 1) * x.ld + (K - 1) : (K - 1) * x.ld + (N - 1));
    check((last + 1) * eb <= bytes, std::string(op) + ": " + what + " " + std::to_string(e) + " [" + std::to_string(N) + ", " +
                                        std::to_string(K) + "] reaches element " + std::to_string(last) + " beyond its storage of " +
                                        std::to_string(bytes / eb) + " elements");
  }
  return w;
}

struct Task {
  int64_t e, j0, j1;
};

// Splits each non-empty expert's N columns into blocks so the pool gets about
// 4 tasks per thread, in proportion to each expert's cost (weight streaming
// plus rows); blocks are multiples of 64 columns and at least kMinBlock wide
// (the streaming GEMV wants long row runs). Largest experts first so dynamic
// claiming ends balanced.
std::vector<Task> plan_tasks(const int32_t* offsets, int64_t E, int64_t N, int nt) {
  std::vector<int64_t> active;
  double total = 0;
  auto cost = [&](int64_t e) { return static_cast<double>(offsets[e + 1] - offsets[e]) + 4.0; };
  for (int64_t e = 0; e < E; e++)
    if (offsets[e + 1] > offsets[e]) {
      active.push_back(e);
      total += cost(e);
    }
  std::stable_sort(active.begin(), active.end(), [&](int64_t a, int64_t b) { return cost(a) > cost(b); });
  const double per_task = total / std::max(1, 4 * nt);
  std::vector<Task> tasks;
  for (int64_t e : active) {
    int64_t blocks = nt == 1 ? 1 : std::max<int64_t>(1, static_cast<int64_t>(cost(e) / per_task + 0.5));
    constexpr int64_t kMinBlock = 256;
    int64_t cw = std::max(kMinBlock, round_up(ceil_div(N, blocks), 64));
    if (cw >= N) cw = N;
    for (int64_t j = 0; j < N; j += cw) tasks.push_back({e, j, std::min(N, j + cw)});
  }
  return tasks;
}

// C[rows, j0:j1] = x_e op(W_e)[:, j0:j1], serially (we are inside a pool task).
void run_block(const float* x, int64_t ldx, int64_t rows, int64_t K, const ExpertW& w, int btype, int eb, int64_t j0,
               int64_t j1, float* c, int64_t ldc) {
  gemm::GemmF32 g;
  g.M = rows;
  g.N = j1 - j0;
  g.K = K;
  g.a = x;
  g.lda = ldx;
  g.btype = btype;
  g.transB = w.trans;
  g.ldb = w.ld;
  g.b = w.base + (w.off + (w.trans ? j0 * w.ld : j0)) * eb;
  g.c = c;
  g.ldc = ldc;
  gemm::gemm_f32(g);
}

// The streaming GEMV applies to <= 4 rows of a [K][N]-stored weight on AVX-512.
bool streams(int64_t rows, const ExpertW& w) { return rows <= 4 && !w.trans && isa() == Isa::Avx512; }

// dst[rows, j0:j1] (row stride ldd) = x_e op(W_e)[:, j0:j1], by the streaming GEMV or the GEMM dispatcher.
void block(const float* x, int64_t ldx, int64_t rows, int64_t K, const ExpertW& w, int btype, int eb, int64_t j0,
           int64_t j1, float* dst, int64_t ldd) {
  if (streams(rows, w))
    return grouped::stream_gemv_avx512(static_cast<int>(rows), K, j1 - j0, x, ldx, w.base + (w.off + j0) * eb,
                                       btype == gemm::B_BF16, w.ld, dst, ldd);
  run_block(x, ldx, rows, K, w, btype, eb, j0, j1, dst, ldd);
}


thread_local std::vector<float> tls_gate;  // [rows][gate block | up block]

}  // namespace

// groupedGemm(x, xOff, ldx, K, N, offsets, gateStores, gateDesc, wDt, out, outOff, ldo, upStores, upDesc)
//   x: f32 storage bytes (rows of K values at stride ldx from element xOff);
//   offsets: Int32Array [E+1], 0 = offsets[0] <= ... <= offsets[E] = rows;
//   gateStores/gateDesc: expert weights (see read_weights), element type wDt (F32 or BF16);
//   out: f32 storage bytes, rows of N values at stride ldo from element outOff.
//   upStores/upDesc null: out[r] = x[r] op(W_e); else out[r] = silu(x[r] op(G_e)) * (x[r] op(U_e)).
SV_KERNEL(groupedGemm) {
  const char* op = "groupedGemm";
  checkArgc(info, 14, op);
  auto x = arr<uint8_t>(info, 0, op, "x");
  const int64_t xOff = i64(info, 1, op, "xOff"), ldx = i64(info, 2, op, "ldx");
  const int64_t K = i64(info, 3, op, "K"), N = i64(info, 4, op, "N");
  auto offs = arr<int32_t>(info, 5, op, "offsets");
  const int wDt = static_cast<int>(i64(info, 8, op, "wDt"));
  auto out = arr<uint8_t>(info, 9, op, "out");
  const int64_t outOff = i64(info, 10, op, "outOff"), ldo = i64(info, 11, op, "ldo");
  check(wDt == F32 || wDt == BF16, "groupedGemm: weights must be float32 or bfloat16 (dtype code " + std::to_string(wDt) + ")");
  check(K >= 1 && N >= 1, "groupedGemm: K and N must be >= 1, got K=" + std::to_string(K) + " N=" + std::to_string(N));
  check(offs.len >= 2, "groupedGemm: offsets needs at least 2 values");
  const int64_t E = static_cast<int64_t>(offs.len) - 1;
  const int32_t* offsets = offs.ptr;
  check(offsets[0] == 0, "groupedGemm: offsets must start at 0, got " + std::to_string(offsets[0]));
  for (int64_t e = 0; e < E; e++)
    check(offsets[e + 1] >= offsets[e], "groupedGemm: offsets decrease at group " + std::to_string(e));
  const int64_t rows = offsets[E];
  check(xOff >= 0 && ldx >= K && outOff >= 0 && ldo >= N, "groupedGemm: bad x/out offsets or row strides");
  if (rows > 0) {
    check((xOff + (rows - 1) * ldx + K) * 4 <= static_cast<int64_t>(x.len),
          "groupedGemm: x [" + std::to_string(rows) + ", " + std::to_string(K) + "] overruns its storage");
    check((outOff + (rows - 1) * ldo + N) * 4 <= static_cast<int64_t>(out.len),
          "groupedGemm: out [" + std::to_string(rows) + ", " + std::to_string(N) + "] overruns its storage");
  }
  const int eb = wDt == BF16 ? 2 : 4;
  const int btype = wDt == BF16 ? gemm::B_BF16 : gemm::B_F32;
  const std::vector<ExpertW> gate = read_weights(info, 6, 7, E, N, K, eb, offsets, op, "weight");
  const bool fused = !info[12].IsNull() && !info[12].IsUndefined();
  std::vector<ExpertW> up;
  if (fused) up = read_weights(info, 12, 13, E, N, K, eb, offsets, op, "up weight");
  if (rows == 0) return info.Env().Undefined();

  const float* xf = reinterpret_cast<const float*>(x.ptr) + xOff;
  float* of = reinterpret_cast<float*>(out.ptr) + outOff;
  const int nt = num_threads();
  const std::vector<Task> tasks = plan_tasks(offsets, E, N, nt);
  const int64_t ntasks = static_cast<int64_t>(tasks.size());

  auto task = [&](int64_t t) {
    const Task& tk = tasks[t];
    const int64_t r0 = offsets[tk.e], m = offsets[tk.e + 1] - r0, w = tk.j1 - tk.j0;
    const float* xe = xf + r0 * ldx;
    float* ce = of + r0 * ldo + tk.j0;
    const ExpertW& gw = gate[tk.e];
    if (!fused) return block(xe, ldx, m, K, gw, btype, eb, tk.j0, tk.j1, ce, ldo);
    const ExpertW& uw = up[tk.e];
    // Hub layout: the up columns continue the gate columns in every weight row,
    // so a whole-width task multiplies both as one [K][2N] matrix (one pass
    // over whole weight rows; x packed once).
    const bool adjacent = tk.j0 == 0 && tk.j1 == N && !gw.trans && !uw.trans && uw.base == gw.base &&
                          uw.ld == gw.ld && uw.off == gw.off + N;
    tls_gate.resize(static_cast<size_t>(m * 2 * w));
    float* gb = tls_gate.data();
    float* ub = gb + w;  // rows of [gate block | up block], stride 2w
    if (adjacent) {
      block(xe, ldx, m, K, gw, btype, eb, 0, 2 * N, gb, 2 * w);  // both checked extents, side by side
    } else {
      block(xe, ldx, m, K, gw, btype, eb, tk.j0, tk.j1, gb, 2 * w);
      block(xe, ldx, m, K, uw, btype, eb, tk.j0, tk.j1, ub, 2 * w);
    }
    swiglu_rows_f32(gb, 2 * w, ub, 2 * w, ce, ldo, m, w);
  };

  // Claim loops inside min(threads, tasks) pool chunks (as gemv_driver.cc):
  // a chunk that runs twice finds no tasks left.
  if (nt == 1 || ntasks == 1) {
    for (int64_t t = 0; t < ntasks; t++) task(t);
    return info.Env().Undefined();
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  parallel_for(std::min<int64_t>(nt, ntasks), 1, [&](int64_t, int64_t) {
    try {
      for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < ntasks;) task(t);
    } catch (const std::bad_alloc&) {
      failed.store(true);
    }
  });
  if (failed.load()) throw std::bad_alloc();
  return info.Env().Undefined();
}

}  // namespace sv
