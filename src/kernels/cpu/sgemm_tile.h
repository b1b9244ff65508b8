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

}  // namespace flashlm::sgemm_tile
