// The same models through two backends: the CPU backend (vectorized kernels, activations
// rounded to each weight's dot-product format, prefill GEMM) against the reference
// backend (scalar reference ops, f32 activations), end to end from token ids to logits,
// on every synthetic model and on a real one. The model code is the same for both; only
// Model::load's backend differs.
//
// Tolerance, per position: max |cpu - ref| over the vocabulary <= tol * max |ref logit|,
// with tol = 48 u. u is the rounding unit of what the CPU backend rounds that the
// reference does not: for f32 weights nothing but summation order and the vectorized
// exp and RoPE tables (u = 2^-24, f32's unit roundoff); f16 weights meet f16 activations
// (u = 2^-11); every quantized format meets 8-bit activations (u = 2^-8: each value is
// rounded to 1/254 of its block's largest). Measured on these files the error is 2 to 18
// u (f32 14-18, f16 2-8, Q8_0 10-12, SmolLM2 Q4_1 17), and does not grow with depth (2
// to 30 layers), since every layer renormalises; 48 u is about 3x the largest, while a
// kernel bug (a wrong scale, row, position or mask) moves logits by the size of the
// logits, 4 (8-bit) to 10^5 (f32) times the bound. Top-1 must agree at every position
// where the reference's top two are further apart than twice the backends' largest
// difference there (closer ones may flip legitimately), and at 90% of all positions
// (measured: all but at most one per model, each a near-tie).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "models/model.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

// The bound in rounding units of the activation format (activation_unit); see the top.
constexpr float kErrorPerUnit = 48.0f;

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

// Logits of every position of `prompt` run as one batch (the prefill path), then of
// `decode` tokens one at a time (the decode path).
std::vector<float> run(const Model& m, const std::vector<int32_t>& prompt, const std::vector<int32_t>& decode) {
  const int64_t n = static_cast<int64_t>(prompt.size() + decode.size());
  ThreadPool pool(2);
  KvCache kv(m.kv_config(n, 1, n));
  const int seq = kv.seq_new();
  EXPECT_TRUE(kv.seq_prepare(seq, 0, n).is_ok());
  ForwardScratch s;
  std::vector<float> all, logits;
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), seq, true);
  EXPECT_TRUE(m.forward(b, kv, s, pool, &logits).is_ok());
  all = logits;
  for (size_t i = 0; i < decode.size(); ++i) {
    b.clear();
    b.add(decode[i], static_cast<int32_t>(prompt.size() + i), seq, true);
    EXPECT_TRUE(m.forward(b, kv, s, pool, &logits).is_ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

struct Compared {
  float worst_rel = 0.0f;  // max over positions of max|cpu - ref| / max|ref|
  int top1_checked = 0;  // positions without a near-tie
  int top1_agree = 0;    // of those, where the backends' argmax agree
  int top1_all = 0;      // positions where the argmax agree, near-ties included
};

Compared compare(const std::vector<float>& cpu, const std::vector<float>& ref, int64_t n_vocab) {
  Compared c;
  const auto n_pos = static_cast<int64_t>(ref.size()) / n_vocab;
  for (int64_t p = 0; p < n_pos; ++p) {
    const float* r = ref.data() + p * n_vocab;
    const float* f = cpu.data() + p * n_vocab;
    float scale = 0.0f, diff = 0.0f;
    for (int64_t v = 0; v < n_vocab; ++v) {
      scale = std::max(scale, std::fabs(r[v]));
      diff = std::max(diff, std::fabs(f[v] - r[v]));
    }
    c.worst_rel = std::max(c.worst_rel, diff / scale);
    const int64_t top_r = std::max_element(r, r + n_vocab) - r;
    const int64_t top_f = std::max_element(f, f + n_vocab) - f;
    if (top_r == top_f) ++c.top1_all;
    float second = -INFINITY;
    for (int64_t v = 0; v < n_vocab; ++v) {
      if (v != top_r) second = std::max(second, r[v]);
    }
    // A flip is explained only by a near-tie: reference top two closer than the two
    // backends' largest difference at this position, twice.
    if (r[top_r] - second > 2.0f * diff) {
      ++c.top1_checked;
      if (top_r == top_f) ++c.top1_agree;
    }
  }
  return c;
}

// The coarsest rounding unit of the activations the CPU backend feeds the model's
// matmuls: 8-bit dot formats (every quantized type), f16 (f16 weights), none (f32).
float activation_unit(const ModelWeights& w) {
  float u = 0x1p-24f;  // f32 unit roundoff: only summation order differs
  auto see = [&u](const TensorView& t) {
    if (t.data == nullptr) return;
    if (type_traits(t.dtype).is_quantized || t.dtype == DType::BF16) u = std::max(u, 0x1p-8f);
    else if (t.dtype == DType::F16) u = std::max(u, 0x1p-11f);
  };
  see(w.output);
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn.gate, &l.ffn.up, &l.ffn.down, &l.moe.router}) see(*t);
    for (const FfnWeights& e : l.moe.experts) {
      see(e.gate);
      see(e.up);
      see(e.down);
    }
  }
  return u;
}

void check(const std::string& path, std::vector<int32_t> prompt, int n_decode) {
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "MODEL FILE MISSING: " << path;
  auto cpu = Model::load(path, BackendKind::kCpu);
  ASSERT_TRUE(cpu.is_ok()) << cpu.message();
  auto ref = Model::load(path, BackendKind::kReference);
  ASSERT_TRUE(ref.is_ok()) << ref.message();
  ASSERT_STREQ((*cpu)->backend().name(), "cpu");
  ASSERT_STREQ((*ref)->backend().name(), "reference");
  // Weights were placed by their backend at load: each view says where it lives.
  EXPECT_EQ((*cpu)->weights().output.device, Device::kCpu);
  EXPECT_EQ((*ref)->weights().layers[0].wq.device, Device::kCpu);
  const int64_t n_vocab = (*cpu)->config().n_vocab;
  const int n_layer = (*cpu)->config().n_layer;
  const float unit = activation_unit((*cpu)->weights());
  const float tol = kErrorPerUnit * unit;
  for (int32_t& t : prompt) t = static_cast<int32_t>(t % n_vocab);
  // Decode tokens follow the prompt deterministically; both backends get the same ones.
  std::vector<int32_t> decode;
  for (int i = 0; i < n_decode; ++i) decode.push_back(static_cast<int32_t>((prompt[static_cast<size_t>(i)] * 31 + 7) % n_vocab));
  const std::vector<float> a = run(**cpu, prompt, decode);
  const std::vector<float> b = run(**ref, prompt, decode);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), (prompt.size() + decode.size()) * static_cast<size_t>(n_vocab));
  const Compared c = compare(a, b, n_vocab);
  std::printf("  %s: %d layers, unit %.3g: worst max|cpu - ref| / max|ref| = %.3g = %.1f units (bound %.3g = %.0f "
              "units), top-1 agrees at %d of %d positions without a near-tie, %d of all %zu\n",
              std::filesystem::path(path).filename().c_str(), n_layer, static_cast<double>(unit),
              static_cast<double>(c.worst_rel), static_cast<double>(c.worst_rel / unit), static_cast<double>(tol),
              static_cast<double>(kErrorPerUnit), c.top1_agree, c.top1_checked, c.top1_all,
              prompt.size() + decode.size());
  EXPECT_LE(c.worst_rel, tol);
  EXPECT_GE(10 * c.top1_all, 9 * static_cast<int>(prompt.size() + decode.size()));
  EXPECT_EQ(c.top1_agree, c.top1_checked);
}

// 24 prompt tokens: above the CPU backend's GEMM threshold (16), so its prefill GEMM,
// its per-row kernels (decode) and the attention tiles are all compared.
std::vector<int32_t> synthetic_prompt() {
  std::vector<int32_t> t;
  for (int i = 0; i < 24; ++i) t.push_back(i * 97 + 13);
  return t;
}

void check_synthetic(const char* file) { check(repo(std::string("tests/golden/synthetic/") + file), synthetic_prompt(), 4); }

TEST(BackendCompare, TinyLlamaF32) { check_synthetic("tiny-llama-f32.gguf"); }
TEST(BackendCompare, TinyQwen3F32) { check_synthetic("tiny-qwen3-f32.gguf"); }
TEST(BackendCompare, TinyGemma3F32) { check_synthetic("tiny-gemma3-f32.gguf"); }
TEST(BackendCompare, TinyQwen3MoeF32) { check_synthetic("tiny-qwen3moe-f32.gguf"); }
TEST(BackendCompare, TinyQwen2F16) { check_synthetic("tiny-qwen2-f16.gguf"); }
TEST(BackendCompare, TinyQwen2MoeF16) { check_synthetic("tiny-qwen2moe-f16.gguf"); }
TEST(BackendCompare, TinyLlamaQ8_0) { check_synthetic("tiny-llama-q8_0.gguf"); }
TEST(BackendCompare, TinyMixtralQ8_0) { check_synthetic("tiny-mixtral-q8_0.gguf"); }

// A real model, a few tokens: "The quick brown fox ..." as SmolLM2's tokenizer splits it
// (the first case of tests/golden/logits/SmolLM2-135M-Instruct.Q4_1.json).
TEST(BackendCompare, SmolLM2Q4_1) {
  check(repo("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        {504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 2141, 260, 4626, 19501, 30}, 2);
}

}  // namespace
}  // namespace flashlm
