// Matrix multiplication of (possibly quantized) weights by f32 activations:
//   y[t, r] = sum_i w[r, i] * x[t, i]
// w: [n_out, n_in] in any dtype of the traits table (rows contiguous, row stride nb[1]);
// x: [n_tok, n_in] f32, row stride ldx; y: [n_tok, n_out] f32, row stride ldy.
// For quantized and f16/bf16 weights, x is first rounded to the weight type's vec_dot
// type (kernels/cpu/vec_dot.h), as llama.cpp does; f32 weights use x as it is.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "tensor/tensor.h"

namespace flashlm {

// With batch_invariant, each token's outputs are the same bits whatever else is in the
// batch. Where the CPU has a GEMM tile (AVX-512 VNNI), every batch size goes through the
// panel GEMM: its arithmetic per (row, token) does not depend on how many tokens or rows
// share a tile, so decode batches of any size get the fast kernel and stay invariant.
// Elsewhere only the per-row dot products run (their token groups equal single tokens
// bit for bit). Without the option, small batches use the per-row dot products and
// batches of kGemmMinTokens or more the GEMM, so a token's result may depend on the
// batch size (run/bench/perplexity prefill, where nothing else shares the batch).
struct MatmulOptions {
  bool batch_invariant = false;
};

void matmul(const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok,
            ThreadPool& pool, MatmulOptions opts = {});

// Several matmuls of one input: y_i = x W_i^T. In decode-sized batches, each run of
// consecutive matrices of one type goes through the pool once (gemm::gemv_parts), with
// each output's bits unchanged; otherwise one matmul after another.
struct MatmulOut {
  const TensorView* w = nullptr;
  float* y = nullptr;
  int64_t ldy = 0;
};
void matmul_group(const MatmulOut* outs, int n_outs, const float* x, int64_t ldx, int64_t n_tok, ThreadPool& pool,
                  MatmulOptions opts = {});

// Rows [row_begin, row_end) of w only (used to compute logits for a vocabulary slice).
void matmul_rows(const TensorView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t ldx,
                 float* y, int64_t ldy, int64_t n_tok, ThreadPool& pool, MatmulOptions opts = {});

// Batches of at least kGemmMinTokens tokens (any size with batch_invariant) go through
// the panel GEMM (kernels/cpu/gemm_q8.h) when the CPU has a tile kernel for it; smaller
// ones, and formats without a panel unpacker, use per-row dot products over token groups.
constexpr int64_t kGemmMinTokens = 16;
bool matmul_uses_gemm(DType weight_type, int64_t n_tok, MatmulOptions opts = {});

// Reference: per-row traits dot product with x in f32 (no activation rounding), no tiling.
void matmul_reference(const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok);

// Dequantize row r of w into dst (w.ne[0] floats).
void dequantize_row(const TensorView& w, int64_t r, float* dst);

}  // namespace flashlm
