// The int8 matmul over unpacked weight panels (kernels/cpu/gemm_panel.h): activations
// are quantized as llama.cpp does, every 4-row weight panel is unpacked once, and each
// tile of 4 rows x 4 tokens runs an int8 kernel; batches of fewer than 8 tokens (decode)
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

}  // namespace flashlm::gemm
