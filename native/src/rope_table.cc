// Rotary tables for any position layout: token s has A position streams
// (1-D: one; ViT 2-D: row, column; M-RoPE: t, h, w) and frequency j follows
// stream axisOf[j]:  angle[s, j] = pos[s, axisOf[j]] · invFreq[j].
// The product is rounded to float32 as the reference models compute it
// (torch float32 outer product / matmul with K = 1); cos and sin are then
// taken in double and rounded to the output type.
#include "index_ops.h"
#include <cmath>
#include <sstream>
#include <algorithm>
#include <climits>
#include <vector>

namespace sv {
namespace {

struct TableArgs {
  Arr<int32_t> pos;
  int64_t S, A, rowStride, axisStride;
  Arr<float> invFreq;
  Arr<int32_t> axisOf;
  int64_t F;
};

// Arguments 0..6: pos: Int32Array, S, A, rowStride, axisStride, invFreq: Float32Array [F], axisOf: Int32Array [F].
TableArgs table_args(const Napi::CallbackInfo& info, const char* op) {
  TableArgs t;
  t.pos = arr<int32_t>(info, 0, op, "positions");
  t.S = i64(info, 1, op, "S");
  t.A = i64(info, 2, op, "A");
  t.rowStride = i64(info, 3, op, "rowStride");
  t.axisStride = i64(info, 4, op, "axisStride");
  t.invFreq = arr<float>(info, 5, op, "invFreq");
  t.axisOf = arr<int32_t>(info, 6, op, "axisOf");
  t.F = static_cast<int64_t>(t.invFreq.len);
  check(t.S >= 0 && t.A >= 1 && t.rowStride >= 0 && t.axisStride >= 0, std::string(op) + ": negative size or stride");
  need(t.axisOf, t.F, op, "axisOf");
  if (t.S > 0) need(t.pos, (t.S - 1) * t.rowStride + (t.A - 1) * t.axisStride + 1, op, "positions");
  check_index_range(t.axisOf.ptr, t.F, t.A, op, "axisOf");
  return t;
}

inline float angle_at(const TableArgs& t, int64_t s, int64_t j) {
  const float p = static_cast<float>(t.pos.ptr[s * t.rowStride + t.axisOf.ptr[j] * t.axisStride]);
  return p * t.invFreq.ptr[j];
}

}  // namespace

// ropeAngles(pos, S, A, rowStride, axisStride, invFreq, axisOf, angles: F32|F64 [S, F])
SV_KERNEL(ropeAngles) {
  const char* op = "ropeAngles";
  checkArgc(info, 8, op);
  TableArgs t = table_args(info, op);
  SV_FLOAT_DISPATCH(info, 7, op, "angles", {
    auto out = arr<T>(info, 7, op, "angles");
    need3(out, t.S, t.F, 1, op, "angles");
    parallel_for(t.S, std::max<int64_t>(1, 4096 / std::max<int64_t>(t.F, 1)), [&](int64_t b, int64_t e) {
      for (int64_t s = b; s < e; s++)
        for (int64_t j = 0; j < t.F; j++) out.ptr[s * t.F + j] = static_cast<T>(angle_at(t, s, j));
    });
  });
  return info.Env().Undefined();
}

namespace {

// cos/sin depend only on (position value, frequency). When positions repeat a
// lot (the ViT's 2-D tables: at most max(h, w) distinct values per axis for
// h·w patches) they are computed once per distinct value and copied; the
// values are the same as the direct computation.
template <typename T>
bool cos_sin_by_lookup(const TableArgs& t, T* cos, T* sin) {
  if (t.S < 64) return false;
  std::vector<int64_t> lo(t.A), span(t.A);
  int64_t total = 0;
  for (int64_t a = 0; a < t.A; a++) {
    int32_t mn = INT32_MAX, mx = INT32_MIN;
    for (int64_t s = 0; s < t.S; s++) {
      const int32_t p = t.pos.ptr[s * t.rowStride + a * t.axisStride];
      mn = std::min(mn, p);
      mx = std::max(mx, p);
    }
    lo[a] = mn;
    span[a] = static_cast<int64_t>(mx) - mn + 1;
    total += span[a];
  }
  if (total * 4 > t.S) return false;
  std::vector<int64_t> base(t.A);
  for (int64_t a = 0, at = 0; a < t.A; a++) base[a] = at, at += span[a];
  std::vector<T> lc(total * t.F), ls(total * t.F);
  for (int64_t a = 0; a < t.A; a++)
    for (int64_t v = 0; v < span[a]; v++)
      for (int64_t j = 0; j < t.F; j++) {
        const double ang = static_cast<float>(static_cast<float>(lo[a] + v) * t.invFreq.ptr[j]);
        lc[(base[a] + v) * t.F + j] = static_cast<T>(std::cos(ang));
        ls[(base[a] + v) * t.F + j] = static_cast<T>(std::sin(ang));
      }
  parallel_for(t.S, std::max<int64_t>(1, 4096 / std::max<int64_t>(t.F, 1)), [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; s++)
      for (int64_t j = 0; j < t.F; j++) {
        const int64_t a = t.axisOf.ptr[j];
        const int64_t row = base[a] + t.pos.ptr[s * t.rowStride + a * t.axisStride] - lo[a];
        cos[s * t.F + j] = lc[row * t.F + j];
        sin[s * t.F + j] = ls[row * t.F + j];
      }
  });
  return true;
}

}  // namespace

// ropeCosSin(pos, S, A, rowStride, axisStride, invFreq, axisOf, cos: F32|F64 [S, F], sin: same)
SV_KERNEL(ropeCosSin) {
  const char* op = "ropeCosSin";
  checkArgc(info, 9, op);
  TableArgs t = table_args(info, op);
  SV_FLOAT_DISPATCH(info, 7, op, "cos", {
    auto cos = arr<T>(info, 7, op, "cos");
    auto sin = arr<T>(info, 8, op, "sin");
    need3(cos, t.S, t.F, 1, op, "cos");
    need3(sin, t.S, t.F, 1, op, "sin");
    if (cos_sin_by_lookup<T>(t, cos.ptr, sin.ptr)) return info.Env().Undefined();
    parallel_for(t.S, std::max<int64_t>(1, 1024 / std::max<int64_t>(t.F, 1)), [&](int64_t b, int64_t e) {
      for (int64_t s = b; s < e; s++)
        for (int64_t j = 0; j < t.F; j++) {
          const double a = angle_at(t, s, j);
          cos.ptr[s * t.F + j] = static_cast<T>(std::cos(a));
          sin.ptr[s * t.F + j] = static_cast<T>(std::sin(a));
        }
    });
  });
  return info.Env().Undefined();
}

}  // namespace sv
