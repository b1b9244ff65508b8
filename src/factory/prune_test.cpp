// flashlm prune: the choice from hand-made statistics, and whole prunes of the synthetic
// models (tests/golden/synthetic) that load and run, with shapes, metadata and sliced
// values as planned; keeping everything reproduces the input's logits exactly.
#include "factory/prune.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "kernels/cpu/thread_pool.h"
#include "models/model.h"
#include "quant/quant.h"

namespace flashlm::factory {
namespace {

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }
std::string synthetic(const std::string& name) { return repo("tests/golden/synthetic/" + name); }
std::string temp_path(const std::string& tag) {
  return ::testing::TempDir() + "prune_" + tag + "_" + std::to_string(getpid()) + ".gguf";
}

// --- the choice ----------------------------------------------------------------------

// 3 layers, 4 query heads of size 2 in 2 KV groups, 4 neurons.
PruneShape small_shape() {
  PruneShape s;
  s.arch = "llama";
  s.n_layer = 3;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 2;
  s.n_ff = 4;
  s.n_embd = 2;
  return s;
}

MatrixActivations acts(std::vector<double> sum_x2, int64_t count) {
  MatrixActivations m;
  m.n_cols = static_cast<int64_t>(sum_x2.size());
  m.sum_x2 = std::move(sum_x2);
  m.count = {count};
  return m;
}

// Neuron scores {1, 4, 20, 3} (activation RMS {1, 4, 2, 3} times column norms
// {1, 1, 10, 1}); head scores {1, 5, 3, 2} (groups 6 and 5); influences {0.5, 0.1, 0.3}.
struct HandMade {
  PruneShape s = small_shape();
  ActivationStats stats;
  WeightNorms norms;
  HandMade() {
    for (int l = 0; l < 3; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      stats.matrices[b + "ffn_down.weight"] = acts({4, 64, 16, 36}, 4);            // rms {1, 4, 2, 3}
      stats.matrices[b + "attn_output.weight"] = acts({1, 0, 25, 0, 9, 0, 4, 0}, 1);  // head rms {1, 5, 3, 2}
      norms.ffn_down_cols.push_back({1, 1, 10, 1});
      norms.attn_out_heads.push_back({1, 1, 1, 1});
    }
    stats.layer_cos_sum = {0.5, 0.9, 0.7};
    stats.layer_cos_n = {1, 1, 1};
  }
};

TEST(PrunePlan, PicksTheHighestScores) {
  HandMade h;
  PruneOptions o;
  o.ffn_neurons = 2;
  o.kv_groups = 1;
  o.heads_per_group = 1;
  o.drop_layers = 1;
  Result<PrunePlan> p = plan_prune(h.s, h.stats, h.norms, o);
  ASSERT_TRUE(p) << p.message();
  EXPECT_EQ(p->dropped, std::vector<int>{1});
  ASSERT_EQ(p->layers.size(), 2u);
  EXPECT_EQ(p->layers[0].src, 0);
  EXPECT_EQ(p->layers[1].src, 2);
  EXPECT_NEAR(p->influence[1], 0.1, 1e-12);
  for (const LayerPlan& l : p->layers) {
    EXPECT_EQ(l.neurons, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(l.kv_groups, std::vector<int>{0});
    EXPECT_EQ(l.heads, std::vector<int>{1});
    EXPECT_NEAR(l.ffn_score_kept, 24.0 / 28.0, 1e-12);
    EXPECT_NEAR(l.head_score_kept, 5.0 / 11.0, 1e-12);
  }
  EXPECT_EQ(p->after.n_layer, 2);
  EXPECT_EQ(p->after.n_ff, 2);
  EXPECT_EQ(p->after.n_head, 1);
  EXPECT_EQ(p->after.n_head_kv, 1);
  EXPECT_FALSE(p->keeps_all());
  EXPECT_NE(describe_plan(*p).find("dropped (block influence): 1 (0.1000)"), std::string::npos) << describe_plan(*p);
}

TEST(PrunePlan, HeadsWithinEveryKeptGroupAndTiesToTheLowerIndex) {
  HandMade h;
  h.norms.ffn_down_cols.assign(3, {1, 1, 1, 1});
  h.stats.matrices["blk.0.ffn_down.weight"] = acts({1, 1, 1, 1}, 1);
  PruneOptions o;
  o.ffn_neurons = 3;
  o.heads_per_group = 1;  // both groups kept
  Result<PrunePlan> p = plan_prune(h.s, h.stats, h.norms, o);
  ASSERT_TRUE(p) << p.message();
  EXPECT_EQ(p->layers[0].neurons, (std::vector<int64_t>{0, 1, 2}));  // all equal: the lowest indices
  EXPECT_EQ(p->layers[0].kv_groups, (std::vector<int>{0, 1}));
  EXPECT_EQ(p->layers[0].heads, (std::vector<int>{1, 2}));  // the best of {0, 1} and of {2, 3}
  EXPECT_EQ(p->after.n_head, 2);
  EXPECT_EQ(p->after.n_head_kv, 2);
  EXPECT_TRUE(p->dropped.empty());
}

TEST(PrunePlan, KeepingEverythingNeedsNoStatistics) {
  HandMade h;
  Result<PrunePlan> p = plan_prune(h.s, ActivationStats{}, h.norms, PruneOptions{});
  ASSERT_TRUE(p) << p.message();
  EXPECT_TRUE(p->keeps_all());
  EXPECT_EQ(p->layers[1].heads, (std::vector<int>{0, 1, 2, 3}));
  PruneOptions o;
  o.ffn_neurons = 2;
  Result<PrunePlan> missing = plan_prune(h.s, ActivationStats{}, h.norms, o);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("no activations for 'blk.0.ffn_down.weight'"), std::string::npos);
}

TEST(PrunePlan, BadOptionsAreErrors) {
  const PruneShape s = small_shape();
  struct Case {
    PruneOptions o;
    const char* msg;
  };
  const Case cases[] = {
      {{0, -1, -1, 0}, "cannot keep 0 FFN neurons"},
      {{5, -1, -1, 0}, "cannot keep 5 FFN neurons per layer: keep 1..4"},
      {{-1, 0, -1, 0}, "cannot keep 0 KV groups"},
      {{-1, 3, -1, 0}, "cannot keep 3 KV groups"},
      {{-1, -1, 0, 0}, "cannot keep 0 query heads per KV group"},
      {{-1, -1, 3, 0}, "cannot keep 3 query heads per KV group: keep 1..2"},
      {{-1, -1, -1, 3}, "cannot drop 3 layers: drop 0..2"},
      {{-1, -1, -1, -1}, "cannot drop -1 layers"},
  };
  for (const Case& c : cases) {
    const Status st = check_prune_options(s, c.o);
    ASSERT_FALSE(st) << c.msg;
    EXPECT_NE(st.message().find(c.msg), std::string::npos) << st.message();
  }
  EXPECT_TRUE(check_prune_options(s, {4, 2, 2, 2}));
}

// --- whole files ---------------------------------------------------------------------

gguf::File open(const std::string& path) {
  Result<gguf::File> f = gguf::File::open(path);
  EXPECT_TRUE(f) << f.message();
  return std::move(f).value();
}

// Calibration on deterministic pseudo-random tokens.
ActivationStats calibrate(const Model& m) {
  std::vector<int32_t> tokens(64);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37 + 11) % 300);
  CollectOptions co;
  co.n_ctx = 16;
  co.n_threads = 1;
  Result<ActivationStats> s = collect_activations(m, tokens, 1, co);
  EXPECT_TRUE(s) << s.message();
  return std::move(s).value();
}

TEST(Prune, CalibrationMeasuresEveryLayersInfluence) {
  for (const char* name : {"tiny-llama-f32.gguf", "tiny-gemma3-f32.gguf"}) {
    SCOPED_TRACE(name);
    Result<std::unique_ptr<Model>> m = Model::load(synthetic(name));
    ASSERT_TRUE(m) << m.message();
    const ActivationStats s = calibrate(**m);
    const int n_layer = (*m)->config().n_layer;
    ASSERT_EQ(s.layer_cos_n.size(), static_cast<size_t>(n_layer));
    for (int l = 0; l < n_layer; ++l) {
      // Every token at each layer but the last, which is seen at the logit rows only.
      EXPECT_EQ(s.layer_cos_n[static_cast<size_t>(l)], l + 1 < n_layer ? s.n_tokens : s.n_chunks) << l;
      EXPECT_GT(s.block_influence(l), 0.0) << l;
      EXPECT_LE(s.block_influence(l), 2.0) << l;
    }
  }
}

// Runs a prune end to end; the plan is returned for the checks.
PrunePlan prune(const std::string& in_path, const std::string& out_path, const PruneOptions& o,
                PruneWriteResult* res = nullptr) {
  Result<std::unique_ptr<Model>> m = Model::load(in_path);
  EXPECT_TRUE(m) << m.message();
  const gguf::File& f = (*m)->file();
  Result<PruneShape> s = read_prune_shape(f);
  EXPECT_TRUE(s) << s.message();
  Result<WeightNorms> n = read_weight_norms(f, *s);
  EXPECT_TRUE(n) << n.message();
  Result<PrunePlan> p = plan_prune(*s, calibrate(**m), *n, o);
  EXPECT_TRUE(p) << p.message();
  Result<PruneWriteResult> r = write_pruned(f, *p, out_path);
  EXPECT_TRUE(r) << r.message();
  if (res != nullptr && r) *res = *r;
  return std::move(p).value();
}

// Logits of the last of a few tokens.
std::vector<float> last_logits(const std::string& path) {
  Result<std::unique_ptr<Model>> m = Model::load(path);
  EXPECT_TRUE(m) << m.message();
  if (!m) return {};
  const int64_t n = 12;
  KvCache kv((*m)->kv_config(n, 1, n));
  ForwardScratch scratch;
  ThreadPool pool(1);
  Batch b;
  const int seq = kv.seq_new();
  EXPECT_TRUE(kv.seq_prepare(seq, 0, n));
  for (int64_t p = 0; p < n; ++p) b.add(static_cast<int32_t>((p * 53 + 7) % 300), static_cast<int32_t>(p), seq, p + 1 == n);
  std::vector<float> logits;
  const Status st = (*m)->forward(b, kv, scratch, pool, &logits);
  EXPECT_TRUE(st) << st.message();
  return logits;
}

std::vector<float> row_of(const gguf::TensorInfo& t, int64_t r) {
  std::vector<float> f(static_cast<size_t>(t.ne[0]));
  type_traits(t.dtype).to_float(t.data + static_cast<size_t>(r) * row_size(t.dtype, t.ne[0]), f.data(), t.ne[0]);
  return f;
}

const char* kDense[] = {"tiny-llama-f32.gguf", "tiny-gemma3-f32.gguf", "tiny-qwen2-f16.gguf", "tiny-qwen3-f32.gguf",
                        "tiny-llama-q8_0.gguf"};

TEST(Prune, KeepingEverythingGivesTheSameLogits) {
  for (const char* name : kDense) {
    SCOPED_TRACE(name);
    const std::string out = temp_path("all");
    PruneOptions o;
    const gguf::File in = open(synthetic(name));
    o.ffn_neurons = read_prune_shape(in)->n_ff;  // explicit "all" is all too
    const PrunePlan p = prune(synthetic(name), out, o);
    EXPECT_TRUE(p.keeps_all());
    const std::vector<float> a = last_logits(synthetic(name)), b = last_logits(out);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, b);
    std::filesystem::remove(out);
  }
}

TEST(Prune, WidthHeadsAndDepthLoadAndRun) {
  for (const char* name : kDense) {
    SCOPED_TRACE(name);
    const std::string in_path = synthetic(name), out = temp_path("small");
    PruneOptions o;
    o.ffn_neurons = 64;
    o.kv_groups = 1;
    o.heads_per_group = 1;
    o.drop_layers = 1;
    PruneWriteResult res;
    const PrunePlan p = prune(in_path, out, o, &res);
    // Q8_0 rows of one 16-wide head do not fit its 32-blocks: attn_output goes F16.
    const bool q8 = std::string(name).find("q8_0") != std::string::npos;
    EXPECT_EQ(res.f16_fallbacks.size(), q8 ? p.layers.size() : 0u);
    Result<std::unique_ptr<Model>> m = Model::load(out);
    ASSERT_TRUE(m) << m.message();
    const ModelConfig& c = (*m)->config();
    EXPECT_EQ(c.n_layer, p.before.n_layer - 1);
    for (const LayerConfig& l : c.layers) {
      EXPECT_EQ(l.n_ff, 64);
      EXPECT_EQ(l.n_head, 1);
      EXPECT_EQ(l.n_head_kv, 1);
      EXPECT_EQ(l.head_dim, p.before.head_dim);
    }
    const std::vector<float> logits = last_logits(out);
    ASSERT_EQ(logits.size(), static_cast<size_t>(c.n_vocab));
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));

    // The kept rows and columns are the source's, in the plan's order.
    const gguf::File in = open(in_path), pruned = open(out);
    const int64_t hd = p.before.head_dim;
    for (size_t i = 0; i < p.layers.size(); ++i) {
      const LayerPlan& l = p.layers[i];
      auto src = [&](const char* s) { return in.find_tensor("blk." + std::to_string(l.src) + "." + s); };
      auto dst = [&](const char* s) { return pruned.find_tensor("blk." + std::to_string(i) + "." + s); };
      ASSERT_NE(dst("ffn_up.weight"), nullptr);
      EXPECT_EQ(dst("ffn_up.weight")->ne[1], 64);
      EXPECT_EQ(row_of(*dst("ffn_up.weight"), 5), row_of(*src("ffn_up.weight"), l.neurons[5]));
      EXPECT_EQ(row_of(*dst("attn_q.weight"), 3), row_of(*src("attn_q.weight"), l.heads[0] * hd + 3));
      EXPECT_EQ(row_of(*dst("attn_v.weight"), 2), row_of(*src("attn_v.weight"), l.kv_groups[0] * hd + 2));
      const std::vector<float> down = row_of(*dst("ffn_down.weight"), 7), down_src = row_of(*src("ffn_down.weight"), 7);
      const std::vector<float> wo = row_of(*dst("attn_output.weight"), 1), wo_src = row_of(*src("attn_output.weight"), 1);
      const bool exact = src("ffn_down.weight")->dtype != DType::Q8_0;
      for (size_t j = 0; j < down.size(); ++j) {
        const float want = down_src[static_cast<size_t>(l.neurons[j])];
        if (exact) EXPECT_EQ(down[j], want);
        else EXPECT_NEAR(down[j], want, 0.02f);  // requantized to Q8_0 by the reference quantizer
      }
      for (size_t j = 0; j < wo.size(); ++j) {
        const float want = wo_src[static_cast<size_t>(l.heads[0] * hd) + j];
        if (exact) EXPECT_EQ(wo[j], want);
        else EXPECT_NEAR(wo[j], want, 0.02f);
      }
      if (const gguf::TensorInfo* bq = dst("attn_q.bias")) {
        EXPECT_EQ(bq->ne[0], hd);
        EXPECT_EQ(row_of(*bq, 0)[1], row_of(*src("attn_q.bias"), 0)[static_cast<size_t>(l.heads[0] * hd + 1)]);
      }
    }
    for (const char* key : {"block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv",
                            "attention.key_length", "attention.value_length"}) {
      EXPECT_TRUE(pruned.get_int(p.before.arch + "." + key)) << key;
    }
    EXPECT_EQ(pruned.get_int(p.before.arch + ".attention.key_length").value(), hd);
    int64_t outside = 0;  // tensors outside the blocks
    for (const gguf::TensorInfo& t : in.tensors()) outside += t.name.starts_with("blk.") ? 0 : 1;
    const auto n_in = static_cast<int64_t>(in.tensors().size());
    EXPECT_EQ(static_cast<int64_t>(pruned.tensors().size()), n_in - (n_in - outside) / p.before.n_layer);
    EXPECT_EQ(p.warnings.empty(), p.before.arch != "gemma3");
    std::filesystem::remove(out);
  }
}

TEST(Prune, ColumnsThatNoLongerFitTheirBlocksBecomeF16) {
  const std::string out = temp_path("odd");
  PruneOptions o;
  o.ffn_neurons = 48;  // not a multiple of Q8_0's 32
  PruneWriteResult res;
  prune(synthetic("tiny-llama-q8_0.gguf"), out, o, &res);
  EXPECT_EQ(res.f16_fallbacks, (std::vector<std::string>{"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}));
  const gguf::File f = open(out);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->dtype, DType::F16);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->dtype, DType::Q8_0);
  EXPECT_EQ(last_logits(out).size(), 301u);
  std::filesystem::remove(out);
}

TEST(Prune, MixtureOfExpertsAndOtherArchitecturesAreRefused) {
  for (const char* name : {"tiny-qwen3moe-f32.gguf", "tiny-mixtral-q8_0.gguf", "tiny-qwen2moe-f16.gguf",
                           "tiny-gemma3-moefied-f32.gguf"}) {
    const gguf::File f = open(synthetic(name));
    Result<PruneShape> s = read_prune_shape(f);
    ASSERT_FALSE(s) << name;
    EXPECT_NE(s.message().find("pruning supports dense llama/gemma3/qwen models"), std::string::npos) << s.message();
  }
}

TEST(Prune, RefusesToWriteOverTheInput) {
  const std::string in = temp_path("self");
  std::filesystem::copy_file(synthetic("tiny-llama-f32.gguf"), in, std::filesystem::copy_options::overwrite_existing);
  const gguf::File f = open(in);
  const PruneShape s = read_prune_shape(f).value();
  const PrunePlan p = plan_prune(s, ActivationStats{}, read_weight_norms(f, s).value(), PruneOptions{}).value();
  Result<PruneWriteResult> r = write_pruned(f, p, in);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("is the input file"), std::string::npos) << r.message();
  std::filesystem::remove(in);
}

TEST(Prune, AFullDiskLeavesNoFile) {
  // RLIMIT_FSIZE makes the write fail part-way (EFBIG), as a full disk does (ENOSPC).
  const gguf::File f = open(synthetic("tiny-llama-f32.gguf"));
  const PruneShape s = read_prune_shape(f).value();
  const PrunePlan p = plan_prune(s, ActivationStats{}, read_weight_norms(f, s).value(), PruneOptions{}).value();
  const std::string out = temp_path("full");
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct sigaction ign {}, prev {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ign, &prev), 0);
  struct rlimit lim = old;
  lim.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  Result<PruneWriteResult> r = write_pruned(f, p, out);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  sigaction(SIGXFSZ, &prev, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find(out), std::string::npos) << r.message();
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
}

}  // namespace
}  // namespace flashlm::factory
