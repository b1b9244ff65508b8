#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm_q8.h"
#include "kernels/cpu/gemm_panel.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vec_dot.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

// Weight rows handled together: the tile is reused by every token while it sits in
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

namespace {

// Weight types without an integer dot product (none of the weight formats we load,
// but the traits table has more): dequantize a tile of rows, then f32 dots.
void matmul_rows_dequant(const TensorView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t ldx,
                         float* y, int64_t ldy, int64_t n_tok, ThreadPool& pool) {
  const int64_t n_in = w.ne[0];
  const int64_t n_tiles = (row_end - row_begin + kRowTile - 1) / kRowTile;
  pool.parallel_for(n_tiles, [&](int64_t tb, int64_t te, int) {
    thread_local std::vector<float> tile;  // grows once per thread, then reused
    if (tile.size() < static_cast<size_t>(kRowTile * n_in)) tile.resize(static_cast<size_t>(kRowTile * n_in));
    for (int64_t ti = tb; ti < te; ++ti) {
      const int64_t r0 = row_begin + ti * kRowTile;
      const int64_t nr = std::min(kRowTile, row_end - r0);
      for (int64_t k = 0; k < nr; ++k) dequantize_row(w, r0 + k, tile.data() + k * n_in);
      for (int64_t t = 0; t < n_tok; ++t) {
        float* yt = y + t * ldy + (r0 - row_begin);
        for (int64_t k = 0; k < nr; ++k) yt[k] = ops::dot(tile.data() + k * n_in, x + t * ldx, n_in);
      }
    }
  });
}

}  // namespace

// Like llama.cpp: each activation row is quantized once to the weight type's vec_dot
// type, then every weight row meets it in a block-integer dot product. F32 weights use
// the activations as they are.
void matmul_rows(const TensorView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t ldx,
                 float* y, int64_t ldy, int64_t n_tok, ThreadPool& pool, MatmulOptions opts) {
  if (matmul_uses_gemm(w.dtype, n_tok, opts)) {
    gemm::TileKernel k;
    if (gemm::best_tile_kernel(&k) && gemm::gemm_rows(w, row_begin, row_end, x, ldx, y, ldy, n_tok, pool, k)) return;
  }
  const VecDotTraits& vt = vec_dot_traits(w.dtype);
  if (vt.vec_dot == nullptr) {
    matmul_rows_dequant(w, row_begin, row_end, x, ldx, y, ldy, n_tok, pool);
    return;
  }
  const int64_t n_in = w.ne[0];
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(x);
  size_t xq_stride = static_cast<size_t>(ldx) * sizeof(float);
  if (w.dtype != DType::F32) {
    // The calling thread's buffer: grows to the largest batch once, then is reused. Workers
    // get its address, never the thread_local itself (theirs would be a different one).
    thread_local std::vector<uint8_t> scratch;
    xq_stride = vt.row_bytes(n_in);
    if (scratch.size() < xq_stride * static_cast<size_t>(n_tok)) scratch.resize(xq_stride * static_cast<size_t>(n_tok));
    uint8_t* buf = scratch.data();
    pool.parallel_for(n_tok, [&, buf](int64_t tb, int64_t te, int) {
      for (int64_t t = tb; t < te; ++t) vt.quantize_row(x + t * ldx, buf + static_cast<size_t>(t) * xq_stride, n_in);
    });
    xq = buf;
  }
  const VecDotFn vec_dot = vt.vec_dot;
  const VecDotX8Fn vec_dot_x8 = vt.vec_dot_x8;
  const int64_t n_tiles = (row_end - row_begin + kRowTile - 1) / kRowTile;
  // A tile of weight rows stays in L1/L2 while every token passes over it, so prefill
  // reads each weight block from memory once per call instead of once per token.
  pool.parallel_for(n_tiles, [&, xq, xq_stride, vec_dot, vec_dot_x8](int64_t tb, int64_t te, int) {
    for (int64_t ti = tb; ti < te; ++ti) {
      const int64_t r0 = row_begin + ti * kRowTile;
      const int64_t nr = std::min(kRowTile, row_end - r0);
      // Groups of tokens share each weight block's unpacking (nibbles, high bits,
      // scales); the group kernel's results equal vec_dot's bit for bit, so how tokens
      // fall into groups never changes the output.
      auto group = [&](int64_t t0) {
        const uint8_t* xt = xq + static_cast<size_t>(t0) * xq_stride;
        float* yt = y + t0 * ldy + (r0 - row_begin);
        for (int64_t k = 0; k < nr; ++k) {
          float out[kVecDotGroup];
          vec_dot_x8(w.row_ptr(r0 + k), xt, xq_stride, n_in, out);
          for (int64_t j = 0; j < kVecDotGroup; ++j) yt[j * ldy + k] = out[j];
        }
      };
      int64_t t = 0;
      if (vec_dot_x8 != nullptr) {
        for (; t + kVecDotGroup <= n_tok; t += kVecDotGroup) group(t);
        // A long tail goes through one more group overlapping the last full one: the
        // recomputed tokens get the same values again, and a group costs less than
        // half its size in single-token dots.
        if (t > 0 && n_tok - t >= kVecDotGroup / 2) {
          group(n_tok - kVecDotGroup);
          t = n_tok;
        }
      }
      for (; t < n_tok; ++t) {
        const uint8_t* xt = xq + static_cast<size_t>(t) * xq_stride;
        float* yt = y + t * ldy + (r0 - row_begin);
        for (int64_t k = 0; k < nr; ++k) yt[k] = vec_dot(w.row_ptr(r0 + k), xt, n_in);
      }
    }
  });
}

bool matmul_uses_gemm(DType weight_type, int64_t n_tok, MatmulOptions opts) {
  gemm::TileKernel k;
  if (!gemm::panel_supported(weight_type) || !gemm::best_tile_kernel(&k)) return false;
  // The decode kernels share the tile's arithmetic, so every batch size takes it.
  (void)n_tok;
  (void)opts;
  return true;
}

void matmul(const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok,
            ThreadPool& pool, MatmulOptions opts) {
  matmul_rows(w, 0, w.ne[1], x, ldx, y, ldy, n_tok, pool, opts);
}

void matmul_group(const MatmulOut* outs, int n_outs, const float* x, int64_t ldx, int64_t n_tok, ThreadPool& pool,
                  MatmulOptions opts) {
  // Runs of consecutive matrices of one type share a pass (Gemma 3's Q4_K_M files mix a
  // Q8_0 v with Q5_0 q and k in half the layers).
  for (int i = 0; i < n_outs;) {
    const DType t = outs[i].w->dtype;
    int j = i + 1;
    while (j < n_outs && j - i < gemm::kMaxGemvParts && outs[j].w->dtype == t) ++j;
    if (j - i > 1 && matmul_uses_gemm(t, n_tok, opts)) {
      gemm::GemvPart parts[gemm::kMaxGemvParts];
      for (int k = i; k < j; ++k) parts[k - i] = {outs[k].w, 0, outs[k].w->ne[1], outs[k].y, outs[k].ldy};
      if (gemm::gemv_parts(parts, j - i, x, ldx, n_tok, pool)) {
        i = j;
        continue;
      }
    }
    for (; i < j; ++i) matmul(*outs[i].w, x, ldx, outs[i].y, outs[i].ldy, n_tok, pool, opts);
  }
}

void matmul_reference(const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok) {
  const TypeTraits& tt = type_traits(w.dtype);
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t r = 0; r < w.ne[1]; ++r) y[t * ldy + r] = tt.dot_f32(w.row_ptr(r), x + t * ldx, w.ne[0]);
  }
}

}  // namespace flashlm
