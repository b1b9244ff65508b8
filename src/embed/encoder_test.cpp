// The encoder against sentence-transformers (tests/golden/embeddings/minilm_f32.bin, made
// by scripts/reference/make_embedding_golden.py from all-MiniLM-L6-v2 in F32), its
// batching, and its errors on bad inputs and bad model directories.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "embed/encoder.h"

namespace flashlm::embed {
namespace {

namespace fs = std::filesystem;

const std::string kRoot = FLASHLM_SOURCE_DIR;
const std::string kModel = kRoot + "/models/all-MiniLM-L6-v2";
const std::string kGolden = kRoot + "/tests/golden/embeddings/";

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class MiniLm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kModel + "/model.safetensors")) return;
    Result<Encoder> e = Encoder::load(kModel);
    ASSERT_TRUE(e) << e.status().message();
    enc_ = new Encoder(std::move(e).value());
  }
  static void TearDownTestSuite() {
    delete enc_;
    enc_ = nullptr;
  }
  void SetUp() override {
    if (enc_ == nullptr) {
      GTEST_SKIP() << "MODEL MISSING, embedding golden tests skipped (scripts/fetch_models.sh installs it): " << kModel;
    }
  }
  static Encoder* enc_;
};
Encoder* MiniLm::enc_ = nullptr;

TEST_F(MiniLm, ReadsTheSentenceTransformersConfig) {
  EXPECT_EQ(enc_->dim(), 384);
  EXPECT_EQ(enc_->max_tokens(), 256);
  EXPECT_EQ(enc_->sentence().pooling, Pooling::kMean);
  EXPECT_TRUE(enc_->sentence().normalize);
  EXPECT_EQ(enc_->config().n_layers, 6);
  EXPECT_EQ(enc_->name(), "all-MiniLM-L6-v2");
}

// The issue's bar is cosine >= 0.9999 per sentence in F32; measured 1 - 1e-12, so the
// test holds a much tighter line: cosine >= 1 - 1e-6 and every element within 1e-5.
TEST_F(MiniLm, MatchesSentenceTransformers) {
  const std::vector<std::string> texts = read_lines(kGolden + "sentences.txt");
  const std::vector<std::string> tokens = read_lines(kGolden + "tokens.txt");
  ASSERT_EQ(texts.size(), 200u);
  ASSERT_EQ(tokens.size(), 200u);
  std::ifstream bin(kGolden + "minilm_f32.bin", std::ios::binary);
  std::vector<float> ref(200 * 384);
  bin.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size() * sizeof(float)));
  ASSERT_TRUE(bin.good());

  std::vector<std::vector<int32_t>> seqs;
  for (size_t i = 0; i < texts.size(); ++i) {
    seqs.push_back(enc_->tokenize(texts[i], /*truncate=*/true));
    std::istringstream in(tokens[i]);
    std::vector<int32_t> want;
    for (int32_t id; in >> id;) want.push_back(id);
    EXPECT_EQ(seqs.back(), want) << "line " << i + 1;  // including the two cut to 256
  }
  ThreadPool pool(2);
  double worst_cos = 1.0, worst_abs = 0.0;
  for (size_t b = 0; b < seqs.size(); b += 32) {
    const std::vector<std::vector<int32_t>> part(seqs.begin() + static_cast<std::ptrdiff_t>(b),
                                                 seqs.begin() + static_cast<std::ptrdiff_t>(std::min(seqs.size(), b + 32)));
    Result<std::vector<std::vector<float>>> out = enc_->embed(part, pool);
    ASSERT_TRUE(out) << out.status().message();
    for (size_t k = 0; k < out->size(); ++k) {
      const float* r = ref.data() + (b + k) * 384;
      const std::vector<float>& g = (*out)[k];
      double dot = 0, ng = 0, nr = 0;
      for (size_t i = 0; i < 384; ++i) {
        dot += static_cast<double>(g[i]) * r[i];
        ng += static_cast<double>(g[i]) * g[i];
        nr += static_cast<double>(r[i]) * r[i];
        worst_abs = std::max(worst_abs, std::fabs(static_cast<double>(g[i]) - r[i]));
      }
      const double cos = dot / std::sqrt(ng * nr);
      EXPECT_GE(cos, 1.0 - 1e-6) << "sentence " << b + k + 1;
      worst_cos = std::min(worst_cos, cos);
    }
  }
  EXPECT_LE(worst_abs, 1e-5);
  std::printf("all-MiniLM-L6-v2 vs sentence-transformers: min cosine 1 - %.3g, max |diff| %.3g\n", 1.0 - worst_cos,
              worst_abs);
}

// A sentence's embedding does not depend on what shares its batch or on the thread
// count: every matmul sums each output in one order whatever the number of rows.
TEST_F(MiniLm, BatchAndThreadInvariant) {
  const std::vector<std::string> texts = {"The cat sat on the mat.", "A much longer sentence, with commas, numbers (42) and more words than the first.", "hi"};
  std::vector<std::vector<int32_t>> seqs;
  for (const std::string& t : texts) seqs.push_back(enc_->tokenize(t, true));
  ThreadPool one(1), two(2);
  Result<std::vector<std::vector<float>>> all = enc_->embed(seqs, two);
  ASSERT_TRUE(all);
  for (size_t i = 0; i < seqs.size(); ++i) {
    Result<std::vector<std::vector<float>>> alone = enc_->embed({seqs[i]}, one);
    ASSERT_TRUE(alone);
    EXPECT_EQ(0, std::memcmp((*alone)[0].data(), (*all)[i].data(), 384 * sizeof(float))) << texts[i];
  }
}

TEST_F(MiniLm, BadInputsAreErrors) {
  ThreadPool pool(1);
  auto err = [&](std::vector<std::vector<int32_t>> seqs) {
    Result<std::vector<std::vector<float>>> r = enc_->embed(seqs, pool);
    return r ? std::string("(accepted)") : r.status().message();
  };
  EXPECT_NE(err({{101, 102}, {}}).find("input 1 has 0 tokens"), std::string::npos);
  EXPECT_NE(err({{101, 30522, 102}}).find("token id 30522"), std::string::npos);
  EXPECT_NE(err({{101, -1, 102}}).find("token id -1"), std::string::npos);
  EXPECT_NE(err({std::vector<int32_t>(257, 1000)}).find("257 tokens"), std::string::npos);
  Result<std::vector<std::vector<float>>> none = enc_->embed({}, pool);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  // Untruncated, a long text keeps all its tokens (the caller decides).
  std::string longer;
  for (int i = 0; i < 300; ++i) longer += "word ";
  EXPECT_EQ(enc_->tokenize(longer, false).size(), 302u);
  EXPECT_EQ(enc_->tokenize(longer, true).size(), 256u);
}

// Model directories that are wrong in one way each: copies of the real one's small files
// with one edit, the weights linked.
class BadDir : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kModel + "/model.safetensors")) GTEST_SKIP() << "MODEL MISSING: " << kModel;
    dir_ = fs::temp_directory_path() / ("flashlm_embed_bad_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "1_Pooling");
    for (const char* f : {"config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json"}) {
      fs::copy_file(fs::path(kModel) / f, dir_ / f);
    }
    fs::copy_file(fs::path(kModel) / "1_Pooling/config.json", dir_ / "1_Pooling/config.json");
    fs::create_symlink(fs::path(kModel) / "model.safetensors", dir_ / "model.safetensors");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc) << text;
  }
  std::string load_error() {
    Result<Encoder> e = Encoder::load(dir_.string());
    return e ? std::string("(loaded)") : e.status().message();
  }
  fs::path dir_;
};

TEST_F(BadDir, TheCopyLoads) { EXPECT_EQ(load_error(), "(loaded)"); }

TEST_F(BadDir, UnsupportedArchitectureIsNamed) {
  write("config.json", R"({"model_type":"gpt2","vocab_size":5})");
  EXPECT_NE(load_error().find("model_type 'gpt2' is not supported for embeddings (supported: bert"), std::string::npos);
}

TEST_F(BadDir, ConfigThatDisagreesWithTheWeights) {
  std::ifstream in(fs::path(kModel) / "config.json");
  std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = cfg.find("\"intermediate_size\": 1536");
  ASSERT_NE(at, std::string::npos);
  cfg.replace(at, std::strlen("\"intermediate_size\": 1536"), "\"intermediate_size\": 1024");
  write("config.json", cfg);
  EXPECT_NE(load_error().find("has shape [1536, 384], config.json implies [1024, 384]"), std::string::npos);
  write("config.json", "{not json");
  EXPECT_NE(load_error().find("not a JSON object"), std::string::npos);
  write("config.json", R"({"model_type":"bert","vocab_size":30522,"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":7,"intermediate_size":1536,"max_position_embeddings":512})");
  EXPECT_NE(load_error().find("not a multiple of 7 heads"), std::string::npos);
  write("config.json", R"({"model_type":"bert","vocab_size":-3})");
  EXPECT_NE(load_error().find("'vocab_size' = -3 is out of range"), std::string::npos);
}

TEST_F(BadDir, UnsupportedModulesAndPooling) {
  write("modules.json", R"([{"type":"sentence_transformers.models.Transformer","path":""},{"type":"sentence_transformers.models.Dense","path":"2_Dense"}])");
  EXPECT_NE(load_error().find("module 'sentence_transformers.models.Dense' is not supported"), std::string::npos);
  write("modules.json", R"([{"type":"sentence_transformers.models.Pooling","path":"1_Pooling"}])");
  write("1_Pooling/config.json", R"({"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":true})");
  EXPECT_NE(load_error().find("2 pooling modes are on"), std::string::npos);
  write("1_Pooling/config.json", R"({"pooling_mode_cls_token":1})");
  EXPECT_NE(load_error().find("malformed"), std::string::npos);
  write("1_Pooling/config.json", R"({"pooling_mode_cls_token":true})");
  Result<Encoder> cls = Encoder::load(dir_.string());
  ASSERT_TRUE(cls) << cls.status().message();
  EXPECT_EQ(cls->sentence().pooling, Pooling::kCls);
  EXPECT_FALSE(cls->sentence().normalize);
}

TEST_F(BadDir, MissingOrForeignFiles) {
  fs::remove(dir_ / "tokenizer.json");
  EXPECT_NE(load_error().find("tokenizer.json"), std::string::npos);
  write("tokenizer.json", R"({"model":{"type":"Unigram","vocab":[]}})");
  EXPECT_NE(load_error().find("tokenizer model 'Unigram' is not supported"), std::string::npos);
  fs::remove(dir_ / "model.safetensors");
  write("tokenizer.json", "{}");
  EXPECT_NE(Encoder::load((dir_ / "config.json").string()).status().message().find("not a directory"), std::string::npos);
}

}  // namespace
}  // namespace flashlm::embed
