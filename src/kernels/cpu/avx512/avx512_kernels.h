// Kernels compiled with AVX-512 F/BW/VL + VNNI flags (kernels/cpu/avx512/*.cpp). Call
// them only when cpu_has_avx512_vnni() is true. Declarations only, as in avx2_kernels.h.
#pragma once

#include <cstddef>

#include "kernels/cpu/gemm_panel.h"

namespace flashlm::avx512 {

// gemm::panel_tile_reference's result for 1..4 tokens, with unsigned activation codes
// (qx ^ 0x80) against signed weight codes (vpdpbusd); the panel must have been unpacked
// with bias_for_unsigned, whose b_c * dx_c terms remove the codes' +128.
void panel_tile_vnni(const gemm::Panel& p, const int8_t* x, size_t x_stride, const float* yd, size_t yd_stride,
                     int n_tok, float* out);

}  // namespace flashlm::avx512
