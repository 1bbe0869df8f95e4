// bf16 flash-attention forward on AMX tiles (attention_amx.cc: driver and
// tasks; attention_amx_block.cc: one query block; attention_amx_pack.cc:
// operand packing). Opt-in through the bf16 matmul-precision switch (the TS op
// decides: src/tensor/ops/attention.ts, attentionUsesBf16); forward only.
//
// Numerics: q, k, v are rounded to bf16 (nearest even, as bf16_round); S =
// q·kᵀ and O = P·v run on TDPBF16PS with f32 accumulation; the online softmax
// (scale, running max, exp2, sums) is f32 AVX-512; P is rounded to bf16 before
// the P·v product; the row sums use the f32 probabilities. Output f32.
//
// Lazy rescaling: the running max only moves when a key block's max exceeds it
// by more than 8 (log2 units), so P entries are at most 2^8 before the final
// division by the row sum (same result up to rounding, fewer O rescales).
//
// Packed operand layouts. Sequences live in a padded token space: sequence s
// starts at row pst[s] (a multiple of kAmxPad) and takes roundup(len, kAmxPad)
// rows; pad rows are zero and pad keys always masked. Q, per head: rows of Dp bf16.
//  - K, per kv head: groups of 16 keys, each [Dp/2 pairs][16 keys] uint32 (a
//    pair = two bf16 of consecutive head-dim entries, low half even): one B
//    tile of q·kᵀ is 16 contiguous rows of 64 bytes. Dp = roundup(D, 32), zero padded.
//  - V, per kv head: [key pair][Dv] uint32 (a pair = two consecutive keys of one
//    head-dim column): B tiles of P·v. Dv = roundup(D, 16), zero padded.
#pragma once
#include "attention_common.h"
#include <cstdint>
#include <vector>

namespace sv {
namespace attn {

constexpr int64_t kAmxPad = 32;  // sequence padding in the packed token space (two 16-key tile columns)
constexpr int64_t kAmxShortMax = 64;  // sequences up to this length are packed per task (one query block)

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

struct AmxGeom {
  int64_t T = 0, Hq = 0, Hkv = 0, D = 0;
  int64_t Dp = 0, Dv = 0;       // packed widths (bf16 elements) of K rows and V rows
  int64_t P = 0;                // padded token count of the shared packed K/V (rows per kv head)
  std::vector<int64_t> pst;     // padded start of each sequence there, -1 if its tasks pack their own
};

// Sequences longer than sharedAbove get shared packed K/V (many query blocks
// read them); shorter ones are packed by their task into its scratch (read
// once per query head: a shared copy would only add a trip through memory).
AmxGeom amx_geometry(const Seqs& seqs, int64_t T_, int64_t Hq, int64_t Hkv, int64_t D, int64_t sharedAbove);

// Shared Q/K/V of the sequences with pst >= 0, read token by token: Qp [Hq][P][Dp]
// bf16, Kp [Hkv][P/16][Dp/2][16] and Vp [Hkv][P/2][Dv] uint32.
void amx_pack_long(const Rows<const float>& q, const Rows<const float>& k, const Rows<const float>& v, const Seqs& seqs,
                   const AmxGeom& g, uint16_t* Qp, uint32_t* Kp, uint32_t* Vp);
// A short sequence (L ≤ kAmxShortMax tokens from t0), all heads, read token by
// token: Qa [Hq][kAmxShortMax][Dp] bf16, Ka [Hkv][kAmxShortMax/16][Dp/2][16]
// and Va [Hkv][kAmxShortMax/2][Dv] uint32 (layouts as above; rows past
// roundup(L, kAmxPad) untouched); Ktmp [Hkv][64][Dp/2] is scratch.
void amx_pack_short(const Rows<const float>& q, const Rows<const float>& k, const Rows<const float>& v, int64_t t0,
                    int64_t L, int64_t Hq, int64_t Hkv, int64_t D, int64_t Dp, int64_t Dv, uint16_t* Qa, uint32_t* Ktmp,
                    uint32_t* Ka, uint32_t* Va);

constexpr int64_t kAmxQ = 64;   // queries per block (a short sequence is one block)
constexpr int64_t kAmxK = 128;  // keys per block: each round trip of O through the tiles serves 128 keys
static_assert(kAmxQ == kAmxShortMax, "a short sequence is one query block");

using AmxArgs = FwdArgs<float>;

// One query block's working set (attention_amx_block.cc).
struct AmxBlockScratch {
  const uint16_t* Qs;  // the block's queries, [kAmxQ][Dp] bf16, rows past the sequence zero
  float* S;            // [2][kAmxQ][kAmxK] scores of this key block and the next
  uint16_t* P;         // [kAmxQ][kAmxK] bf16 probabilities
  float* O;            // [kAmxQ][Dv] output accumulator
  float* m;            // [kAmxQ] running max (scaled, log2 units)
  float* l;            // [kAmxQ] running sum
  float* alpha;        // [kAmxQ] rescale of the current key block
};
int64_t amx_block_scratch_floats(int64_t Dv);
AmxBlockScratch amx_block_scratch(float* base, int64_t Dv);  // base: 64-byte aligned, amx_block_scratch_floats(Dv) floats

// Queries [q0, q0+64) ∩ [0, L) of head h of the sequence starting at token
// `start` against its keys (kSeq, vSeq: packed, key 0 of the sequence), written to a.out and a.lse.
void amx_query_block(const AmxArgs& a, const AmxGeom& g, int64_t h, int64_t start, int64_t L, int64_t q0,
                     const uint32_t* kSeq, const uint32_t* vSeq, const AmxBlockScratch& w);

// True when the bf16 attention forward can run here: AMX granted, avx512_bf16, and the ISA cap allows AVX-512.
bool amx_attention_available();

}  // namespace attn
}  // namespace sv
