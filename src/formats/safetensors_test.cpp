// The safetensors reader against files written by Hugging Face's own `safetensors`
// package (tests/golden/safetensors, scripts/reference/make_safetensors_golden.py), and
// against hand-made files that each break one rule of the format.
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace flashlm::safetensors {
namespace {

namespace fs = std::filesystem;

std::string golden(const std::string& rel) {
  return std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/safetensors/" + rel;
}

nlohmann::json expected() {
  std::ifstream in(golden("small.json"));
  return nlohmann::json::parse(in);
}

const char* dtype_of(const std::string& torch_name) {
  if (torch_name == "float32") return "F32";
  if (torch_name == "float16") return "F16";
  if (torch_name == "bfloat16") return "BF16";
  if (torch_name == "int64") return "I64";
  return "?";
}

// Every tensor's dtype, shape and values as the writer gave them (exact: the golden's
// values are the written ones, widened to float64).
void expect_golden_tensors(const std::vector<std::string>& names,
                           const std::function<const TensorInfo*(const std::string&)>& find,
                           const std::function<Result<std::vector<float>>(const std::string&)>& values) {
  const nlohmann::json want = expected();
  ASSERT_EQ(names.size(), want["tensors"].size());
  for (const auto& [name, w] : want["tensors"].items()) {
    const TensorInfo* t = find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, dtype_of(w["dtype"].get<std::string>())) << name;
    EXPECT_EQ(t->shape, w["shape"].get<std::vector<int64_t>>()) << name;
    Result<std::vector<float>> v = values(name);
    if (t->dtype == "I64") {
      ASSERT_FALSE(v.is_ok());
      EXPECT_NE(v.message().find("is I64: flashlm computes with F32, F16 and BF16"), std::string::npos) << v.message();
      continue;
    }
    ASSERT_TRUE(v.is_ok()) << name << ": " << v.message();
    const auto ref = w["values"].get<std::vector<double>>();
    ASSERT_EQ(v->size(), ref.size()) << name;
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(static_cast<double>((*v)[i]), ref[i]) << name << "[" << i << "]";
  }
}

TEST(Safetensors, ReadsWhatTheOfficialWriterWrote) {
  Result<File> f = File::open(golden("small.safetensors"));
  ASSERT_TRUE(f.is_ok()) << f.message();
  std::vector<std::string> names;
  for (const TensorInfo& t : f->tensors()) names.push_back(t.name);
  expect_golden_tensors(
      names, [&](const std::string& n) { return f->find(n); }, [&](const std::string& n) { return f->to_f32(n); });
  const nlohmann::json want = expected();
  EXPECT_EQ(f->metadata().at("format"), want["metadata"]["format"].get<std::string>());
  EXPECT_EQ(f->metadata().at("source"), want["metadata"]["source"].get<std::string>());
  EXPECT_EQ(f->find("nope"), nullptr);
  EXPECT_FALSE(f->to_f32("nope").is_ok());
}

TEST(Safetensors, ShardsGiveTheSameTensorsAsOneFile) {
  for (const std::string& path : {golden("sharded"), golden("sharded/model.safetensors.index.json")}) {
    Result<Shards> s = Shards::open(path);
    ASSERT_TRUE(s.is_ok()) << path << ": " << s.message();
    EXPECT_EQ(s->n_files(), 2u);
    expect_golden_tensors(
        s->names(), [&](const std::string& n) { return s->find(n); },
        [&](const std::string& n) { return s->file_of(n)->to_f32(n); });
  }
  Result<Shards> one = Shards::open(golden("small.safetensors"));
  ASSERT_TRUE(one.is_ok()) << one.message();
  EXPECT_EQ(one->n_files(), 1u);
}

// A file from a header (its length prefix added) and data bytes.
std::vector<uint8_t> make(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

Result<File> parse(const std::vector<uint8_t>& b) { return File::parse(MappedFile::from_bytes(b.data(), b.size())); }

TEST(Safetensors, BrokenFilesAreRefusedWithTheRuleTheyBreak) {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
  ASSERT_TRUE(parse(make("{" + ok_entry + "}", 24)).is_ok());
  std::vector<uint8_t> huge(16, 0);
  huge[6] = 1;  // a header length of 2^48
  std::vector<uint8_t> past = make("{" + ok_entry + "}", 24);
  past[0] = 0xff;
  const std::pair<std::vector<uint8_t>, const char*> cases[] = {
      {std::vector<uint8_t>(5, 0), "no header length"},
      {huge, "over the 100 MB limit"},
      {past, "runs past the end of the file"},
      {make(" {}", 0), "does not start with '{'"},
      {make("{\"a\":", 0), "not a JSON object"},
      {make("[1,2]", 0), "does not start with"},
      {make("{} x", 0), "not a JSON object"},
      {make(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,48]}})", 24), "not inside the 24 bytes"},
      {make(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", 24), "not inside"},
      {make(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24), "20 bytes for 6 F32 values (24 bytes)"},
      {make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12),
       "overlaps"},
      {make(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "bytes [0, 4) of the data belong to no tensor"},
      {make("{" + ok_entry + "}", 30), "bytes [24, 30) of the data belong to no tensor"},
      {make(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 1), "unknown dtype 'Q7'"},
      {make(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0), "not a non-negative integer"},
      {make(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}})", 0), "not a non-negative integer"},
      {make(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0), "too large"},
      {make(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), "data_offsets is not [begin, end]"},
      {make(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4), "unknown field 'x'"},
      {make(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4), "no dtype string"},
      {make(R"({"a":[1]})", 0), "not an object"},
      {make(R"({"__metadata__":{"k":1}})", 0), "__metadata__ 'k' is not a string"},
  };
  for (const auto& [bytes, want] : cases) {
    Result<File> f = parse(bytes);
    ASSERT_FALSE(f.is_ok()) << want;
    EXPECT_NE(f.message().find(want), std::string::npos) << "want '" << want << "' in: " << f.message();
  }
}

TEST(Safetensors, BadShardIndexesAreRefused) {
  const fs::path dir = fs::temp_directory_path() / ("flashlm_st_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(golden("small.safetensors"), dir / "a.safetensors", fs::copy_options::overwrite_existing);
  auto write_index = [&](const std::string& weight_map) {
    std::ofstream(dir / "model.safetensors.index.json") << R"({"metadata":{},"weight_map":)" << weight_map << "}";
    return Shards::open(dir.string());
  };
  const std::pair<std::string, const char*> cases[] = {
      {R"({"model.norm.weight":"../a.safetensors"})", "is not a file name beside the index"},
      {R"({"missing.weight":"a.safetensors"})", "tensor 'missing.weight' is not in its shard 'a.safetensors'"},
      {R"({"model.norm.weight":"nowhere.safetensors"})", "nowhere.safetensors"},
      {R"({"model.norm.weight":3})", "is not a string"},
      {R"([1])", "has no weight_map object"},
  };
  for (const auto& [wm, want] : cases) {
    Result<Shards> s = write_index(wm);
    ASSERT_FALSE(s.is_ok()) << wm;
    EXPECT_NE(s.message().find(want), std::string::npos) << "want '" << want << "' in: " << s.message();
  }
  fs::copy_file(dir / "a.safetensors", dir / "b.safetensors", fs::copy_options::overwrite_existing);
  Result<Shards> twice = write_index(R"({"model.norm.weight":"a.safetensors","empty":"b.safetensors"})");
  ASSERT_FALSE(twice.is_ok());
  EXPECT_NE(twice.message().find("is in two shards"), std::string::npos) << twice.message();
  fs::remove(dir / "model.safetensors.index.json");
  Result<Shards> none = Shards::open(dir.string());
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.message().find("neither model.safetensors nor model.safetensors.index.json"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flashlm::safetensors
