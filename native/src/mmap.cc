// Memory-mapped files for zero-copy checkpoint reading.
//
// `mmapFile(path)` maps a whole file MAP_PRIVATE and hands it to JS as an
// external ArrayBuffer. By default the pages are PROT_READ|PROT_WRITE on a
// private (copy-on-write) mapping: a stray write from JS copies that page
// into anonymous memory instead of faulting, and never reaches the file.
// `mmapFile(path, true)` maps PROT_READ only (a write would be SIGSEGV).
//
// `mmapSlice(map, off, len)` makes a second external ArrayBuffer over a range
// of a live mapping, with no finalizer of its own. Slices exist because
// Node 20 cannot make a typed array longer than 4 GiB, so tensors of large
// shards need their own small buffers; the JS owner keeps the mapping alive
// while any slice is in use, and `munmap(map, slices)` detaches every slice it
// is given before unmapping, so no JS view can reach unmapped memory.
//
// Side table as in memory.cc: explicit `munmap` releases at once and marks the
// record released, so the GC finalizer never unmaps twice. Mapped bytes are
// counted apart from allocated bytes (`mmapStats`).
#include "common.h"
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sv {
namespace {

std::atomic<int64_t> g_mapped{0}, g_maps{0}, g_peak_mapped{0};

struct Mapping {
  uint8_t* base;
  size_t bytes;
  bool released;
};

// Live mappings by base address; ordered so a slice pointer finds its mapping.
std::mutex g_mu;
std::map<uintptr_t, Mapping*> g_live;

// Caller holds g_mu.
void unmap_locked(Mapping* m) {
  if (m->released) return;
  m->released = true;
  auto it = g_live.find(reinterpret_cast<uintptr_t>(m->base));
  if (it != g_live.end() && it->second == m) g_live.erase(it);
  ::munmap(m->base, m->bytes);
  g_mapped -= static_cast<int64_t>(m->bytes);
  g_maps -= 1;
}

void finalize(Napi::Env, void*, Mapping* m) {
  std::lock_guard<std::mutex> lk(g_mu);
  unmap_locked(m);
  delete m;
}

// The live mapping containing [p, p+len), or null. Caller holds g_mu.
Mapping* containing_locked(const void* p, size_t len) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_live.upper_bound(a);
  if (it == g_live.begin()) return nullptr;
  --it;
  Mapping* m = it->second;
  uintptr_t base = reinterpret_cast<uintptr_t>(m->base);
  if (a < base || a - base > m->bytes || len > m->bytes - (a - base)) return nullptr;
  return m;
}

std::string errno_text(int e) {
  const char* name = e == ENOENT ? "ENOENT" : e == EACCES ? "EACCES" : e == EISDIR ? "EISDIR"
                   : e == ENOMEM ? "ENOMEM" : e == EMFILE ? "EMFILE" : e == ENAMETOOLONG ? "ENAMETOOLONG"
                   : e == ENOTDIR ? "ENOTDIR" : e == EPERM ? "EPERM" : e == ENODEV ? "ENODEV" : "errno";
  return std::string(name) + " (" + std::strerror(e) + ")";
}

std::string str_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw KernelError(std::string(op) + ": argument '" + what + "' must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::ArrayBuffer buffer_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  if (info.Length() <= i || !info[i].IsArrayBuffer()) throw KernelError(std::string(op) + ": argument '" + what + "' must be an ArrayBuffer");
  return info[i].As<Napi::ArrayBuffer>();
}

}  // namespace

// mmapFile(path, readonly = false) -> ArrayBuffer over the whole file.
SV_KERNEL(mmapFile) {
  std::string path = str_arg(info, 0, "mmapFile", "path");
  bool readonly = info.Length() > 1 && boolean(info, 1);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw KernelError("mmapFile: cannot open '" + path + "': " + errno_text(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw KernelError("mmapFile: cannot stat '" + path + "': " + errno_text(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw KernelError("mmapFile: '" + path + "' is not a regular file" + (S_ISDIR(st.st_mode) ? " (EISDIR)" : ""));
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw KernelError("mmapFile: '" + path + "' is empty (0 bytes); nothing to map");
  }
  size_t bytes = static_cast<size_t>(st.st_size);
  int prot = readonly ? PROT_READ : (PROT_READ | PROT_WRITE);
  void* p = ::mmap(nullptr, bytes, prot, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) {
    throw KernelError("mmapFile: cannot map '" + path + "' (" + std::to_string(bytes) + " bytes): " + errno_text(e));
  }
  Mapping* m = new Mapping{static_cast<uint8_t*>(p), bytes, false};
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_live[reinterpret_cast<uintptr_t>(p)] = m;
  }
  g_mapped += static_cast<int64_t>(bytes);
  g_maps += 1;
  int64_t cur = g_mapped.load(), peak = g_peak_mapped.load();
  while (cur > peak && !g_peak_mapped.compare_exchange_weak(peak, cur)) {}
  return Napi::ArrayBuffer::New(info.Env(), p, bytes, finalize, m);
}

// mmapSlice(map, byteOffset, byteLength) -> ArrayBuffer over part of a live mapping.
SV_KERNEL(mmapSlice) {
  Napi::ArrayBuffer ab = buffer_arg(info, 0, "mmapSlice", "map");
  int64_t off = i64(info, 1, "mmapSlice", "byteOffset");
  int64_t len = i64(info, 2, "mmapSlice", "byteLength");
  size_t total = ab.ByteLength();
  uint8_t* base = static_cast<uint8_t*>(ab.Data());
  check(base != nullptr && total > 0, "mmapSlice: mapping was already unmapped");
  check(off >= 0 && len > 0 && static_cast<uint64_t>(off) <= total && static_cast<uint64_t>(len) <= total - static_cast<uint64_t>(off),
        "mmapSlice: range [" + std::to_string(off) + ", " + std::to_string(off + len) + ") outside the " + std::to_string(total) +
        "-byte mapping (length must be > 0)");
  // A slice equal to the whole mapping would be indistinguishable from it in munmap.
  check(!(off == 0 && static_cast<size_t>(len) == total), "mmapSlice: a slice cannot cover the whole mapping; use the mapping itself");
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_live.find(reinterpret_cast<uintptr_t>(base));
    check(it != g_live.end() && !it->second->released, "mmapSlice: buffer is not a live mapping from mmapFile");
  }
  return Napi::ArrayBuffer::New(info.Env(), base + off, static_cast<size_t>(len));
}

// mmapDetach(slice): detaches a slice made by mmapSlice (no-op if already detached).
SV_KERNEL(mmapDetach) {
  Napi::ArrayBuffer ab = buffer_arg(info, 0, "mmapDetach", "slice");
  if (ab.Data() == nullptr || ab.ByteLength() == 0) return info.Env().Undefined();
  {
    std::lock_guard<std::mutex> lk(g_mu);
    Mapping* m = containing_locked(ab.Data(), ab.ByteLength());
    check(m != nullptr, "mmapDetach: buffer is not a slice of a live mapping");
    check(m->base != ab.Data() || m->bytes != ab.ByteLength(), "mmapDetach: buffer is a whole mapping; use munmap");
  }
  ab.Detach();
  return info.Env().Undefined();
}

// munmap(map, slices = []): detaches the slices and the mapping's buffer, then unmaps now.
SV_KERNEL(munmap) {
  Napi::ArrayBuffer ab = buffer_arg(info, 0, "munmap", "map");
  void* data = ab.Data();
  if (data == nullptr) return info.Env().Undefined();  // already detached
  size_t bytes = ab.ByteLength();
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_live.find(reinterpret_cast<uintptr_t>(data));
    check(it != g_live.end() && it->second->bytes == bytes, "munmap: buffer is not a mapping from mmapFile");
  }
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    check(info[1].IsArray(), "munmap: argument 'slices' must be an array of ArrayBuffers");
    Napi::Array slices = info[1].As<Napi::Array>();
    const uint8_t* lo = static_cast<const uint8_t*>(data);
    // Check every slice before detaching any, so a bad argument changes nothing.
    for (uint32_t k = 0; k < slices.Length(); k++) {
      Napi::Value v = slices.Get(k);
      check(v.IsArrayBuffer(), "munmap: slices[" + std::to_string(k) + "] is not an ArrayBuffer");
      Napi::ArrayBuffer s = v.As<Napi::ArrayBuffer>();
      const uint8_t* p = static_cast<const uint8_t*>(s.Data());
      if (p == nullptr || s.ByteLength() == 0) continue;
      check(p >= lo && p + s.ByteLength() <= lo + bytes && (p != lo || s.ByteLength() != bytes),
            "munmap: slices[" + std::to_string(k) + "] does not lie inside this mapping");
    }
    for (uint32_t k = 0; k < slices.Length(); k++) {
      Napi::ArrayBuffer s = slices.Get(k).As<Napi::ArrayBuffer>();
      if (s.Data() != nullptr && s.ByteLength() != 0) s.Detach();
    }
  }
  // Detach first so no JS view can reach the pages once they are unmapped.
  ab.Detach();
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_live.find(reinterpret_cast<uintptr_t>(data));
  if (it != g_live.end()) unmap_locked(it->second);  // the finalizer may already have run during Detach
  return info.Env().Undefined();
}

// mmapStats() -> { mappedBytes, mappings, peakMappedBytes } (separate from memoryStats' allocations).
SV_KERNEL(mmapStats) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("mappedBytes", Napi::Number::New(info.Env(), static_cast<double>(g_mapped.load())));
  o.Set("mappings", Napi::Number::New(info.Env(), static_cast<double>(g_maps.load())));
  o.Set("peakMappedBytes", Napi::Number::New(info.Env(), static_cast<double>(g_peak_mapped.load())));
  return o;
}

}  // namespace sv
