// Decoder-model embeddings (decoder_embed.h) against llama.cpp's embedding mode through
// llama-cpp-python (tests/golden/embeddings/decoder_smollm2.json, made by
// scripts/reference/make_decoder_embedding_golden.py): same tokens, and the pooled,
// normalised vectors close. Our hidden states differ from llama.cpp's by the 8-bit
// activation rounding of each matmul (their logits differ by a mean of 0.09 nats,
// model_golden_test); measured minimum cosine over both poolings: 0.99964.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/decoder_embed.h"
#include "tokenizer/tokenizer.h"

namespace flashlm {
namespace {

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

TEST(DecoderEmbed, SmolLM2MatchesLlamaCpp) {
  std::ifstream in(repo("tests/golden/embeddings/decoder_smollm2.json"));
  ASSERT_TRUE(in.good());
  const nlohmann::json g = nlohmann::json::parse(in);
  const std::string path = repo("models/" + g["model"].get<std::string>());
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "MODEL FILE MISSING: " << path << " — run scripts/fetch_models.sh";
  auto model = Model::load(path);
  ASSERT_TRUE(model.is_ok()) << model.message();
  auto tok = tok::Tokenizer::from_gguf((*model)->file());
  ASSERT_TRUE(tok.is_ok()) << tok.message();
  RuntimeOptions ro;
  ro.n_threads = 2;
  ro.n_ctx = 256;
  ro.kv_type = DType::F32;  // as the reference
  auto runner = Runner::create(**model, ro);
  ASSERT_TRUE(runner.is_ok()) << runner.message();
  const int64_t n_embd = (*model)->config().n_embd;
  const int seq = (*runner)->seq_new();
  double worst = 1.0;
  for (const auto& s : g["sentences"]) {
    const std::vector<int32_t> ids = tok->encode(s["text"].get<std::string>(), true, false);
    EXPECT_EQ(ids, s["tokens"].get<std::vector<int32_t>>()) << s["text"];
    for (const char* name : {"mean", "last"}) {
      Result<std::vector<float>> v = decoder_embed(**runner, seq, ids, *embed::pooling_from_name(name), n_embd);
      ASSERT_TRUE(v.is_ok()) << v.message();
      const std::vector<double> ref = s[name].get<std::vector<double>>();
      ASSERT_EQ(ref.size(), v->size());
      double dot = 0, nv = 0, nr = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        dot += (*v)[i] * ref[i];
        nv += static_cast<double>((*v)[i]) * (*v)[i];
        nr += ref[i] * ref[i];
      }
      const double cos = dot / std::sqrt(nv * nr);
      EXPECT_GE(cos, 0.999) << name << ": " << s["text"];
      EXPECT_NEAR(std::sqrt(nv), 1.0, 1e-5);
      worst = std::min(worst, cos);
    }
  }
  std::printf("SmolLM2 decoder embeddings vs llama.cpp: min cosine %.6f\n", worst);
  // The same input twice gives the same vector (the sequence is reset, not appended to).
  const std::vector<int32_t> ids = tok->encode("hello there", true, false);
  auto a = decoder_embed(**runner, seq, ids, embed::Pooling::kMean, n_embd);
  auto b = decoder_embed(**runner, seq, ids, embed::Pooling::kMean, n_embd);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(*a, *b);
  EXPECT_FALSE(decoder_embed(**runner, seq, {}, embed::Pooling::kMean, n_embd).is_ok());
  EXPECT_FALSE(embed::pooling_from_name("median").is_ok());
}

}  // namespace
}  // namespace flashlm
