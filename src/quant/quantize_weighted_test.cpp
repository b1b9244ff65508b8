// Importance-weighted quantization (quantize_weighted.h) and the Q2_K/Q3_K reference
// quantizers: bytes against ggml's (tests/golden/quant/weighted_golden.bin, made by
// scripts/reference/make_weighted_golden.py with ggml_quantize_chunk), the null-imatrix
// contract, what the weights are for, and defined output for any input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "quant/quantize_weighted.h"

namespace flashlm {
namespace {

using quant::quantize_row_weighted;

const DType kWeighted[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Normal values with a different magnitude per 32 (as quant_roundtrip_test.cpp).
std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-4.0f, 4.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += 32) {
    const float s = std::exp(log_scale(rng));
    for (int64_t i = b; i < b + 32 && i < n; ++i) x[static_cast<size_t>(i)] = normal(rng) * s;
  }
  return x;
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x, const float* qw) {
  std::vector<uint8_t> q(row_size(t, static_cast<int64_t>(x.size())));
  quantize_row_weighted(t)(x.data(), q.data(), static_cast<int64_t>(x.size()), qw);
  return q;
}

TEST(QuantWeighted, TypesWithAndWithoutWeightedMethod) {
  for (DType t : kWeighted) EXPECT_NE(quantize_row_weighted(t), nullptr) << type_traits(t).name;
  // ggml ignores an imatrix for these (and Q8_K is no weight format).
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q8_K, DType::I8, static_cast<DType>(39)}) {
    EXPECT_EQ(quantize_row_weighted(t), nullptr) << static_cast<uint32_t>(t);
  }
}

// qw == nullptr is the reference method: the traits table's from_float, byte for byte.
TEST(QuantWeighted, NullWeightsGiveReferenceBytes) {
  for (DType t : kWeighted) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    for (int64_t n : {256, 768, 1536}) {
      const std::vector<float> x = random_row(n, static_cast<uint32_t>(n) + static_cast<uint32_t>(t));
      std::vector<uint8_t> ref(row_size(t, n));
      tr.from_float(x.data(), ref.data(), n);
      EXPECT_EQ(quantize(t, x, nullptr), ref) << "n " << n;
    }
  }
}

// What the weights are for: with very uneven importance (log-uniform over 1e-3..1e3) the
// weighted method's error, weighted by the same importance, is well below the reference
// method's. Measured here: ratios from 0.35 (Q2_K) to 0.59 (Q4_0).
TEST(QuantWeighted, LowersImportanceWeightedError) {
  const int64_t n = 2048;
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> log_w(std::log(1e-3f), std::log(1e3f));
  std::vector<float> qw(static_cast<size_t>(n));
  for (float& w : qw) w = std::exp(log_w(rng));
  for (DType t : kWeighted) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    double err_ref = 0, err_weighted = 0;
    for (uint32_t row = 0; row < 4; ++row) {
      const std::vector<float> x = random_row(n, 100 + row);
      std::vector<float> y_ref(static_cast<size_t>(n)), y_w(static_cast<size_t>(n));
      tr.to_float(quantize(t, x, nullptr).data(), y_ref.data(), n);
      tr.to_float(quantize(t, x, qw.data()).data(), y_w.data(), n);
      for (size_t i = 0; i < x.size(); ++i) {
        err_ref += qw[i] * static_cast<double>(x[i] - y_ref[i]) * (x[i] - y_ref[i]);
        err_weighted += qw[i] * static_cast<double>(x[i] - y_w[i]) * (x[i] - y_w[i]);
      }
    }
    EXPECT_LT(err_weighted, 0.7 * err_ref) << "weighted " << err_weighted << " reference " << err_ref;
  }
}

// Weights that are all zero (columns no activation reached), or NaN/inf/negative (a
// corrupt imatrix), and non-finite values must give defined bytes that dequantize
// without faults (UBSan and ASan check the casts and indexing in the sanitizer build).
TEST(QuantWeighted, DegenerateWeightsAndValuesAreDefined) {
  const int64_t n = 512;
  std::vector<std::vector<float>> weights = {std::vector<float>(n, 0.0f), std::vector<float>(n, 1.0f)};
  weights[1][3] = NAN;
  weights[1][40] = INFINITY;
  weights[1][300] = -2.0f;
  std::vector<std::vector<float>> rows = {random_row(n, 5), std::vector<float>(n, 0.0f), std::vector<float>(n, -1.5f)};
  rows[0][1] = NAN;
  rows[0][2] = INFINITY;
  rows[0][400] = -INFINITY;
  for (DType t : kWeighted) {
    const TypeTraits& tr = type_traits(t);
    SCOPED_TRACE(tr.name);
    for (const auto& x : rows) {
      for (const auto& qw : weights) {
        const std::vector<uint8_t> q = quantize(t, x, qw.data());
        EXPECT_EQ(quantize(t, x, qw.data()), q);  // deterministic
        std::vector<float> y(static_cast<size_t>(n));
        tr.to_float(q.data(), y.data(), n);
      }
    }
    // A finite row with all-zero weights still gives finite values.
    std::vector<float> y(static_cast<size_t>(n));
    tr.to_float(quantize(t, rows[2], weights[0].data()).data(), y.data(), n);
    for (float v : y) ASSERT_TRUE(std::isfinite(v));
  }
}

// Rows land at any byte offset of the output (a file's tensor data).
TEST(QuantWeighted, UnalignedOutput) {
  const int64_t n = 512;
  const std::vector<float> x = random_row(n, 8);
  std::vector<float> qw(static_cast<size_t>(n), 0.5f);
  qw[7] = 40.0f;
  for (DType t : kWeighted) {
    const std::vector<uint8_t> aligned = quantize(t, x, qw.data());
    std::vector<uint8_t> shifted(aligned.size() + 1);
    quantize_row_weighted(t)(x.data(), shifted.data() + 1, n, qw.data());
    EXPECT_EQ(std::memcmp(shifted.data() + 1, aligned.data(), aligned.size()), 0) << type_traits(t).name;
  }
}

// ---- ggml's bytes ----

struct GoldenCase {
  uint32_t type_id = 0, row = 0;
  int32_t imatrix = -1;
  std::vector<uint8_t> bytes;
};

struct WeightedGolden {
  uint32_t n_cols = 0;
  std::vector<std::vector<float>> rows, imatrix;
  std::vector<GoldenCase> cases;
  std::string error;  // non-empty when the file is missing or malformed
};

// Bounds-checked little-endian reads over the file's bytes.
struct Cursor {
  const std::vector<uint8_t>& data;
  size_t pos = 0;
  bool ok = true;
  void read(void* dst, size_t n) {
    if (!ok || n > data.size() - pos) {
      ok = false;
      return;
    }
    std::memcpy(dst, data.data() + pos, n);
    pos += n;
  }
  template <typename T>
  T get() {
    T v{};
    read(&v, sizeof v);
    return v;
  }
  template <typename T>
  std::vector<T> array(size_t count) {
    if (!ok || count > (data.size() - pos) / sizeof(T)) {
      ok = false;
      return {};
    }
    std::vector<T> v(count);
    read(v.data(), count * sizeof(T));
    return v;
  }
};

WeightedGolden load_weighted_golden() {
  WeightedGolden g;
  const std::string path = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/quant/weighted_golden.bin";
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    g.error = "cannot open " + path + " (scripts/reference/make_weighted_golden.py makes it)";
    return g;
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Cursor c{bytes};
  char magic[8] = {};
  c.read(magic, 8);
  if (!c.ok || std::memcmp(magic, "FLQWGT01", 8) != 0) {
    g.error = "bad magic in " + path;
    return g;
  }
  g.n_cols = c.get<uint32_t>();
  const uint32_t n_rows = c.get<uint32_t>();
  for (uint32_t i = 0; i < n_rows && c.ok; ++i) g.rows.push_back(c.array<float>(g.n_cols));
  const uint32_t n_imatrix = c.get<uint32_t>();
  for (uint32_t i = 0; i < n_imatrix && c.ok; ++i) g.imatrix.push_back(c.array<float>(g.n_cols));
  const uint32_t n_cases = c.get<uint32_t>();
  for (uint32_t i = 0; i < n_cases && c.ok; ++i) {
    GoldenCase gc;
    gc.type_id = c.get<uint32_t>();
    gc.row = c.get<uint32_t>();
    gc.imatrix = c.get<int32_t>();
    gc.bytes = c.array<uint8_t>(c.get<uint32_t>());
    if (gc.row >= g.rows.size() || gc.imatrix >= static_cast<int32_t>(g.imatrix.size()) || gc.imatrix < -1) c.ok = false;
    g.cases.push_back(std::move(gc));
  }
  if (!c.ok || c.pos != bytes.size()) g.error = "truncated or malformed " + path;
  return g;
}

// Every weighted type with no imatrix and two imatrices (very uneven; half zeros) on four
// rows, plus Q8_0's reference bytes: all equal to ggml_quantize_chunk's.
TEST(QuantWeighted, MatchesGgmlBytes) {
  const WeightedGolden g = load_weighted_golden();
  ASSERT_TRUE(g.error.empty()) << g.error;
  ASSERT_EQ(g.cases.size(), 112u);
  for (const GoldenCase& c : g.cases) {
    const DType t = static_cast<DType>(c.type_id);
    const TypeTraits& tr = type_traits(t);
    ASSERT_NE(tr.name, nullptr) << c.type_id;
    SCOPED_TRACE(std::string(tr.name) + " row " + std::to_string(c.row) + " imatrix " + std::to_string(c.imatrix));
    const std::vector<float>& x = g.rows[c.row];
    const float* qw = c.imatrix < 0 ? nullptr : g.imatrix[static_cast<size_t>(c.imatrix)].data();
    std::vector<uint8_t> out(row_size(t, g.n_cols), 0xAA);
    ASSERT_EQ(out.size(), c.bytes.size());
    if (quantize_row_weighted(t) != nullptr) {
      quantize_row_weighted(t)(x.data(), out.data(), g.n_cols, qw);
    } else {
      tr.from_float(x.data(), out.data(), g.n_cols);
    }
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], c.bytes[i]) << "byte " << i << " (block " << i / tr.type_size << ")";
    }
  }
}

}  // namespace
}  // namespace flashlm
