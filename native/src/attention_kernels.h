// The numeric building blocks of the attention kernels, behind one interface
// with two implementations: PortableOps<T> (plain loops, std::exp2; f32 and
// the f64 used by gradient checks) and Avx512Ops (f32, AVX-512, fast exp2).
// The drivers (attention_fwd/bwd/decode.cc) are templates over the Ops type,
// so both paths run the same tiling and summation order.
//
// Every matrix product in flash attention is one shape of `mm`:
//   C[r*ldc + n] = (acc ? C[r*ldc + n]·colscale[n] : 0) + Σ_t A[r*ars + t*ats] · B[t*ldb + n]
// for r < M, n < N, t < K (colscale == nullptr means 1). A is read by
// broadcasting single elements (any strides), B and C by contiguous rows, so
// no operand ever needs a transposed copy except where a driver packs one
// (with `transpose`).
//
// Softmax runs in base 2: drivers fold log2(e) into the score scale, so the
// kernels take exp2 of scores and max/logsumexp are in log2 units until the
// forward converts lse back to natural log (saves the range-reduction
// multiply of exp in the innermost loop).
#pragma once
#include <cmath>
#include <cstdint>
#include <algorithm>
#include "attention_common.h"

namespace sv {
namespace attn {

template <typename T>
struct PortableOps {
  static void mm(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t ats, const T* B, int64_t ldb, T* C,
                 int64_t ldc, bool acc, const T* colscale) {
    for (int64_t r = 0; r < M; r++) {
      T* c = C + r * ldc;
      if (!acc) std::fill(c, c + N, T(0));
      else if (colscale) for (int64_t n = 0; n < N; n++) c[n] *= colscale[n];
      for (int64_t t = 0; t < K; t++) {
        const T a = A[r * ars + t * ats];
        const T* b = B + t * ldb;
        for (int64_t n = 0; n < N; n++) c[n] += a * b[n];
      }
    }
  }

  // dst[c*ds + r] = scale · colScale[c] · src[r*ss + c] for r < R, c < C
  // (colScale == nullptr means 1): packs transposed tiles and unpacks outputs.
  static void transpose(const T* src, int64_t ss, int64_t R, int64_t C, T* dst, int64_t ds, T scale,
                        const T* colScale) {
    for (int64_t c = 0; c < C; c++) {
      const T f = colScale ? scale * colScale[c] : scale;
      for (int64_t r = 0; r < R; r++) dst[c * ds + r] = f * src[r * ss + c];
    }
  }

  // Forward online-softmax step on a score tile St[j*ld + i] (nk keys × ncols
  // queries, scaled, log2 units): per query column i, the running max m[i]
  // and sum l[i] absorb this tile; St becomes exp2(St - m_new) and alpha[i] =
  // exp2(m_old - m_new) rescales the earlier output. -inf scores (masked) give 0.
  static void fwd_softmax(T* St, int64_t ld, int64_t nk, int64_t ncols, T* m, T* l, T* alpha) {
    for (int64_t i = 0; i < ncols; i++) {
      T mx = m[i];
      for (int64_t j = 0; j < nk; j++) mx = std::max(mx, St[j * ld + i]);
      const T mu = mx == neg_inf<T>() ? T(0) : mx;  // all masked so far: keep exp() finite
      const T a = std::exp2(m[i] - mu);
      T sum = 0;
      for (int64_t j = 0; j < nk; j++) {
        const T p = std::exp2(St[j * ld + i] - mu);
        St[j * ld + i] = p;
        sum += p;
      }
      l[i] = l[i] * a + sum;
      m[i] = mx;
      alpha[i] = a;
    }
  }

  // Backward probabilities on a tile S[i*ld + j] (M queries × N keys, scaled
  // scores, log2 units): P = exp2(S - lse[i]) for j < limit(i), else 0, where limit(i) =
  // clamp(i + causalShift, 0, N) when causal and N otherwise.
  static void bwd_probs(T* S, int64_t ld, int64_t M, int64_t N, const T* lse, bool causal, int64_t causalShift) {
    for (int64_t i = 0; i < M; i++) {
      const int64_t lim = causal ? std::clamp<int64_t>(i + causalShift, 0, N) : N;
      T* s = S + i * ld;
      for (int64_t j = 0; j < lim; j++) s[j] = std::exp2(s[j] - lse[i]);
      for (int64_t j = lim; j < N; j++) s[j] = T(0);
    }
  }

  // dS = scale · P ∘ (dP − delta[i]), written over dP.
  static void bwd_dscores(const T* P, T* dP, int64_t ld, int64_t M, int64_t N, const T* delta, T scale) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) dP[i * ld + j] = scale * P[i * ld + j] * (dP[i * ld + j] - delta[i]);
  }

  // Decode scores: S[r*ldS + j] = Σ_d Q[r*D + d] · K[j*ks + d] for r < nq, j < nk.
  static void dots(int64_t nq, int64_t D, const T* Q, const T* K, int64_t ks, int64_t nk, T* S, int64_t ldS) {
    for (int64_t r = 0; r < nq; r++)
      for (int64_t j = 0; j < nk; j++) {
        T acc = 0;
        const T* k = K + j * ks;
        for (int64_t d = 0; d < D; d++) acc += Q[r * D + d] * k[d];
        S[r * ldS + j] = acc;
      }
  }

  // In place: s[j] = exp2(s[j] - max) for j < n; returns max (-inf if n == 0) and the sum.
  static void row_softmax(T* s, int64_t n, T& mOut, T& lOut) {
    T mx = neg_inf<T>();
    for (int64_t j = 0; j < n; j++) mx = std::max(mx, s[j]);
    T sum = 0;
    if (n > 0) {
      for (int64_t j = 0; j < n; j++) {
        s[j] = std::exp2(s[j] - mx);
        sum += s[j];
      }
    }
    mOut = mx;
    lOut = sum;
  }
};

// f32 AVX-512 implementations (attention_avx512.cc); same contracts as above.
struct Avx512Ops {
  static void mm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t ats, const float* B,
                 int64_t ldb, float* C, int64_t ldc, bool acc, const float* colscale);
  static void transpose(const float* src, int64_t ss, int64_t R, int64_t C, float* dst, int64_t ds, float scale,
                        const float* colScale);
  static void fwd_softmax(float* St, int64_t ld, int64_t nk, int64_t ncols, float* m, float* l, float* alpha);
  static void bwd_probs(float* S, int64_t ld, int64_t M, int64_t N, const float* lse, bool causal, int64_t causalShift);
  static void bwd_dscores(const float* P, float* dP, int64_t ld, int64_t M, int64_t N, const float* delta, float scale);
  static void dots(int64_t nq, int64_t D, const float* Q, const float* K, int64_t ks, int64_t nk, float* S, int64_t ldS);
  static void row_softmax(float* s, int64_t n, float& mOut, float& lOut);
  // 2^x over n floats with the kernels' fast exp2 (for the accuracy test).
  static void exp2(const float* x, float* y, int64_t n);
};

}  // namespace attn
}  // namespace sv
