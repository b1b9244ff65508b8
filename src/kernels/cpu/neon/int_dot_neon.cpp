// The integer dot products (int_dot_impl.h) on plain ARMv8-A Advanced SIMD, for CPUs
// without the dot-product instructions (a Raspberry Pi 4's Cortex-A72, for one).
#include "kernels/cpu/neon/int_dot_impl.h"

namespace flashlm::neon {
namespace {

// Widening multiplies: each int16 lane holds two products (at most 2 * 128 * 127, so it
// cannot overflow), then pairwise widening adds fold them into the int32 lanes.
struct DotBase {
  static int32x4_t dot16(int8x16_t a, int8x16_t b) {
    return vpaddlq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b));
  }
  static int32x4_t dot32(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)), vget_low_s8(a1), vget_low_s8(b1));
    const int16x8_t hi = vmlal_high_s8(vmull_high_s8(a0, b0), a1, b1);
    return vpadalq_s16(vpaddlq_s16(lo), hi);
  }
};

}  // namespace

const IntDotKernels& int_dot_kernels_base() {
  static constexpr IntDotKernels kKernels = make_int_dot_kernels<DotBase>();
  return kKernels;
}

}  // namespace flashlm::neon
