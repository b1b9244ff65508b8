// Attention over a paged KV cache, with grouped-query heads, causal masking, sliding
// windows and optional softcapping, by online softmax (no score row is materialised).
//
// attention_chunk is the fast kernel: a block of queries of one sequence at consecutive
// positions (a prompt chunk, or one decode token) against the keys of one KV head, for
// the query heads sharing it, so each key/value row is loaded once for the whole group.
// It works in tiles of (queries x heads) rows against a few dozen keys, with small
// matrix kernels for the scores and the weighted sum of values (attention_tiles.h).
// attention_paged_ref is the scalar reference it is tested against: one query token,
// one head at a time.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"
#include "util/status.h"

namespace flashlm {

struct AttnTileKernels;

// Keys/values of one sequence in one layer, as stored by kv/KvCache: slot (block,
// offset) at base + (block * block_size + offset) * row_size(type, kv_dim) bytes, each
// slot kv_dim values of `type` (kv_row_store writes them).
struct PagedKvView {
  const void* k = nullptr;
  const void* v = nullptr;
  DType type = DType::F32;  // F32, F16 or Q8_0 (attention_kv_type_check)
  int64_t kv_dim = 0;
  int block_size = 0;
  const int32_t* block_table = nullptr;
};

// Largest head_dim the tiled kernels convert K/V tiles to f32 for (types other than F32).
inline constexpr int kAttnMaxHeadDim = 256;

// Whether attention reads K/V stored as `type` for heads of head_dim values: F32 always;
// F16 up to kAttnMaxHeadDim; Q8_0 when head_dim is also whole blocks of 32 (a head's
// values start on a block boundary). The error says which condition failed.
Status attention_kv_type_check(DType type, int64_t head_dim);

// One K or V slot written as the cache stores it: n floats (n a multiple of the type's
// block size) converted or quantized to `type` at dst.
void kv_row_store(DType type, const float* src, void* dst, int64_t n);

struct AttentionParams {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float scale = 1.0f;     // applied to q.k
  float softcap = 0.0f;   // > 0: scores = softcap * tanh(scores / softcap)
};

// Queries at positions pos0, pos0 + 1, ..., pos0 + n_q - 1 of one sequence. Query t's
// heads are at q + t * q_stride ([n_head, head_dim]); its output goes to the same place
// in out.
struct AttentionQueries {
  const float* q = nullptr;
  int64_t q_stride = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
  int64_t pos0 = 0;
  int64_t n_q = 0;
};

// Query t attends key positions [max(0, pos0 + t - window + 1), pos0 + t] (window <= 0:
// from 0), all of which must be in the cache. Only query heads [head_begin, head_end)
// are computed; the work is fastest when they share one KV head. The tile kernels
// default to the fastest this CPU runs.
void attention_chunk(const AttentionQueries& qs, const PagedKvView& kv, const AttentionParams& p, int64_t window,
                     int head_begin, int head_end);
void attention_chunk(const AttentionQueries& qs, const PagedKvView& kv, const AttentionParams& p, int64_t window,
                     int head_begin, int head_end, const AttnTileKernels& kernels);

// Reference. q: [n_head, head_dim]; out: [n_head, head_dim]. Attends key positions
// [pos_begin, pos_end] inclusive. Heads in [head_begin, head_end) only.
void attention_paged_ref(const float* q, const PagedKvView& kv, const AttentionParams& p, int64_t pos_begin,
                         int64_t pos_end, int head_begin, int head_end, float* out);

}  // namespace flashlm
