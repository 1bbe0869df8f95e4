#include "cpu.h"
#include "common.h"
#include <cstdlib>
#include <cstring>

namespace sv {

const CpuFeatures& cpu() {
  static CpuFeatures f = [] {
    CpuFeatures c;
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512dq = __builtin_cpu_supports("avx512dq");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
#if defined(__GNUC__) && __GNUC__ >= 12
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    // f16c is not a __builtin_cpu_supports name in older GCC; read CPUID.1:ECX[29].
    unsigned a, b, cc, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(1), "c"(0));
    c.f16c = (cc >> 29) & 1;
    return c;
  }();
  return f;
}

static Isa g_override = Isa::Avx512;
static bool g_override_set = false;

Isa isa() {
  const CpuFeatures& c = cpu();
  Isa best = Isa::Portable;
  if (c.avx2 && c.fma) best = Isa::Avx2;
  if (c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq && c.fma) best = Isa::Avx512;
  Isa cap = Isa::Avx512;
  if (g_override_set) cap = g_override;
  else if (const char* e = std::getenv("SEEDVL_ISA")) {
    if (!std::strcmp(e, "portable")) cap = Isa::Portable;
    else if (!std::strcmp(e, "avx2")) cap = Isa::Avx2;
  }
  return best < cap ? best : cap;
}

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

// setIsa("portable"|"avx2"|"avx512"): caps dispatch, for tests that compare paths.
SV_KERNEL(setIsa) {
  std::string s = info[0].ToString().Utf8Value();
  if (s == "portable") g_override = Isa::Portable;
  else if (s == "avx2") g_override = Isa::Avx2;
  else if (s == "avx512") g_override = Isa::Avx512;
  else throw KernelError("setIsa: expected portable|avx2|avx512, got '" + s + "'");
  g_override_set = true;
  return Napi::String::New(info.Env(), isa_name(isa()));
}

}  // namespace sv
