// Model::load on hostile-but-parseable GGUF files: each broken architecture, tensor or
// hyper-parameter gives an error naming what is wrong (and the file), never a crash.
// The tiny models are written by the in-test GGUF builder into a temporary directory;
// the real models must load with the shapes gguf-py reports for them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "formats/gguf_writer_test_util.h"
#include "models/model.h"
#include "models/registry.h"

namespace flashlm {
namespace {

namespace gt = gguf::testing;
namespace fs = std::filesystem;

// A tiny decoder: n_embd 8, 2 heads of 4 (1 KV head), FFN 16, 2 layers, vocabulary 10.
// Every field can be broken on its own.
struct TinySpec {
  std::string arch = "llama";
  // Integer hyper-parameters by key suffix ("embedding_length"); written as i64 unless
  // listed in `strings` (written as a string, to test type errors).
  std::map<std::string, int64_t> ints = {
      {"embedding_length", 8}, {"block_count", 2},   {"attention.head_count", 2},
      {"attention.head_count_kv", 1}, {"feed_forward_length", 16}, {"context_length", 128},
  };
  std::map<std::string, double> floats = {{"attention.layer_norm_rms_epsilon", 1e-5}};
  std::map<std::string, std::string> strings;
  std::set<std::string> omit;                            // tensors left out
  std::map<std::string, std::vector<uint64_t>> shapes;   // tensors with another shape
  std::map<std::string, uint32_t> types;                 // tensors with another type id
  bool untied_output = false;
  int n_tensor_layers = 2;                               // layers that get tensors
  std::vector<uint8_t> extra_kv_array;                   // gemma3 sliding_window_pattern
  // MoE: experts (n_ff_exp 8) instead of the dense FFN in the layers listed in moe_layers.
  int n_expert = 0;
  std::set<int> moe_layers = {0, 1};
  bool shexp = false;       // ffn_{gate,up,down}_shexp, n_ff 16
  bool shexp_gate = false;  // ffn_gate_inp_shexp
  std::map<std::string, double> full_floats;   // keys written as given (flashlm.moe.*)
  std::map<std::string, uint8_t> full_bools;
};

std::vector<uint8_t> build_tiny(const TinySpec& s) {
  gt::GgufBuilder b(3);
  b.kv_string("general.architecture", s.arch).kv_string("general.name", "tiny-" + s.arch);
  for (const auto& [k, v] : s.ints) b.kv_i64(s.arch + "." + k, v);
  for (const auto& [k, v] : s.floats) b.kv_f32(s.arch + "." + k, static_cast<float>(v));
  for (const auto& [k, v] : s.strings) b.kv_string(s.arch + "." + k, v);
  for (const auto& [k, v] : s.full_floats) b.kv_f32(k, static_cast<float>(v));
  for (const auto& [k, v] : s.full_bools) b.kv_bool(k, v);
  if (!s.extra_kv_array.empty()) b.kv_array(s.arch + ".attention.sliding_window_pattern", s.extra_kv_array);

  const bool gemma = s.arch == "gemma3", qwen2 = s.arch == "qwen2" || s.arch == "qwen2moe",
             qwen3 = s.arch == "qwen3" || s.arch == "qwen3moe";
  auto add = [&](const std::string& name, std::vector<uint64_t> dims) {
    if (s.omit.count(name)) return;
    if (auto it = s.shapes.find(name); it != s.shapes.end()) dims = it->second;
    uint32_t type = 0;
    if (auto it = s.types.find(name); it != s.types.end()) type = it->second;
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    const size_t bytes = type == 1 ? n * 2 : n * 4;  // f16 or f32
    std::vector<uint8_t> data(bytes, 0);
    for (size_t k = 0; k + 4 <= data.size(); k += 4) {  // small non-zero f32 values
      const float x = 0.01f * static_cast<float>(k % 13);
      std::memcpy(data.data() + k, &x, 4);
    }
    b.tensor({name, std::move(dims), type, std::move(data), std::nullopt});
  };
  add("token_embd.weight", {8, 10});
  add("output_norm.weight", {8});
  if (s.untied_output) add("output.weight", {8, 10});
  for (int i = 0; i < s.n_tensor_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", {8});
    add(p + "attn_q.weight", {8, 8});
    add(p + "attn_k.weight", {8, 4});
    add(p + "attn_v.weight", {8, 4});
    add(p + "attn_output.weight", {8, 8});
    if (qwen2) {
      add(p + "attn_q.bias", {8});
      add(p + "attn_k.bias", {4});
      add(p + "attn_v.bias", {4});
    }
    if (qwen3 || gemma) {
      add(p + "attn_q_norm.weight", {4});
      add(p + "attn_k_norm.weight", {4});
    }
    if (gemma) add(p + "post_attention_norm.weight", {8});
    add(p + "ffn_norm.weight", {8});
    if (s.n_expert > 0 && s.moe_layers.count(i)) {
      const auto e = static_cast<uint64_t>(s.n_expert);
      add(p + "ffn_gate_inp.weight", {8, e});
      add(p + "ffn_gate_exps.weight", {8, 8, e});
      add(p + "ffn_up_exps.weight", {8, 8, e});
      add(p + "ffn_down_exps.weight", {8, 8, e});
      if (s.shexp) {
        add(p + "ffn_gate_shexp.weight", {8, 16});
        add(p + "ffn_up_shexp.weight", {8, 16});
        add(p + "ffn_down_shexp.weight", {16, 8});
      }
      if (s.shexp_gate) add(p + "ffn_gate_inp_shexp.weight", {8});
    } else {
      add(p + "ffn_gate.weight", {8, 16});
      add(p + "ffn_up.weight", {8, 16});
      add(p + "ffn_down.weight", {16, 8});
    }
    if (gemma) add(p + "post_ffw_norm.weight", {8});
  }
  return b.build();
}

class ModelLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "flashlm_model_load_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string write(const std::vector<uint8_t>& bytes) {
    const std::string path = (fs::path(dir_) / ("m" + std::to_string(n_files_++) + ".gguf")).string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  Result<std::unique_ptr<Model>> load(const TinySpec& s) { return Model::load(write(build_tiny(s))); }

  // Loads a spec that must fail; the message must mention every one of `parts` and the
  // file's path.
  ::testing::AssertionResult fails_with(const TinySpec& s, std::initializer_list<std::string> parts) {
    const std::string path = write(build_tiny(s));
    Result<std::unique_ptr<Model>> m = Model::load(path);
    if (m.is_ok()) return ::testing::AssertionFailure() << "hostile model loaded";
    for (const std::string& p : parts) {
      if (m.message().find(p) == std::string::npos) {
        return ::testing::AssertionFailure() << "message '" << m.message() << "' does not mention '" << p << "'";
      }
    }
    if (m.message().find(path) == std::string::npos) {
      return ::testing::AssertionFailure() << "message '" << m.message() << "' does not name the file";
    }
    return ::testing::AssertionSuccess() << m.message();
  }

  std::string dir_;
  int n_files_ = 0;
};

TEST_F(ModelLoad, TinyLlamaLoads) {
  Result<std::unique_ptr<Model>> m = load(TinySpec{});
  ASSERT_TRUE(m.is_ok()) << m.message();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.name, "tiny-llama");
  EXPECT_EQ(c.n_vocab, 10);
  EXPECT_EQ(c.n_embd, 8);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_ctx_train, 128);
  EXPECT_TRUE(c.tied_embeddings);
  ASSERT_EQ(c.layers.size(), 2u);
  EXPECT_EQ(c.layers[1].n_head, 2);
  EXPECT_EQ(c.layers[1].n_head_kv, 1);
  EXPECT_EQ(c.layers[1].head_dim, 4);
  EXPECT_EQ(c.layers[1].n_ff, 16);
  EXPECT_EQ(c.n_rot, 4);
  EXPECT_EQ((*m)->weights().layers.size(), 2u);
  EXPECT_EQ((*m)->weights().output.data, (*m)->weights().tok_embd.data);

  TinySpec untied;
  untied.untied_output = true;
  Result<std::unique_ptr<Model>> u = load(untied);
  ASSERT_TRUE(u.is_ok()) << u.message();
  EXPECT_FALSE((*u)->config().tied_embeddings);
  EXPECT_NE((*u)->weights().output.data, (*u)->weights().tok_embd.data);
}

TEST_F(ModelLoad, OtherFamiliesLoad) {
  for (const char* arch : {"qwen2", "qwen3", "gemma3"}) {
    SCOPED_TRACE(arch);
    TinySpec s;
    s.arch = arch;
    Result<std::unique_ptr<Model>> m = load(s);
    ASSERT_TRUE(m.is_ok()) << m.message();
    EXPECT_EQ((*m)->config().arch, arch);
  }
}

TEST_F(ModelLoad, UnsupportedArchitectureListsSupported) {
  TinySpec s;
  s.arch = "fakearch";
  EXPECT_TRUE(fails_with(s, {"unsupported architecture 'fakearch'", "llama", "qwen2", "qwen3", "gemma3"}));
  EXPECT_TRUE(fails_with(s, {supported_archs()}));
  s.arch = "";
  EXPECT_TRUE(fails_with(s, {"unsupported architecture ''"}));
}

TEST_F(ModelLoad, MissingArchitectureKey) {
  gt::GgufBuilder b(3);
  b.kv_string("general.name", "no arch").tensor_f32("token_embd.weight", {8, 10});
  Result<std::unique_ptr<Model>> m = Model::load(write(b.build()));
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.message().find("general.architecture"), std::string::npos) << m.message();
  // The wrong type is named too.
  gt::GgufBuilder b2(3);
  b2.kv_u32("general.architecture", 7);
  Result<std::unique_ptr<Model>> m2 = Model::load(write(b2.build()));
  ASSERT_FALSE(m2.is_ok());
  EXPECT_NE(m2.message().find("'general.architecture' has type u32"), std::string::npos) << m2.message();
}

TEST_F(ModelLoad, MissingTensorsAreNamed) {
  for (const char* name : {"token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight",
                           "blk.1.attn_norm.weight", "blk.0.attn_output.weight"}) {
    SCOPED_TRACE(name);
    TinySpec s;
    s.omit = {name};
    EXPECT_TRUE(fails_with(s, {std::string("missing tensor '") + name + "'"}));
  }
  // Family-specific tensors are required by the config that asks for them.
  TinySpec q2;
  q2.arch = "qwen2";
  q2.omit = {"blk.1.attn_v.bias"};
  EXPECT_TRUE(fails_with(q2, {"'blk.1.attn_v.bias'"}));
  TinySpec q3;
  q3.arch = "qwen3";
  q3.omit = {"blk.0.attn_k_norm.weight"};
  EXPECT_TRUE(fails_with(q3, {"'blk.0.attn_k_norm.weight'"}));
  TinySpec g;
  g.arch = "gemma3";
  g.omit = {"blk.1.post_ffw_norm.weight"};
  EXPECT_TRUE(fails_with(g, {"'blk.1.post_ffw_norm.weight'"}));
  // More blocks declared than the file has tensors for.
  TinySpec more;
  more.ints["block_count"] = 3;
  EXPECT_TRUE(fails_with(more, {"missing tensor 'blk.2."}));
}

TEST_F(ModelLoad, WrongTensorShapes) {
  TinySpec k;
  k.shapes["blk.0.attn_k.weight"] = {8, 8};
  EXPECT_TRUE(fails_with(k, {"'blk.0.attn_k.weight' has shape [8, 8", "expected [8, 4]"}));
  TinySpec down;
  down.shapes["blk.1.ffn_down.weight"] = {8, 16};  // transposed
  EXPECT_TRUE(fails_with(down, {"'blk.1.ffn_down.weight'", "expected [16, 8]"}));
  TinySpec norm;
  norm.shapes["output_norm.weight"] = {7};
  EXPECT_TRUE(fails_with(norm, {"'output_norm.weight' has shape [7"}));
  TinySpec three_d;
  three_d.shapes["blk.0.ffn_up.weight"] = {8, 16, 2};
  EXPECT_TRUE(fails_with(three_d, {"'blk.0.ffn_up.weight'"}));
  TinySpec embd;
  embd.shapes["token_embd.weight"] = {4, 10};
  EXPECT_TRUE(fails_with(embd, {"'token_embd.weight'"}));
  TinySpec out;
  out.untied_output = true;
  out.shapes["output.weight"] = {8, 11};  // vocabulary differs from the embeddings'
  EXPECT_TRUE(fails_with(out, {"'output.weight'"}));
  // Element-wise factors must be f32.
  TinySpec f16_norm;
  f16_norm.types["blk.0.ffn_norm.weight"] = 1;
  EXPECT_TRUE(fails_with(f16_norm, {"'blk.0.ffn_norm.weight' must be f32"}));
}

TinySpec moe_spec(const std::string& arch) {
  TinySpec s;
  s.arch = arch;
  s.n_expert = 4;
  s.ints["expert_count"] = 4;
  s.ints["expert_used_count"] = 2;
  s.ints["expert_feed_forward_length"] = 8;
  return s;
}

TEST_F(ModelLoad, MoeLayersLoadForAnyFamily) {
  for (const char* arch : {"llama", "qwen2", "qwen3", "gemma3", "qwen2moe", "qwen3moe"}) {
    SCOPED_TRACE(arch);
    Result<std::unique_ptr<Model>> m = load(moe_spec(arch));
    ASSERT_TRUE(m.is_ok()) << m.message();
    const LayerConfig& l = (*m)->config().layers[1];
    EXPECT_EQ(l.ffn, FfnKind::kMoe);
    EXPECT_EQ(l.moe.n_expert, 4);
    EXPECT_EQ(l.moe.n_expert_used, 2);
    EXPECT_EQ(l.moe.n_ff_exp, 8);
    EXPECT_EQ(l.moe.n_ff_shexp, 0);
    EXPECT_EQ(l.moe.gating, ExpertGating::kSoftmax);
    EXPECT_EQ(l.moe.norm_weights, std::string(arch) != "qwen2moe");  // the family default
    EXPECT_FALSE(l.moe.unit_weights);
    EXPECT_EQ(l.moe.adaptive_threshold, 0.0f);
    const MoeWeights& w = (*m)->weights().layers[1].moe;
    ASSERT_EQ(w.experts.size(), 4u);
    // Expert e is the e-th [8 x 8] f32 slice of the 3-D stack.
    EXPECT_EQ(static_cast<const uint8_t*>(w.experts[3].up.data) - static_cast<const uint8_t*>(w.experts[0].up.data),
              3 * 8 * 8 * 4);
    EXPECT_EQ(w.experts[2].down.ne[2], 1);
  }
}

TEST_F(ModelLoad, MoeKeysAndSharedExpert) {
  TinySpec s = moe_spec("qwen2moe");
  s.moe_layers = {1};  // layer 0 has no router: it stays dense
  s.shexp = true;
  s.shexp_gate = true;
  s.ints["expert_gating_func"] = 2;
  s.full_bools["qwen2moe.expert_weights_norm"] = 1;
  s.floats["expert_weights_scale"] = 2.5;
  s.full_bools["flashlm.moe.unit_weights"] = 1;
  s.full_floats["flashlm.moe.adaptive_threshold"] = 0.75;
  Result<std::unique_ptr<Model>> m = load(s);
  ASSERT_TRUE(m.is_ok()) << m.message();
  EXPECT_EQ((*m)->config().layers[0].ffn, FfnKind::kDense);
  const MoeConfig& c = (*m)->config().layers[1].moe;
  EXPECT_EQ((*m)->config().layers[1].ffn, FfnKind::kMoe);
  EXPECT_EQ(c.gating, ExpertGating::kSigmoid);
  EXPECT_TRUE(c.norm_weights);
  EXPECT_FLOAT_EQ(c.weights_scale, 2.5f);
  EXPECT_TRUE(c.unit_weights);
  EXPECT_FLOAT_EQ(c.adaptive_threshold, 0.75f);
  EXPECT_EQ(c.n_ff_shexp, 16);  // no key: the dense feed_forward_length
  EXPECT_TRUE(c.shexp_gate);
  EXPECT_NE((*m)->weights().layers[1].moe.shexp_gate.data, nullptr);

  // moefy's shared expert: width from metadata, no gate (always on with weight 1).
  TinySpec ungated = moe_spec("llama");
  ungated.shexp = true;
  ungated.ints["expert_shared_feed_forward_length"] = 16;
  Result<std::unique_ptr<Model>> u = load(ungated);
  ASSERT_TRUE(u.is_ok()) << u.message();
  EXPECT_EQ((*u)->config().layers[0].moe.n_ff_shexp, 16);
  EXPECT_FALSE((*u)->config().layers[0].moe.shexp_gate);
}

TEST_F(ModelLoad, MoeErrorsAreNamed) {
  TinySpec used = moe_spec("qwen3moe");
  used.ints["expert_used_count"] = 5;
  EXPECT_TRUE(fails_with(used, {"qwen3moe.expert_used_count = 5"}));
  TinySpec no_used = moe_spec("qwen3moe");
  no_used.ints.erase("expert_used_count");
  EXPECT_TRUE(fails_with(no_used, {"expert_used_count"}));
  TinySpec gating = moe_spec("llama");
  gating.ints["expert_gating_func"] = 7;
  EXPECT_TRUE(fails_with(gating, {"llama.expert_gating_func = 7"}));
  TinySpec thr = moe_spec("llama");
  thr.full_floats["flashlm.moe.adaptive_threshold"] = 1.5;
  EXPECT_TRUE(fails_with(thr, {"flashlm.moe.adaptive_threshold"}));
  TinySpec too_many = moe_spec("llama");
  too_many.ints["expert_count"] = 100000;
  EXPECT_TRUE(fails_with(too_many, {"llama.expert_count = 100000"}));
  TinySpec shape = moe_spec("qwen3moe");
  shape.shapes["blk.1.ffn_down_exps.weight"] = {8, 8, 3};
  EXPECT_TRUE(fails_with(shape, {"'blk.1.ffn_down_exps.weight' has shape [8, 8, 3", "expected [8, 8, 4]"}));
  TinySpec width = moe_spec("qwen3moe");
  width.ints["expert_feed_forward_length"] = 16;
  EXPECT_TRUE(fails_with(width, {"'blk.0.ffn_gate_exps.weight'", "expected [8, 16, 4]"}));
  TinySpec missing = moe_spec("qwen2moe");
  missing.omit = {"blk.1.ffn_up_exps.weight"};
  EXPECT_TRUE(fails_with(missing, {"missing tensor 'blk.1.ffn_up_exps.weight'"}));
  TinySpec router = moe_spec("qwen2moe");
  router.shapes["blk.0.ffn_gate_inp.weight"] = {8, 5};
  EXPECT_TRUE(fails_with(router, {"'blk.0.ffn_gate_inp.weight'"}));
  TinySpec sh = moe_spec("qwen2moe");
  sh.shexp = true;
  sh.omit = {"blk.0.ffn_down_shexp.weight"};
  EXPECT_TRUE(fails_with(sh, {"missing tensor 'blk.0.ffn_down_shexp.weight'"}));
  TinySpec shg = moe_spec("qwen2moe");
  shg.shexp = true;
  shg.shexp_gate = true;
  shg.types["blk.1.ffn_gate_inp_shexp.weight"] = 1;
  EXPECT_TRUE(fails_with(shg, {"'blk.1.ffn_gate_inp_shexp.weight' must be f32"}));
}

TEST_F(ModelLoad, HeadCountKvMustDivideHeadCount) {
  TinySpec s;
  s.ints["attention.head_count"] = 4;
  s.ints["attention.head_count_kv"] = 3;
  s.ints["attention.key_length"] = 2;
  EXPECT_TRUE(fails_with(s, {"head_count", "head_count_kv"}));
  TinySpec more_kv;
  more_kv.ints["attention.head_count_kv"] = 4;  // more KV heads than heads
  EXPECT_TRUE(fails_with(more_kv, {"head_count_kv = 4"}));
  TinySpec zero_kv;
  zero_kv.ints["attention.head_count_kv"] = 0;
  EXPECT_TRUE(fails_with(zero_kv, {"head_count_kv = 0"}));
}

TEST_F(ModelLoad, ZeroAndHugeHyperParameters) {
  const int64_t kHuge = int64_t{1} << 40;
  struct Case {
    const char* key;
    int64_t value;
    const char* expect;
  };
  const Case cases[] = {
      {"embedding_length", 0, "embedding_length = 0"},
      {"embedding_length", kHuge, "embedding_length"},
      {"embedding_length", -8, "embedding_length = -8"},
      {"block_count", 0, "block_count = 0"},
      {"block_count", kHuge, "block_count"},
      {"block_count", std::numeric_limits<int64_t>::max(), "block_count"},
      {"attention.head_count", 0, "head_count = 0"},
      {"attention.head_count", kHuge, "head_count"},
      {"feed_forward_length", 0, "feed_forward_length = 0"},
      {"feed_forward_length", kHuge, "feed_forward_length"},
      {"context_length", 0, "context_length = 0"},
      {"context_length", kHuge, "context_length"},
      {"attention.key_length", 0, "key_length = 0"},
      {"attention.key_length", kHuge, "key_length"},
      {"attention.value_length", 8, "value_length"},
      {"rope.dimension_count", 3, "rope.dimension_count"},
      {"rope.dimension_count", 0, "rope.dimension_count"},
      {"rope.dimension_count", 64, "rope.dimension_count"},
      {"attention.sliding_window", -1, "sliding_window"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.key) + " = " + std::to_string(c.value));
    TinySpec s;
    s.ints[c.key] = c.value;
    EXPECT_TRUE(fails_with(s, {c.expect}));
  }
  // More heads than embedding dimensions leaves a head size of 0.
  TinySpec tiny_heads;
  tiny_heads.ints["attention.head_count"] = 16;
  tiny_heads.ints["attention.head_count_kv"] = 16;
  EXPECT_TRUE(fails_with(tiny_heads, {"key_length"}));

  const double kNan = std::numeric_limits<double>::quiet_NaN();
  const double kInf = std::numeric_limits<double>::infinity();
  for (double eps : {0.0, -1e-5, 2.0, kNan, kInf}) {
    SCOPED_TRACE("eps " + std::to_string(eps));
    TinySpec s;
    s.floats["attention.layer_norm_rms_epsilon"] = eps;
    EXPECT_TRUE(fails_with(s, {"epsilon"}));
  }
  for (double base : {0.0, -10000.0, kNan, kInf}) {
    SCOPED_TRACE("rope base " + std::to_string(base));
    TinySpec s;
    s.floats["rope.freq_base"] = base;
    EXPECT_TRUE(fails_with(s, {"rope.freq_base"}));
  }
}

TEST_F(ModelLoad, WrongValueTypesNameTheKey) {
  TinySpec s;
  s.ints.erase("embedding_length");
  s.strings["embedding_length"] = "eight";
  EXPECT_TRUE(fails_with(s, {"'llama.embedding_length' has type string"}));
  TinySpec missing;
  missing.ints.erase("feed_forward_length");
  EXPECT_TRUE(fails_with(missing, {"'llama.feed_forward_length' is missing"}));
  TinySpec scaling;
  scaling.strings["rope.scaling.type"] = "quantum";
  EXPECT_TRUE(fails_with(scaling, {"quantum"}));
}

TEST_F(ModelLoad, Gemma3SlidingWindowPattern) {
  TinySpec ok;
  ok.arch = "gemma3";
  ok.ints["attention.sliding_window"] = 4;
  ok.extra_kv_array = gt::array_of<uint8_t>(gt::kBool, {1, 0});
  Result<std::unique_ptr<Model>> m = load(ok);
  ASSERT_TRUE(m.is_ok()) << m.message();
  EXPECT_EQ((*m)->config().layers[0].sliding_window, 4);
  EXPECT_EQ((*m)->config().layers[1].sliding_window, 0);

  TinySpec wrong_len = ok;
  wrong_len.extra_kv_array = gt::array_of<uint8_t>(gt::kBool, {1, 0, 1});
  EXPECT_TRUE(fails_with(wrong_len, {"sliding_window_pattern"}));
  TinySpec strings = ok;
  strings.extra_kv_array = gt::array_of_strings({"a", "b"});
  EXPECT_TRUE(fails_with(strings, {"sliding_window_pattern"}));
  TinySpec negative = ok;
  negative.extra_kv_array.clear();
  negative.ints["attention.sliding_window_pattern"] = -2;
  EXPECT_TRUE(fails_with(negative, {"sliding_window_pattern"}));
}

// Mistral-style llama files carry one window for every layer; without the key, every
// layer is global.
TEST_F(ModelLoad, LlamaSlidingWindowAppliesToEveryLayer) {
  TinySpec plain;
  Result<std::unique_ptr<Model>> a = load(plain);
  ASSERT_TRUE(a.is_ok()) << a.message();
  for (const LayerConfig& l : (*a)->config().layers) EXPECT_EQ(l.sliding_window, 0);
  TinySpec mistral;
  mistral.ints["attention.sliding_window"] = 4096;
  Result<std::unique_ptr<Model>> b = load(mistral);
  ASSERT_TRUE(b.is_ok()) << b.message();
  for (const LayerConfig& l : (*b)->config().layers) EXPECT_EQ(l.sliding_window, 4096);
  TinySpec negative;
  negative.ints["attention.sliding_window"] = -1;
  EXPECT_TRUE(fails_with(negative, {"sliding_window"}));
}

TEST_F(ModelLoad, MissingFileAndNotGguf) {
  Result<std::unique_ptr<Model>> m = Model::load(dir_ + "/does-not-exist.gguf");
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.message().find("cannot open"), std::string::npos) << m.message();
  const std::string junk = write(std::vector<uint8_t>(100, 'x'));
  Result<std::unique_ptr<Model>> j = Model::load(junk);
  ASSERT_FALSE(j.is_ok());
  EXPECT_NE(j.message().find("not a GGUF file"), std::string::npos) << j.message();
  // Parseable, but the tensor data is cut off.
  std::vector<uint8_t> bytes = build_tiny(TinySpec{});
  bytes.resize(bytes.size() - 64);
  Result<std::unique_ptr<Model>> t = Model::load(write(bytes));
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.message().find("past the end"), std::string::npos) << t.message();
}

// Real models: shapes as gguf-py's GGUFReader reports them for these files.
struct RealModel {
  const char* file;
  const char* arch;
  int64_t n_vocab;
  int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
  int sliding_window_layer0;
};

class ModelLoadReal : public ::testing::TestWithParam<RealModel> {};

TEST_P(ModelLoadReal, LoadsWithExpectedShapes) {
  const RealModel& r = GetParam();
  const std::string path = std::string(FLASHLM_SOURCE_DIR) + "/models/" + r.file;
  if (!fs::exists(path)) GTEST_SKIP() << "MODEL FILE MISSING: " << path << " — run scripts/fetch_models.sh";
  Result<std::unique_ptr<Model>> m = Model::load(path);
  ASSERT_TRUE(m.is_ok()) << m.message();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch, r.arch);
  EXPECT_EQ(c.n_vocab, r.n_vocab);
  EXPECT_EQ(c.n_embd, r.n_embd);
  EXPECT_EQ(c.n_layer, r.n_layer);
  ASSERT_EQ(c.layers.size(), static_cast<size_t>(r.n_layer));
  EXPECT_EQ(c.layers[0].n_head, r.n_head);
  EXPECT_EQ(c.layers[0].n_head_kv, r.n_head_kv);
  EXPECT_EQ(c.layers[0].head_dim, r.head_dim);
  EXPECT_EQ(c.layers[0].n_ff, r.n_ff);
  EXPECT_EQ(c.layers[0].sliding_window, r.sliding_window_layer0);
  EXPECT_TRUE(c.tied_embeddings);  // neither file has output.weight
  // Every tensor lies inside the mapped file.
  const gguf::File& f = (*m)->file();
  for (const gguf::TensorInfo& t : f.tensors()) {
    ASSERT_LE(f.data_offset() + t.offset + t.size_bytes, f.file_size()) << t.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    ModelLoadRealFiles, ModelLoadReal,
    ::testing::Values(RealModel{"SmolLM2-135M-Instruct.Q4_1.gguf", "llama", 49152, 576, 30, 9, 3, 64, 1536, 0},
                      RealModel{"gemma-3-270m-q4_k_m.gguf", "gemma3", 262144, 640, 18, 4, 1, 256, 2048, 512}),
    [](const ::testing::TestParamInfo<RealModel>& p) { return std::string(p.param.arch); });

// The synthetic reference models (tests/golden/synthetic) cover qwen2/qwen3 and untied output.
TEST(ModelLoadSynthetic, AllLoad) {
  const fs::path dir = fs::path(FLASHLM_SOURCE_DIR) / "tests/golden/synthetic";
  if (!fs::exists(dir)) GTEST_SKIP() << "SYNTHETIC MODELS MISSING: " << dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    SCOPED_TRACE(e.path().string());
    Result<std::unique_ptr<Model>> m = Model::load(e.path().string());
    ASSERT_TRUE(m.is_ok()) << m.message();
    EXPECT_EQ((*m)->config().n_embd, 64);
    // The tiny Gemma 3 files (dense and moefied) have 7 layers so the default every-6th-global
    // pattern includes a global layer.
    const bool gemma = e.path().stem().string().rfind("tiny-gemma3", 0) == 0;
    EXPECT_EQ((*m)->config().n_layer, gemma ? 7 : 2);
    ++n;
  }
  EXPECT_GE(n, 1);
}

// The fuzz seeds (fuzz/make_seeds.py) must stay loadable, or the fuzzer would stop
// reaching the config and weight-table code.
TEST(ModelLoadFuzzSeeds, TinyModelsLoad) {
  for (const char* arch : {"llama", "qwen2", "qwen3", "gemma3"}) {
    const fs::path p = fs::path(FLASHLM_SOURCE_DIR) / "fuzz/seeds/gguf" / (std::string("tiny_") + arch + ".gguf");
    if (!fs::exists(p)) GTEST_SKIP() << "FUZZ SEEDS MISSING: " << p << " (fuzz/make_seeds.py)";
    SCOPED_TRACE(p.string());
    Result<std::unique_ptr<Model>> m = Model::load(p.string());
    ASSERT_TRUE(m.is_ok()) << m.message();
    EXPECT_EQ((*m)->config().arch, arch);
    EXPECT_EQ((*m)->config().n_embd, 8);
  }
}

}  // namespace
}  // namespace flashlm
