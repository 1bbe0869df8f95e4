// JS entry points of the fused GEMMs: the gate/up projection of a SwiGLU
// feed-forward, and a linear layer followed by its activation.
//
//   linearSwiGLU(x, xOff, M, K, ldx, wDt, N, out, outOff,
//                gate, gateOff, gateBias, gateBiasOff, up, upOff, upBias, upBiasOff)
//
// out[M, N] (row stride N) = silu(x gateᵀ + gateBias) * (x upᵀ + upBias): x f32
// rows of K values at stride ldx; gate and up [N, K] weights with contiguous
// rows, both of type wDt (F32 or BF16); biases f32 [N] or null; offsets in
// elements of each storage.
//
// Why fused: in prefill the two [M, N] products are the largest tensors of a
// layer (Qwen2.5-VL-3B: 512 x 11008 floats each); written out by the GEMMs and
// read back by the swiglu op they cost three passes over memory. On the AMX
// bf16 path each 32-column panel runs against the gate and then the up weight
// and SwiGLU combines the two blocks while they are in cache. Elsewhere (f32,
// no AMX, few rows: the streaming GEMV) the two products run as usual and the
// combination follows; the results are the same as linear, linear and swiglu.
//
//   linearAct(x, xOff, M, K, ldx, wDt, N, out, outOff, w, wOff, bias, biasOff, act)
//
// out[M, N] = act(x wᵀ + bias), act an ActCode (1..7): the MLP up-projections of
// the vision towers and the adapter (fc1 → GELU), whose [tokens, 4·C] output is
// otherwise written, read and written again by the activation op. Same paths:
// on AMX the activation runs on each 32-column block in cache.
#include "common.h"
#include "dtype.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "epilogue_rows.h"
#include "threadpool.h"
#include <algorithm>
#include <string>
#include <vector>

namespace sv {
namespace {

// Arguments 0-8 (x, xOff, M, K, ldx, wDt, N, out, outOff), checked: the GEMM with A, C and the sizes
// set (B still to come), x read as [M, K] at row stride ldx and C written as [M, N].
gemm::GemmF32 parse_common(const Napi::CallbackInfo& info, const char* op) {
  auto x = arr<uint8_t>(info, 0, op, "x");
  const int64_t xOff = i64(info, 1, op, "xOff"), M = i64(info, 2, op, "M"), K = i64(info, 3, op, "K");
  const int64_t ldx = i64(info, 4, op, "ldx");
  const int wDt = static_cast<int>(i64(info, 5, op, "wDt"));
  const int64_t N = i64(info, 6, op, "N");
  auto out = arr<uint8_t>(info, 7, op, "out");
  const int64_t outOff = i64(info, 8, op, "outOff");
  const std::string o(op);
  check(wDt == F32 || wDt == BF16, o + ": weights must be float32 or bfloat16 (dtype code " + std::to_string(wDt) + ")");
  check(M >= 0 && K >= 1 && N >= 1, o + ": bad sizes M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N));
  check(xOff >= 0 && outOff >= 0 && ldx >= K, o + ": bad offsets or x row stride");
  if (M > 0) {
    check((xOff + (M - 1) * ldx + K) * 4 <= static_cast<int64_t>(x.len),
          o + ": x [" + std::to_string(M) + ", " + std::to_string(K) + "] overruns its storage");
    check((outOff + M * N) * 4 <= static_cast<int64_t>(out.len),
          o + ": out [" + std::to_string(M) + ", " + std::to_string(N) + "] overruns its storage");
  }
  gemm::GemmF32 g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = reinterpret_cast<const float*>(x.ptr) + xOff;
  g.lda = ldx;
  g.btype = wDt == BF16 ? gemm::B_BF16 : gemm::B_F32;
  g.transB = true;
  g.ldb = K;
  g.c = reinterpret_cast<float*>(out.ptr) + outOff;
  g.ldc = N;
  return g;
}

struct WeightArg {
  const void* w;
  const float* bias;  // or null
};

// A weight [N, K] (storage, offset at i, i+1) and its bias (f32 storage or null, offset at i+2, i+3), checked.
WeightArg parse_weight(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, const gemm::GemmF32& g) {
  const std::string o = std::string(op) + ": " + what;
  auto w = arr<uint8_t>(info, i, op, what);
  const int64_t off = i64(info, i + 1, op, what);
  const int eb = g.btype == gemm::B_BF16 ? 2 : 4;
  check(off >= 0 && (off + g.N * g.K) * eb <= static_cast<int64_t>(w.len),
        o + " [" + std::to_string(g.N) + ", " + std::to_string(g.K) + "] overruns its storage");
  WeightArg r{w.ptr + off * eb, nullptr};
  if (!info[i + 2].IsNull() && !info[i + 2].IsUndefined()) {
    auto b = arr<uint8_t>(info, i + 2, op, what);
    const int64_t boff = i64(info, i + 3, op, what);
    check(boff >= 0 && (boff + g.N) * 4 <= static_cast<int64_t>(b.len), o + " bias [" + std::to_string(g.N) + "] overruns its storage");
    r.bias = reinterpret_cast<const float*>(b.ptr) + boff;
  }
  return r;
}

// At 16 rows and more the AMX tiles are full enough to beat the streaming GEMV the dispatcher picks for thin x.
bool fused_on_amx(const gemm::GemmF32& g) {
  return g.M >= 16 && gemm::bf16_gemm_applies(g) && gemm::bf16_use_amx && gemm::bf16_amx_available();
}

}  // namespace

SV_KERNEL(linearSwiGLU) {
  const char* op = "linearSwiGLU";
  checkArgc(info, 17, op);
  gemm::GemmF32 g = parse_common(info, op);
  const WeightArg gate = parse_weight(info, 9, op, "gate", g), up = parse_weight(info, 13, op, "up", g);
  if (g.M == 0) return info.Env().Undefined();
  g.b = gate.w;
  g.bias = gate.bias;
  if (fused_on_amx(g)) {
    g.up = up.w;
    g.up_bias = up.bias;
    gemm::gemm_bf16_amx(g);
    return info.Env().Undefined();
  }
  gemm::gemm_f32(g);  // gate products into out
  const int64_t M = g.M, N = g.N;
  std::vector<float> u(static_cast<size_t>(M * N));
  gemm::GemmF32 gu = g;
  gu.b = up.w;
  gu.c = u.data();
  gu.bias = up.bias;
  gemm::gemm_f32(gu);
  float* c = g.c;
  parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) {
    swiglu_rows_f32(c + r0 * N, N, u.data() + r0 * N, N, c + r0 * N, N, r1 - r0, N);
  });
  return info.Env().Undefined();
}

SV_KERNEL(linearAct) {
  const char* op = "linearAct";
  checkArgc(info, 14, op);
  gemm::GemmF32 g = parse_common(info, op);
  const WeightArg w = parse_weight(info, 9, op, "w", g);
  const int act = static_cast<int>(i64(info, 13, op, "act"));
  check(act >= 1 && act <= 7, "linearAct: unknown activation code " + std::to_string(act));
  if (g.M == 0) return info.Env().Undefined();
  g.b = w.w;
  g.bias = w.bias;
  if (fused_on_amx(g)) {
    g.act = act;
    gemm::gemm_bf16_amx(g);
    return info.Env().Undefined();
  }
  gemm::gemm_f32(g);
  const int64_t N = g.N;
  float* c = g.c;
  parallel_for(g.M, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) { act_rows_f32(c + r0 * N, N, r1 - r0, N, act); });
  return info.Env().Undefined();
}

}  // namespace sv
