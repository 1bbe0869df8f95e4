// Shared pieces of the attention kernels (attention_fwd.cc, attention_bwd.cc,
// attention_decode.cc): tile sizes, scratch buffers, the dynamic task runner,
// operand layouts and argument checking. No numerics here.
#pragma once
#include "common.h"
#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>
#include <sys/mman.h>

namespace sv {
namespace attn {

// Query rows per forward/backward tile (4 zmm vectors of f32) and keys per
// tile. 64×64 f32 tiles are 16 KiB, so a tile set stays in L1/L2.
constexpr int64_t kBq = 64;
constexpr int64_t kBk = 64;
// Keys per split-K chunk in decode: fixed (not derived from the thread
// count) so results do not depend on how many threads run.
constexpr int64_t kDecodeChunk = 512;

template <typename T>
inline T neg_inf() { return -std::numeric_limits<T>::infinity(); }
template <typename T>
constexpr T kLog2e = T(1.442695040888963407359924681001892137);
template <typename T>
constexpr T kLn2 = T(0.693147180559945309417232121458176568);

// 64-byte aligned scratch, owned (not copyable). Blocks of 4 MiB and more
// are 2 MiB aligned and advised as transparent huge pages: operand copies
// are streamed row by row, and 4 KiB pages would cost a page fault per
// 4 KiB on every call and a TLB miss per row.
template <typename T>
class Buf {
 public:
  explicit Buf(size_t n) : n_(n) {
    constexpr size_t kHuge = size_t(2) << 20;
    size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    if (bytes == 0) bytes = 64;
    const bool huge = bytes >= 2 * kHuge;
    if (huge) bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    p_ = static_cast<T*>(std::aligned_alloc(huge ? kHuge : 64, bytes));
    if (!p_) throw std::bad_alloc();
    if (huge) madvise(p_, bytes, MADV_HUGEPAGE);
  }
  ~Buf() { std::free(p_); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_;
  size_t n_;
};

// One [T, H, D] operand with the head dim contiguous: row (t, h) starts at
// p + t*st + h*sh. Views of a fused QKV tensor fit without a copy.
template <typename T>
struct Rows {
  T* p = nullptr;
  int64_t st = 0, sh = 0;
  T* at(int64_t t, int64_t h) const { return p + t * st + h * sh; }
};

// Token ranges of the sequences: sequence s is rows [start[s], start[s]+len[s]).
// Ranges are sorted and disjoint; rows outside every range are padding.
struct Seqs {
  const int32_t* start = nullptr;
  const int32_t* len = nullptr;
  int64_t n = 0;
  int64_t max_len() const {
    int64_t m = 0;
    for (int64_t s = 0; s < n; s++) m = std::max<int64_t>(m, len[s]);
    return m;
  }
};

// Runs fn(slot, task) for every task in [0, ntasks). Tasks are claimed one at
// a time from an atomic counter (so an uneven or slowed core never waits on a
// fixed share); `slot` in [0, nslots) is used by one thread at a time and
// indexes per-thread scratch allocated by the caller before the call.
template <typename F>
void run_tasks(int64_t ntasks, int64_t nslots, const F& fn) {
  if (ntasks <= 0) return;
  std::atomic<int64_t> next{0};
  parallel_for(nslots, 1, [&](int64_t b, int64_t e) {
    for (int64_t slot = b; slot < e; slot++) {
      for (;;) {
        const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= ntasks) break;
        fn(slot, i);
      }
    }
  });
}

inline int64_t slots_for(int64_t ntasks) {
  return std::max<int64_t>(1, std::min<int64_t>(num_threads(), ntasks));
}

// True when the sequences are long enough for head-major copies to pay:
// a key row is re-read by every query block of its sequence, so the copy
// helps once the token-weighted mean length spans a few query blocks; for
// short sequences (small images, packed short samples) it is pure overhead.
inline bool worth_head_major(const Seqs& seqs) {
  double tokens = 0, squares = 0;
  for (int64_t s = 0; s < seqs.n; s++) {
    tokens += seqs.len[s];
    squares += static_cast<double>(seqs.len[s]) * seqs.len[s];
  }
  return tokens > 0 && squares >= 4.0 * kBq * tokens;
}

// Returns x with the rows of each head contiguous ([H][T][D], token stride D):
// x itself when it already is (or `enabled` is false), else a copy into `buf`
// (allocated here). The inner loops then stream rows instead of striding by
// H·D (4 KiB for 16×64 heads: a TLB miss per row, and L1 set aliasing).
template <typename T>
Rows<const T> head_major(const Rows<const T>& x, int64_t T_, int64_t H, int64_t D, std::unique_ptr<Buf<T>>& buf,
                         bool enabled) {
  if (!enabled || x.st == D || T_ <= 1) return x;
  buf.reset(new Buf<T>(static_cast<size_t>(T_ * H * D)));
  T* dst = buf->get();
  parallel_for(T_, std::max<int64_t>(1, 16384 / std::max<int64_t>(H * D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++)
      for (int64_t h = 0; h < H; h++) std::memcpy(dst + (h * T_ + t) * D, x.at(t, h), sizeof(T) * D);
  });
  return Rows<const T>{dst, D, T_ * D};
}

// Zeroes the rows of a contiguous [T, rowElems] buffer that no sequence covers.
template <typename T>
void zero_gaps(T* p, int64_t rowElems, int64_t T_, const Seqs& seqs, T fillValue = T(0)) {
  int64_t row = 0;
  auto fill = [&](int64_t a, int64_t b) {
    for (int64_t i = a * rowElems; i < b * rowElems; i++) p[i] = fillValue;
  };
  for (int64_t s = 0; s < seqs.n; s++) {
    fill(row, seqs.start[s]);
    row = seqs.start[s] + seqs.len[s];
  }
  fill(row, T_);
}

// ------------------------------------------------------------ argument checks

// A JS array of exactly n integers.
inline std::vector<int64_t> ints(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what, size_t n) {
  Napi::Value v = info[i];
  if (!v.IsArray()) throw KernelError(std::string(op) + ": argument '" + what + "' must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != n) {
    throw KernelError(std::string(op) + ": argument '" + what + "' must have " + std::to_string(n) + " entries, got " +
                      std::to_string(a.Length()));
  }
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; k++) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) throw KernelError(std::string(op) + ": argument '" + what + "' must be an array of integers");
    out[k] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}

// Checks that a [T, H, D] operand with strides (st, sh, 1) lies inside `a`.
template <typename T>
Rows<const T> rows_of(const Arr<T>& a, int64_t T_, int64_t H, int64_t D, int64_t st, int64_t sh, const char* op,
                const char* what) {
  check(st >= 0 && sh >= 0, std::string(op) + ": negative stride for '" + what + "'");
  if (T_ > 0 && H > 0 && D > 0) need(a, (T_ - 1) * st + (H - 1) * sh + D, op, what);
  return Rows<const T>{a.ptr, st, sh};
}

// Sequence ranges from two Int32Arrays; checks they are sorted, disjoint and inside [0, T).
inline Seqs seqs_of(const Arr<int32_t>& starts, const Arr<int32_t>& lens, int64_t T_, const char* op) {
  check(starts.len == lens.len, std::string(op) + ": seqStarts has " + std::to_string(starts.len) +
                                    " entries but seqLens has " + std::to_string(lens.len));
  int64_t end = 0;
  for (size_t s = 0; s < starts.len; s++) {
    const int64_t a = starts.ptr[s], n = lens.ptr[s];
    if (a < end || n < 0 || a + n > T_) {
      throw KernelError(std::string(op) + ": sequence " + std::to_string(s) + " (start " + std::to_string(a) +
                        ", length " + std::to_string(n) + ") overlaps the previous one or leaves [0, " +
                        std::to_string(T_) + ")");
    }
    end = a + n;
  }
  return Seqs{starts.ptr, lens.ptr, static_cast<int64_t>(starts.len)};
}

inline bool is_f64(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

// Arguments of a forward attention call (attentionForward, attentionForwardBf16).
template <typename T>
struct FwdArgs {
  Rows<const T> q, k, v;
  T* out;
  T* lse;
  Seqs seqs;
  int64_t T_, Hq, Hkv, D;
  bool causal;
  T scale;
};

// (q, k, v, out, lse, seqStarts, seqLens, dims [T, Hq, Hkv, D], strides [qT, qH, kT, kH, vT, vH], causal, scale),
// every extent checked against its buffer.
template <typename T>
FwdArgs<T> forward_args(const Napi::CallbackInfo& info, const char* op) {
  auto dims = ints(info, 7, op, "dims [T, Hq, Hkv, D]", 4);
  auto st = ints(info, 8, op, "strides [qT, qH, kT, kH, vT, vH]", 6);
  const int64_t T_ = dims[0], Hq = dims[1], Hkv = dims[2], D = dims[3];
  check(T_ >= 0 && Hq >= 1 && Hkv >= 1 && D >= 1 && Hq % Hkv == 0,
        std::string(op) + ": invalid dims " + shapeStr({T_, Hq, Hkv, D}) + " (need Hq a multiple of Hkv)");
  FwdArgs<T> a;
  a.q = rows_of(arr<T>(info, 0, op, "q"), T_, Hq, D, st[0], st[1], op, "q");
  a.k = rows_of(arr<T>(info, 1, op, "k"), T_, Hkv, D, st[2], st[3], op, "k");
  a.v = rows_of(arr<T>(info, 2, op, "v"), T_, Hkv, D, st[4], st[5], op, "v");
  auto out = arr<T>(info, 3, op, "out");
  auto lse = arr<T>(info, 4, op, "lse");
  need(out, T_ * Hq * D, op, "out");
  need(lse, T_ * Hq, op, "lse");
  a.out = out.ptr;
  a.lse = lse.ptr;
  a.seqs = seqs_of(arr<int32_t>(info, 5, op, "seqStarts"), arr<int32_t>(info, 6, op, "seqLens"), T_, op);
  a.T_ = T_;
  a.Hq = Hq;
  a.Hkv = Hkv;
  a.D = D;
  a.causal = boolean(info, 9);
  a.scale = static_cast<T>(f64(info, 10, op, "scale"));
  return a;
}

}  // namespace attn
}  // namespace sv
