// MoE routing by hand-worked cases (every gating option and flashlm key), the grouped
// moe_ffn against its token-by-token f32 reference, and batch invariance of a layer and
// of whole MoE models (a batch of many tokens equals the same tokens one at a time).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <cstring>
#include <random>

#include "backend/cpu_backend.h"
#include "backend/reference_backend.h"
#include "models/model.h"
#include "models/moe.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Routed route(const MoeConfig& m, std::vector<float> logits) {
  const auto n = static_cast<size_t>(m.n_expert);
  std::vector<float> scores(n);
  std::vector<int32_t> order(n), ids(n);
  std::vector<float> w(n);
  const int used = moe_route(m, logits.data(), scores.data(), order.data(), ids.data(), w.data());
  return {std::vector<int32_t>(ids.begin(), ids.begin() + used), std::vector<float>(w.begin(), w.begin() + used)};
}

MoeConfig cfg4(int k) {
  MoeConfig m;
  m.n_expert = 4;
  m.n_expert_used = k;
  return m;
}

// Softmax probabilities of {1, 3, 2, 0} computed independently in double.
std::vector<double> probs_1320() {
  const double z = std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(0.0);
  return {std::exp(1.0) / z, std::exp(3.0) / z, std::exp(2.0) / z, 1.0 / z};
}

TEST(MoeRoute, SoftmaxTopKUnnormalised) {  // qwen2moe
  const Routed r = route(cfg4(2), {1, 3, 2, 0});
  const auto p = probs_1320();
  ASSERT_EQ(r.ids, (std::vector<int32_t>{1, 2}));
  EXPECT_NEAR(r.weights[0], p[1], 1e-6);
  EXPECT_NEAR(r.weights[1], p[2], 1e-6);
}

TEST(MoeRoute, SoftmaxTopKNormalised) {  // qwen3moe, Mixtral (== softmax over the top-k logits)
  MoeConfig m = cfg4(2);
  m.norm_weights = true;
  const Routed r = route(m, {1, 3, 2, 0});
  ASSERT_EQ(r.ids, (std::vector<int32_t>{1, 2}));
  const double e = std::exp(1.0);  // softmax of {3, 2}
  EXPECT_NEAR(r.weights[0], e / (e + 1.0), 1e-6);
  EXPECT_NEAR(r.weights[1], 1.0 / (e + 1.0), 1e-6);
}

TEST(MoeRoute, SigmoidGatingAndScale) {
  MoeConfig m = cfg4(3);
  m.gating = ExpertGating::kSigmoid;
  m.weights_scale = 2.5f;
  const Routed r = route(m, {1, 3, 2, 0});
  ASSERT_EQ(r.ids, (std::vector<int32_t>{1, 2, 0}));
  for (size_t j = 0; j < 3; ++j) {
    const double l = r.ids[j] == 1 ? 3.0 : r.ids[j] == 2 ? 2.0 : 1.0;
    EXPECT_NEAR(r.weights[j], 2.5 / (1.0 + std::exp(-l)), 1e-6);
  }
  m.norm_weights = true;  // normalise, then scale
  const Routed n = route(m, {1, 3, 2, 0});
  const double s3 = 1 / (1 + std::exp(-3.0)), s2 = 1 / (1 + std::exp(-2.0)), s1 = 1 / (1 + std::exp(-1.0));
  EXPECT_NEAR(n.weights[0], 2.5 * s3 / (s3 + s2 + s1), 1e-6);
  EXPECT_NEAR(n.weights[2], 2.5 * s1 / (s3 + s2 + s1), 1e-6);
}

TEST(MoeRoute, UnitWeights) {  // flashlm.moe.unit_weights: plain sum, no norm or scale
  MoeConfig m = cfg4(2);
  m.unit_weights = true;
  m.norm_weights = true;
  m.weights_scale = 3.0f;
  const Routed r = route(m, {1, 3, 2, 0});
  ASSERT_EQ(r.ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(r.weights, (std::vector<float>{1.0f, 1.0f}));
}

TEST(MoeRoute, AdaptiveThreshold) {
  // Softmax of {1, 3, 2, 0}, best first: expert 1 (0.644), 2 (0.237), 0 (0.087), 3 (0.032).
  const auto p = probs_1320();
  MoeConfig m = cfg4(3);
  m.adaptive_threshold = 0.6f;
  EXPECT_EQ(route(m, {1, 3, 2, 0}).ids, (std::vector<int32_t>{1}));
  m.adaptive_threshold = static_cast<float>(p[1] + p[2] - 1e-4);
  EXPECT_EQ(route(m, {1, 3, 2, 0}).ids, (std::vector<int32_t>{1, 2}));
  m.adaptive_threshold = static_cast<float>(p[1] + p[2] + 1e-4);
  EXPECT_EQ(route(m, {1, 3, 2, 0}).ids, (std::vector<int32_t>{1, 2, 0}));
  m.adaptive_threshold = 0.999f;  // never reached within k: all k
  EXPECT_EQ(route(m, {1, 3, 2, 0}).ids, (std::vector<int32_t>{1, 2, 0}));
  // With normalisation the weights of the experts kept sum to 1.
  m.adaptive_threshold = static_cast<float>(p[1] + p[2] - 1e-4);
  m.norm_weights = true;
  const Routed r = route(m, {1, 3, 2, 0});
  ASSERT_EQ(r.ids.size(), 2u);
  EXPECT_NEAR(r.weights[0], p[1] / (p[1] + p[2]), 1e-6);
  EXPECT_NEAR(r.weights[0] + r.weights[1], 1.0, 1e-6);
  // Mass is measured on softmax probabilities even under sigmoid gating.
  m.gating = ExpertGating::kSigmoid;
  m.adaptive_threshold = 0.6f;
  EXPECT_EQ(route(m, {1, 3, 2, 0}).ids, (std::vector<int32_t>{1}));
}

TEST(MoeRoute, TiesGoToTheLowerIndex) {
  MoeConfig m;
  m.n_expert = 6;
  m.n_expert_used = 3;
  EXPECT_EQ(route(m, {0.5f, 2, 0.5f, 2, 0.5f, 2}).ids, (std::vector<int32_t>{1, 3, 5}));
  EXPECT_EQ(route(m, {1, 1, 1, 1, 1, 1}).ids, (std::vector<int32_t>{0, 1, 2}));
}

// Random in-memory MoE weights of one type (router and shared gate f32).
struct TinyMoe {
  MoeConfig cfg;
  MoeWeights w;
  std::vector<std::vector<uint8_t>> store;

  TensorView make(DType t, int64_t ne0, int64_t ne1, int64_t ne2, float scale, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> f(static_cast<size_t>(ne0 * ne1 * ne2));
    for (float& v : f) v = nd(rng);
    const size_t row = row_size(t, ne0);
    store.emplace_back(row * static_cast<size_t>(ne1 * ne2));
    uint8_t* dst = store.back().data();
    for (int64_t r = 0; r < ne1 * ne2; ++r) {
      if (t == DType::F32) std::memcpy(dst + r * row, f.data() + r * ne0, row);
      else type_traits(t).from_float(f.data() + r * ne0, dst + r * row, ne0);
    }
    TensorView v;
    v.dtype = t;
    v.n_dims = ne2 > 1 ? 3 : 2;
    v.ne = {ne0, ne1, ne2, 1};
    v.nb = {type_traits(t).type_size, row, row * static_cast<size_t>(ne1), row * static_cast<size_t>(ne1 * ne2)};
    v.data = dst;
    return v;
  }

  TinyMoe(DType t, int n_embd, bool shared, uint32_t seed) {
    std::mt19937 rng(seed);
    cfg.n_expert = 8;
    cfg.n_expert_used = 3;
    cfg.n_ff_exp = 64;
    cfg.norm_weights = true;
    cfg.n_ff_shexp = shared ? 96 : 0;
    cfg.shexp_gate = shared;
    w.router = make(DType::F32, n_embd, cfg.n_expert, 1, 0.3f, rng);
    const TensorView g = make(t, n_embd, cfg.n_ff_exp, cfg.n_expert, 0.15f, rng);
    const TensorView u = make(t, n_embd, cfg.n_ff_exp, cfg.n_expert, 0.15f, rng);
    const TensorView d = make(t, cfg.n_ff_exp, n_embd, cfg.n_expert, 0.15f, rng);
    for (int e = 0; e < cfg.n_expert; ++e) w.experts.push_back({slice_matrix(g, e), slice_matrix(u, e), slice_matrix(d, e)});
    if (shared) {
      w.shexp = {make(t, n_embd, 96, 1, 0.15f, rng), make(t, n_embd, 96, 1, 0.15f, rng), make(t, 96, n_embd, 1, 0.15f, rng)};
      w.shexp_gate = make(DType::F32, n_embd, 1, 1, 0.2f, rng);
    }
  }
};

ModelConfig config_for(const MoeConfig& m, int n_embd) {
  ModelConfig c;
  c.n_embd = n_embd;
  c.layers.resize(1);
  c.layers[0].ffn = FfnKind::kMoe;
  c.layers[0].moe = m;
  return c;
}

std::vector<float> random_rows(int64_t n, int64_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (float& v : x) v = nd(rng);
  return x;
}

void run_moe(const TinyMoe& t, const std::vector<float>& x, int64_t n, int n_embd, std::vector<float>* out,
             ThreadPool& pool, bool batch_invariant) {
  MoeScratch s;
  s.reserve(config_for(t.cfg, n_embd), n);
  out->assign(static_cast<size_t>(n * n_embd), 0.0f);
  const std::unique_ptr<ComputeBackend> cpu = make_cpu_backend();
  moe_ffn(*cpu, ExecContext{&pool, batch_invariant}, t.cfg, t.w, Activation::kSilu, x.data(), n, n_embd,
          out->data(), s);
}

TEST(MoeFfn, MatchesReference) {
  const int n_embd = 64;
  const int64_t n = 37;  // enough rows per expert for the GEMM path
  const auto x = random_rows(n, n_embd, 7);
  ThreadPool pool(2);
  const std::unique_ptr<ComputeBackend> reference = make_reference_backend();
  // F32 experts: only summation order differs. Q8_0/F16: activations are rounded to the
  // weight's dot type (8-bit / f16) in moe_ffn but not in the reference.
  for (auto [type, rel_tol] : {std::pair{DType::F32, 1e-5f}, std::pair{DType::F16, 2e-3f}, std::pair{DType::Q8_0, 3e-2f}}) {
    for (bool shared : {false, true}) {
      for (bool inv : {false, true}) {
        SCOPED_TRACE(std::string(type_traits(type).name) + (shared ? " shared" : "") + (inv ? " invariant" : ""));
        TinyMoe t(type, n_embd, shared, 11);
        std::vector<float> got, ref(static_cast<size_t>(n * n_embd));
        run_moe(t, x, n, n_embd, &got, pool, inv);
        moe_ffn_reference(*reference, ExecContext{&pool, false}, t.cfg, t.w, Activation::kSilu, x.data(), n, n_embd,
                          ref.data());
        float scale = 0.0f;
        for (float v : ref) scale = std::max(scale, std::fabs(v));
        ASSERT_GT(scale, 0.1f);
        for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], rel_tol * scale) << "at " << i;
      }
    }
  }
}

TEST(MoeFfn, BatchInvariantEqualsTokensAlone) {
  const int n_embd = 64;
  const int64_t n = 40;
  const auto x = random_rows(n, n_embd, 9);
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::F16}) {
    TinyMoe t(type, n_embd, true, 13);
    std::vector<float> batch, one;
    run_moe(t, x, n, n_embd, &batch, pool, true);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<float> xi(x.begin() + i * n_embd, x.begin() + (i + 1) * n_embd);
      run_moe(t, xi, 1, n_embd, &one, pool, true);
      for (int j = 0; j < n_embd; ++j) ASSERT_EQ(batch[static_cast<size_t>(i * n_embd + j)], one[static_cast<size_t>(j)]);
    }
  }
}

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

// A whole MoE model: one batch of 40 tokens (batch-invariant matmuls, as the server runs)
// gives every token the same logits as feeding the tokens one at a time.
void check_model_batch_invariance(const std::string& file) {
  auto model = Model::load(repo("tests/golden/synthetic/" + file));
  ASSERT_TRUE(model.is_ok()) << model.message();
  const Model& m = **model;
  const int64_t n = 40, n_vocab = m.config().n_vocab;
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < n; ++i) tokens.push_back(static_cast<int32_t>((i * 97 + 13) % n_vocab));
  ThreadPool pool(2);

  std::vector<float> batch_logits;
  {
    KvCache kv(m.kv_config(n, 1, n));
    const int seq = kv.seq_new();
    ASSERT_TRUE(kv.seq_prepare(seq, 0, n).is_ok());
    ForwardScratch s;
    s.batch_invariant = true;
    Batch b;
    for (int64_t i = 0; i < n; ++i) b.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(i), seq, true);
    ASSERT_TRUE(m.forward(b, kv, s, pool, &batch_logits).is_ok());
  }
  KvCache kv(m.kv_config(n, 1, n));
  const int seq = kv.seq_new();
  ASSERT_TRUE(kv.seq_prepare(seq, 0, n).is_ok());
  ForwardScratch s;
  s.batch_invariant = true;
  std::vector<float> one;
  for (int64_t i = 0; i < n; ++i) {
    Batch b;
    b.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(i), seq, true);
    ASSERT_TRUE(m.forward(b, kv, s, pool, &one).is_ok());
    for (int64_t v = 0; v < n_vocab; ++v) {
      ASSERT_EQ(batch_logits[static_cast<size_t>(i * n_vocab + v)], one[static_cast<size_t>(v)]) << "token " << i;
    }
  }
}

TEST(MoeModel, BatchEqualsOneAtATimeQwen2MoeF16) { check_model_batch_invariance("tiny-qwen2moe-f16.gguf"); }
TEST(MoeModel, BatchEqualsOneAtATimeMixtralQ8_0) { check_model_batch_invariance("tiny-mixtral-q8_0.gguf"); }

}  // namespace
}  // namespace flashlm
