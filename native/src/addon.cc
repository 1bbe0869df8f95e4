// Module entry: exports every kernel registered with SV_KERNEL, plus the CPU
// features the dispatcher found.
#include "common.h"
#include "cpu.h"
#include "gemm_bf16.h"

namespace sv {

std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}

void checkArgc(const Napi::CallbackInfo& info, size_t n, const char* op) {
  if (info.Length() < n) {
    throw KernelError(std::string(op) + ": expected " + std::to_string(n) + " arguments, got " +
                      std::to_string(info.Length()));
  }
}

}  // namespace sv

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const auto& e : sv::registry()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  Napi::Object f = Napi::Object::New(env);
  const sv::CpuFeatures& c = sv::cpu();
  f.Set("avx2", c.avx2);
  f.Set("fma", c.fma);
  f.Set("avx512f", c.avx512f);
  f.Set("avx512bw", c.avx512bw);
  f.Set("avx512bf16", c.avx512bf16);
  f.Set("avx512vnni", c.avx512vnni);
  f.Set("f16c", c.f16c);
  // AMX tiles usable: the CPU has amx_tile + amx_bf16 and Linux granted the tile state.
  f.Set("amxBf16", sv::gemm::bf16_amx_available());
  f.Set("level", sv::isa_name(sv::isa()));
  exports.Set("cpu", f);
  return exports;
}

NODE_API_MODULE(seedvl_native, Init)
