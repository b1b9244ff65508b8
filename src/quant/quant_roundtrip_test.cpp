// Properties of the traits table and the reference code that need no golden data:
// quantize -> dequantize error bounds, unknown ids, row sizes, unaligned rows, Q8_K.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm {
namespace {

using quant::kQK_K;

std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-8.0f, 8.0f);
  std::vector<float> x((size_t)n);
  // A different magnitude per 32 elements, so blocks see very different scales.
  for (int64_t b = 0; b < n; b += 32) {
    const float s = std::exp(log_scale(rng));
    for (int64_t i = b; i < std::min(n, b + 32); ++i) x[(size_t)i] = normal(rng) * s;
  }
  return x;
}

const DType kAll[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                      DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                      DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};

TEST(QuantTable, SupportedTypesAreComplete) {
  for (DType t : kAll) {
    const TypeTraits& tr = type_traits(t);
    ASSERT_NE(tr.name, nullptr) << static_cast<uint32_t>(t);
    EXPECT_GT(tr.block_size, 0);
    EXPECT_GT(tr.type_size, 0u);
    EXPECT_NE(tr.to_float, nullptr) << tr.name;
    EXPECT_NE(tr.dot_f32, nullptr) << tr.name;
  }
  EXPECT_STREQ(type_traits(DType::Q4_K).name, "q4_K");
  EXPECT_STREQ(type_traits(DType::BF16).name, "bf16");
  for (DType t : kAll) EXPECT_NE(type_traits(t).from_float, nullptr) << type_traits(t).name;
}

TEST(QuantTable, UnknownIdsAreUnsupported) {
  // 9 is Q8_1 (not used by GGUF weights); 40 and up are past the table.
  for (uint32_t id : {4u, 5u, 9u, 16u, 24u, 29u, 31u, 39u, 40u, 41u, 1000u, 0xFFFFFFFFu}) {
    const TypeTraits& t = type_traits(id);
    EXPECT_EQ(t.name, nullptr) << id;
    EXPECT_EQ(t.to_float, nullptr) << id;
    EXPECT_EQ(t.type_size, 0u) << id;
  }
  EXPECT_EQ(row_size(static_cast<DType>(9), 32), 0u);
  EXPECT_EQ(row_size(static_cast<DType>(12345), 256), 0u);
}

TEST(QuantTable, RowSize) {
  EXPECT_EQ(row_size(DType::F32, 7), 28u);
  EXPECT_EQ(row_size(DType::BF16, 3), 6u);
  EXPECT_EQ(row_size(DType::Q4_0, 64), 36u);
  EXPECT_EQ(row_size(DType::Q4_0, 48), 0u);  // not a whole number of blocks
  EXPECT_EQ(row_size(DType::Q4_K, 512), 288u);
  EXPECT_EQ(row_size(DType::Q6_K, 128), 0u);
  EXPECT_EQ(row_size(DType::Q8_0, -32), 0u);
  EXPECT_EQ(row_size(DType::Q8_0, 0), 0u);
  EXPECT_EQ(row_size(DType::F32, INT64_MAX), 0u);  // would overflow size_t
}

// Error bound per element for each format, derived from how the block stores x:
// half the quantization step, plus what rounding the scale (and min) to fp16 moves the
// largest code, plus one step where ggml's rounding clips the extreme code.
float error_bound(DType t, const float* x, int64_t n) {
  float amax = 0.0f, lo = x[0], hi = x[0];
  for (int64_t i = 0; i < n; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float h = 0x1p-11f;  // fp16 relative rounding
  const float sub = 0x1p-25f;  // half the fp16 subnormal spacing: absolute error of tiny scales
  const float tiny = 1e-30f;
  switch (t) {
    case DType::F32: return 0.0f;
    case DType::F16: return amax * h + 0x1p-25f;  // plus half the smallest subnormal
    case DType::BF16: return amax * 0x1p-8f + tiny;
    case DType::Q8_0: { const float d = amax / 127; return d * (0.5f + 128 * h) + 128 * sub; }
    case DType::Q4_0: { const float d = amax / 8; return d * (1.0f + 8 * h) + 8 * sub; }
    case DType::Q5_0: { const float d = amax / 16; return d * (1.0f + 16 * h) + 16 * sub; }
    case DType::Q4_1: {
      const float d = (hi - lo) / 15;
      return d * (0.5f + 16 * h) + std::fabs(lo) * h + 17 * sub;
    }
    case DType::Q5_1: {
      const float d = (hi - lo) / 31;
      return d * (0.5f + 32 * h) + std::fabs(lo) * h + 33 * sub;
    }
    case DType::Q8_K: { const float d = amax / 127; return d * (0.5f + 1e-4f) + tiny; }
    default: return NAN;
  }
}

TEST(QuantRoundTrip, ErrorBoundedByBlockScale) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                  DType::Q5_1, DType::Q8_0, DType::Q8_K}) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    const int64_t n = 4 * kQK_K;
    std::vector<float> x = random_row(n, 7 + static_cast<uint32_t>(t));
    x[40] = 0.0f;  // a few special values inside blocks
    x[41] = -x[42];
    std::vector<uint8_t> q(row_size(t, n));
    ASSERT_FALSE(q.empty());
    tr.from_float(x.data(), q.data(), n);
    std::vector<float> y((size_t)n);
    tr.to_float(q.data(), y.data(), n);
    for (int64_t b = 0; b < n; b += tr.block_size) {
      const int64_t len = std::max<int64_t>(tr.block_size, 32);  // float types: groups of 32
      if (b % len != 0) continue;
      const float bound = error_bound(t, &x[(size_t)b], len);
      for (int64_t i = b; i < b + len; ++i) {
        ASSERT_LE(std::fabs(x[(size_t)i] - y[(size_t)i]), bound) << "element " << i;
      }
    }
  }
}

// The K-quant quantizers search scales for the least weighted squared error, so the
// bound is on the relative RMS error of whole rows (measured on these rows: 0.320, 0.136,
// 0.072, 0.039 and 0.021 for Q2_K, Q3_K, Q4_K, Q5_K and Q6_K at every scale). The largest
// rows reach 3.6e6; Q2_K's largest is 3.6e5, since its fp16 dmin holds the largest offset
// / 15 and overflows past ~1e6 (ggml's does too: a limit of the format).
TEST(QuantRoundTrip, KQuantRelativeErrorIsSmall) {
  const std::pair<DType, double> cases[] = {
      {DType::Q2_K, 0.34}, {DType::Q3_K, 0.145}, {DType::Q4_K, 0.08}, {DType::Q5_K, 0.043}, {DType::Q6_K, 0.024}};
  for (const auto& [t, bound] : cases) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    for (float scale : {1.0f, 1e-3f, t == DType::Q2_K ? 30.0f : 300.0f}) {
      const int64_t n = 8 * kQK_K;
      std::vector<float> x = random_row(n, 21 + static_cast<uint32_t>(t));
      for (float& v : x) v *= scale;
      x[7] = 0.0f;
      std::vector<uint8_t> q(row_size(t, n));
      tr.from_float(x.data(), q.data(), n);
      std::vector<float> y((size_t)n);
      tr.to_float(q.data(), y.data(), n);
      double err = 0.0, ref = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        err += (double)(x[(size_t)i] - y[(size_t)i]) * (x[(size_t)i] - y[(size_t)i]);
        ref += (double)x[(size_t)i] * x[(size_t)i];
      }
      EXPECT_LT(std::sqrt(err / ref), bound) << "scale " << scale;
    }
  }
}

TEST(QuantRoundTrip, ZeroAndConstantBlocks) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K}) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    const int64_t n = tr.block_size;
    for (float v : {0.0f, 0.75f, -3.0f}) {
      std::vector<float> x((size_t)n, v);
      std::vector<uint8_t> q(tr.type_size);
      tr.from_float(x.data(), q.data(), n);
      std::vector<float> y((size_t)n);
      tr.to_float(q.data(), y.data(), n);
      for (float f : y) ASSERT_NEAR(f, v, std::fabs(v) * 0x1p-10f) << "value " << v;
    }
  }
}

// Non-finite input must not be undefined behaviour (UBSan checks the casts) and must
// still produce codes that dequantize without reading out of bounds.
TEST(QuantRoundTrip, NonFiniteInputIsDefined) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K}) {
    const TypeTraits& tr = type_traits(t);
    std::vector<float> x = random_row(tr.block_size, 3);
    x[1] = NAN;
    x[2] = INFINITY;
    std::vector<uint8_t> q(tr.type_size);
    tr.from_float(x.data(), q.data(), tr.block_size);
    std::vector<float> y((size_t)tr.block_size);
    tr.to_float(q.data(), y.data(), tr.block_size);
  }
}

TEST(QuantQ8K, BlockSumsAndScale) {
  const std::vector<float> x = random_row(2 * kQK_K, 11);
  std::vector<quant::BlockQ8_K> q(2);
  type_traits(DType::Q8_K).from_float(x.data(), q.data(), 2 * kQK_K);
  for (int b = 0; b < 2; ++b) {
    float amax = 0.0f;
    for (int64_t i = 0; i < kQK_K; ++i) {
      amax = std::max(amax, std::fabs(x[(size_t)(b * kQK_K + i)]));
    }
    EXPECT_NEAR(std::fabs(q[(size_t)b].d), amax / 127, amax / 127 * 1e-6f);
    int extreme = 0;
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) {
        const int v = q[(size_t)b].qs[16 * j + i];
        EXPECT_GE(v, -127);
        EXPECT_LE(v, 127);
        extreme = std::max(extreme, std::abs(v));
        sum += v;
      }
      EXPECT_EQ(q[(size_t)b].bsums[j], sum);
    }
    EXPECT_EQ(extreme, 127);  // the absmax element maps to -127
  }
}

// Q4_K/Q5_K pack eight 6-bit scales and mins into 12 bytes; check the unpacking
// against a direct bit-level packing of known values.
TEST(QuantKScales, UnpackInvertsPacking) {
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = (uint8_t)(5 * j + 17) & 63;
    mn[j] = (uint8_t)(63 - 7 * j) & 63;
  }
  uint8_t packed[12] = {};
  for (int j = 0; j < 4; ++j) {
    packed[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
    packed[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
    packed[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    quant::k4_scale_min(j, packed, &s, &m);
    EXPECT_EQ(s, sc[j]) << j;
    EXPECT_EQ(m, mn[j]) << j;
  }
}

// Rows inside a mapped file are not aligned for the block structs; every entry point
// must accept any byte offset (UBSan flags misaligned loads).
TEST(QuantTable, UnalignedRowsGiveSameResults) {
  for (DType t : kAll) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    const int64_t n = kQK_K;
    std::mt19937 rng(5);
    std::vector<uint8_t> raw(row_size(t, n));
    for (auto& b : raw) b = (uint8_t)rng();
    // Give fp16/f32 scales finite values so the comparison is meaningful.
    std::vector<float> ref((size_t)n);
    if (tr.from_float != nullptr) {
      const std::vector<float> src = random_row(n, 9);
      tr.from_float(src.data(), raw.data(), n);
    }
    tr.to_float(raw.data(), ref.data(), n);
    std::vector<uint8_t> shifted(raw.size() + 1);
    std::memcpy(shifted.data() + 1, raw.data(), raw.size());
    std::vector<float> out((size_t)n);
    tr.to_float(shifted.data() + 1, out.data(), n);
    const std::vector<float> x = random_row(n, 13);
    const float d0 = tr.dot_f32(raw.data(), x.data(), n);
    const float d1 = tr.dot_f32(shifted.data() + 1, x.data(), n);
    EXPECT_EQ(std::memcmp(ref.data(), out.data(), ref.size() * 4), 0);
    EXPECT_EQ(fp32_to_bits(d0), fp32_to_bits(d1));
  }
}

}  // namespace
}  // namespace flashlm
