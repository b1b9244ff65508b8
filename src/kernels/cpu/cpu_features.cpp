#include "kernels/cpu/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace flashlm {

bool cpu_has_avx2() {
#if defined(FLASHLM_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  // F16C is read from CPUID leaf 1 (ECX bit 29): clang 14 does not know "f16c" as a
  // __builtin_cpu_supports name.
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if defined(FLASHLM_HAVE_AVX512) && (defined(__x86_64__) || defined(__i386__))
  static const bool has = cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

}  // namespace flashlm
