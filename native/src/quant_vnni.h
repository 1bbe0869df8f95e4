// AVX-512 VNNI path of the quantised GEMV (see quant_vnni.cc). Chosen by the
// driver when the CPU has avx512_vnni, the format fits (int8: G % 64 == 0;
// int4: G == 32 or G % 128 == 0) and int8 activations are enabled.
#pragma once
#include <cstdint>
#include "quant.h"

namespace sv {
namespace quant {

// Weights per chunk (one 64-byte load of a weight row): 64 (int8) or 128 (int4).
int64_t vnni_chunk_weights(int bits);
// Prepared bytes per chunk of one activation row: x values, 16 s32 offsets, 16 f32 lane scales.
inline int64_t vnni_chunk_prep(int bits) { return (bits == 8 ? 64 : 128) + 128; }
bool vnni_supported(int bits, int64_t G, int64_t K);
int64_t vnni_prep_bytes(int bits, int64_t K);
// Quantises one activation row into the prepared layout.
void vnni_prep_x(int bits, const float* x, int64_t K, uint8_t* dst);
// out[r, n] for n in [n0, n1) and r < g.R; prep holds the R prepared rows back to back.
void qgemv_vnni(const QGemv& g, const uint8_t* prep, int64_t n0, int64_t n1);

// Process-wide switch (tests and benchmarks): allow int8 activations on the VNNI path.
bool vnni_enabled();
void set_vnni_enabled(bool on);

}  // namespace quant
}  // namespace sv
