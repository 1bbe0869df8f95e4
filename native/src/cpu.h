// Runtime CPU-feature detection. Kernels pick an implementation with isa();
// nothing is compiled with -march=native, so one build runs everywhere.
#pragma once

namespace sv {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false;
};

enum class Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };

const CpuFeatures& cpu();
// The widest instruction set usable, capped by SEEDVL_ISA=portable|avx2|avx512.
Isa isa();
const char* isa_name(Isa i);

}  // namespace sv
