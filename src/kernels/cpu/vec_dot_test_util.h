// Shared helpers for the vec_dot and matmul tests: random weight rows in any format,
// dequantized activation rows, and the magnitudes tolerances are derived from.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/vec_dot.h"
#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::testing_util {

// Byte offsets, inside one block, of the half-precision scale fields: `scales` multiply
// the quantized values, `mins` are the offsets (Q4_1/Q5_1 m, K-quant dmin).
struct HalfFields {
  std::vector<size_t> scales;
  std::vector<size_t> mins;
};

inline HalfFields half_fields(DType t) {
  using namespace quant;
  switch (t) {
    case DType::Q4_0: return {{offsetof(BlockQ4_0, d)}, {}};
    case DType::Q4_1: return {{offsetof(BlockQ4_1, d)}, {offsetof(BlockQ4_1, m)}};
    case DType::Q5_0: return {{offsetof(BlockQ5_0, d)}, {}};
    case DType::Q5_1: return {{offsetof(BlockQ5_1, d)}, {offsetof(BlockQ5_1, m)}};
    case DType::Q8_0: return {{offsetof(BlockQ8_0, d)}, {}};
    case DType::Q2_K: return {{offsetof(BlockQ2_K, d)}, {offsetof(BlockQ2_K, dmin)}};
    case DType::Q3_K: return {{offsetof(BlockQ3_K, d)}, {}};
    case DType::Q4_K: return {{offsetof(BlockQ4_K, d)}, {offsetof(BlockQ4_K, dmin)}};
    case DType::Q5_K: return {{offsetof(BlockQ5_K, d)}, {offsetof(BlockQ5_K, dmin)}};
    case DType::Q6_K: return {{offsetof(BlockQ6_K, d)}, {}};
    default: return {};
  }
}

inline void put_half(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// A weight row of n elements: random bytes for every quantized field (so every code
// and bit pattern occurs) with finite, realistic scales; float formats from floats.
inline std::vector<uint8_t> random_row(DType t, int64_t n, std::mt19937& rng) {
  const TypeTraits& tr = type_traits(t);
  std::vector<uint8_t> row(row_size(t, n));
  if (!tr.is_quantized) {
    std::normal_distribution<float> nd(0.0f, 0.5f);
    std::vector<float> f(static_cast<size_t>(n));
    for (float& v : f) v = nd(rng);
    tr.from_float(f.data(), row.data(), n);
    return row;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : row) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  std::uniform_real_distribution<float> off(-0.1f, 0.1f);
  const HalfFields hf = half_fields(t);
  for (size_t b = 0; b < row.size() / tr.type_size; ++b) {
    for (size_t o : hf.scales) put_half(row.data() + b * tr.type_size + o, scale(rng));
    for (size_t o : hf.mins) put_half(row.data() + b * tr.type_size + o, off(rng));
  }
  return row;
}

// The row with its min fields zeroed: dequantizing it gives the scale part of each value.
inline std::vector<uint8_t> without_mins(DType t, std::vector<uint8_t> row) {
  const TypeTraits& tr = type_traits(t);
  if (!tr.is_quantized) return row;
  for (size_t b = 0; b < row.size() / tr.type_size; ++b) {
    for (size_t o : half_fields(t).mins) put_half(row.data() + b * tr.type_size + o, 0.0f);
  }
  return row;
}

inline std::vector<float> dequant(DType t, const void* row, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (t == DType::Q8_1) {
    quant::dequantize_row<quant::BlockQ8_1>(row, out.data(), n);
  } else {
    type_traits(t).to_float(row, out.data(), n);
  }
  return out;
}

// Activations: normal values with a different scale per 32-element block, one block
// all zeros (the d == 0 path) when there are several.
inline std::vector<float> random_activations(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> block_scale(0.1f, 4.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += 32) {
    const float s = (b == 32) ? 0.0f : block_scale(rng);
    for (int64_t i = b; i < std::min(n, b + 32); ++i) x[static_cast<size_t>(i)] = s * nd(rng);
  }
  return x;
}

// Sum over i of (|scale part of w_i| + |offset part of w_i|) * |x_i|: what float
// rounding in a dot product is proportional to (the two parts are summed separately
// by the kernels, so their cancellation does not shrink the error).
inline double magnitude(DType t, const std::vector<uint8_t>& w, const std::vector<float>& x, int64_t n) {
  const std::vector<float> full = dequant(t, w.data(), n);
  const std::vector<float> scaled = dequant(t, without_mins(t, w).data(), n);
  double m = 0.0;
  for (size_t i = 0; i < full.size(); ++i) {
    m += (std::fabs((double)scaled[i]) + std::fabs((double)full[i] - (double)scaled[i])) * std::fabs((double)x[i]);
  }
  return m;
}

// Q8_1 stores s = d * sum(qs) rounded to half; kernels use it for the weights' offsets,
// so they differ from dequantize(w) . dequantize(xq) by sum over blocks of |m| * |s - d sum|.
inline double q8_1_s_error(DType t, const std::vector<uint8_t>& w, const std::vector<uint8_t>& xq, int64_t n) {
  if (vec_dot_traits_reference(t).vec_dot_type != DType::Q8_1) return 0.0;
  const TypeTraits& tr = type_traits(t);
  const size_t m_off = half_fields(t).mins.at(0);
  double e = 0.0;
  for (int64_t b = 0; b < n / 32; ++b) {
    quant::BlockQ8_1 y;
    std::memcpy(&y, xq.data() + b * (int64_t)sizeof(y), sizeof(y));
    int sum = 0;
    for (int8_t q : y.qs) sum += q;
    uint16_t m;
    std::memcpy(&m, w.data() + b * (int64_t)tr.type_size + m_off, 2);
    e += std::fabs((double)fp16_to_fp32(m)) *
         std::fabs((double)fp16_to_fp32(y.s) - (double)fp16_to_fp32(y.d) * (double)sum);
  }
  return e;
}

// Every weight type with a vec_dot kernel.
inline std::vector<DType> vec_dot_weight_types() {
  return {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
          DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
}

}  // namespace flashlm::testing_util
