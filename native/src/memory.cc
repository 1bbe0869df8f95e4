// Native memory for tensors: 64-byte aligned blocks handed to JS as external
// ArrayBuffers. `free` releases the block at once and detaches the buffer, so
// large tensors never wait for the garbage collector; the finalizer only
// frees blocks that were never released explicitly.
#include "common.h"
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>
#include <cstdlib>

namespace sv {
namespace {

std::atomic<int64_t> g_bytes{0}, g_blocks{0}, g_peak{0};

struct Block {
  void* data;
  size_t bytes;
  bool released;
};

// Live blocks by data address, so `free` can find a buffer's block.
std::mutex g_mu;
std::unordered_map<void*, Block*> g_live;

// Cache of freed large blocks. Training and decoding allocate the same large
// sizes every step; glibc would munmap each one and the next step would pay
// first-touch page faults again (measured: ~2.4 GB/s for fresh 32 MB zeros).
// Sizes are rounded up (at most 1/8 waste) so similar sizes share buckets.
// From 64 KiB: glibc serves blocks above 128 KiB by mmap, and the page faults
// of a fresh 128 KiB–1 MiB output cost 10–20% of a mid-size GEMM.
constexpr size_t kCacheMinBytes = 64 << 10;
std::unordered_map<size_t, std::vector<void*>> g_cache;
int64_t g_cached = 0;
int64_t cache_limit() {
  static int64_t lim = [] {
    const char* e = std::getenv("SEEDVL_ALLOC_CACHE_MB");
    return e ? std::atoll(e) * (1 << 20) : int64_t(2048) << 20;
  }();
  return lim;
}

size_t bucket_size(size_t padded) {
  if (padded < kCacheMinBytes) return padded;
  size_t p2 = 1;
  while (p2 < padded) p2 <<= 1;
  size_t step = p2 / 8;
  return ((padded + step - 1) / step) * step;
}

// Caller holds g_mu.
void* take_cached(size_t bytes) {
  auto it = g_cache.find(bytes);
  if (it == g_cache.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  g_cached -= static_cast<int64_t>(bytes);
  return p;
}

// Caller holds g_mu.
void free_or_cache(void* p, size_t bytes) {
  if (bytes >= kCacheMinBytes && g_cached + static_cast<int64_t>(bytes) <= cache_limit()) {
    g_cache[bytes].push_back(p);
    g_cached += static_cast<int64_t>(bytes);
  } else {
    std::free(p);
  }
}

// Caller holds g_mu.
void release_locked(Block* b) {
  if (b->released) return;
  b->released = true;
  auto it = g_live.find(b->data);
  if (it != g_live.end() && it->second == b) g_live.erase(it);
  free_or_cache(b->data, b->bytes);
  g_bytes -= static_cast<int64_t>(b->bytes);
  g_blocks -= 1;
}

void finalize(Napi::Env, void*, Block* b) {
  std::lock_guard<std::mutex> lk(g_mu);
  release_locked(b);
  delete b;
}

bool release_by_data(void* data) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_live.find(data);
  if (it == g_live.end()) return false;
  release_locked(it->second);
  return true;
}

bool release_by_data_check(void* data) {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_live.count(data) > 0;
}


}  // namespace

// alloc(nbytes, zero) -> ArrayBuffer
SV_KERNEL(alloc) {
  int64_t n = i64(info, 0, "alloc", "nbytes");
  bool zero = info.Length() > 1 && boolean(info, 1);
  check(n >= 0, "alloc: negative size " + std::to_string(n));
  size_t bytes = static_cast<size_t>(n);
  size_t padded = ((bytes + 63) / 64) * 64;
  if (padded == 0) padded = 64;
  padded = bucket_size(padded);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    p = take_cached(padded);
  }
  if (!p) p = std::aligned_alloc(64, padded);
  if (!p) {
    // Give cached blocks back to the system and try once more.
    std::lock_guard<std::mutex> lk(g_mu);
    for (auto& kv : g_cache) for (void* q : kv.second) std::free(q);
    g_cache.clear();
    g_cached = 0;
    p = std::aligned_alloc(64, padded);
  }
  if (!p) throw KernelError("alloc: out of memory allocating " + std::to_string(n) + " bytes");
  if (zero) std::memset(p, 0, padded);
  Block* b = new Block{p, padded, false};
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_live[p] = b;
  }
  g_bytes += static_cast<int64_t>(padded);
  g_blocks += 1;
  int64_t cur = g_bytes.load();
  int64_t peak = g_peak.load();
  while (cur > peak && !g_peak.compare_exchange_weak(peak, cur)) {}
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), p, bytes, finalize, b);
  // V8 counts an external buffer's bytes as external memory until a GC sweeps
  // the buffer, and starts a major GC whenever that count has grown by 64 MB.
  // Tensors are freed explicitly (dispose/tidy), so those GCs reclaim nothing:
  // a Qwen2.5-VL vision encode ran ~230 of them, each stealing a core from the
  // kernels. Taking the bytes back out of the count at once halves them
  // (measured with --trace-gc); V8 subtracts them once more when it sweeps,
  // which only moves the count further from its limit.
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -static_cast<int64_t>(bytes));
  return ab;
}

// free(arrayBuffer): releases the block now and detaches the buffer.
SV_KERNEL(free) {
  Napi::Value v = info[0];
  check(v.IsArrayBuffer(), "free: argument must be an ArrayBuffer from alloc");
  Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  if (data == nullptr) return info.Env().Undefined();  // already detached
  // Detach first so no JS view can reach the memory once it is freed.
  if (!release_by_data_check(data)) throw KernelError("free: buffer was not allocated by seedvl");
  ab.Detach();
  release_by_data(data);
  return info.Env().Undefined();
}

// emptyCache(): returns every cached free block to the system.
SV_KERNEL(emptyCache) {
  std::lock_guard<std::mutex> lk(g_mu);
  for (auto& kv : g_cache) for (void* q : kv.second) std::free(q);
  g_cache.clear();
  g_cached = 0;
  return info.Env().Undefined();
}

SV_KERNEL(memoryStats) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(g_bytes.load())));
  o.Set("blocks", Napi::Number::New(info.Env(), static_cast<double>(g_blocks.load())));
  o.Set("peakBytes", Napi::Number::New(info.Env(), static_cast<double>(g_peak.load())));
  {
    std::lock_guard<std::mutex> lk(g_mu);
    o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(g_cached)));
  }
  return o;
}

}  // namespace sv
