// GEMV driver: splits every item's J range (weight rows for the dot form,
// weight columns for the axpy form) into tasks claimed dynamically by the
// pool, each task streaming its slice of W exactly once. Every output is
// computed by one task, so results do not depend on the thread count.
#include "gemm.h"
#include "common.h"
#include "cpu.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <vector>

namespace sv {
namespace gemm {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t m) { return ceil_div(a, m) * m; }

// Bytes of W a task streams at least (amortises claiming and wake-up).
constexpr int64_t kTaskBytes = 128 << 10;

}  // namespace

void gemv_run(const GemvDot& g, bool axpy, const std::vector<int64_t>& offX, const std::vector<int64_t>& offW,
              const std::vector<int64_t>& offOut) {
  const int64_t P = static_cast<int64_t>(offX.size());
  if (P == 0 || g.J <= 0) return;
  const GemvKernels& kern = isa() == Isa::Avx512 ? gemv_avx512() : gemv_portable();
  const bool bf16 = g.wtype == B_BF16;
  const GemvFn fn = axpy ? (bf16 ? kern.axpy_bf16 : kern.axpy_f32) : (bf16 ? kern.dot_bf16 : kern.dot_f32);
  const int wbytes = bf16 ? 2 : 4;
  const int nt = num_threads();
  const int64_t rowBytes = std::max<int64_t>(1, g.K * wbytes);  // W bytes per unit of J

  int64_t cj;  // J values per task
  if (axpy) {
    cj = round_up(std::max<int64_t>(64, ceil_div(g.J, 4 * nt)), 16);
    cj = std::min<int64_t>(cj, 1024);  // the axpy accumulator tile lives in L1
  } else {
    cj = round_up(std::max<int64_t>(1, kTaskBytes / rowBytes), 4);
    cj = std::max<int64_t>(4, std::min(cj, round_up(ceil_div(g.J, 4 * nt), 4)));
  }
  const int64_t chunks = ceil_div(g.J, cj);

  // vdpbf16ps path: split each item's x into bf16 hi/lo rows once.
  std::vector<uint16_t> xbf;
  const bool prep = bf16 && !axpy && kern.prep_bf16;
  if (prep) {
    xbf.resize(static_cast<size_t>(P * g.R * 2 * g.K));
    for (int64_t p = 0; p < P; p++) kern.prep_bf16(g.x + offX[p], g.R, g.K, g.ldx, xbf.data() + p * g.R * 2 * g.K);
  }

  const int64_t ntasks = P * chunks;
  auto task = [&](int64_t t) {
    const int64_t p = t / chunks, c = t % chunks;
    GemvDot item = g;
    item.x = g.x + offX[p];
    item.w = static_cast<const char*>(g.w) + offW[p] * wbytes;
    item.out = g.out + offOut[p];
    if (prep) item.xbf = xbf.data() + p * g.R * 2 * g.K;
    fn(item, c * cj, std::min(g.J, (c + 1) * cj));
  };
  // Small problems: waking the pool costs more than the work.
  if (nt == 1 || ntasks == 1 || P * g.J * rowBytes < (64 << 10)) {
    for (int64_t t = 0; t < ntasks; t++) task(t);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(nt, ntasks), 1, [&](int64_t, int64_t) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < ntasks;) task(t);
  });
}

bool gemv_dpbf16_enabled = true;

}  // namespace gemm

// gemvUseDpbf16(on: boolean) -> boolean: for tests; whether the vdpbf16ps GEMV runs
// (only where the CPU has avx512_bf16).
SV_KERNEL(gemvUseDpbf16) {
  gemm::gemv_dpbf16_enabled = boolean(info, 0);
  return Napi::Boolean::New(info.Env(), gemm::gemv_dpbf16_enabled && cpu().avx512bf16);
}

}  // namespace sv
