#include "kernels/cpu/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
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

bool cpu_has_avx512_bf16() {
#if defined(FLASHLM_HAVE_AVX512) && (defined(__x86_64__) || defined(__i386__))
  // CPUID leaf 7 sub-leaf 1, EAX bit 5 (older compilers do not know "avx512bf16" as a
  // __builtin_cpu_supports name).
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return cpu_has_avx512_vnni() && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)) != 0;
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_neon() {
#if defined(FLASHLM_HAVE_NEON) && defined(__aarch64__)
  return true;
#else
  return false;
#endif
}

bool cpu_has_neon_dotprod() {
#if defined(FLASHLM_HAVE_NEON) && defined(__aarch64__) && defined(__linux__)
  // HWCAP_ASIMDDP of <asm/hwcap.h>; the kernel sets it only where SDOT works. Other
  // systems keep the plain NEON kernels.
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20;
  static const bool has = (getauxval(AT_HWCAP) & kHwcapAsimdDp) != 0;
  return has;
#else
  return false;
#endif
}

bool cpu_supports(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar: return true;
    case CpuIsa::kAvx2: return cpu_has_avx2();
    case CpuIsa::kNeon: return cpu_has_neon();
    case CpuIsa::kNeonDotprod: return cpu_has_neon() && cpu_has_neon_dotprod();
  }
  return false;
}

CpuIsa cpu_best_isa() {
  if (cpu_supports(CpuIsa::kNeonDotprod)) return CpuIsa::kNeonDotprod;
  if (cpu_supports(CpuIsa::kNeon)) return CpuIsa::kNeon;
  if (cpu_supports(CpuIsa::kAvx2)) return CpuIsa::kAvx2;
  return CpuIsa::kScalar;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar: return "scalar";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kNeon: return "neon";
    case CpuIsa::kNeonDotprod: return "neon+dotprod";
  }
  return "unknown";
}

}  // namespace flashlm
