// The inner kernels of tiled ("flash") attention, one set per instruction set, chosen
// once at run time. A tile is up to kAttnMaxRows query rows (one row = one query token
// and one query head) against up to kAttnKeyTile keys. Rows are passed as pointer
// arrays: query heads, paged key/value slots and output rows can then sit anywhere, and
// no tile is copied.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace flashlm {

inline constexpr int kAttnMaxRows = 32;
inline constexpr int kAttnKeyTile = 32;  // also the row stride of score tiles (a multiple of 8)

struct AttnTileKernels {
  const char* name;
  // s[r * lds + j] = dot(q[r], k[j]) over d floats; r < n_rows, j < n_keys.
  void (*scores)(const float* const* q, int n_rows, const float* const* k, int n_keys, int d, float* s, int lds);
  // One online-softmax step over a score tile. Row r's scores are scaled, softcapped
  // (softcap > 0) and masked to keys [jb[r], je[r]); then with the running max m[r] and
  // sum l[r]: m' = max(m, row max), corr[r] = exp(m - m'), s = exp(s - m') (0 where
  // masked, including columns from n_keys up to the next multiple of 8, which the
  // buffer must hold), l = l * corr + sum(s). A row with no key keeps m, l; corr = 1.
  void (*softmax)(float* s, int lds, int n_rows, int n_keys, const int* jb, const int* je, float scale,
                  float softcap, float* m, float* l, float* corr);
  // o[r] = o[r] * corr[r] + sum_j p[r * ldp + j] * v[j] over d floats.
  void (*accumulate)(const float* p, int ldp, int n_rows, const float* const* v, int n_keys, int d,
                     float* const* o, const float* corr);
  // dst[j * d + i] = value i of rows[j] as f32, j < n_rows: a K or V tile of a cache
  // stored as F16 or Q8_0 (d a multiple of 32 for Q8_0), converted once
  // per tile for the kernels above. Exact: each value is what the traits' to_float gives.
  void (*load)(DType type, const void* const* rows, int n_rows, int d, float* dst);
  // x[i] = exp(x[i]) with the kernels' own exp (exp_poly.h); exposed for tests.
  void (*exp)(float* x, int64_t n);
};

const AttnTileKernels& attn_tile_kernels_scalar();
// Null unless the AVX2 kernels were compiled in and this CPU has AVX2/FMA/F16C.
const AttnTileKernels* attn_tile_kernels_avx2();
// The fastest set this CPU runs.
const AttnTileKernels& attn_tile_kernels_best();

}  // namespace flashlm
