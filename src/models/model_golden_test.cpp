// Logits of real and synthetic models against llama.cpp (llama-cpp-python) goldens made
// by scripts/reference/make_logits_golden.py. Compared as log-probabilities (logit minus
// logsumexp) over the reference's top-64 tokens at each recorded position, plus top-1
// agreement. flashlm computes what llama.cpp's CPU backend computes: quantized weights
// times activations quantized once per matmul to the weight's vec_dot format (Q8_0, Q8_1,
// Q8_K; F16 for F16 weights), ggml's RoPE angle recurrence, f32 K/V (as the goldens).
// What differs is float summation order, ~1e-7 relative per op; an 8-bit activation that
// lies that close to a rounding boundary rounds the other way, and later layers amplify
// the flip. So F32 models agree to float noise and quantized ones up to such flips.
// Every bound below states the value measured on x86-64 (AVX2/AVX-512 kernels) and its
// margin over it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <optional>

#include "formats/gguf_writer.h"
#include "hf/hf_model.h"
#include "models/model.h"

namespace flashlm {
namespace {

// log(sum(exp(x))) in double, stable: logits to log-probabilities.
float logsumexp(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  return mx + static_cast<float>(std::log(sum));
}

struct GoldenSpec {
  const char* file;          // tests/golden/logits/<file>.json
  float max_logprob_diff;    // over the reference's top-64 at every position
  float mean_logprob_diff;   // mean over the same entries
  float min_top1_agree;      // share of positions whose argmax matches
};

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

struct Agreement {
  int n_pos = 0;
  float top1 = 0.0f, worst = 0.0f, mean = 0.0f;
};

Agreement compare_with_golden(const Model& model, const nlohmann::json& g);

// model_override: run another file than the golden's (an equivalent model). A golden
// with "lora" is the model with those adapters (scripts/reference/make_lora_adapters.py)
// applied by llama.cpp; the model without them must then miss the bounds.
void check_golden(const GoldenSpec& spec, const char* model_override = nullptr) {
  std::ifstream in(repo(std::string("tests/golden/logits/") + spec.file + ".json"));
  ASSERT_TRUE(in.good()) << "missing golden " << spec.file;
  const nlohmann::json g = nlohmann::json::parse(in);
  const std::string model_path = model_override != nullptr && model_override[0] == '/'
                                     ? std::string(model_override)
                                     : repo(model_override ? model_override : g["model"].get<std::string>());
  if (!std::filesystem::exists(model_path)) {
    GTEST_SKIP() << "MODEL FILE MISSING: " << model_path << " — run scripts/fetch_models.sh";
  }
  if (std::filesystem::is_directory(model_path) && !std::filesystem::exists(model_path + "/model.safetensors")) {
    GTEST_SKIP() << "MODEL WEIGHTS MISSING: " << model_path << "/model.safetensors — run scripts/setup.sh";
  }
  std::vector<LoraSpec> loras;
  for (const auto& l : g.value("lora", nlohmann::json::array())) {
    loras.push_back(LoraSpec{repo(l["path"].get<std::string>()), l["scale"].get<float>()});
  }
  auto model = Model::load(model_path, BackendKind::kCpu, loras);
  ASSERT_TRUE(model.is_ok()) << model.message();
  const Agreement a = compare_with_golden(**model, g);
  std::printf("[golden %s] positions=%d top1_agreement=%.3f max_abs_logprob_diff(top64)=%.4f mean=%.4f\n", spec.file,
              a.n_pos, a.top1, a.worst, a.mean);
  ::testing::Test::RecordProperty("top1_agreement", std::to_string(a.top1));
  ::testing::Test::RecordProperty("max_abs_logprob_diff", std::to_string(a.worst));
  EXPECT_LE(a.worst, spec.max_logprob_diff);
  EXPECT_LE(a.mean, spec.mean_logprob_diff);
  EXPECT_GE(a.top1, spec.min_top1_agree);
  if (!loras.empty()) {
    auto base = Model::load(model_path);
    ASSERT_TRUE(base.is_ok());
    const Agreement b = compare_with_golden(**base, g);
    std::printf("[golden %s] without the adapter: max %.4f mean %.4f top1 %.3f\n", spec.file, b.worst, b.mean,
                b.top1);
    EXPECT_GT(b.mean, 3.0f * spec.mean_logprob_diff) << "the adapter must move the logits beyond the bounds";
  }
}

Agreement compare_with_golden(const Model& model, const nlohmann::json& g) {
  Agreement out;
  const int64_t n_vocab = model.config().n_vocab;
  EXPECT_EQ(n_vocab, g["n_vocab"].get<int64_t>());
  if (n_vocab != g["n_vocab"].get<int64_t>()) return out;

  ThreadPool pool(2);
  ForwardScratch scratch;
  int n_pos = 0, n_agree = 0;
  float worst = 0.0f;
  double sum_diff = 0.0;
  int64_t n_diff = 0;
  for (const auto& c : g["cases"]) {
    const auto tokens = c["tokens"].get<std::vector<int32_t>>();
    const auto positions = c["positions"].get<std::vector<int>>();
    KvCache kv(model.kv_config(static_cast<int64_t>(tokens.size()), 1));
    const int seq = kv.seq_new();
    EXPECT_TRUE(kv.seq_prepare(seq, 0, static_cast<int64_t>(tokens.size())).is_ok());
    Batch batch;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const bool want = std::find(positions.begin(), positions.end(), static_cast<int>(i)) != positions.end();
      batch.add(tokens[i], static_cast<int32_t>(i), seq, want);
    }
    std::vector<float> logits;
    Status st = model.forward(batch, kv, scratch, pool, &logits);
    EXPECT_TRUE(st.is_ok()) << st.message();
    if (!st) return out;
    // Logit rows come in batch order, which is ascending position order.
    std::vector<int> sorted = positions;
    std::sort(sorted.begin(), sorted.end());
    for (size_t pi = 0; pi < positions.size(); ++pi) {
      const int pos = positions[pi];
      const size_t row = static_cast<size_t>(std::find(sorted.begin(), sorted.end(), pos) - sorted.begin());
      const float* l = logits.data() + row * static_cast<size_t>(n_vocab);
      const float lse = logsumexp(l, n_vocab);
      const float ref_lse = c["logsumexp"][pi].get<float>();
      int64_t am = 0;
      for (int64_t v = 1; v < n_vocab; ++v) am = l[v] > l[am] ? v : am;
      ++n_pos;
      n_agree += am == c["argmax"][pi].get<int64_t>() ? 1 : 0;
      for (const auto& pair : c["top"][pi]) {
        const int64_t id = pair[0].get<int64_t>();
        const float ref_lp = pair[1].get<float>() - ref_lse;
        const float lp = l[id] - lse;
        worst = std::max(worst, std::fabs(lp - ref_lp));
        sum_diff += std::fabs(lp - ref_lp);
        ++n_diff;
      }
    }
  }
  out.n_pos = n_pos;
  out.top1 = static_cast<float>(n_agree) / static_cast<float>(n_pos);
  out.worst = worst;
  out.mean = static_cast<float>(sum_diff / static_cast<double>(n_diff));
  return out;
}

// F32 weights: same arithmetic as the reference up to summation order. Measured: max and
// mean < 5e-5, top-1 all; the bounds leave 20x and 2x.
TEST(ModelGolden, TinyLlamaF32) { check_golden({"tiny-llama-f32", 1e-3f, 1e-4f, 1.0f}); }
TEST(ModelGolden, TinyQwen3F32) { check_golden({"tiny-qwen3-f32", 1e-3f, 1e-4f, 1.0f}); }
// llama.cpp's CPU GeGLU rounds the gate to f16 and reads GELU from an f16 table
// (GGML_GELU_FP16); our exact GELU matches a float64 forward to 4e-6 but not the golden.
// Measured max 0.0030, mean 0.0006: bounds 1.7x over both. A window or RoPE-base bug
// gives > 0.2 mean.
TEST(ModelGolden, TinyGemma3F32) { check_golden({"tiny-gemma3-f32", 5e-3f, 1e-3f, 1.0f}); }
// F16 weights: both round activations to f16. Measured max 0.0023, mean 0.0001: bounds
// 4x and 20x.
TEST(ModelGolden, TinyQwen2F16) { check_golden({"tiny-qwen2-f16", 1e-2f, 2e-3f, 1.0f}); }
// Q8_0 weights and Q8_0 activations on both sides. 19 of the 20 positions agree to 1e-6.
// The measured max 0.054 (mean 0.0009) is rounding, traced op by op against llama.cpp's
// own tensors (its eval callback) on ids_200: every op agrees to ~2e-7 relative until, at
// position 164, element 39 of layer 0's attention output times its block's inverse scale
// is -59.499985 here and -59.500004 there (3e-7 apart, summation order) and rounds to -59
// and -60. That row's layer-1 K/V then differ by 1%, which moves position 198's layer-1
// attention output by 7e-5 and carries its element 52 across a boundary too (-52.49967
// here, -52.50098 there): 0.054 at position 198. scripts/reference/replay_q8_0_golden.py
// replays ggml's arithmetic in numpy and shows the same. Bounds 1.9x and 20x.
TEST(ModelGolden, TinyLlamaQ8_0) { check_golden({"tiny-llama-q8_0", 0.1f, 0.02f, 1.0f}); }
// Mixture-of-Experts (scripts/reference/make_synthetic_moe_models.py), the bounds of the
// dense synthetic models of the same weight type. Measured: qwen3moe-f32 and mixtral-q8_0
// max and mean < 5e-5; qwen2moe-f16 max 0.0039 (2.5x), mean 0.0002 (10x).
TEST(ModelGolden, TinyQwen3MoeF32) { check_golden({"tiny-qwen3moe-f32", 1e-3f, 1e-4f, 1.0f}); }
TEST(ModelGolden, TinyQwen2MoeF16) { check_golden({"tiny-qwen2moe-f16", 1e-2f, 2e-3f, 1.0f}); }
TEST(ModelGolden, TinyMixtralQ8_0) { check_golden({"tiny-mixtral-q8_0", 0.1f, 0.02f, 1.0f}); }
// Gemma 3 with each FFN cut into a shared expert and 3 experts, all used with unit
// weights (flashlm.moe.unit_weights, GeGLU experts): the sum of the parts is the dense
// FFN, so llama.cpp's golden of the dense model is the reference, at its bounds
// (measured the same: max 0.0030, mean 0.0006).
TEST(ModelGolden, TinyGemma3MoefiedF32) {
  check_golden({"tiny-gemma3-f32", 5e-3f, 1e-3f, 1.0f}, "tests/golden/synthetic/tiny-gemma3-moefied-f32.gguf");
}
// Real 4/5/6-bit models, 30 and 18 layers, 17 positions each: rounding flips (above) pile
// up over the layers, so the max over the top-64 tail swings by ~0.5 with summation
// order (our own AVX2 and scalar paths differ by that much); the mean and top-1 are the
// stable figures. Measured: SmolLM2 max 0.52, mean 0.092, top-1 17/17; Gemma 3 max 0.96,
// mean 0.114, top-1 17/17. Bounds: max 1.5 and 2.0 (above the swing), mean 0.15 and 0.2
// (1.6x and 1.75x), top-1 at least 15 of 17 (0.88: two near-tie positions may flip).
// LoRA adapters applied at run time (models/lora.h) against llama.cpp applying the same
// adapter files (scripts/reference/make_lora_adapters.py: every target kind on the tiny
// llama at F32, three kinds stored F16 on the tiny Gemma 3, three kinds on every third
// layer of SmolLM2 over its Q4_1 weights), at the bounds of the model without them.
// Measured: tiny llama max and mean < 5e-5; tiny Gemma 3 max 0.0031, mean 0.0006 (its
// GELU table, above); SmolLM2 max 0.60, mean 0.110, top-1 16/17. Without the adapters the
// same comparisons give mean 0.73, 0.39 and 0.55.
TEST(ModelGolden, TinyLlamaF32Lora) { check_golden({"tiny-llama-f32.lora", 1e-3f, 1e-4f, 1.0f}); }
TEST(ModelGolden, TinyGemma3F32Lora) { check_golden({"tiny-gemma3-f32.lora", 5e-3f, 1e-3f, 1.0f}); }
TEST(ModelGolden, SmolLM2Q4_1Lora) { check_golden({"SmolLM2-135M-Instruct.Q4_1.lora", 1.5f, 0.15f, 0.88f}); }
TEST(ModelGolden, SmolLM2Q4_1) { check_golden({"SmolLM2-135M-Instruct.Q4_1", 1.5f, 0.15f, 0.88f}); }
// A Hugging Face directory (models/hf/, made by setup from the GGUF: BF16 safetensors,
// config.json, tokenizer.json), loaded through hf/hf_model.h, against transformers in
// float32 (scripts/reference/make_hf_logits_golden.py). flashlm rounds activations to
// BF16 for BF16 weights, as llama.cpp does. Measured: max 0.087, mean 0.019, top-1 1.0
// (the scalar BF16 dot: 0.112, 0.021).
TEST(ModelGolden, SmolLM2HfDirectory) { check_golden({"hf-SmolLM2-135M-Instruct", 0.25f, 0.05f, 1.0f}); }
// `flashlm convert`'s file from that directory, against the same golden: as stored
// (BF16) it is the directory's model; in Q8_0, quantization adds its noise (measured:
// max 0.82, mean 0.15; llama.cpp on the same file: 0.76, 0.14).
void check_converted(std::optional<DType> type, const GoldenSpec& spec) {
  const std::string dir = repo("models/hf/SmolLM2-135M-Instruct");
  if (!hf::is_model_dir(dir) || !std::filesystem::exists(dir + "/model.safetensors")) {
    GTEST_SKIP() << "MODEL DIRECTORY MISSING: " << dir << " — run scripts/setup.sh";
  }
  Result<hf::HfModel> m = hf::HfModel::open(dir);
  ASSERT_TRUE(m) << m.message();
  gguf::Writer w;
  ASSERT_TRUE(m->to_gguf(hf::ConvertOptions{type}, &w).is_ok());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("flashlm_converted_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  ASSERT_TRUE(w.write(path).is_ok());
  check_golden(spec, path.c_str());
  std::filesystem::remove(path);
}
TEST(ModelGolden, SmolLM2HfConvertedAsStored) {
  check_converted(std::nullopt, {"hf-SmolLM2-135M-Instruct", 0.25f, 0.05f, 1.0f});
}
TEST(ModelGolden, SmolLM2HfConvertedQ8_0) {
  check_converted(DType::Q8_0, {"hf-SmolLM2-135M-Instruct", 1.5f, 0.25f, 0.88f});
}
TEST(ModelGolden, Gemma3Q4_K_M) { check_golden({"gemma-3-270m-q4_k_m", 2.0f, 0.2f, 0.88f}); }

}  // namespace
}  // namespace flashlm
