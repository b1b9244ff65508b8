// The KV cache path must not change results: evaluating a prompt token by token (decode
// steps), in uneven chunks, or as one batch gives the same logits; and two sequences in
// one batch give the same logits as each alone.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/runner.h"

namespace flashlm {
namespace {

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

void check_incremental(const std::string& rel, float tol) {
  const std::string path = repo(rel);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "MODEL FILE MISSING: " << path << " — run scripts/fetch_models.sh";
  auto model = Model::load(path);
  ASSERT_TRUE(model.is_ok()) << model.message();
  const int64_t n_vocab = (*model)->config().n_vocab;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 37; ++i) prompt.push_back(static_cast<int32_t>((i * 7919 + 13) % n_vocab));

  RuntimeOptions ro;
  ro.n_threads = 2;
  ro.n_ctx = 64;
  ro.n_seqs = 2;
  // The property under test is the KV path; the panel GEMM (which a 37-token batch would
  // take) rounds differently from per-token dot products, so ask for invariance.
  ro.batch_invariant = true;
  auto runner = Runner::create(**model, ro);
  ASSERT_TRUE(runner.is_ok()) << runner.message();
  Runner& r = **runner;

  // One batch.
  const int a = r.seq_new();
  std::vector<float> batch_logits;
  ASSERT_TRUE(r.eval(a, prompt, false, &batch_logits).is_ok());
  ASSERT_EQ(batch_logits.size(), static_cast<size_t>(n_vocab));

  // Token by token in a second sequence sharing the pool.
  const int b = r.seq_new();
  std::vector<float> step_logits;
  for (int32_t t : prompt) {
    const int32_t one[1] = {t};
    ASSERT_TRUE(r.eval(b, one, false, &step_logits).is_ok());
  }
  const float d_step = max_abs_diff(batch_logits, step_logits);

  // Uneven chunks after a truncate (reuses the sequence's blocks).
  r.seq_truncate(b, 0);
  std::vector<float> chunk_logits;
  const size_t cuts[] = {0, 5, 6, 20, prompt.size()};
  for (size_t k = 0; k + 1 < std::size(cuts); ++k) {
    std::span<const int32_t> part(prompt.data() + cuts[k], cuts[k + 1] - cuts[k]);
    ASSERT_TRUE(r.eval(b, part, false, &chunk_logits).is_ok());
  }
  const float d_chunk = max_abs_diff(batch_logits, chunk_logits);
  std::printf("[incremental %s] max |batch - token-by-token| = %g, max |batch - chunks| = %g\n", rel.c_str(), d_step,
              d_chunk);
  EXPECT_LE(d_step, tol);
  EXPECT_LE(d_chunk, tol);
}

// Activations are quantized per token, so only float summation order differs.
TEST(Runner, IncrementalEqualsBatchTinyQwen3) { check_incremental("tests/golden/synthetic/tiny-qwen3-f32.gguf", 1e-4f); }
TEST(Runner, IncrementalEqualsBatchTinyLlamaQ8) { check_incremental("tests/golden/synthetic/tiny-llama-q8_0.gguf", 1e-3f); }
TEST(Runner, IncrementalEqualsBatchSmolLM2) { check_incremental("models/SmolLM2-135M-Instruct.Q4_1.gguf", 2e-2f); }
TEST(Runner, IncrementalEqualsBatchGemma3) { check_incremental("models/gemma-3-270m-q4_k_m.gguf", 2e-2f); }

// A byte budget (--kv-mem) is spent in the cache's own element type: the pools it gives
// fit in it and leave less than one more block per layer unused, for f32 and f16 (q8_0
// needs heads of 32 or more; these have 16), with sliding-window pools beside the global one.
TEST(Runner, KvMemoryBudgetIsSpentInTheCacheType) {
  const std::string path = repo("tests/golden/synthetic/tiny-gemma3-f32.gguf");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "MODEL FILE MISSING: " << path;
  auto model = Model::load(path);
  ASSERT_TRUE(model.is_ok()) << model.message();
  const int64_t budget = int64_t{8} << 20;
  for (DType t : {DType::F32, DType::F16}) {
    RuntimeOptions ro;
    ro.n_threads = 1;
    ro.n_ctx = 64;
    ro.kv_type = t;
    ro.kv_mem_bytes = budget;
    auto runner = Runner::create(**model, ro);
    ASSERT_TRUE(runner.is_ok()) << runner.message();
    const KvConfig& kc = (*runner)->kv().config();
    const int64_t used = KvCache::bytes_for(kc);
    const int64_t block_all_layers = 2 * kc.block_size * static_cast<int64_t>(kv_row_bytes(t, kc.kv_dim)) * kc.n_layer;
    EXPECT_LE(used, budget) << kv_type_name(t);
    EXPECT_GT(used, budget - block_all_layers) << kv_type_name(t);
  }
}

TEST(Runner, ContextOverflowIsAnErrorAndChangesNothing) {
  const std::string path = repo("tests/golden/synthetic/tiny-llama-f32.gguf");
  auto model = Model::load(path);
  ASSERT_TRUE(model.is_ok()) << model.message();
  RuntimeOptions ro;
  ro.n_threads = 1;
  ro.n_ctx = 8;
  auto runner = Runner::create(**model, ro);
  ASSERT_TRUE(runner.is_ok());
  const int s = (*runner)->seq_new();
  std::vector<int32_t> toks(9, 5);
  std::vector<float> logits;
  Status st = (*runner)->eval(s, toks, false, &logits);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("context full"), std::string::npos) << st.message();
  EXPECT_EQ((*runner)->seq_len(s), 0);
}

}  // namespace
}  // namespace flashlm
