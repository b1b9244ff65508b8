// What the CPU we run on can do, probed once. Instruction-set-specific kernels live in
// their own translation units (kernels/cpu/avx2/) compiled with their own flags; code
// elsewhere calls them only after checking here, so one binary runs on any x86-64.
#pragma once

namespace flashlm {

// True when AVX2, FMA and F16C are all available (what kernels/cpu/avx2 is built for)
// and those kernels were compiled into this binary.
bool cpu_has_avx2();

// True when AVX-512 F/BW/VL and VNNI are available and kernels/cpu/avx512 was compiled
// in (the prefill GEMM tile with vpdpbusd).
bool cpu_has_avx512_vnni();

}  // namespace flashlm
