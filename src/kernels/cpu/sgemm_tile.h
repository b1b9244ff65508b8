// The register tile of kernels/cpu/sgemm.cpp: C[kMR][kNR] (row stride ldc) = or += the
// product of a packed A micro-panel (kc steps of kMR values) and a packed B micro-panel
// (kc steps of kNR values). Declarations only (see avx2/avx2_kernels.h for why).
#pragma once

#include <cstdint>

namespace flashlm::sgemm_tile {

constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;
using TileFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);

// 12 accumulators of 8 lanes, one broadcast of A and two loads of B per step.
void tile_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
// A full kNR-lane panel from lanes stored as rows (lane l at src + l * l_stride, its kc
// steps contiguous): dst[k * kNR + l] = src[l * l_stride + k], 8 x 8 register transposes.
void pack16_avx2(const float* src, int64_t l_stride, int64_t kc, float* dst);
// The same for a full kMR-lane panel.
void pack6_avx2(const float* src, int64_t l_stride, int64_t kc, float* dst);

// The BF16 tile: kMR x kNRBf16 floats from micro-panels of BF16 pairs, each uint32_t
// holding the values of steps 2p (low half) and 2p + 1 (high half) of one lane; kp pairs.
constexpr int64_t kNRBf16 = 32;
using Bf16TileFn = void (*)(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                            bool accumulate);

// 12 accumulators of 16 lanes, vdpbf16ps (kernels/cpu/avx512/sgemm_bf16_avx512.cpp,
// compiled with AVX512_BF16; call only when cpu_has_avx512_bf16()).
void tile_bf16_avx512(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, bool accumulate);

// Bf16Panels::pack of kernels/cpu/sgemm.cpp with vcvtne2ps2bf16 where the layout allows
// (steps contiguous and a full 6- or 32-lane panel, or lanes contiguous); false, having
// written nothing, where it does not. Denormal inputs become zero (the instruction's rule).
bool pack_bf16_avx512(const float* src, int64_t l_stride, int64_t k_stride, int64_t width, int64_t lanes, int64_t kc,
                      uint32_t* dst);

}  // namespace flashlm::sgemm_tile
