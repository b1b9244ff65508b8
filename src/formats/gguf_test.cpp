// GGUF reader tests: valid v2/v3 files built byte by byte (every value type, nested
// arrays, tensors of several types) parse to the values written; hostile variants each
// give one clear error Status, never a crash, and never a huge allocation.
#include "formats/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <new>
#include <string_view>

#include "formats/gguf_writer_test_util.h"

// Records the largest heap request: hostile counts and lengths must be rejected before
// anything proportional to them is reserved.
#include "util/alloc_stats_test_util.h"

namespace flashlm::gguf {
namespace {

using testing::array_of;
using testing::array_of_arrays;
using testing::array_of_strings;
using testing::ByteWriter;
using testing::GgufBuilder;
namespace t = testing;

Result<File> parse_bytes(const std::vector<uint8_t>& b) {
  return File::parse(MappedFile::from_bytes(b.data(), b.size()));
}

// Parses a file that must be rejected: the error must mention `text`, and no single
// allocation may be out of proportion to the file (a sign a count was trusted).
::testing::AssertionResult fails_with(const std::vector<uint8_t>& b, std::string_view text) {
  flashlm::testing_alloc::reset_largest();
  Result<File> f = parse_bytes(b);
  if (flashlm::testing_alloc::largest.load() > 64 * b.size() + 4096) {
    return ::testing::AssertionFailure() << "allocation of " << flashlm::testing_alloc::largest.load() << " bytes for a " << b.size()
                                         << "-byte file";
  }
  if (f.is_ok()) return ::testing::AssertionFailure() << "hostile file parsed";
  if (f.message().find(text) == std::string::npos) {
    return ::testing::AssertionFailure() << "message '" << f.message() << "' does not mention '" << text << "'";
  }
  return ::testing::AssertionSuccess() << f.message();
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = static_cast<uint8_t>(seed + k * 7);
  return v;
}

// ggml type ids and block sizes used below.
constexpr uint32_t kTF32 = 0, kTF16 = 1, kTQ8_0 = 8, kTQ4_K = 12;

// A valid file exercising every value type and several tensor types. The last tensor's
// data ends exactly at the end of the file, so every proper prefix is truncated.
GgufBuilder full_builder(uint32_t version) {
  GgufBuilder b(version);
  b.kv_string("general.architecture", "llama")
      .kv_u8("t.u8", 200)
      .kv_i8("t.i8", -100)
      .kv_u16("t.u16", 60000)
      .kv_i16("t.i16", -30000)
      .kv_u32("t.u32", 4000000000u)
      .kv_i32("t.i32", -2000000000)
      .kv_u64("t.u64", uint64_t{1} << 62)
      .kv_i64("t.i64", std::numeric_limits<int64_t>::min())
      .kv_f32("t.f32", 1.5f)
      .kv_f64("t.f64", -2.25)
      .kv_bool("t.bool_true", 1)
      .kv_bool("t.bool_false", 0)
      .kv_string("t.empty", "")
      .kv_string("t.utf8", "h\xc3\xa9llo \xe2\x9c\x93")
      .kv_array("t.strings", array_of_strings({"a", "", "long string value"}))
      .kv_array("t.i32s", array_of<int32_t>(t::kI32, {1, -2, 3}))
      .kv_array("t.u64s", array_of<uint64_t>(t::kU64, {0, 7}))
      .kv_array("t.f32s", array_of<float>(t::kF32, {0.5f, -1.0f}))
      .kv_array("t.f64s", array_of<double>(t::kF64, {3.0}))
      .kv_array("t.bools", array_of<uint8_t>(t::kBool, {1, 0, 1}))
      .kv_array("t.empty_array", array_of<int32_t>(t::kI32, {}))
      .kv_array("t.nested",
                array_of_arrays({array_of<int32_t>(t::kI32, {1, 2}), array_of_strings({"x"}),
                                 array_of_arrays({array_of<float>(t::kF32, {9.0f})})}));
  b.tensor({"q8", {64, 2}, kTQ8_0, pattern(2 * 2 * 34, 1), std::nullopt})
      .tensor({"half", {8}, kTF16, pattern(16, 2), std::nullopt})
      .tensor({"k4", {256}, kTQ4_K, pattern(144, 3), std::nullopt})
      .tensor({"f32.last", {8, 2, 2}, kTF32, pattern(128, 4), std::nullopt});
  return b;
}

class GgufValid : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufValid, ParsesEveryValueTypeAndTensor) {
  const std::vector<uint8_t> bytes = full_builder(GetParam()).build();
  flashlm::testing_alloc::reset_largest();
  Result<File> r = parse_bytes(bytes);
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_GT(flashlm::testing_alloc::largest.load(), 0u);  // the watcher sees the parser's allocations
  EXPECT_LE(flashlm::testing_alloc::largest.load(), 64 * bytes.size());
  const File& f = *r;
  EXPECT_EQ(f.version(), GetParam());
  EXPECT_EQ(f.alignment(), 32u);
  ASSERT_EQ(f.metadata().size(), 23u);
  EXPECT_EQ(f.metadata()[0].first, "general.architecture");  // file order kept
  EXPECT_EQ(f.metadata()[22].first, "t.nested");

  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_int("t.u8").value(), 200);
  EXPECT_EQ(f.get_int("t.i8").value(), -100);
  EXPECT_EQ(f.get_int("t.u16").value(), 60000);
  EXPECT_EQ(f.get_int("t.i16").value(), -30000);
  EXPECT_EQ(f.get_int("t.u32").value(), 4000000000LL);
  EXPECT_EQ(f.get_int("t.i32").value(), -2000000000);
  EXPECT_EQ(f.get_int("t.u64").value(), int64_t{1} << 62);
  EXPECT_EQ(f.get_int("t.i64").value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_float("t.f32").value(), 1.5);
  EXPECT_EQ(f.get_float("t.f64").value(), -2.25);
  EXPECT_EQ(f.get_float("t.i32").value(), -2000000000.0);  // integers widen to float
  EXPECT_TRUE(f.get_bool("t.bool_true").value());
  EXPECT_FALSE(f.get_bool("t.bool_false").value());
  EXPECT_EQ(f.get_string("t.empty").value(), "");
  EXPECT_EQ(f.get_string("t.utf8").value(), "h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_EQ(f.find("t.u8")->type, ValueType::kUint8);
  EXPECT_EQ(f.find("t.u64")->type, ValueType::kUint64);

  Result<const Value*> strs = f.get_array("t.strings", ValueType::kString);
  ASSERT_TRUE(strs.is_ok()) << strs.message();
  EXPECT_EQ((*strs)->count, 3u);
  EXPECT_EQ((*strs)->strings, (std::vector<std::string>{"a", "", "long string value"}));
  EXPECT_EQ(f.get_array("t.i32s", ValueType::kInt32).value()->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.get_array("t.u64s", ValueType::kUint64).value()->ints, (std::vector<int64_t>{0, 7}));
  EXPECT_EQ(f.get_array("t.f32s", ValueType::kFloat32).value()->floats, (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(f.get_array("t.f64s", ValueType::kFloat64).value()->floats, (std::vector<double>{3.0}));
  EXPECT_EQ(f.get_array("t.bools", ValueType::kBool).value()->ints, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f.get_array("t.empty_array", ValueType::kInt32).value()->count, 0u);

  const Value* nested = f.find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->elem_type, ValueType::kArray);
  ASSERT_EQ(nested->items.size(), 3u);
  EXPECT_EQ(nested->items[0].ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested->items[1].strings, (std::vector<std::string>{"x"}));
  ASSERT_EQ(nested->items[2].items.size(), 1u);
  EXPECT_EQ(nested->items[2].items[0].floats, (std::vector<double>{9.0}));
  EXPECT_EQ(nested->to_string(), "[[1, 2], [\"x\"], [[9.000000]]]");

  // Tensors: shapes, types, sizes, aligned offsets and the bytes they point at.
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  struct Want {
    const char* name;
    DType dtype;
    int n_dims;
    int64_t ne[4];
    uint64_t size;
    uint8_t seed;
  };
  const Want want[] = {{"q8", DType::Q8_0, 2, {64, 2, 1, 1}, 136, 1},
                       {"half", DType::F16, 1, {8, 1, 1, 1}, 16, 2},
                       {"k4", DType::Q4_K, 1, {256, 1, 1, 1}, 144, 3},
                       {"f32.last", DType::F32, 3, {8, 2, 2, 1}, 128, 4}};
  uint64_t expect_offset = 0;
  for (const Want& w : want) {
    SCOPED_TRACE(w.name);
    const TensorInfo* ti = f.find_tensor(w.name);
    ASSERT_NE(ti, nullptr);
    EXPECT_EQ(ti->dtype, w.dtype);
    EXPECT_EQ(ti->n_dims, w.n_dims);
    for (int d = 0; d < 4; ++d) EXPECT_EQ(ti->ne[d], w.ne[d]);
    EXPECT_EQ(ti->size_bytes, w.size);
    EXPECT_EQ(ti->offset, expect_offset);
    EXPECT_EQ(ti->offset % f.alignment(), 0u);
    const std::vector<uint8_t> p = pattern(w.size, w.seed);
    EXPECT_EQ(std::memcmp(ti->data, p.data(), p.size()), 0);
    ASSERT_GE(bytes.size(), f.data_offset() + ti->offset + w.size);
    EXPECT_EQ(std::memcmp(bytes.data() + f.data_offset() + ti->offset, p.data(), p.size()), 0);
    expect_offset = (ti->offset + w.size + 31) / 32 * 32;
  }
  EXPECT_EQ(f.data_offset() + f.find_tensor("f32.last")->offset + 128, bytes.size());
  EXPECT_EQ(f.find_tensor("missing"), nullptr);

  // Views: byte strides follow the block layout.
  TensorView v = f.find_tensor("q8")->view();
  EXPECT_EQ(v.dtype, DType::Q8_0);
  EXPECT_EQ(v.nb[0], 34u);
  EXPECT_EQ(v.nb[1], 68u);
  EXPECT_EQ(v.nb[2], 136u);
  TensorView v3 = f.find_tensor("f32.last")->view();
  EXPECT_EQ(v3.nb[0], 4u);
  EXPECT_EQ(v3.nb[1], 32u);
  EXPECT_EQ(v3.nb[2], 64u);
  EXPECT_EQ(v3.nb[3], 128u);
  EXPECT_EQ(v3.nelements(), 32);
}

// Every proper prefix of a valid file is an error that says the file is short.
TEST_P(GgufValid, EveryTruncationIsACleanError) {
  const std::vector<uint8_t> full = full_builder(GetParam()).build();
  ASSERT_TRUE(parse_bytes(full).is_ok());
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    flashlm::testing_alloc::reset_largest();
    Result<File> f = parse_bytes(prefix);
    ASSERT_FALSE(f.is_ok());
    ASSERT_LE(flashlm::testing_alloc::largest.load(), 64 * n + 4096);
    const std::string& msg = f.message();
    const bool says_short = msg.find("truncated") != std::string::npos || msg.find("too short") != std::string::npos ||
                            msg.find("does not fit") != std::string::npos ||
                            msg.find("past the end") != std::string::npos;
    ASSERT_TRUE(says_short) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, GgufValid, ::testing::Values(2u, 3u));

TEST(Gguf, EmptyHeaderIsValid) {
  Result<File> f = parse_bytes(GgufBuilder(3).build());
  ASSERT_TRUE(f.is_ok()) << f.message();
  EXPECT_TRUE(f->metadata().empty());
  EXPECT_TRUE(f->tensors().empty());
}

TEST(Gguf, CustomAlignmentIsUsed) {
  GgufBuilder b(3);
  b.layout_alignment(64).kv_u32("general.alignment", 64).kv_string("pad", "xyz");
  b.tensor_f32("a", {3}, 1.0f).tensor_f32("b", {5}, 2.0f);
  Result<File> f = parse_bytes(b.build());
  ASSERT_TRUE(f.is_ok()) << f.message();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("b")->offset, 64u);
  float x = 0;
  std::memcpy(&x, f->find_tensor("b")->data, 4);
  EXPECT_EQ(x, 2.0f);
}

// --- hostile headers ---------------------------------------------------------------

TEST(GgufHostile, BadMagic) {
  EXPECT_TRUE(fails_with(GgufBuilder(3).magic(0x46554746).build(), "bad magic"));
  EXPECT_TRUE(fails_with(std::vector<uint8_t>({'G', 'G'}), "not a GGUF file"));
  EXPECT_TRUE(fails_with(std::vector<uint8_t>(), "not a GGUF file"));
}

TEST(GgufHostile, UnsupportedVersions) {
  EXPECT_TRUE(fails_with(GgufBuilder(1).build(), "unsupported GGUF version 1"));
  EXPECT_TRUE(fails_with(GgufBuilder(4).build(), "unsupported GGUF version 4"));
  EXPECT_TRUE(fails_with(GgufBuilder(0xFFFFFFFFu).build(), "unsupported GGUF version"));
}

TEST(GgufHostile, HugeCounts) {
  EXPECT_TRUE(fails_with(GgufBuilder(3).n_kv_override(~uint64_t{0}).build(), "metadata count"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).n_tensors_override(~uint64_t{0}).build(), "tensor count"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).n_tensors_override(uint64_t{1} << 40).kv_u8("a", 1).build(), "tensor count"));
  // A count that fits by the minimum-size rule but lies: runs out of bytes.
  EXPECT_TRUE(fails_with(GgufBuilder(3).n_kv_override(3).kv_u32("a", 1).kv_string("b", "0123456789abcdef").build(),
                   "truncated"));
}

TEST(GgufHostile, HugeStringLengths) {
  // Key length far beyond the file.
  {
    ByteWriter w;
    w.u32(0x46554747).u32(3).u64(0).u64(1).u64(~uint64_t{0} - 3).raw(std::vector<uint8_t>(32, 'k'));
    EXPECT_TRUE(fails_with(w.bytes(), "truncated"));
  }
  // Value string length far beyond the file.
  {
    ByteWriter v;
    v.u64(uint64_t{1} << 62).raw(std::vector<uint8_t>(16, 'v'));
    EXPECT_TRUE(fails_with(GgufBuilder(3).kv_raw("s", t::kString, v.take()).build(), "truncated"));
  }
  // A key longer than the name limit, present in full.
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_u8(std::string(70000, 'k'), 1).build(), "exceeds limit"));
  // A tensor name longer than the limit.
  EXPECT_TRUE(fails_with(GgufBuilder(3).tensor_f32(std::string(70000, 'n'), {4}).build(), "exceeds limit"));
  // A string inside an array.
  {
    ByteWriter a;
    a.u32(t::kString).u64(2).str("ok").u64(uint64_t{1} << 50).raw(std::vector<uint8_t>(40, 'x'));
    EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("a", a.take()).build(), "truncated"));
  }
}

TEST(GgufHostile, HugeArrayCounts) {
  for (uint32_t et : {t::kU8, t::kI64, t::kF32, t::kString, t::kArray, t::kBool}) {
    SCOPED_TRACE("element type " + std::to_string(et));
    ByteWriter a;
    a.u32(et).u64(uint64_t{1} << 61).raw(std::vector<uint8_t>(64, 0));
    EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("big", a.take()).build(), "does not fit"));
    ByteWriter m;
    m.u32(et).u64(~uint64_t{0});
    EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("max", m.take()).build(), "does not fit"));
  }
  // Nested: the inner array's count is checked against what is left too.
  ByteWriter inner;
  inner.u32(t::kU32).u64(uint64_t{1} << 40);
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("n", array_of_arrays({inner.take()})).build(), "does not fit"));
}

TEST(GgufHostile, UnknownValueTypes) {
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_raw("weird", 13, {0, 0, 0, 0}).build(), "unknown value type 13"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_raw("weird", 0xFFFFFFFFu, {}).build(), "'weird'"));
  ByteWriter a;
  a.u32(99).u64(1).u32(0);
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("arr", a.take()).build(), "unknown array element type 99"));
}

TEST(GgufHostile, DuplicateKeys) {
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_u32("dup", 1).kv_string("dup", "x").build(), "duplicate metadata key 'dup'"));
}

TEST(GgufHostile, U64AboveInt64Max) {
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_u64("big", uint64_t{1} << 63).build(), "out of supported range"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_u64("big", ~uint64_t{0}).build(), "'big'"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("bigs", array_of<uint64_t>(t::kU64, {1, ~uint64_t{0}})).build(),
                   "out of supported range"));
  // INT64_MAX itself is fine.
  Result<File> ok = parse_bytes(GgufBuilder(3).kv_u64("m", std::numeric_limits<int64_t>::max()).build());
  ASSERT_TRUE(ok.is_ok()) << ok.message();
  EXPECT_EQ(ok->get_int("m").value(), std::numeric_limits<int64_t>::max());
}

TEST(GgufHostile, BoolNotZeroOrOne) {
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_bool("b", 2).build(), "bool value 2 is not 0 or 1"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_bool("b", 255).build(), "'b'"));
  EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("bs", array_of<uint8_t>(t::kBool, {0, 1, 7})).build(), "not 0 or 1"));
}

TEST(GgufHostile, ArraysNestedTooDeep) {
  // Three levels parse; a very deep chain fails cleanly (no stack overflow).
  std::vector<uint8_t> three = array_of_arrays({array_of_arrays({array_of<int32_t>(t::kI32, {5})})});
  Result<File> ok = parse_bytes(GgufBuilder(3).kv_array("three", three).build());
  ASSERT_TRUE(ok.is_ok()) << ok.message();
  EXPECT_EQ(ok->find("three")->items[0].items[0].ints, (std::vector<int64_t>{5}));

  for (int depth : {16, 100000}) {
    ByteWriter w;
    for (int k = 0; k < depth; ++k) w.u32(t::kArray).u64(1);
    w.u32(t::kI32).u64(1).u32(5);
    EXPECT_TRUE(fails_with(GgufBuilder(3).kv_array("deep", w.take()).build(), "nested too deeply"));
  }
}

TEST(GgufHostile, BadAlignment) {
  auto with_alignment = [](auto setter) {
    GgufBuilder b(3);
    setter(b);
    b.tensor_f32("w", {8});
    return b.build();
  };
  EXPECT_TRUE(fails_with(with_alignment([](GgufBuilder& b) { b.kv_u32("general.alignment", 0); }), "general.alignment"));
  EXPECT_TRUE(fails_with(with_alignment([](GgufBuilder& b) { b.kv_u32("general.alignment", 3); }), "general.alignment"));
  EXPECT_TRUE(fails_with(with_alignment([](GgufBuilder& b) { b.kv_u32("general.alignment", 48); }), "power of two"));
  EXPECT_TRUE(fails_with(with_alignment([](GgufBuilder& b) { b.kv_u64("general.alignment", uint64_t{1} << 40); }),
                   "general.alignment"));
  EXPECT_TRUE(fails_with(with_alignment([](GgufBuilder& b) { b.kv_i32("general.alignment", -32); }), "general.alignment"));
  EXPECT_TRUE(fails_with(with_alignment([](GgufBuilder& b) { b.kv_string("general.alignment", "32"); }),
                   "general.alignment"));
}

// --- hostile tensor infos ----------------------------------------------------------

std::vector<uint8_t> one_tensor(std::vector<uint64_t> dims, uint32_t type, std::vector<uint8_t> data = {},
                                std::optional<uint64_t> offset = std::nullopt) {
  GgufBuilder b(3);
  b.tensor({"w", std::move(dims), type, std::move(data), offset});
  return b.build();
}

TEST(GgufHostile, TensorDimensionCounts) {
  EXPECT_TRUE(fails_with(one_tensor({}, kTF32), "0 dimensions"));
  EXPECT_TRUE(fails_with(one_tensor({1, 1, 1, 1, 1}, kTF32, std::vector<uint8_t>(4)), "5 dimensions"));
  // Four dimensions are fine.
  EXPECT_TRUE(parse_bytes(one_tensor({1, 2, 1, 2}, kTF32, std::vector<uint8_t>(16))).is_ok());
}

TEST(GgufHostile, ZeroDimension) {
  EXPECT_TRUE(fails_with(one_tensor({4, 0}, kTF32), "bad dimension 0"));
  EXPECT_TRUE(fails_with(one_tensor({0}, kTF32), "tensor 'w'"));
}

TEST(GgufHostile, ElementCountOverflow) {
  EXPECT_TRUE(fails_with(one_tensor({uint64_t{1} << 40, uint64_t{1} << 40}, kTF32), "too many elements"));
  EXPECT_TRUE(fails_with(one_tensor({uint64_t{1} << 32, uint64_t{1} << 32, uint64_t{1} << 32, 16}, kTF32),
                   "too many elements"));
  EXPECT_TRUE(fails_with(one_tensor({~uint64_t{0}}, kTF32), "bad dimension"));
  // In range as a count, but the data is not in the file.
  EXPECT_TRUE(fails_with(one_tensor({uint64_t{1} << 20, uint64_t{1} << 20}, kTF32), "past the end"));
}

TEST(GgufHostile, UnknownTensorType) {
  EXPECT_TRUE(fails_with(one_tensor({32}, 4), "unsupported tensor type id 4"));  // q4_2, removed from ggml
  EXPECT_TRUE(fails_with(one_tensor({32}, 39), "unsupported tensor type id 39"));
  EXPECT_TRUE(fails_with(one_tensor({32}, 0xFFFFFFFFu), "unsupported tensor type id"));
}

TEST(GgufHostile, RowNotMultipleOfBlock) {
  EXPECT_TRUE(fails_with(one_tensor({33, 2}, kTQ8_0), "not a multiple of the q8_0 block size 32"));
  EXPECT_TRUE(fails_with(one_tensor({128}, kTQ4_K), "block size 256"));
}

TEST(GgufHostile, UnalignedOffset) {
  EXPECT_TRUE(fails_with(one_tensor({8}, kTF32, {}, 4), "not aligned"));
  EXPECT_TRUE(fails_with(one_tensor({8}, kTF32, {}, 33), "offset 33"));
}

TEST(GgufHostile, DataPastTheEnd) {
  EXPECT_TRUE(fails_with(one_tensor({8}, kTF32, {}, 1024), "past the end"));
  EXPECT_TRUE(fails_with(one_tensor({8}, kTF32, {}, ~uint64_t{0} & ~uint64_t{31}), "past the end"));
  // Data that starts inside the file but runs past its end.
  GgufBuilder b(3);
  b.tensor_f32("a", {8}).tensor({"b", {64}, kTF32, {}, 32});
  EXPECT_TRUE(fails_with(b.build(), "tensor 'b'"));
  // The tensor infos are complete but the file ends before the data section.
  std::vector<uint8_t> bytes = one_tensor({8}, kTF32, std::vector<uint8_t>(32));
  ASSERT_EQ(bytes.size(), 96u);  // 24 header + 33 tensor info, padded to 64, + 32 data
  bytes.resize(60);
  EXPECT_TRUE(fails_with(bytes, "truncated"));
}

TEST(GgufHostile, DuplicateTensorNames) {
  GgufBuilder b(3);
  b.tensor_f32("same", {4}).tensor_f32("same", {4});
  EXPECT_TRUE(fails_with(b.build(), "duplicate tensor name 'same'"));
}

// --- typed getters -----------------------------------------------------------------

TEST(GgufGetters, WrongTypesNameKeyAndType) {
  GgufBuilder b(3);
  b.kv_string("s", "text").kv_i32("i", 7).kv_f32("f", 0.25f).kv_bool("b", 1);
  b.kv_array("ints", array_of<int32_t>(t::kI32, {1}));
  Result<File> r = parse_bytes(b.build());
  ASSERT_TRUE(r.is_ok()) << r.message();
  const File& f = *r;

  Result<int64_t> i = f.get_int("s");
  ASSERT_FALSE(i.is_ok());
  EXPECT_NE(i.message().find("'s'"), std::string::npos) << i.message();
  EXPECT_NE(i.message().find("string"), std::string::npos) << i.message();
  EXPECT_NE(i.message().find("integer"), std::string::npos) << i.message();

  EXPECT_NE(f.get_int("f").message().find("'f' has type f32"), std::string::npos);
  EXPECT_NE(f.get_float("s").message().find("'s' has type string"), std::string::npos);
  EXPECT_NE(f.get_bool("i").message().find("'i' has type i32"), std::string::npos);
  EXPECT_NE(f.get_string("b").message().find("'b' has type bool"), std::string::npos);
  EXPECT_NE(f.get_array("i", ValueType::kInt32).message().find("'i' has type i32, expected array"),
            std::string::npos);
  Result<const Value*> wrong_elem = f.get_array("ints", ValueType::kString);
  EXPECT_NE(wrong_elem.message().find("array of i32"), std::string::npos) << wrong_elem.message();
  EXPECT_TRUE(f.get_array("ints", ValueType::kUint8).is_ok());  // same storage class

  EXPECT_NE(f.get_int("nope").message().find("'nope' is missing"), std::string::npos);
  EXPECT_NE(f.get_string("nope").message().find("missing"), std::string::npos);

  EXPECT_EQ(f.get_int_or("nope", 42).value(), 42);
  EXPECT_EQ(f.get_int_or("i", 42).value(), 7);
  EXPECT_EQ(f.get_float_or("nope", 0.5).value(), 0.5);
  EXPECT_EQ(f.get_float_or("f", 0.5).value(), 0.25);
  EXPECT_TRUE(f.get_bool_or("nope", true).value());
  EXPECT_TRUE(f.get_bool_or("b", false).value());
  EXPECT_EQ(f.get_string_or("nope", "def").value(), "def");
  EXPECT_EQ(f.get_string_or("s", "def").value(), "text");
  // A present key of the wrong type is an error even with a default.
  EXPECT_FALSE(f.get_int_or("s", 1).is_ok());
  EXPECT_NE(f.get_string_or("i", "x").message().find("'i'"), std::string::npos);
  EXPECT_FALSE(f.get_bool_or("i", false).is_ok());
  EXPECT_FALSE(f.get_float_or("b", 1.0).is_ok());
}

TEST(GgufGetters, ToStringShortensBigValues) {
  std::vector<std::string> many(100, "tok");
  GgufBuilder b(3);
  b.kv_array("vocab", array_of_strings(many)).kv_string("long", std::string(200, 'z'));
  Result<File> r = parse_bytes(b.build());
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r->find("vocab")->to_string(), "[100 string]");
  EXPECT_NE(r->find("long")->to_string().find("(200 bytes)"), std::string::npos);
}

// --- files on disk -----------------------------------------------------------------

TEST(GgufOpen, ErrorsNameThePath) {
  Result<File> missing = File::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.message().find("cannot open"), std::string::npos) << missing.message();

  char tmpl[] = "/tmp/flashlm_gguf_test_XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::vector<uint8_t> bytes = GgufBuilder(1).build();
  {
    std::ofstream out(tmpl, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  Result<File> bad = File::open(tmpl);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find(tmpl), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("version 1"), std::string::npos) << bad.message();

  const std::vector<uint8_t> good = full_builder(3).build();
  {
    std::ofstream out(tmpl, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(good.data()), static_cast<std::streamsize>(good.size()));
  }
  Result<File> ok = File::open(tmpl);
  ASSERT_TRUE(ok.is_ok()) << ok.message();
  EXPECT_EQ(ok->path(), tmpl);
  EXPECT_EQ(ok->file_size(), good.size());
  EXPECT_EQ(ok->tensors().size(), 4u);
  std::remove(tmpl);

  Result<File> dir = File::open("/tmp");
  ASSERT_FALSE(dir.is_ok());
  EXPECT_NE(dir.message().find("not a regular file"), std::string::npos) << dir.message();
}

}  // namespace
}  // namespace flashlm::gguf
