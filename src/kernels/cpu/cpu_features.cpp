#include "kernels/cpu/cpu_features.h"

namespace flashlm {

bool cpu_has_avx2() {
#if defined(FLASHLM_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
#else
  return false;
#endif
}

}  // namespace flashlm
