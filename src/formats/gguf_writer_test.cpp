// GGUF writer tests: every value type and nested arrays round-trip through the reader;
// the bytes equal those of the independent test builder for the same content; tensors
// from memory and from producers land at aligned offsets with their exact bytes; bad
// declarations and misbehaving producers are errors that leave no file behind.
#include "formats/gguf_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "formats/gguf_writer_test_util.h"

namespace flashlm::gguf {
namespace {

std::string temp_path(const char* tag) {
  return ::testing::TempDir() + "gguf_writer_" + tag + "_" + std::to_string(getpid()) + ".gguf";
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Value scalar_of(ValueType t, int64_t i, double f = 0.0) {
  Value v;
  v.type = t;
  v.i = i;
  v.f = f;
  v.b = i != 0;
  return v;
}

TEST(GgufWriter, EveryValueTypeRoundTrips) {
  Writer w;
  w.set("u8", scalar_of(ValueType::kUint8, 200));
  w.set("i8", scalar_of(ValueType::kInt8, -100));
  w.set("u16", scalar_of(ValueType::kUint16, 60000));
  w.set("i16", scalar_of(ValueType::kInt16, -30000));
  w.set("u32", make_u32(4000000000u));
  w.set("i32", make_i32(-2000000000));
  w.set("u64", make_u64(uint64_t{1} << 40));
  w.set("i64", scalar_of(ValueType::kInt64, -(int64_t{1} << 50)));
  w.set("f32", make_f32(1.5f));
  w.set("f64", scalar_of(ValueType::kFloat64, 0, 0.1));
  w.set("bool", make_bool(true));
  w.set("str", make_string("héllo"));
  w.set("strs", make_string_array({"a", "", "ccc"}));
  w.set("floats", make_f32_array({0.25, -2.0}));
  w.set("ints", make_i32_array({1, -2, 3}));
  Value nested;
  nested.type = ValueType::kArray;
  nested.elem_type = ValueType::kArray;
  nested.items = {make_i32_array({7}), make_i32_array({8, 9})};
  nested.count = 2;
  w.set("nested", nested);
  w.set("u32", make_u32(5));  // replaces in place
  const std::string path = temp_path("kv");
  ASSERT_TRUE(w.write(path)) << "write";
  Result<File> f = File::open(path);
  ASSERT_TRUE(f) << f.message();
  ASSERT_EQ(f->metadata().size(), 16u);
  EXPECT_EQ(f->metadata()[4].first, "u32");
  EXPECT_EQ(f->get_int("u8").value(), 200);
  EXPECT_EQ(f->get_int("i8").value(), -100);
  EXPECT_EQ(f->get_int("u16").value(), 60000);
  EXPECT_EQ(f->get_int("i16").value(), -30000);
  EXPECT_EQ(f->get_int("u32").value(), 5);
  EXPECT_EQ(f->get_int("i32").value(), -2000000000);
  EXPECT_EQ(f->get_int("u64").value(), int64_t{1} << 40);
  EXPECT_EQ(f->get_int("i64").value(), -(int64_t{1} << 50));
  EXPECT_EQ(f->get_float("f32").value(), 1.5);
  EXPECT_EQ(f->get_float("f64").value(), 0.1);
  EXPECT_TRUE(f->get_bool("bool").value());
  EXPECT_EQ(f->get_string("str").value(), "héllo");
  EXPECT_EQ(f->get_array("strs", ValueType::kString).value()->strings, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->get_array("floats", ValueType::kFloat32).value()->floats, (std::vector<double>{0.25, -2.0}));
  EXPECT_EQ(f->get_array("ints", ValueType::kInt32).value()->ints, (std::vector<int64_t>{1, -2, 3}));
  const Value* n = f->get_array("nested", ValueType::kArray).value();
  ASSERT_EQ(n->items.size(), 2u);
  EXPECT_EQ(n->items[1].ints, (std::vector<int64_t>{8, 9}));
  EXPECT_TRUE(f->tensors().empty());
  std::remove(path.c_str());
}

// The same content through the test builder (written from the format description, not
// from this writer) gives the same bytes.
TEST(GgufWriter, BytesMatchIndependentBuilder) {
  std::vector<float> a(8 * 3), b(5);
  for (size_t k = 0; k < a.size(); ++k) a[k] = static_cast<float>(k) * 0.5f;
  for (size_t k = 0; k < b.size(); ++k) b[k] = -static_cast<float>(k);
  Writer w;
  w.set("general.architecture", make_string("llama"));
  w.set("n", make_u32(7));
  ASSERT_TRUE(w.add_tensor("a", DType::F32, {8, 3}, a.data()));
  ASSERT_TRUE(w.add_tensor("b", DType::F32, {5}, b.data()));
  const std::string path = temp_path("bytes");
  ASSERT_TRUE(w.write(path));

  testing::GgufBuilder gb;
  gb.kv_string("general.architecture", "llama").kv_u32("n", 7);
  const auto bytes_of = [](const std::vector<float>& v) {
    std::vector<uint8_t> out(v.size() * sizeof(float));
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  };
  gb.tensor({"a", {8, 3}, 0, bytes_of(a), std::nullopt});
  gb.tensor({"b", {5}, 0, bytes_of(b), std::nullopt});
  EXPECT_EQ(read_all(path), gb.build());
  std::remove(path.c_str());
}

TEST(GgufWriter, TensorsFromProducersAndMemoryAtAlignedOffsets) {
  // A Q8_0 tensor (2 rows of 64: 2 blocks of 34 bytes each per row) streamed in pieces.
  const size_t q8_bytes = 2 * 2 * 34;
  std::vector<uint8_t> q8(q8_bytes);
  for (size_t k = 0; k < q8.size(); ++k) q8[k] = static_cast<uint8_t>(k * 7);
  std::vector<float> small(3, 2.0f);
  Writer w;
  w.set("general.alignment", make_u32(64));
  ASSERT_TRUE(w.add_tensor("small", DType::F32, {3}, small.data()));
  ASSERT_TRUE(w.add_tensor("q", DType::Q8_0, {64, 2}, [&](TensorSink& s) -> Status {
    for (size_t off = 0; off < q8.size(); off += 50) {
      Status st = s.write(q8.data() + off, std::min<size_t>(50, q8.size() - off));
      if (!st) return st;
    }
    return Status::ok();
  }));
  const std::string path = temp_path("tensors");
  ASSERT_TRUE(w.write(path));
  Result<File> f = File::open(path);
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->alignment(), 64u);
  const TensorInfo* q = f->find_tensor("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::Q8_0);
  EXPECT_EQ(q->ne[0], 64);
  EXPECT_EQ(q->ne[1], 2);
  EXPECT_EQ(q->offset % 64, 0u);
  ASSERT_EQ(q->size_bytes, q8_bytes);
  EXPECT_EQ(std::vector<uint8_t>(q->data, q->data + q8_bytes), q8);
  const TensorInfo* s = f->find_tensor("small");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(s->data)[2], 2.0f);
  std::remove(path.c_str());
}

// write_to_memory gives the file's bytes (producers run again for the second pass).
TEST(GgufWriter, MemoryImageEqualsTheFile) {
  std::vector<float> small(5, 1.5f);
  int produced = 0;
  Writer w;
  w.set("general.name", make_string("image"));
  ASSERT_TRUE(w.add_tensor("small", DType::F32, {5}, small.data()));
  ASSERT_TRUE(w.add_tensor("made", DType::F32, {4}, [&](TensorSink& sink) -> Status {
    ++produced;
    const float v[4] = {1, 2, 3, 4};
    return sink.write(v, sizeof v);
  }));
  const std::string path = temp_path("image");
  ASSERT_TRUE(w.write(path));
  Result<MappedFile> mem = w.write_to_memory("<image>");
  ASSERT_TRUE(mem) << mem.message();
  EXPECT_EQ(std::vector<uint8_t>(mem->data(), mem->data() + mem->size()), read_all(path));
  EXPECT_EQ(produced, 2);  // once for the file, once for the image (the sizing pass runs none)
  Result<File> f = File::parse(std::move(mem.value()));
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(reinterpret_cast<const float*>(f->find_tensor("made")->data)[3], 4.0f);
  std::remove(path.c_str());
  // A producer that fails fails the image too.
  Writer bad;
  ASSERT_TRUE(bad.add_tensor("x", DType::F32, {4}, [](TensorSink&) { return Status::error("no data"); }));
  Result<MappedFile> none = bad.write_to_memory("<bad>");
  ASSERT_FALSE(none);
  EXPECT_NE(none.message().find("no data"), std::string::npos);
}

TEST(GgufWriter, BadDeclarationsAndProducersAreErrors) {
  float x[64] = {};
  Writer w;
  EXPECT_FALSE(w.add_tensor("odd", DType::Q8_0, {48}, x));   // not a whole block
  EXPECT_FALSE(w.add_tensor("dims", DType::F32, {}, x));
  EXPECT_FALSE(w.add_tensor("zero", DType::F32, {4, 0}, x));
  EXPECT_FALSE(w.add_tensor("null", DType::F32, {4}, static_cast<const void*>(nullptr)));
  ASSERT_TRUE(w.add_tensor("ok", DType::F32, {4}, x));
  EXPECT_FALSE(w.add_tensor("ok", DType::F32, {4}, x));      // duplicate

  Writer shortw;
  ASSERT_TRUE(shortw.add_tensor("t", DType::F32, {4}, [&](TensorSink& s) { return s.write(x, 8); }));
  const std::string path = temp_path("short");
  Status st = shortw.write(path);
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("producer wrote 8 of 16"), std::string::npos) << st.message();
  EXPECT_FALSE(std::ifstream(path).good());
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());

  Writer longw;
  ASSERT_TRUE(longw.add_tensor("t", DType::F32, {4}, [&](TensorSink& s) { return s.write(x, 20); }));
  EXPECT_FALSE(longw.write(path));
  EXPECT_FALSE(std::ifstream(path).good());

  Writer ok;
  EXPECT_FALSE(ok.write("/nonexistent-dir/x.gguf"));
}

}  // namespace
}  // namespace flashlm::gguf
