// The integer dot products (int_dot_impl.h) on the ARMv8.2 dot-product instructions:
// this file is compiled with -march=armv8.2-a+dotprod (CMakeLists.txt gives every
// *_dotprod.cpp those flags), so call it only when cpu_has_neon_dotprod() is true.
#include "kernels/cpu/neon/int_dot_impl.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "int_dot_neon_dotprod.cpp needs -march=armv8.2-a+dotprod"
#endif

namespace flashlm::neon {
namespace {

// SDOT: each int32 lane gains the sum of four int8 products.
struct DotSdot {
  static int32x4_t dot16(int8x16_t a, int8x16_t b) { return vdotq_s32(vdupq_n_s32(0), a, b); }
  static int32x4_t dot32(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1);
  }
};

}  // namespace

const IntDotKernels& int_dot_kernels_dotprod() {
  static constexpr IntDotKernels kKernels = make_int_dot_kernels<DotSdot>();
  return kKernels;
}

}  // namespace flashlm::neon
