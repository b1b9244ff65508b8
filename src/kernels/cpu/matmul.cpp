#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/ops.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

// Rows of w dequantized together: the tile is reused by every token while it sits in
// L1/L2, so prefill reads each weight block once per step instead of once per token.
constexpr int64_t kRowTile = 16;

}  // namespace

void dequantize_row(const TensorView& w, int64_t r, float* dst) {
  const uint8_t* row = w.row_ptr(r);
  if (w.dtype == DType::F32) {
    std::memcpy(dst, row, static_cast<size_t>(w.ne[0]) * sizeof(float));
    return;
  }
  type_traits(w.dtype).to_float(row, dst, w.ne[0]);
}

void matmul_rows(const TensorView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t ldx,
                 float* y, int64_t ldy, int64_t n_tok, ThreadPool& pool) {
  const int64_t n_in = w.ne[0];
  const int64_t n_rows = row_end - row_begin;
  const int64_t n_tiles = (n_rows + kRowTile - 1) / kRowTile;
  pool.parallel_for(n_tiles, [&](int64_t tb, int64_t te, int) {
    thread_local std::vector<float> tile;  // grows once per thread, then reused
    if (tile.size() < static_cast<size_t>(kRowTile * n_in)) tile.resize(static_cast<size_t>(kRowTile * n_in));
    for (int64_t ti = tb; ti < te; ++ti) {
      const int64_t r0 = row_begin + ti * kRowTile;
      const int64_t nr = std::min(kRowTile, row_end - r0);
      const float* rows[kRowTile];
      for (int64_t k = 0; k < nr; ++k) {
        if (w.dtype == DType::F32) {
          rows[k] = reinterpret_cast<const float*>(w.row_ptr(r0 + k));
        } else {
          dequantize_row(w, r0 + k, tile.data() + k * n_in);
          rows[k] = tile.data() + k * n_in;
        }
      }
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* xt = x + t * ldx;
        float* yt = y + t * ldy + (r0 - row_begin);
        for (int64_t k = 0; k < nr; ++k) yt[k] = ops::dot(rows[k], xt, n_in);
      }
    }
  });
}

void matmul(const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok,
            ThreadPool& pool) {
  matmul_rows(w, 0, w.ne[1], x, ldx, y, ldy, n_tok, pool);
}

void matmul_reference(const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok) {
  const TypeTraits& tt = type_traits(w.dtype);
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t r = 0; r < w.ne[1]; ++r) y[t * ldy + r] = tt.dot_f32(w.row_ptr(r), x + t * ldx, w.ne[0]);
  }
}

}  // namespace flashlm
