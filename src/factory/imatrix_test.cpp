// The importance matrix files (both of llama.cpp's forms), their errors, and
// quantization with an imatrix against llama-quantize's bytes
// (tests/golden/quant/, scripts/reference/make_imatrix_golden.py). The collection itself
// is compared with llama-imatrix's by tests/check_imatrix.py through the CLI.
#include "factory/imatrix.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "factory/quantize.h"

namespace flashlm::factory {
namespace {

const std::string kGolden = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/quant/";
const std::string kTinyLlama = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/synthetic/tiny-llama-f32.gguf";

std::string temp_path(const std::string& tag) {
  return ::testing::TempDir() + "imatrix_" + tag + "_" + std::to_string(getpid());
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Two entries: a matrix, and a stack of three experts of which one saw no tokens.
Imatrix sample() {
  Imatrix m;
  m.datasets = {"calibration.txt"};
  m.chunk_count = 3;
  m.chunk_size = 8;
  m.entries["blk.0.attn_q.weight"] = {{4.0f, 8.0f, 12.0f, 16.0f}, {24.0f}};
  m.entries["blk.0.ffn_up_exps.weight"] = {{1, 2, 3, 4, 5, 6}, {2, 0, 4}};
  return m;
}

TEST(Imatrix, GgufRoundTripsAndImportanceIsTheMeanSquare) {
  const std::string path = temp_path("rt.gguf");
  ASSERT_TRUE(save_imatrix(path, sample(), false));
  Result<Imatrix> m = load_imatrix(path);
  ASSERT_TRUE(m) << m.message();
  EXPECT_FALSE(m->legacy);
  EXPECT_EQ(m->datasets, sample().datasets);
  EXPECT_EQ(m->chunk_count, 3u);
  EXPECT_EQ(m->chunk_size, 8u);
  ASSERT_EQ(m->entries.size(), 2u);
  EXPECT_EQ(m->entries.at("blk.0.ffn_up_exps.weight").counts, (std::vector<float>{2, 0, 4}));
  EXPECT_EQ(m->importance("blk.0.attn_q.weight", 4, 1).value(), (std::vector<float>{4.f / 24, 8.f / 24, 12.f / 24, 16.f / 24}));
  // The expert without tokens gets neutral weights, as llama-quantize gives it.
  EXPECT_EQ(m->importance("blk.0.ffn_up_exps.weight", 2, 3).value(), (std::vector<float>{0.5f, 1, 1, 1, 1.25f, 1.5f}));
  EXPECT_TRUE(m->importance("blk.0.attn_k.weight", 4, 1).value().empty());
  const Result<std::vector<float>> wrong = m->importance("blk.0.attn_q.weight", 8, 1);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.message().find("another model"), std::string::npos) << wrong.message();
  std::remove(path.c_str());
}

TEST(Imatrix, LegacyRoundTripsToTheSameImportance) {
  const std::string path = temp_path("rt.dat");
  ASSERT_TRUE(save_imatrix(path, sample(), true));
  Result<Imatrix> m = load_imatrix(path);
  ASSERT_TRUE(m) << m.message();
  EXPECT_TRUE(m->legacy);
  EXPECT_EQ(m->chunk_count, 3u);
  EXPECT_EQ(m->datasets, sample().datasets);
  const std::vector<float> w = m->importance("blk.0.attn_q.weight", 4, 1).value();
  for (size_t i = 0; i < w.size(); ++i) EXPECT_FLOAT_EQ(w[i], 4.0f * static_cast<float>(i + 1) / 24) << i;
  std::remove(path.c_str());
}

// llama-imatrix wrote both forms from one run: they give the same importance.
TEST(Imatrix, LlamaImatrixFormsAgree) {
  Result<Imatrix> g = load_imatrix(kGolden + "tiny-llama.imatrix.gguf");
  Result<Imatrix> d = load_imatrix(kGolden + "tiny-llama.imatrix.dat");
  ASSERT_TRUE(g) << g.message();
  ASSERT_TRUE(d) << d.message();
  EXPECT_FALSE(g->legacy);
  EXPECT_TRUE(d->legacy);
  ASSERT_EQ(g->entries.size(), d->entries.size());
  EXPECT_EQ(g->chunk_count, 8u);
  EXPECT_EQ(g->chunk_size, 64u);
  for (const auto& [name, e] : g->entries) {
    const auto n = static_cast<int64_t>(e.sums.size());
    const std::vector<float> a = g->importance(name, n, 1).value(), b = d->importance(name, n, 1).value();
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f * std::fabs(a[i])) << name << " " << i;
  }
  Result<gguf::File> model = gguf::File::open(kTinyLlama);
  ASSERT_TRUE(model) << model.message();
  EXPECT_TRUE(check_imatrix_fits(*g, *model));
}

// The tensors of llama-quantize --imatrix's output, byte for byte.
TEST(Imatrix, QuantizeWithAnImatrixIsLlamaQuantizesBytes) {
  Result<Imatrix> m = load_imatrix(kGolden + "tiny-llama.imatrix.gguf");
  ASSERT_TRUE(m) << m.message();
  Result<gguf::File> in = gguf::File::open(kTinyLlama);
  ASSERT_TRUE(in) << in.message();
  for (const char* type : {"Q4_0", "Q4_K_M"}) {
    SCOPED_TRACE(type);
    std::string lower = type;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Result<gguf::File> want = gguf::File::open(kGolden + "tiny-llama-" + lower + "-imatrix.gguf");
    ASSERT_TRUE(want) << want.message();
    QuantizeOptions opts;
    opts.imatrix = &*m;
    opts.imatrix_path = "imatrix.gguf";
    opts.n_threads = 2;
    const std::string out = temp_path(lower + ".gguf");
    ASSERT_TRUE(quantize_model(*in, parse_quant_type(type).value(), out, opts));
    Result<gguf::File> got = gguf::File::open(out);
    ASSERT_TRUE(got) << got.message();
    ASSERT_EQ(got->tensors().size(), want->tensors().size());
    int weighted = 0;
    for (size_t i = 0; i < want->tensors().size(); ++i) {
      const gguf::TensorInfo& w = want->tensors()[i];
      const gguf::TensorInfo& g = got->tensors()[i];
      ASSERT_EQ(g.name, w.name);  // llama-quantize's tensor order
      ASSERT_EQ(g.dtype, w.dtype) << w.name;
      ASSERT_EQ(g.size_bytes, w.size_bytes) << w.name;
      EXPECT_EQ(std::memcmp(g.data, w.data, w.size_bytes), 0) << w.name;
      weighted += m->entries.count(w.name) != 0 && g.dtype != in->find_tensor(w.name)->dtype;
    }
    EXPECT_GT(weighted, 0);
    EXPECT_EQ(got->get_int("quantize.imatrix.entries_count").value(), static_cast<int64_t>(m->entries.size()));
    std::remove(out.c_str());
  }
}

TEST(Imatrix, BadFilesAreClearErrors) {
  const std::string path = temp_path("bad");
  const auto refused = [&path](const std::vector<uint8_t>& bytes, const char* why) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    const Result<Imatrix> m = load_imatrix(path);
    return !m && m.message().find(why) != std::string::npos;
  };
  const std::vector<uint8_t> dat = read_bytes(kGolden + "tiny-llama.imatrix.dat");
  ASSERT_GT(dat.size(), 100u);
  // Every truncation inside the entries is refused (the trailer is optional).
  for (size_t n = 0; n < 4 + 4 + 20 + 4 + 4; ++n) {
    EXPECT_FALSE(parse_imatrix_legacy(std::span(dat.data(), n))) << n;
  }
  EXPECT_TRUE(refused(std::vector<uint8_t>(dat.begin(), dat.begin() + 200), "not an imatrix file"));
  std::vector<uint8_t> v = dat;
  v[0] = 0xff;  // n_entries negative
  v[3] = 0x7f;
  EXPECT_TRUE(refused(v, "more entries than the file holds"));
  v = dat;
  const float nan = std::nanf("");
  std::memcpy(v.data() + 4 + 4 + 19 + 8, &nan, 4);  // the first value of "blk.0.attn_k.weight"
  EXPECT_TRUE(refused(v, "not finite"));
  // A model file is a GGUF file but not an imatrix.
  EXPECT_TRUE(refused(read_bytes(kTinyLlama), "not an imatrix"));
  std::remove(path.c_str());
  const Result<Imatrix> missing = load_imatrix(path);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("cannot read"), std::string::npos);
}

TEST(Imatrix, AnImatrixForAnotherModelIsRefused) {
  Result<gguf::File> model = gguf::File::open(kTinyLlama);
  ASSERT_TRUE(model) << model.message();
  Imatrix other = sample();
  other.entries.erase("blk.0.attn_q.weight");  // left: a 3-D tensor the model lacks
  Status st = check_imatrix_fits(other, *model);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("names no tensor of the model"), std::string::npos) << st.message();
  Imatrix wrong;
  wrong.entries["blk.0.attn_q.weight"] = {{1, 2, 3}, {1}};  // the model's rows are 64 long
  st = check_imatrix_fits(wrong, *model);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("another model"), std::string::npos) << st.message();
  QuantizeOptions opts;
  opts.imatrix = &wrong;
  const std::string out = temp_path("never.gguf");
  st = quantize_model(*model, parse_quant_type("Q4_0").value(), out, opts);
  EXPECT_FALSE(st);
  EXPECT_FALSE(std::ifstream(out).good());
}

}  // namespace
}  // namespace flashlm::factory
