// JS entry points of the fused GEMMs: the gate/up projection of a SwiGLU
// feed-forward, and a linear layer followed by its activation.
//
//   linearSwiGLU(x, xOff, M, K, ldx, gate, gateOff, up, upOff, wDt, N, out, outOff,
//                gateBias, gateBiasOff, upBias, upBiasOff)
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
//   linearAct(x, xOff, M, K, ldx, w, wOff, wDt, N, bias, biasOff, act, out, outOff)
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
#include <vector>

namespace sv {

SV_KERNEL(linearSwiGLU) {
  const char* op = "linearSwiGLU";
  checkArgc(info, 17, op);
  auto x = arr<uint8_t>(info, 0, op, "x");
  const int64_t xOff = i64(info, 1, op, "xOff"), M = i64(info, 2, op, "M"), K = i64(info, 3, op, "K");
  const int64_t ldx = i64(info, 4, op, "ldx");
  auto gate = arr<uint8_t>(info, 5, op, "gate");
  const int64_t gateOff = i64(info, 6, op, "gateOff");
  auto up = arr<uint8_t>(info, 7, op, "up");
  const int64_t upOff = i64(info, 8, op, "upOff");
  const int wDt = static_cast<int>(i64(info, 9, op, "wDt"));
  const int64_t N = i64(info, 10, op, "N");
  auto out = arr<uint8_t>(info, 11, op, "out");
  const int64_t outOff = i64(info, 12, op, "outOff");
  auto bias_arg = [&](size_t i, const char* what) -> const float* {
    if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
    auto b = arr<uint8_t>(info, i, op, what);
    const int64_t off = i64(info, i + 1, op, what);
    check(off >= 0 && (off + N) * 4 <= static_cast<int64_t>(b.len),
          std::string("linearSwiGLU: ") + what + " [" + std::to_string(N) + "] overruns its storage");
    return reinterpret_cast<const float*>(b.ptr) + off;
  };
  check(wDt == F32 || wDt == BF16, "linearSwiGLU: weights must be float32 or bfloat16 (dtype code " + std::to_string(wDt) + ")");
  check(M >= 0 && K >= 1 && N >= 1, "linearSwiGLU: bad sizes M=" + std::to_string(M) + " K=" + std::to_string(K) +
                                        " N=" + std::to_string(N));
  check(xOff >= 0 && gateOff >= 0 && upOff >= 0 && outOff >= 0 && ldx >= K, "linearSwiGLU: bad offsets or x row stride");
  const int eb = wDt == BF16 ? 2 : 4;
  check((gateOff + N * K) * eb <= static_cast<int64_t>(gate.len), "linearSwiGLU: gate [" + std::to_string(N) + ", " +
                                                                      std::to_string(K) + "] overruns its storage");
  check((upOff + N * K) * eb <= static_cast<int64_t>(up.len), "linearSwiGLU: up [" + std::to_string(N) + ", " +
                                                                  std::to_string(K) + "] overruns its storage");
  if (M == 0) return info.Env().Undefined();
  check((xOff + (M - 1) * ldx + K) * 4 <= static_cast<int64_t>(x.len), "linearSwiGLU: x [" + std::to_string(M) + ", " +
                                                                            std::to_string(K) + "] overruns its storage");
  check((outOff + M * N) * 4 <= static_cast<int64_t>(out.len), "linearSwiGLU: out [" + std::to_string(M) + ", " +
                                                                   std::to_string(N) + "] overruns its storage");

  gemm::GemmF32 g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = reinterpret_cast<const float*>(x.ptr) + xOff;
  g.lda = ldx;
  g.btype = wDt == BF16 ? gemm::B_BF16 : gemm::B_F32;
  g.transB = true;
  g.ldb = K;
  g.b = gate.ptr + gateOff * eb;
  float* c = reinterpret_cast<float*>(out.ptr) + outOff;
  g.c = c;
  g.ldc = N;
  g.bias = bias_arg(13, "gate bias");
  const float* up_bias = bias_arg(15, "up bias");
  // At 16 rows and more the AMX tiles are full enough to beat the streaming GEMV the dispatcher picks for thin x.
  if (M >= 16 && gemm::bf16_gemm_applies(g) && gemm::bf16_use_amx && gemm::bf16_amx_available()) {
    g.up = up.ptr + upOff * eb;
    g.up_bias = up_bias;
    gemm::gemm_bf16_amx(g);
    return info.Env().Undefined();
  }
  gemm::gemm_f32(g);  // gate products into out
  std::vector<float> u(static_cast<size_t>(M * N));
  gemm::GemmF32 gu = g;
  gu.b = up.ptr + upOff * eb;
  gu.c = u.data();
  gu.bias = up_bias;
  gemm::gemm_f32(gu);
  parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) {
    swiglu_rows_f32(c + r0 * N, N, u.data() + r0 * N, N, c + r0 * N, N, r1 - r0, N);
  });
  return info.Env().Undefined();
}

SV_KERNEL(linearAct) {
  const char* op = "linearAct";
  checkArgc(info, 14, op);
  auto x = arr<uint8_t>(info, 0, op, "x");
  const int64_t xOff = i64(info, 1, op, "xOff"), M = i64(info, 2, op, "M"), K = i64(info, 3, op, "K");
  const int64_t ldx = i64(info, 4, op, "ldx");
  auto w = arr<uint8_t>(info, 5, op, "w");
  const int64_t wOff = i64(info, 6, op, "wOff");
  const int wDt = static_cast<int>(i64(info, 7, op, "wDt"));
  const int64_t N = i64(info, 8, op, "N");
  const int act = static_cast<int>(i64(info, 11, op, "act"));
  auto out = arr<uint8_t>(info, 12, op, "out");
  const int64_t outOff = i64(info, 13, op, "outOff");
  check(wDt == F32 || wDt == BF16, "linearAct: weights must be float32 or bfloat16 (dtype code " + std::to_string(wDt) + ")");
  check(act >= 1 && act <= 7, "linearAct: unknown activation code " + std::to_string(act));
  check(M >= 0 && K >= 1 && N >= 1, "linearAct: bad sizes M=" + std::to_string(M) + " K=" + std::to_string(K) +
                                        " N=" + std::to_string(N));
  check(xOff >= 0 && wOff >= 0 && outOff >= 0 && ldx >= K, "linearAct: bad offsets or x row stride");
  const int eb = wDt == BF16 ? 2 : 4;
  check((wOff + N * K) * eb <= static_cast<int64_t>(w.len),
        "linearAct: w [" + std::to_string(N) + ", " + std::to_string(K) + "] overruns its storage");
  const float* bias = nullptr;
  if (!info[9].IsNull() && !info[9].IsUndefined()) {
    auto b = arr<uint8_t>(info, 9, op, "bias");
    const int64_t off = i64(info, 10, op, "biasOff");
    check(off >= 0 && (off + N) * 4 <= static_cast<int64_t>(b.len), "linearAct: bias [" + std::to_string(N) + "] overruns its storage");
    bias = reinterpret_cast<const float*>(b.ptr) + off;
  }
  if (M == 0) return info.Env().Undefined();
  check((xOff + (M - 1) * ldx + K) * 4 <= static_cast<int64_t>(x.len), "linearAct: x [" + std::to_string(M) + ", " +
                                                                            std::to_string(K) + "] overruns its storage");
  check((outOff + M * N) * 4 <= static_cast<int64_t>(out.len), "linearAct: out [" + std::to_string(M) + ", " +
                                                                   std::to_string(N) + "] overruns its storage");
  gemm::GemmF32 g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = reinterpret_cast<const float*>(x.ptr) + xOff;
  g.lda = ldx;
  g.btype = wDt == BF16 ? gemm::B_BF16 : gemm::B_F32;
  g.transB = true;
  g.ldb = K;
  g.b = w.ptr + wOff * eb;
  float* c = reinterpret_cast<float*>(out.ptr) + outOff;
  g.c = c;
  g.ldc = N;
  g.bias = bias;
  if (M >= 16 && gemm::bf16_gemm_applies(g) && gemm::bf16_use_amx && gemm::bf16_amx_available()) {
    g.act = act;
    gemm::gemm_bf16_amx(g);
    return info.Env().Undefined();
  }
  gemm::gemm_f32(g);
  parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) { act_rows_f32(c + r0 * N, N, r1 - r0, N, act); });
  return info.Env().Undefined();
}

}  // namespace sv
