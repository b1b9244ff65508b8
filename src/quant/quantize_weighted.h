// Importance-weighted quantization of whole rows: what llama-quantize does with --imatrix
// (ggml's quantize_q4_0 .. quantize_q6_K with quant_weights != NULL). The weights are one
// imatrix row -- per column, the mean square of the activations that column multiplies --
// so each element's rounding error counts by how much it moves the layer's output.
// Bytes are ggml's for the same floats and weights.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace flashlm::quant {

// One row of n values (n a multiple of the block size) quantized with per-column
// importance qw[n] (an imatrix row), ggml's weighted method; qw == nullptr: the reference method.
using QuantizeRowWeightedFn = void (*)(const float* x, void* y, int64_t n, const float* qw);

// The weighted quantizer of t, or nullptr for a type without one (F32/F16/BF16/Q8_0 ignore an imatrix, as in ggml).
// Covered: Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. The legacy types use the
// whole row (their weights mix in the row's mean square), so a row must not be split.
QuantizeRowWeightedFn quantize_row_weighted(DType t);

}  // namespace flashlm::quant
