// Kernels compiled with AVX-512 F/BW/VL + VNNI flags (kernels/cpu/avx512/*.cpp). Call
// them only when cpu_has_avx512_vnni() is true. Declarations only, as in avx2_kernels.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/gemm_panel.h"

namespace flashlm::avx512 {

// gemm::panel_tile_reference's result for 1..4 tokens, with unsigned activation codes
// (qx ^ 0x80) against signed weight codes (vpdpbusd); the panel must have been unpacked
// with bias_for_unsigned, whose per-lane starting values remove the codes' +128.
void panel_tile_vnni(const gemm::Panel& p, const int8_t* x, size_t x_stride, const float* yd, size_t yd_stride,
                     int n_tok, float* out);

// Decode kernels (gemv_vnni.cpp): panel_tile_vnni's exact arithmetic for rows read
// straight from the quantized weights, for up to kGemvMaxTok tokens given as gemm::Acts;
// each row is unpacked once for all of them.
inline constexpr int kGemvMaxTok = 8;
enum class GemvFormat { kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ4_K, kQ5_K, kQ6_K };

struct GemvArgs {
  const uint8_t* w = nullptr;  // first row
  size_t row_bytes = 0;
  int64_t n_rows = 0;
  int64_t n_chunks = 0;        // n_in / 32
  int n_tok = 0;               // 1..kGemvMaxTok
  const int8_t* x = nullptr;   // token codes (gemm::Acts::q)
  size_t x_stride = 0;
  const float* yd = nullptr;   // (y_c, dx_c) pairs (gemm::Acts::yd)
  size_t yd_stride = 0;
  const int32_t* init = nullptr;  // [n_tok][n_chunks][8] from gemv_init_vnni, when gemv_vnni_offset != 0
  size_t init_stride = 0;         // int32s between tokens
  float* out = nullptr;        // out[t * ldo + r]
  size_t ldo = 0;
  float* mb = nullptr;         // 8 * n_chunks floats of scratch
};
using GemvFn = void (*)(const GemvArgs& a);

GemvFn gemv_vnni_for(GemvFormat f);
// The unsigned-code offset of a format (u = q + off): non-zero ones need init.
int gemv_vnni_offset(GemvFormat f);
// gemm::unpack_panel(..., bias_for_unsigned = true) for the same rows, vectorized; the
// panel's arrays must be 64-byte aligned (Panel::bind).
void unpack_panel_vnni(GemvFormat f, const uint8_t* const* rows, int n_rows, int64_t n_in, gemm::Panel& p);
// init[c * 8 + l] = -off * (sum of the token's codes 4l..4l+3 of chunk c).
void gemv_init_vnni(const int8_t* x, int64_t n_chunks, int off, int32_t* init);

}  // namespace flashlm::avx512
