// moefy tests: balanced clustering (exact sizes, planted groups recovered), router
// fitting on a synthetic problem with a known linear router, and an end-to-end moefy of
// the tiny synthetic dense models: the file has the MoE keys and tensors, and with every
// expert used (unit weights) its FFN equals the dense FFN up to the requantization of
// the down projection, with the tolerance derived from the Q8_0 block scales; the file
// loads through Model::load as MoE and gives the dense model's logits.
#include "moefy/moefy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <random>

#include "formats/gguf.h"
#include "kernels/cpu/ops.h"
#include "models/batch.h"
#include "models/model.h"
#include "moefy/calibrate.h"
#include "moefy/cluster.h"
#include "moefy/router.h"
#include "quant/quant.h"

namespace flashlm::moefy {
namespace {

TEST(BalancedKmeans, RecoversPlantedGroupsWithExactSizes) {
  const int k = 4;
  const int64_t n = 64, dim = 8;
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::vector<float> x(static_cast<size_t>(n * dim));
  std::vector<int> truth(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int g = static_cast<int>((i * 7) % k);  // interleaved, so order gives nothing away
    truth[static_cast<size_t>(i)] = g;
    for (int64_t d = 0; d < dim; ++d) x[static_cast<size_t>(i * dim + d)] = (d == 2 * g ? 1.0f : 0.0f) + noise(rng);
  }
  Result<std::vector<int>> a = balanced_kmeans(x.data(), n, dim, k, 20, 1);
  ASSERT_TRUE(a) << a.message();
  const auto members = cluster_members(*a, k);
  for (const auto& m : members) {
    ASSERT_EQ(m.size(), 16u);
    for (int32_t i : m) EXPECT_EQ(truth[static_cast<size_t>(i)], truth[static_cast<size_t>(m[0])]);
  }
}

TEST(BalancedKmeans, UnequalNaturalGroupsStillGetEqualSizes) {
  // 40 points near one centre, 8 near each of three others: every cluster still gets 16.
  const int k = 4;
  const int64_t n = 64, dim = 4;
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    const int g = i < 40 ? 0 : 1 + static_cast<int>((i - 40) / 8);
    for (int64_t d = 0; d < dim; ++d) x[static_cast<size_t>(i * dim + d)] = (d == g ? 3.0f : 0.0f) + noise(rng);
  }
  Result<std::vector<int>> a = balanced_kmeans(x.data(), n, dim, k, 20, 2);
  ASSERT_TRUE(a) << a.message();
  for (const auto& m : cluster_members(*a, k)) EXPECT_EQ(m.size(), 16u);
}

TEST(BalancedKmeans, RejectsUnevenSplits) {
  std::vector<float> x(10, 0.0f);
  EXPECT_FALSE(balanced_kmeans(x.data(), 10, 1, 3, 5, 1));
  EXPECT_FALSE(balanced_kmeans(x.data(), 2, 5, 4, 5, 1));
}

TEST(FitRouter, RanksExpertsOfAKnownLinearRouter) {
  // Mass per expert = exp(W_true x): the best ranking is linear in x, so a fitted router
  // must capture nearly all of the best top-2 mass on held-out tokens.
  const int E = 8;
  const int64_t d = 16, T = 3000, T_fit = 2000;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w_true(static_cast<size_t>(E * d)), x(static_cast<size_t>(T * d)), mass(static_cast<size_t>(T * E));
  for (float& v : w_true) v = nd(rng) * 0.5f;
  for (float& v : x) v = nd(rng);
  std::vector<float> z(E);
  for (int64_t t = 0; t < T; ++t) {
    router_logits(w_true, x.data() + t * d, d, E, z.data());
    for (int e = 0; e < E; ++e) mass[static_cast<size_t>(t * E + e)] = std::exp(z[static_cast<size_t>(e)]);
  }
  Result<std::vector<float>> w = fit_router(x.data(), mass.data(), T_fit, d, E, RouterFitOptions{});
  ASSERT_TRUE(w) << w.message();
  const double held_out = captured_mass_ratio(*w, x.data() + T_fit * d, mass.data() + T_fit * E, T - T_fit, d, E, 2);
  EXPECT_GT(held_out, 0.99);
  // A random router does much worse: the test can fail.
  std::vector<float> w_rand(static_cast<size_t>(E * d));
  for (float& v : w_rand) v = nd(rng);
  EXPECT_LT(captured_mass_ratio(w_rand, x.data() + T_fit * d, mass.data() + T_fit * E, T - T_fit, d, E, 2), 0.8);
  // The fitted scale makes softmax(W x) approximate the mass shares (what an adaptive
  // threshold reads): the top expert's probability is close to its true share.
  double err = 0.0;
  std::vector<float> zf(E);
  for (int64_t t = T_fit; t < T; ++t) {
    router_logits(*w, x.data() + t * d, d, E, zf.data());
    router_logits(w_true, x.data() + t * d, d, E, z.data());
    std::vector<float> pf(zf), pt(z);
    ops::softmax(pf.data(), E);
    ops::softmax(pt.data(), E);
    const auto top = std::max_element(pt.begin(), pt.end()) - pt.begin();
    err += std::fabs(pf[static_cast<size_t>(top)] - pt[static_cast<size_t>(top)]);
  }
  EXPECT_LT(err / static_cast<double>(T - T_fit), 0.05);
}

// ---- end to end on the synthetic dense models ----

std::string synthetic(const char* name) { return std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/synthetic/" + name; }

std::vector<float> rows_f32(const gguf::TensorInfo& t) {
  const int64_t n = t.ne[0], rows = t.ne[1] * t.ne[2];
  const size_t rs = row_size(t.dtype, n);
  std::vector<float> out(static_cast<size_t>(n * rows));
  for (int64_t r = 0; r < rows; ++r) type_traits(t.dtype).to_float(t.data + r * rs, out.data() + r * n, n);
  return out;
}

// y = down * (act(gate x) * up x) for [n_ff] neurons, all matrices as floats.
struct Ffn {
  std::vector<float> gate, up, down;  // [n_ff, n_embd], [n_ff, n_embd], [n_embd, n_ff]
  int64_t n_ff = 0;
};

void ffn_apply(const Ffn& f, int64_t n_embd, bool silu, const float* x, float* y, std::vector<float>* act_out) {
  std::vector<float> g(static_cast<size_t>(f.n_ff)), u(static_cast<size_t>(f.n_ff)), a(static_cast<size_t>(f.n_ff));
  for (int64_t j = 0; j < f.n_ff; ++j) {
    double sg = 0, su = 0;
    for (int64_t i = 0; i < n_embd; ++i) {
      sg += static_cast<double>(f.gate[static_cast<size_t>(j * n_embd + i)]) * x[i];
      su += static_cast<double>(f.up[static_cast<size_t>(j * n_embd + i)]) * x[i];
    }
    g[static_cast<size_t>(j)] = static_cast<float>(sg);
    u[static_cast<size_t>(j)] = static_cast<float>(su);
  }
  if (silu) ops::silu_mul_reference(g.data(), u.data(), a.data(), f.n_ff);
  else ops::gelu_tanh_mul_reference(g.data(), u.data(), a.data(), f.n_ff);
  for (int64_t r = 0; r < n_embd; ++r) {
    double s = 0;
    for (int64_t j = 0; j < f.n_ff; ++j) s += static_cast<double>(f.down[static_cast<size_t>(r * f.n_ff + j)]) * a[static_cast<size_t>(j)];
    y[r] = static_cast<float>(s);
  }
  if (act_out) *act_out = a;
}

Ffn slice_expert(const std::vector<float>& g, const std::vector<float>& u, const std::vector<float>& d, int64_t n_embd,
                 int64_t n_ff_exp, int e) {
  Ffn f;
  f.n_ff = n_ff_exp;
  const auto off = static_cast<size_t>(e * n_ff_exp * n_embd);
  f.gate.assign(g.begin() + static_cast<std::ptrdiff_t>(off), g.begin() + static_cast<std::ptrdiff_t>(off + n_ff_exp * n_embd));
  f.up.assign(u.begin() + static_cast<std::ptrdiff_t>(off), u.begin() + static_cast<std::ptrdiff_t>(off + n_ff_exp * n_embd));
  f.down.assign(d.begin() + static_cast<std::ptrdiff_t>(off), d.begin() + static_cast<std::ptrdiff_t>(off + n_ff_exp * n_embd));
  return f;
}

struct E2eCase {
  const char* file;
  int n_expert;
  int64_t n_shared;
};

class MoefyEndToEnd : public ::testing::TestWithParam<E2eCase> {};

// Moefies a synthetic dense model with every expert used (K = E) into a temporary file.
void moefy_all_experts(const Model& dense, const E2eCase& c, std::vector<LayerPlan>* plans, std::string* out) {
  const ModelConfig& cfg = dense.config();
  MoefyOptions o;
  o.n_expert = c.n_expert;
  o.n_used = c.n_expert;  // K = E
  o.n_shared = c.n_shared;
  ASSERT_TRUE(check_options(dense.file(), cfg, o));
  // Calibration tokens: a fixed pseudo-random walk over the vocabulary.
  std::vector<int32_t> tokens(512);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37 + (i * i) % 11) % cfg.n_vocab);
  CalibrationOptions co;
  co.max_tokens = 400;
  co.n_ctx = 64;
  co.n_threads = 2;
  Result<CalibrationData> calib = calibrate(dense, tokens, -1, co);
  ASSERT_TRUE(calib) << calib.message();
  EXPECT_EQ(calib->n_tokens, 400);
  Result<std::vector<LayerPlan>> p = plan_layers(dense.file(), cfg, *calib, o);
  ASSERT_TRUE(p) << p.message();
  *out = ::testing::TempDir() + "moefy_" + std::to_string(getpid()) + "_" + std::to_string(c.n_expert) + "_" +
         std::to_string(c.n_shared) + ".gguf";
  ASSERT_TRUE(write_moe(dense.file(), cfg, *p, o, *out));
  *plans = std::move(*p);
}

TEST_P(MoefyEndToEnd, AllExpertsEqualTheDenseFfn) {
  const E2eCase c = GetParam();
  Result<std::unique_ptr<Model>> dense = Model::load(synthetic(c.file));
  ASSERT_TRUE(dense) << dense.message();
  const ModelConfig& cfg = (*dense)->config();
  std::vector<LayerPlan> plans_v;
  std::string out;
  ASSERT_NO_FATAL_FAILURE(moefy_all_experts(**dense, c, &plans_v, &out));
  const std::vector<LayerPlan>* plans = &plans_v;

  Result<gguf::File> moe = gguf::File::open(out);
  ASSERT_TRUE(moe) << moe.message();
  const gguf::File& df = (*dense)->file();
  const std::string arch = df.get_string("general.architecture").value();
  const int64_t n_embd = cfg.n_embd;
  const int64_t n_ff = cfg.layers[0].n_ff;
  const int64_t n_ff_exp = (n_ff - c.n_shared) / c.n_expert;
  EXPECT_EQ(moe->get_int(arch + ".expert_count").value(), c.n_expert);
  EXPECT_EQ(moe->get_int(arch + ".expert_used_count").value(), c.n_expert);
  EXPECT_EQ(moe->get_int(arch + ".expert_feed_forward_length").value(), n_ff_exp);
  EXPECT_EQ(moe->get_int(arch + ".expert_gating_func").value(), 1);
  EXPECT_FALSE(moe->get_bool(arch + ".expert_weights_norm").value());
  EXPECT_TRUE(moe->get_bool("flashlm.moe.unit_weights").value());
  EXPECT_EQ(moe->get_int_or(arch + ".expert_shared_feed_forward_length", 0).value(), c.n_shared);
  EXPECT_EQ(moe->metadata().size(), df.metadata().size() + 6 + (c.n_shared > 0 ? 1 : 0));
  // Every non-FFN tensor is byte-identical.
  for (const gguf::TensorInfo& t : df.tensors()) {
    if (t.name.find(".ffn_gate.") != std::string::npos || t.name.find(".ffn_up.") != std::string::npos ||
        t.name.find(".ffn_down.") != std::string::npos) {
      EXPECT_EQ(moe->find_tensor(t.name), nullptr) << t.name;
      continue;
    }
    const gguf::TensorInfo* m = moe->find_tensor(t.name);
    ASSERT_NE(m, nullptr) << t.name;
    ASSERT_EQ(m->size_bytes, t.size_bytes);
    EXPECT_EQ(std::memcmp(m->data, t.data, t.size_bytes), 0) << t.name;
  }

  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const bool silu = cfg.act == Activation::kSilu;
  for (int il = 0; il < cfg.n_layer; ++il) {
    const auto name = [il](const char* s) { return "blk." + std::to_string(il) + "." + s; };
    Ffn full;
    full.n_ff = n_ff;
    full.gate = rows_f32(*df.find_tensor(name("ffn_gate.weight")));
    full.up = rows_f32(*df.find_tensor(name("ffn_up.weight")));
    full.down = rows_f32(*df.find_tensor(name("ffn_down.weight")));
    const gguf::TensorInfo* gi = moe->find_tensor(name("ffn_gate_inp.weight"));
    ASSERT_NE(gi, nullptr);
    EXPECT_EQ(gi->dtype, DType::F32);
    EXPECT_EQ(gi->ne[0], n_embd);
    EXPECT_EQ(gi->ne[1], c.n_expert);
    const gguf::TensorInfo* ge = moe->find_tensor(name("ffn_gate_exps.weight"));
    const gguf::TensorInfo* ue = moe->find_tensor(name("ffn_up_exps.weight"));
    const gguf::TensorInfo* de = moe->find_tensor(name("ffn_down_exps.weight"));
    ASSERT_TRUE(ge && ue && de);
    EXPECT_EQ(ge->n_dims, 3);
    EXPECT_EQ(ge->ne[1], n_ff_exp);
    EXPECT_EQ(ge->ne[2], c.n_expert);
    EXPECT_EQ(de->ne[0], n_ff_exp);
    EXPECT_EQ(de->ne[1], n_embd);
    EXPECT_EQ(de->dtype, expert_down_type(df.find_tensor(name("ffn_down.weight"))->dtype));
    const std::vector<float> g = rows_f32(*ge), u = rows_f32(*ue), d = rows_f32(*de);
    std::vector<Ffn> parts;
    for (int e = 0; e < c.n_expert; ++e) parts.push_back(slice_expert(g, u, d, n_embd, n_ff_exp, e));
    if (c.n_shared > 0) {
      Ffn sh;
      sh.n_ff = c.n_shared;
      sh.gate = rows_f32(*moe->find_tensor(name("ffn_gate_shexp.weight")));
      sh.up = rows_f32(*moe->find_tensor(name("ffn_up_shexp.weight")));
      sh.down = rows_f32(*moe->find_tensor(name("ffn_down_shexp.weight")));
      parts.push_back(sh);
    }
    // Each neuron appears exactly once across the experts and the shared expert.
    std::vector<int> seen(static_cast<size_t>(n_ff), 0);
    for (const auto& ex : (*plans)[static_cast<size_t>(il)].experts) for (int32_t j : ex) ++seen[static_cast<size_t>(j)];
    for (int32_t j : (*plans)[static_cast<size_t>(il)].shared) ++seen[static_cast<size_t>(j)];
    for (int s : seen) ASSERT_EQ(s, 1);

    for (int trial = 0; trial < 4; ++trial) {
      std::vector<float> x(static_cast<size_t>(n_embd)), y_dense(static_cast<size_t>(n_embd)), act;
      for (float& v : x) v = nd(rng);
      ffn_apply(full, n_embd, silu, x.data(), y_dense.data(), &act);
      std::vector<float> y_moe(static_cast<size_t>(n_embd), 0.0f), y_part(static_cast<size_t>(n_embd));
      for (const Ffn& p : parts) {
        ffn_apply(p, n_embd, silu, x.data(), y_part.data(), nullptr);
        for (int64_t r = 0; r < n_embd; ++r) y_moe[static_cast<size_t>(r)] += y_part[static_cast<size_t>(r)];
      }
      // Requantizing a down row to Q8_0 moves each weight by at most half a step of its
      // block (amax / 127 / 2, plus the f16 rounding of the scale): bound the error of
      // each output by sum_j |act_j| * amax_block(j) / 127. Float down types are exact
      // up to summation order.
      const bool requant = de->dtype == DType::Q8_0 && df.find_tensor(name("ffn_down.weight"))->dtype != DType::Q8_0;
      const bool q8 = de->dtype == DType::Q8_0;
      for (int64_t r = 0; r < n_embd; ++r) {
        double bound = 1e-4 * (std::fabs(y_dense[static_cast<size_t>(r)]) + 1e-3);
        if (q8) {
          double amax_all = 0.0;
          for (int64_t j = 0; j < n_ff; ++j) amax_all = std::max(amax_all, std::fabs(static_cast<double>(full.down[static_cast<size_t>(r * n_ff + j)])));
          double s = 0.0;
          for (int64_t j = 0; j < n_ff; ++j) s += std::fabs(act[static_cast<size_t>(j)]);
          bound += s * amax_all / 127.0;
        }
        EXPECT_NEAR(y_moe[static_cast<size_t>(r)], y_dense[static_cast<size_t>(r)], bound)
            << "layer " << il << " row " << r << (requant ? " (requantized)" : "");
      }
    }
  }
  std::remove(out.c_str());
}

// Logits of `tokens` in one prefill pass (every position wants logits).
std::vector<float> prefill_logits(const Model& m, const std::vector<int32_t>& tokens, ThreadPool& pool) {
  const auto n = static_cast<int64_t>(tokens.size());
  KvCache kv(m.kv_config(n, 1, n));
  const int seq = kv.seq_new();
  EXPECT_TRUE(kv.seq_prepare(seq, 0, n).is_ok());
  ForwardScratch s;
  Batch b;
  for (int64_t i = 0; i < n; ++i) b.add(tokens[static_cast<size_t>(i)], static_cast<int32_t>(i), seq, true);
  std::vector<float> logits;
  const Status st = m.forward(b, kv, s, pool, &logits);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return logits;
}

// The moefied file loads through Model::load as an MoE model (every FFN layer routed,
// K = E, unit weights) and its logits equal the dense model's. Float weights: up to
// summation order (measured ~4e-6 of logits up to 12). A quantized down projection is
// requantized to Q8_0 per expert (each weight moves by at most amax/254 of its 32-block)
// and the down matmul's input is quantized in different 32-blocks (the neurons are
// permuted); through these random-weight layers that measures 1.6-1.7% of the logits'
// RMS, so the bound is 3% RMS plus the same next-token argmax almost everywhere.
TEST_P(MoefyEndToEnd, LoadsAsMoeWithTheDenseLogits) {
  const E2eCase c = GetParam();
  Result<std::unique_ptr<Model>> dense = Model::load(synthetic(c.file));
  ASSERT_TRUE(dense) << dense.message();
  std::vector<LayerPlan> plans;
  std::string out;
  ASSERT_NO_FATAL_FAILURE(moefy_all_experts(**dense, c, &plans, &out));
  Result<std::unique_ptr<Model>> moe = Model::load(out);
  ASSERT_TRUE(moe) << moe.message();
  const ModelConfig& mc = (*moe)->config();
  ASSERT_EQ(mc.n_layer, (*dense)->config().n_layer);
  for (const LayerConfig& l : mc.layers) {
    ASSERT_EQ(l.ffn, FfnKind::kMoe);
    EXPECT_EQ(l.moe.n_expert, c.n_expert);
    EXPECT_EQ(l.moe.n_expert_used, c.n_expert);
    EXPECT_EQ(l.moe.n_ff_shexp, c.n_shared);
    EXPECT_TRUE(l.moe.unit_weights);
  }
  const int64_t n_vocab = mc.n_vocab;
  std::vector<int32_t> tokens(24);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 53 + 7) % static_cast<size_t>(n_vocab));
  ThreadPool pool(2);
  const std::vector<float> ld = prefill_logits(**dense, tokens, pool);
  const std::vector<float> lm = prefill_logits(**moe, tokens, pool);
  ASSERT_EQ(ld.size(), tokens.size() * static_cast<size_t>(n_vocab));
  ASSERT_EQ(lm.size(), ld.size());
  const bool quantized_down =
      (*dense)->file().find_tensor("blk.0.ffn_down.weight")->dtype != DType::F32 &&
      (*dense)->file().find_tensor("blk.0.ffn_down.weight")->dtype != DType::F16;
  double err2 = 0.0, ref2 = 0.0, max_err = 0.0, max_ref = 0.0;
  int argmax_same = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const float* d = ld.data() + t * static_cast<size_t>(n_vocab);
    const float* m = lm.data() + t * static_cast<size_t>(n_vocab);
    for (int64_t v = 0; v < n_vocab; ++v) {
      const double e = static_cast<double>(m[v]) - d[v];
      err2 += e * e;
      ref2 += static_cast<double>(d[v]) * d[v];
      max_err = std::max(max_err, std::fabs(e));
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(d[v])));
    }
    argmax_same += std::max_element(d, d + n_vocab) - d == std::max_element(m, m + n_vocab) - m;
  }
  const double rel_rms = std::sqrt(err2 / ref2);
  if (quantized_down) {
    EXPECT_LT(rel_rms, 3e-2) << "max |diff| " << max_err << " of max |logit| " << max_ref;
    EXPECT_GE(argmax_same, static_cast<int>(tokens.size()) - 2);
  } else {
    EXPECT_LT(max_err, 1e-4 * max_ref + 1e-5) << "relative RMS " << rel_rms;
    EXPECT_EQ(argmax_same, static_cast<int>(tokens.size()));
  }
  std::printf("[ moefy ] %s E=%d N=%lld: logits relative RMS diff %.2e, max |diff| %.2e (max |logit| %.2f)\n",
              c.file, c.n_expert, static_cast<long long>(c.n_shared), rel_rms, max_err, max_ref);
  moe->reset();
  std::remove(out.c_str());
}

INSTANTIATE_TEST_SUITE_P(Synthetic, MoefyEndToEnd,
                         ::testing::Values(E2eCase{"tiny-llama-f32.gguf", 4, 0}, E2eCase{"tiny-llama-q8_0.gguf", 4, 0},
                                           E2eCase{"tiny-llama-q8_0.gguf", 2, 64}, E2eCase{"tiny-gemma3-f32.gguf", 4, 0},
                                           E2eCase{"tiny-gemma3-f32.gguf", 3, 32}));

}  // namespace
}  // namespace flashlm::moefy
