// The int8 matmul over unpacked weight panels (kernels/cpu/gemm_panel.h): activations
// are quantized as llama.cpp does, every 4-row weight panel is unpacked once, and each
// tile of 4 rows x 4 tokens runs an int8 kernel; batches of at most 16 tokens (decode)
// skip the panels and run the decode kernels on the quantized rows with the same
// arithmetic, bit for bit. matmul_rows uses it for every batch size when the CPU has a
// fast tile kernel (AVX-512 VNNI).
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "tensor/tensor.h"

namespace flashlm::gemm {

enum class TileKernel { kReference, kVnni };

// The fastest tile kernel this CPU has, or false when there is none faster than the
// per-row dot products (then callers should not use gemm_rows).
bool best_tile_kernel(TileKernel* out);

// y[t, r - row_begin] for rows [row_begin, row_end) of w, as matmul_rows. Returns false,
// doing nothing, when w's type has no panel unpacker (panel_supported).
bool gemm_rows(const TensorView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t ldx, float* y,
               int64_t ldy, int64_t n_tok, ThreadPool& pool, TileKernel kernel);

// Rows [row_begin, row_end) of w into y[t, r - row_begin] (row stride ldy).
struct GemvPart {
  const TensorView* w = nullptr;
  int64_t row_begin = 0, row_end = 0;
  float* y = nullptr;
  int64_t ldy = 0;
};
inline constexpr int kMaxGemvParts = 4;

// Decode-sized batches (fewer than kGemvMaxTokens tokens) of up to kMaxGemvParts
// matrices of one type and input width that share the activations x: quantized once, and
// all parts' rows in one pool operation, each with gemm_rows's bits. Returns false,
// doing nothing, when it does not apply (no VNNI, too many tokens, mixed types).
// gemm_rows takes this path below kGemvMaxTokens instead of unpacking panels (same bits,
// so speed only). Measured on Zen 4, 2 threads (flashlm bench -p N): 16 tokens are as fast
// or faster this way on both real models (SmolLM2 pp8 310 -> 523 tok/s), 24 and more
// favour the panels on Gemma 3's Q5_0/K-quant matrices.
inline constexpr int64_t kGemvMaxTokens = 17;
bool gemv_parts(const GemvPart* parts, int n_parts, const float* x, int64_t ldx, int64_t n_tok, ThreadPool& pool);

}  // namespace flashlm::gemm
