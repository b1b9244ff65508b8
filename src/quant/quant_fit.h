// Scale searches shared by the K-quant and importance-weighted quantizers (internal to
// src/quant). Each is one of ggml's helpers in ggml-quants.c, with the same float
// operations in the same order, so every code and scale is the one ggml picks:
//
//   fit_scale_min       make_qkx2_quants / make_qkx3_quants  (codes 0..nmax, offset)
//   fit_scale_sym       make_qx_quants, rmse_type 1         (codes -nmax..nmax-1)
//   fit_scale_sym_iter  make_q3_quants, do_rmse             (codes -nmax..nmax-1)
//   fit_scale_pos       make_qp_quants                      (codes 0..nmax, no offset)
//
// "Weighted" everywhere means: the least sum of w_i * (x_i - scale * code_i (+ min))^2.
#pragma once

#include <cstdint>
#include <cstring>

namespace flashlm::quant {

// Below this a group's values count as all zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// ggml's nearest_int: adding 1.5 * 2^23 leaves round-half-to-even(v) in the low 23
// mantissa bits for |v| <= 2^22 - 1. Outside that range (and for NaN) the result is still
// a defined int in [-2^22, 2^22) -- the very int ggml gets, so the callers' clamps give
// ggml's codes even for the degenerate inputs where the quotient explodes.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  uint32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return static_cast<int>(bits & 0x007fffffu) - 0x00400000;
}

// How fit_scale_min scores a candidate: squared or absolute error (Q2_K's reference
// quantizer uses the absolute error, everything else the squared one).
enum class FitError { kSquared, kAbsolute };

// Scale and offset of n values on codes 0..nmax (x ~ scale * L - the_min, the_min >= 0):
// the min/max grid first, then the grids iscale = (nmax + rmin + rdelta * is) / (max - min)
// for is = 0..nstep, each refitted by weighted least squares; the smallest weighted error
// wins. w must hold n weights; L gets the codes.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                    float rdelta, int nstep, FitError error = FitError::kSquared);

// Symmetric scale of n values on codes -nmax..nmax-1 (L gets code + nmax): the absmax
// grid refitted by least squares, then 18 nearby grids. Weights qw, or x^2 when qw is null.
float fit_scale_sym(int n, int nmax, const float* x, const float* qw, int8_t* L);

// Like fit_scale_sym with weights x^2, but refined by moving single codes (up to five
// sweeps) while that raises sum(w x l)^2 / sum(w l^2); L gets code + nmax.
float fit_scale_sym_iter(int n, int nmax, const float* x, int8_t* L);

// Scale of n values expected >= 0 (sub-block scales or mins) on codes 0..nmax with
// weights w: 8 grids around nmax / max, then single-code refinement as fit_scale_sym_iter.
// Codes are stored as ggml stores them (an int narrowed to uint8_t).
float fit_scale_pos(int n, int nmax, const float* x, const float* w, uint8_t* L);

}  // namespace flashlm::quant
