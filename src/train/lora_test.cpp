// LoRA end to end on the synthetic F32 models: training starts from the base exactly,
// only the adapters get gradients (checked against central finite differences), the
// merged model computes what base + adapters compute, and the written adapter
// (llama.cpp's LoRA GGUF) applied by the inference engine (models/lora.h) gives the
// training forward's logits; adapters that do not fit the model are refused by name.
// The engine against llama.cpp applying the same adapter: models/lora_golden_test.cpp.
#include "train/train_model.h"

#include "formats/gguf_writer.h"
#include "models/model.h"
#include "train/finetune.h"
#include "train/train_test_util.h"
#include "train/write_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

namespace flashlm::train {
namespace {

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }
std::string synthetic(const std::string& name) { return repo("tests/golden/synthetic/" + name + ".gguf"); }
std::string tmp(const std::string& name) { return (std::filesystem::temp_directory_path() / name).string(); }

std::unique_ptr<TrainModel> load(const std::string& path) {
  auto m = TrainModel::load(path);
  EXPECT_TRUE(m.is_ok()) << m.message();
  return m.is_ok() ? std::move(m.value()) : nullptr;
}

std::vector<int32_t> sample_tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

// B starts at zero (so A gets no gradient); tests that need both moving give B values.
void randomize_lora_b(TrainModel& m, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  for (Param& p : m.params()) {
    if (p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".lora_b") == 0) {
      for (float& v : p.w) v = u(rng);
    }
  }
}

float logsumexp(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  return mx + static_cast<float>(std::log(sum));
}

float max_logprob_diff(const std::vector<float>& a, const std::vector<float>& b, int64_t V) {
  float worst = 0.0f;
  for (size_t t = 0; t * static_cast<size_t>(V) < a.size(); ++t) {
    const float* x = a.data() + t * static_cast<size_t>(V);
    const float* y = b.data() + t * static_cast<size_t>(V);
    const float lx = logsumexp(x, V), ly = logsumexp(y, V);
    for (int64_t i = 0; i < V; ++i) worst = std::max(worst, std::fabs((x[i] - lx) - (y[i] - ly)));
  }
  return worst;
}

// The inference engine's logits for tokens at positions 0..T-1 of one sequence.
std::vector<float> engine_logits(const Model& model, const std::vector<int32_t>& tokens, ThreadPool& pool) {
  const auto T = static_cast<int64_t>(tokens.size());
  KvCache kv(model.kv_config(T, 1));
  const int seq = kv.seq_new();
  EXPECT_TRUE(kv.seq_prepare(seq, 0, T).is_ok());
  Batch batch;
  for (int64_t i = 0; i < T; ++i) batch.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(i), seq, true);
  ForwardScratch scratch;
  std::vector<float> logits;
  EXPECT_TRUE(model.forward(batch, kv, scratch, pool, &logits).is_ok());
  return logits;
}

TEST(Lora, StartsAsTheBaseAndOnlyAdaptersGetGradients) {
  ThreadPool pool(2);
  auto m = load(synthetic("tiny-llama-f32"));
  ASSERT_NE(m, nullptr);
  const int64_t T = 16;
  std::vector<int32_t> tokens = sample_tokens(T + 1, m->config().n_vocab, 3);
  std::vector<int32_t> targets(tokens.begin() + 1, tokens.end());
  tokens.pop_back();
  std::vector<float> before, after;
  ASSERT_TRUE(m->forward(tokens.data(), nullptr, T, pool, &before).is_ok());
  const size_t n_base = m->params().size();
  ASSERT_TRUE(m->add_lora(LoraConfig{}).is_ok());
  EXPECT_FALSE(m->add_lora(LoraConfig{}).is_ok());  // once
  ASSERT_TRUE(m->forward(tokens.data(), nullptr, T, pool, &after).is_ok());
  EXPECT_EQ(before, after);  // B = 0: exactly the base
  // 7 matrices per layer, two adapters each.
  EXPECT_EQ(m->params().size(), n_base + static_cast<size_t>(m->config().n_layer) * 14);

  Result<std::vector<bool>> mask = trainable_mask(*m, "lora");
  ASSERT_TRUE(mask.is_ok()) << mask.message();
  m->set_trained(*mask);
  m->zero_grad();
  ASSERT_TRUE(m->step(tokens.data(), targets.data(), T, pool).is_ok());
  double b_norm = 0.0;
  for (size_t i = 0; i < m->params().size(); ++i) {
    const Param& p = m->params()[i];
    EXPECT_EQ(p.g.empty(), !(*mask)[i]) << p.name;  // frozen tensors hold no gradient at all
    if (p.name.find(".lora_b") != std::string::npos) {
      for (float g : p.g) b_norm += static_cast<double>(g) * g;
    }
  }
  EXPECT_GT(b_norm, 0.0);
  auto plain = load(synthetic("tiny-llama-f32"));
  EXPECT_FALSE(trainable_mask(*plain, "lora").is_ok());  // no adapters added
  LoraConfig bad;
  bad.targets = {"attn_z"};
  EXPECT_FALSE(plain->add_lora(bad).is_ok());
}

// Every adapter tensor of each family (and an MoE model's attention adapters), with B
// non-zero so A's gradient is not trivially zero.
TEST(Lora, GradientsMatchFiniteDifferences) {
  ThreadPool pool(2);
  for (const char* name : {"tiny-llama-f32", "tiny-qwen3-f32", "tiny-gemma3-f32", "tiny-qwen3moe-f32"}) {
    auto m = load(synthetic(name));
    ASSERT_NE(m, nullptr);
    LoraConfig c;
    c.rank = 4;
    c.alpha = 8.0f;
    ASSERT_TRUE(m->add_lora(c).is_ok()) << name;
    randomize_lora_b(*m, 0.05f, 7);
    Result<std::vector<bool>> mask = trainable_mask(*m, "lora");
    ASSERT_TRUE(mask.is_ok());
    m->set_trained(*mask);
    const int64_t T = 12;
    std::vector<int32_t> tokens = sample_tokens(T + 1, m->config().n_vocab, 11);
    std::vector<int32_t> targets(tokens.begin() + 1, tokens.end());
    tokens.pop_back();
    m->zero_grad();
    ASSERT_TRUE(m->step(tokens.data(), targets.data(), T, pool).is_ok());
    double num = 0.0, den = 0.0;
    int n_tensors = 0;
    std::mt19937 rng(5);
    for (size_t pi = 0; pi < m->params().size(); ++pi) {
      if (!(*mask)[pi]) continue;
      Param& p = m->params()[pi];
      double tensor_abs = 0.0;
      for (int k = 0; k < 3; ++k) {
        const size_t i = rng() % static_cast<size_t>(p.size());
        const float h = 1e-2f * std::max(0.1f, std::fabs(p.w[i]));
        const double fd = central_difference(*m, p, i, h, tokens, targets, pool);
        num += (p.g[i] - fd) * (p.g[i] - fd);
        den += fd * fd;
      }
      for (float g : p.g) tensor_abs += std::fabs(g);
      EXPECT_GT(tensor_abs, 0.0) << name << " " << p.name;
      ++n_tensors;
    }
    const double rel = std::sqrt(num / den);
    std::printf("[lora fd %s] relative gradient error %.2e over %d adapter tensors\n", name, rel, n_tensors);
    EXPECT_LT(rel, 1e-2) << name;
  }
}

// The merged model (-o with --train lora) computes base + adapters; the adapter file
// (--lora-out) applied by the inference engine does too, at scale 1 and at a user scale.
TEST(Lora, MergedModelAndEngineAdapterMatchTheTrainingForward) {
  ThreadPool pool(2);
  for (const char* name : {"tiny-llama-f32", "tiny-qwen3-f32", "tiny-gemma3-f32", "tiny-qwen3moe-f32"}) {
    const std::string base = synthetic(name);
    auto m = load(base);
    ASSERT_NE(m, nullptr);
    LoraConfig c;
    c.rank = 3;
    c.alpha = 6.0f;
    if (std::string(name) == "tiny-gemma3-f32") c.targets = {"attn_v", "ffn_up", "ffn_down"};
    ASSERT_TRUE(m->add_lora(c).is_ok());
    randomize_lora_b(*m, 0.1f, 9);
    const int64_t T = 20;
    const std::vector<int32_t> tokens = sample_tokens(T, m->config().n_vocab, 4);
    std::vector<float> adapted;
    ASSERT_TRUE(m->forward(tokens.data(), nullptr, T, pool, &adapted).is_ok());
    const int64_t V = m->config().n_vocab;

    auto file = gguf::File::open(base);
    ASSERT_TRUE(file.is_ok());
    const std::string adapter = tmp(std::string(name) + "-lora.gguf");
    ASSERT_TRUE(write_lora_adapter(*file, *m, adapter).is_ok());
    auto engine = Model::load(base, BackendKind::kCpu, {LoraSpec{adapter, 1.0f}});
    ASSERT_TRUE(engine.is_ok()) << engine.message();
    auto plain = Model::load(base);
    ASSERT_TRUE(plain.is_ok());
    EXPECT_NE((*engine)->model_id(), (*plain)->model_id());  // no KV block of one serves the other
    const float bound = 1e-4f;  // both sides flashlm's F32 arithmetic (measured < 1e-5)
    const float d_engine = max_logprob_diff(adapted, engine_logits(**engine, tokens, pool), V);
    const float d_base = max_logprob_diff(adapted, engine_logits(**plain, tokens, pool), V);
    std::printf("[lora %s] engine with adapter vs training forward %.2e (without the adapter: %.2e)\n", name,
                d_engine, d_base);
    EXPECT_LT(d_engine, bound) << name;
    EXPECT_GT(d_base, 10.0f * bound) << name;  // the adapter changes the logits measurably

    // --lora-scaled 0.5 is the adapter with B halved.
    for (Param& p : m->params()) {
      if (p.name.find(".lora_b") != std::string::npos) {
        for (float& v : p.w) v *= 0.5f;
      }
    }
    std::vector<float> half;
    ASSERT_TRUE(m->forward(tokens.data(), nullptr, T, pool, &half).is_ok());
    auto scaled = Model::load(base, BackendKind::kCpu, {LoraSpec{adapter, 0.5f}});
    ASSERT_TRUE(scaled.is_ok());
    EXPECT_LT(max_logprob_diff(half, engine_logits(**scaled, tokens, pool), V), bound) << name;

    // The merged model, written at F32, computes base + adapters without them.
    std::vector<bool> written(m->params().size(), false);
    for (const int i : m->merge_lora()) written[static_cast<size_t>(i)] = true;
    const std::string merged = tmp(std::string(name) + "-merged.gguf");
    ASSERT_TRUE(write_trained_model(*file, m->params(), written, "f32", merged).is_ok());
    auto mm = load(merged);
    ASSERT_NE(mm, nullptr);
    std::vector<float> from_merged;
    ASSERT_TRUE(mm->forward(tokens.data(), nullptr, T, pool, &from_merged).is_ok());
    EXPECT_LT(max_logprob_diff(half, from_merged, V), 1e-4f) << name;
    std::filesystem::remove(adapter);
    std::filesystem::remove(merged);
  }
}

// Writes an adapter GGUF by hand: arch, general.type, tensors (name, ne).
std::string write_adapter(const std::string& file, const std::string& arch, const std::string& type,
                          const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors,
                          std::vector<std::vector<float>>* keep) {
  gguf::Writer w;
  w.set("general.architecture", gguf::make_string(arch));
  w.set("general.type", gguf::make_string(type));
  w.set("adapter.type", gguf::make_string("lora"));
  w.set("adapter.lora.alpha", gguf::make_f32(4.0f));
  for (const auto& [name, ne] : tensors) {
    keep->emplace_back(static_cast<size_t>(ne[0] * ne[1]), 0.01f);
    EXPECT_TRUE(w.add_tensor(name, DType::F32, ne, keep->back().data()).is_ok());
  }
  const std::string path = tmp(file);
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}

TEST(Lora, RefusesAdaptersThatDoNotFitTheModel) {
  const std::string base = synthetic("tiny-llama-f32");
  auto info = Model::load(base);
  ASSERT_TRUE(info.is_ok());
  const int64_t d = (*info)->config().n_embd;
  const std::string arch = (*info)->config().arch;
  std::vector<std::vector<float>> keep;
  const std::string q = "blk.0.attn_q.weight";
  struct Case {
    std::string path, want;
  };
  const Case cases[] = {
      {base, "is not a LoRA adapter"},
      {write_adapter("lora-arch.gguf", "gemma3", "adapter", {{q + ".lora_a", {d, 2}}, {q + ".lora_b", {2, d}}}, &keep),
       "is for architecture 'gemma3'"},
      {write_adapter("lora-shape.gguf", arch, "adapter", {{q + ".lora_a", {d + 1, 2}}, {q + ".lora_b", {2, d}}},
                     &keep),
       "pairs lora_a"},
      {write_adapter("lora-rank.gguf", arch, "adapter", {{q + ".lora_a", {d, 2}}, {q + ".lora_b", {3, d}}}, &keep),
       "pairs lora_a"},
      {write_adapter("lora-embd.gguf", arch, "adapter",
                     {{"token_embd.weight.lora_a", {d, 2}}, {"token_embd.weight.lora_b", {2, d}}}, &keep),
       "cannot adapt"},
      {write_adapter("lora-layer.gguf", arch, "adapter",
                     {{"blk.99.attn_q.weight.lora_a", {d, 2}}, {"blk.99.attn_q.weight.lora_b", {2, d}}}, &keep),
       "cannot adapt"},
      {write_adapter("lora-half.gguf", arch, "adapter", {{q + ".lora_a", {d, 2}}}, &keep), "has no"},
      {write_adapter("lora-other.gguf", arch, "adapter", {{"blk.0.attn_q.weight", {d, 2}}}, &keep),
       "neither a .lora_a nor"},
      {write_adapter("lora-empty.gguf", arch, "adapter", {}, &keep), "holds no LoRA tensors"},
      {write_adapter("lora-model.gguf", arch, "model", {{q + ".lora_a", {d, 2}}, {q + ".lora_b", {2, d}}}, &keep),
       "is not a LoRA adapter"},
      {tmp("no-such-adapter.gguf"), "no-such-adapter"},
  };
  for (const Case& c : cases) {
    auto m = Model::load(base, BackendKind::kCpu, {LoraSpec{c.path, 1.0f}});
    ASSERT_FALSE(m.is_ok()) << c.path;
    EXPECT_NE(m.message().find(c.want), std::string::npos) << c.path << ": " << m.message();
  }
  // An MoE layer's FFN has no dense matrices to adapt.
  auto moe = TrainModel::load(synthetic("tiny-qwen3moe-f32"));
  ASSERT_TRUE(moe.is_ok());
  LoraConfig ffn_only;
  ffn_only.targets = {"ffn_gate"};
  EXPECT_FALSE((*moe)->add_lora(ffn_only).is_ok());
}

}  // namespace
}  // namespace flashlm::train
