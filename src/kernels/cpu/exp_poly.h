// Constants of the fast exp and tanh used by the attention kernels, shared by the scalar
// version (attention_tiles.cpp) and the ISA-specific ones (avx2/attention_avx2.cpp).
// Constants only: no inline functions, so ISA-specific translation units may include it.
//
// exp(x): Cody-Waite reduction x = n*ln2 + r with n = round(x/ln2), |r| <= ln2/2, then
// exp(r) = 1 + r + r^2 * (c2 + c3 r + ... + c6 r^4) and the result is exp(r) * 2^n.
// The polynomial is a relative-error minimax fit on [-ln2/2, ln2/2] (Lawson iteration,
// numpy): its own error is 3e-9, far below float rounding, so the result is within a
// couple of ulp. ln2 is split into a 9-bit high part (n*kLn2Hi exact for |n| < 2^15)
// and the rest, so the reduction needs no FMA.
//
// tanh(x): for |x| < kTanhSmall an odd polynomial x + x^3 * (t0 + t1 x^2 + ... + t4 x^8)
// (relative minimax fit on [0, 0.625], error 4e-9), above it 1 - 2 / (exp(2|x|) + 1),
// which no longer cancels badly there (the result is at least 0.55).
#pragma once

namespace flashlm::exp_poly {

inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
// Below kMin the result is flushed to 0 (exp(-87) = 1.6e-38 is still a normal float;
// -inf lands here too); above kMax inputs are clamped (exp(88) = 1.65e38 < FLT_MAX).
inline constexpr float kMin = -87.0f;
inline constexpr float kMax = 88.0f;

inline constexpr float kC2 = 0.4999999403953552f;
inline constexpr float kC3 = 0.1666652113199234f;
inline constexpr float kC4 = 0.04166838899254799f;
inline constexpr float kC5 = 0.00836869701743126f;
inline constexpr float kC6 = 0.0013814546400681138f;

inline constexpr float kTanhSmall = 0.625f;
inline constexpr float kT0 = -0.3333328068256378f;
inline constexpr float kT1 = 0.13331443071365356f;
inline constexpr float kT2 = -0.0537397563457489f;
inline constexpr float kT3 = 0.020639223977923393f;
inline constexpr float kT4 = -0.005705142393708229f;

}  // namespace flashlm::exp_poly
