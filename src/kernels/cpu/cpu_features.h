// What the CPU we run on can do, probed once. Instruction-set-specific kernels live in
// their own translation units (kernels/cpu/avx2/, kernels/cpu/neon/) compiled with their
// own flags; code elsewhere calls them only after checking here, so one binary runs on
// any x86-64, and one on any 64-bit ARM (ARMv8-A).
#pragma once

namespace flashlm {

// True when AVX2, FMA and F16C are all available (what kernels/cpu/avx2 is built for)
// and those kernels were compiled into this binary.
bool cpu_has_avx2();

// True when AVX-512 F/BW/VL and VNNI are available and kernels/cpu/avx512 was compiled
// in (the prefill GEMM tile with vpdpbusd).
bool cpu_has_avx512_vnni();
// ... and AVX512_BF16 (vdpbf16ps: the training GEMM's BF16 tile).
bool cpu_has_avx512_bf16();
// True on a 64-bit ARM build with kernels/cpu/neon compiled in: Advanced SIMD is part of
// every ARMv8-A CPU.
bool cpu_has_neon();
// ... and the CPU has the ARMv8.2 dot-product instructions (SDOT/UDOT: Cortex-A55,
// Cortex-A76 and later, so a Raspberry Pi 5 but not a Pi 4), as Linux reports them.
bool cpu_has_neon_dotprod();

// Levels of CPU kernels, each a superset of the one before on its architecture.
enum class CpuIsa { kScalar, kAvx2, kNeon, kNeonDotprod };

// Whether this binary has the level's kernels and this CPU runs them (kScalar: always).
bool cpu_supports(CpuIsa isa);
// The level the dispatched kernels (vec_dot_traits, ops::dot) use: the best supported.
CpuIsa cpu_best_isa();
// "scalar", "avx2", "neon", "neon+dotprod".
const char* cpu_isa_name(CpuIsa isa);

}  // namespace flashlm
