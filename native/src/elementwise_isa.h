// How the elementwise/reduction/norm/loss/optimizer kernel families get an
// AVX-512 build next to the portable one without writing intrinsics twice.
//
// Each family writes its loops once, as plain C++ in a "body" header
// (*_impl.h, no include guard) that GCC auto-vectorises. A family's .cc file
// defines SV_ISA_BODY to that header and includes elementwise_isa_body.h,
// which compiles the body twice: in namespace sv::ew_portable with the
// baseline target (SSE2) and in sv::ew_avx512 under
// `#pragma GCC target("avx512f,...")`. SV_ISA_CALL picks one at run time from
// sv::isa(), so native.setIsa('portable') in tests switches every family.
// Bodies see SV_VEC_BYTES (16 or 64) to size their vectors, and are built
// with no-trapping-math so that float selects vectorise on SSE2 too. An AVX2
// machine runs the portable build (there is no AVX2 build of these kernels).
#pragma once
#include "cpu.h"
#include <type_traits>

#define SV_AVX512_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,fma\")")
#define SV_AVX512_END _Pragma("GCC pop_options")

// fn may be a template-id without commas, e.g. softmax_rows<float>.
#define SV_ISA_CALL(fn, ...)                                                   \
  (::sv::isa() == ::sv::Isa::Avx512 ? ::sv::ew_avx512::fn(__VA_ARGS__) \
                                    : ::sv::ew_portable::fn(__VA_ARGS__))

// For kernels generic over T (float/double): float64 always takes the
// portable build. float64 serves gradient checks, where speed does not
// matter, and leaving it out of the AVX-512 build halves these files' build
// time. An expression (an immediately invoked lambda), so it can return.
#define SV_ISA_CALL_T(T, fn, ...)                                    \
  ([&]() {                                                           \
    if constexpr (std::is_same<T, float>::value)                     \
      return SV_ISA_CALL(fn<float>, __VA_ARGS__);                    \
    else                                                             \
      return ::sv::ew_portable::fn<T>(__VA_ARGS__);                  \
  }())
