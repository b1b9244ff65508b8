// Golden tests against gguf-py (scripts/reference/make_quant_golden.py): block sizes,
// dequantization, reference dot products and quantization of the legacy formats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "quant/quant.h"
#include "util/fp16.h"

namespace flashlm {
namespace {

struct DequantCase {
  uint32_t type_id = 0;
  uint32_t n = 0;
  std::vector<uint8_t> raw;
  std::vector<float> expected;
  std::vector<float> x;
  double dot = 0.0;
  double abs_dot = 0.0;
};

struct QuantCase {
  uint32_t type_id = 0;
  uint32_t n = 0;
  std::vector<float> input;
  std::vector<uint8_t> expected;
};

struct SizeEntry {
  uint32_t type_id, block_size, type_size;
};

struct Golden {
  std::vector<SizeEntry> sizes;
  std::vector<DequantCase> dequant;
  std::vector<QuantCase> quant;
  std::string error;  // non-empty when the file is missing or malformed
};

// Bounds-checked little-endian reader over the golden file.
class Reader {
 public:
  explicit Reader(std::vector<uint8_t> data) : data_(std::move(data)) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }
  void bytes(void* dst, size_t n) {
    if (!ok_ || n > data_.size() - pos_) {
      ok_ = false;
      return;
    }
    std::memcpy(dst, data_.data() + pos_, n);
    pos_ += n;
  }
  template <typename T>
  T get() {
    T v{};
    bytes(&v, sizeof(T));
    return v;
  }
  template <typename T>
  std::vector<T> array(size_t count) {
    if (count > (data_.size() - pos_) / sizeof(T)) {
      ok_ = false;
      return {};
    }
    std::vector<T> v(count);
    bytes(v.data(), count * sizeof(T));
    return v;
  }

 private:
  std::vector<uint8_t> data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

Golden load_golden() {
  Golden g;
  const std::string path = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/quant/quant_golden.bin";
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    g.error = "cannot open " + path + " (run scripts/reference/make_quant_golden.py)";
    return g;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Reader r(std::move(bytes));
  char magic[8] = {};
  r.bytes(magic, 8);
  if (std::memcmp(magic, "FLQGOLD1", 8) != 0) {
    g.error = "bad magic in " + path;
    return g;
  }
  const uint32_t n_sizes = r.get<uint32_t>();
  for (uint32_t i = 0; i < n_sizes && r.ok(); ++i) {
    SizeEntry e{};
    e.type_id = r.get<uint32_t>();
    e.block_size = r.get<uint32_t>();
    e.type_size = r.get<uint32_t>();
    g.sizes.push_back(e);
  }
  const uint32_t n_dequant = r.get<uint32_t>();
  for (uint32_t i = 0; i < n_dequant && r.ok(); ++i) {
    DequantCase c;
    c.type_id = r.get<uint32_t>();
    c.n = r.get<uint32_t>();
    const uint32_t n_bytes = r.get<uint32_t>();
    c.raw = r.array<uint8_t>(n_bytes);
    c.expected = r.array<float>(c.n);
    c.x = r.array<float>(c.n);
    c.dot = r.get<double>();
    c.abs_dot = r.get<double>();
    g.dequant.push_back(std::move(c));
  }
  const uint32_t n_quant = r.get<uint32_t>();
  for (uint32_t i = 0; i < n_quant && r.ok(); ++i) {
    QuantCase c;
    c.type_id = r.get<uint32_t>();
    c.n = r.get<uint32_t>();
    const uint32_t n_bytes = r.get<uint32_t>();
    c.input = r.array<float>(c.n);
    c.expected = r.array<uint8_t>(n_bytes);
    g.quant.push_back(std::move(c));
  }
  if (!r.ok() || !r.at_end()) g.error = "truncated or oversized " + path;
  return g;
}

const Golden& golden() {
  static const Golden g = load_golden();
  return g;
}

// Distance in units in the last place between two finite floats of the same sign
// (any sign mix other than +-0 counts as far apart).
int64_t ulp_distance(float a, float b) {
  if (a == b) return 0;
  if (std::signbit(a) != std::signbit(b)) return INT64_MAX;
  return std::llabs((int64_t)fp32_to_bits(a) - (int64_t)fp32_to_bits(b));
}

TEST(QuantGolden, FileLoads) {
  const Golden& g = golden();
  ASSERT_TRUE(g.error.empty()) << g.error;
  EXPECT_GE(g.sizes.size(), 14u);
  EXPECT_EQ(g.dequant.size(), 13u);
  EXPECT_EQ(g.quant.size(), 7u);
}

// Every type we support must agree with gguf-py's GGML_QUANT_SIZES, and every id the
// table covers that gguf knows must at least not claim different sizes.
TEST(QuantGolden, TableSizesMatchGguf) {
  const Golden& g = golden();
  ASSERT_TRUE(g.error.empty()) << g.error;
  int supported = 0;
  for (const SizeEntry& e : g.sizes) {
    const TypeTraits& t = type_traits(e.type_id);
    if (t.name == nullptr) continue;
    ++supported;
    EXPECT_EQ(t.block_size, (int64_t)e.block_size) << t.name;
    EXPECT_EQ(t.type_size, (size_t)e.type_size) << t.name;
    EXPECT_EQ(t.is_quantized, e.block_size > 1) << t.name;
  }
  EXPECT_EQ(supported, 14);  // F32 F16 BF16, 5 legacy, 5 K-quants, Q8_K
}

// Dequantization must be bit-exact: we use ggml's float operations in ggml's order.
// One ulp is tolerated (and reported) only in case a compiler contracts a*b-c.
TEST(QuantGolden, DequantizeMatchesGguf) {
  const Golden& g = golden();
  ASSERT_TRUE(g.error.empty()) << g.error;
  for (const DequantCase& c : g.dequant) {
    const TypeTraits& t = type_traits(c.type_id);
    ASSERT_NE(t.name, nullptr) << "type " << c.type_id;
    SCOPED_TRACE(t.name);
    ASSERT_EQ(row_size(static_cast<DType>(c.type_id), c.n), c.raw.size());
    std::vector<float> out(c.n, NAN);
    t.to_float(c.raw.data(), out.data(), c.n);
    int64_t inexact = 0;
    for (uint32_t i = 0; i < c.n; ++i) {
      const int64_t d = ulp_distance(out[i], c.expected[i]);
      ASSERT_LE(d, 1) << "element " << i << ": got " << out[i] << " want " << c.expected[i];
      inexact += d;
    }
    EXPECT_EQ(inexact, 0) << "values within 1 ulp but not bit-exact";
  }
}

// The reference dot must be as accurate as float64 over the reference values: its error
// is bounded by the final rounding to float (2^-24 relative) plus double accumulation.
TEST(QuantGolden, DotMatchesFloat64) {
  const Golden& g = golden();
  ASSERT_TRUE(g.error.empty()) << g.error;
  for (const DequantCase& c : g.dequant) {
    const TypeTraits& t = type_traits(c.type_id);
    ASSERT_NE(t.name, nullptr);
    SCOPED_TRACE(t.name);
    const float got = t.dot_f32(c.raw.data(), c.x.data(), c.n);
    const double tol = c.abs_dot * 1e-6 + 1e-30;
    EXPECT_NEAR((double)got, c.dot, tol);
    EXPECT_NEAR((double)got, c.dot, std::fabs(c.dot) * 0x1p-23 + c.abs_dot * 1e-12);
  }
}

// Quantization follows ggml's reference rounding, which gguf-py reproduces in numpy.
TEST(QuantGolden, QuantizeMatchesGguf) {
  const Golden& g = golden();
  ASSERT_TRUE(g.error.empty()) << g.error;
  for (const QuantCase& c : g.quant) {
    const TypeTraits& t = type_traits(c.type_id);
    ASSERT_NE(t.name, nullptr);
    SCOPED_TRACE(t.name);
    ASSERT_NE(t.from_float, nullptr);
    ASSERT_EQ(row_size(static_cast<DType>(c.type_id), c.n), c.expected.size());
    std::vector<uint8_t> out(c.expected.size(), 0xAA);
    t.from_float(c.input.data(), out.data(), c.n);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], c.expected[i]) << "byte " << i << " (block " << i / t.type_size << ")";
    }
  }
}

}  // namespace
}  // namespace flashlm
