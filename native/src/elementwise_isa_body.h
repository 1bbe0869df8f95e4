// Compiles the body header named by SV_ISA_BODY twice (portable and AVX-512);
// see elementwise_isa.h. Include once per .cc file, after every standard
// header the body needs (bodies must not include standard headers: they are
// expanded inside a namespace, and std inline functions compiled under the
// AVX-512 pragma could be merged into portable callers by the linker).
#ifndef SV_ISA_BODY
#error "define SV_ISA_BODY to the kernel body header before including elementwise_isa_body.h"
#endif
#include "elementwise_isa.h"

// no-trapping-math lets GCC turn the float selects of the math functions into
// blends on SSE2 (AVX-512 masks them anyway); results are unchanged, only FP
// exception flags, which nothing reads, may differ.
_Pragma("GCC push_options") _Pragma("GCC optimize(\"no-trapping-math\")")
namespace sv {
namespace ew_portable {
#define SV_VEC_BYTES 16
#include "elementwise_math.h"
#include SV_ISA_BODY
#undef SV_VEC_BYTES
}  // namespace ew_portable
}  // namespace sv
_Pragma("GCC pop_options")

SV_AVX512_BEGIN
_Pragma("GCC optimize(\"no-trapping-math\")")
namespace sv {
namespace ew_avx512 {
#define SV_VEC_BYTES 64
#include "elementwise_math.h"
#include SV_ISA_BODY
#undef SV_VEC_BYTES
}  // namespace ew_avx512
}  // namespace sv
SV_AVX512_END
