// Prefill GEMM operands in one common integer form, whatever the weight format.
//
// A panel holds kPanelRows weight rows cut into 32-element chunks. Each chunk keeps its
// weights as int8 codes q, a float scale per 16-element half, and a float offset per
// chunk, so that weight = s * q + m (Q4_1/Q5_1 mins and K-quant mins become m; the
// centring of Q4_0/Q5_0/Q6_K is folded into signed q). Activations, quantized as
// llama.cpp does (Q8_0 / Q8_1 / Q8_K, chosen by the weight type), are laid out the same
// way: int8 codes, a scale per chunk and the chunk's scaled code sum y = dx * sum(qx)
// (for Q8_1 the block's own half-rounded s, as llama.cpp uses it).
//
// Then for one (row, token):
//   y_rt = sum_c dx_c * sum_half s_half * (q . qx)_half  +  sum_c m_c * y_c
// The first term is an int8 dot product per 16 elements (the hot loop, one kernel for
// every format); the second is a short float dot over chunks. Weights are unpacked once
// per panel and reused by every token of the step, so prefill pays the unpacking of
// Q5_0's high bits or the K-quants' six-bit scales once per row, not once per token.
//
// Kernels that need unsigned activations (x86 VNNI multiplies u8 by s8) read qx ^ 0x80
// = qx + 128; the extra 128 * sum(q) of each 4-code group is removed in the integers:
// the panel keeps -128 * sum(q) per group (bias_for_unsigned at unpack time) as the
// starting value of the integer accumulation, so every lane's integer sum is exact.
//
// The arithmetic per (row, token) is fixed, whatever else shares the tile: 8 int32 lanes
// per chunk (lane l sums elements 4l..4l+3 exactly), acc = fma(float(lane), s_lane * dx_c,
// acc) over chunks in order, then, for formats with offsets, acc = fma(mb_j, yd_j, acc)
// over the (m_c, b_c) / (y_c, dx_c) pairs 8 at a time (b_c is 0: kept so the pairs line
// up with yd), then the sum of the 8 lanes in a fixed tree. The decode kernels
// (avx512/gemv_vnni.cpp) compute the same operations straight from the quantized rows,
// so a token's result is the same bits whichever kernel and batch size computed it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace flashlm::gemm {

constexpr int kPanelRows = 4;
constexpr int64_t kChunk = 32;

// Unpacked weights of kPanelRows rows of n_in elements (n_chunks = n_in / 32).
struct Panel {
  int64_t n_chunks = 0;
  int8_t* q = nullptr;   // [n_chunks][kPanelRows][32]
  float* s = nullptr;    // [n_chunks][kPanelRows][8]: lanes 0-3 scale the first 16 codes, 4-7 the rest
  float* mb = nullptr;   // [kPanelRows][n_chunks][2]: (m_c, b_c = 0)
  int32_t* bias = nullptr;  // [n_chunks][kPanelRows][8]: -128 * (sum of each 4-code group), bias_for_unsigned
  bool has_offsets = false;  // the format has per-chunk offsets m_c (Q4_1, Q5_1, Q4_K, Q5_K)

  static size_t bytes(int64_t n_chunks);  // storage for one panel
  void bind(void* storage, int64_t n_chunks);  // storage 64-byte aligned
};

// Activation rows of n_tok tokens in the matching form.
struct Acts {
  int64_t n_chunks = 0;
  size_t q_stride = 0;   // bytes between tokens' codes
  size_t yd_stride = 0;  // floats between tokens' (y, dx) pairs
  int8_t* q = nullptr;   // [n_tok][n_in]
  float* yd = nullptr;   // [n_tok][n_chunks][2]: (y_c, dx_c)
};

// Weight formats with an unpacker: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
bool panel_supported(DType weight_type);
// Whether the format has per-chunk offsets m_c (the offset pass runs only for those).
bool panel_has_offsets(DType weight_type);

// Unpacks rows[0..n_rows) (n_rows <= kPanelRows, each n_in elements of weight_type) into
// p; missing rows are zero. bias_for_unsigned fills p.bias (else it is left alone).
void unpack_panel(DType weight_type, const uint8_t* const* rows, int n_rows, int64_t n_in, bool bias_for_unsigned,
                  Panel& p);

// Converts token t's activation row, already quantized to the weight type's vec_dot type
// (kernels/cpu/vec_dot.h), into a's row t.
void unpack_acts(DType weight_type, const void* x_q, int64_t n_in, Acts& a, int64_t t);

// One tile: out[t * kPanelRows + r] = y_rt above (both terms) for n_tok <= 4 tokens
// starting at codes x and pairs yd. Scalar reference: signed codes, so the panel must
// have been unpacked without bias_for_unsigned.
void panel_tile_reference(const Panel& p, const int8_t* x, size_t x_stride, const float* yd, size_t yd_stride,
                          int n_tok, float* out);

}  // namespace flashlm::gemm
