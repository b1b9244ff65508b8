#include "hf/hf_config.h"

#include <gtest/gtest.h>

namespace flashlm::hf {
namespace {

using nlohmann::json;

json smollm2() {
  return json::parse(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
    "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
    "rms_norm_eps": 1e-05, "rope_theta": 100000.0, "max_position_embeddings": 8192, "vocab_size": 49152,
    "tie_word_embeddings": true, "hidden_act": "silu", "rope_scaling": null, "torch_dtype": "bfloat16"})");
}

const gguf::Value* key(const HfArch& a, const std::string& k) {
  for (const auto& [name, v] : a.keys) {
    if (name == k) return &v;
  }
  return nullptr;
}

TEST(HfConfig, LlamaKeysAsLlamaCppWritesThem) {
  Result<HfArch> a = arch_from_config(smollm2(), "config.json");
  ASSERT_TRUE(a) << a.message();
  EXPECT_EQ(a->gguf_arch, "llama");
  EXPECT_TRUE(a->tied_embeddings);
  EXPECT_EQ(a->head_dim, 64);
  ASSERT_NE(key(*a, "llama.block_count"), nullptr);
  EXPECT_EQ(key(*a, "llama.block_count")->i, 30);
  EXPECT_EQ(key(*a, "llama.attention.head_count_kv")->i, 3);
  EXPECT_EQ(key(*a, "llama.rope.dimension_count")->i, 64);
  EXPECT_FLOAT_EQ(static_cast<float>(key(*a, "llama.rope.freq_base")->f), 100000.0f);
  EXPECT_EQ(key(*a, "llama.attention.key_length"), nullptr);  // only when head_dim differs
  EXPECT_EQ(key(*a, "llama.attention.sliding_window"), nullptr);

  json c = smollm2();
  c["head_dim"] = 128;
  c["sliding_window"] = 4096;
  c["architectures"] = {"MistralForCausalLM"};
  a = arch_from_config(c, "config.json");
  ASSERT_TRUE(a) << a.message();
  EXPECT_EQ(key(*a, "llama.attention.key_length")->i, 128);
  EXPECT_EQ(key(*a, "llama.attention.sliding_window")->i, 4096);
  // Mistral without the key: transformers' default window; null: none; Llama: ignored.
  c.erase("sliding_window");
  EXPECT_EQ(key(*arch_from_config(c, "config.json"), "llama.attention.sliding_window")->i, 4096);
  c["sliding_window"] = nullptr;
  EXPECT_EQ(key(*arch_from_config(c, "config.json"), "llama.attention.sliding_window"), nullptr);
  c = smollm2();
  c["sliding_window"] = 2048;
  EXPECT_EQ(key(*arch_from_config(c, "config.json"), "llama.attention.sliding_window"), nullptr);
  // transformers 5's rope_parameters carries rope_theta.
  c = smollm2();
  c.erase("rope_theta");
  c["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  EXPECT_FLOAT_EQ(static_cast<float>(key(*arch_from_config(c, "config.json"), "llama.rope.freq_base")->f), 500000.0f);
}

TEST(HfConfig, RefusesWhatTheEngineDoesNotHonour) {
  const std::pair<const char*, json> cases[] = {
      {"Qwen2ForCausalLM", {{"architectures", {"Qwen2ForCausalLM"}}}},
      {"exactly one architecture", {{"architectures", json::array()}}},
      {"hidden_act", {{"hidden_act", "gelu"}}},
      {"rope_scaling", {{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}}}},
      {"attention_bias", {{"attention_bias", true}}},
      {"mlp_bias", {{"mlp_bias", true}}},
      {"'hidden_size' is missing", {{"hidden_size", nullptr}}},
      {"'hidden_size' must be an integer", {{"hidden_size", "576"}}},
      {"outside", {{"num_hidden_layers", 0}}},
      {"multiple of", {{"num_key_value_heads", 4}}},
      {"'head_dim' must be even", {{"head_dim", 63}}},
      {"rms_norm_eps", {{"rms_norm_eps", -1.0}}},
      {"tie_word_embeddings", {{"tie_word_embeddings", "yes"}}},
      {"'hidden_act' must be a string", {{"hidden_act", 7}}},
      {"'rope_type' must be a string", {{"rope_scaling", {{"rope_type", 3}}}}},
      {"'rope_scaling' must be an object", {{"rope_scaling", "linear"}}},
      {"'rope_parameters' of type 'llama3'", {{"rope_parameters", {{"rope_type", "llama3"}, {"rope_theta", 5e5}}}}},
      {"disagree", {{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 5e5}}}}},
      {"quantization_config", {{"quantization_config", {{"quant_method", "gptq"}}}}},
      {"'head_dim' = 0 is outside", {{"hidden_size", 2}, {"num_attention_heads", 9}, {"num_key_value_heads", 3}}},
  };
  for (const auto& [want, patch] : cases) {
    json c = smollm2();
    c.merge_patch(patch);
    if (patch.contains("hidden_size") && patch["hidden_size"].is_null()) c.erase("hidden_size");
    Result<HfArch> a = arch_from_config(c, "config.json");
    ASSERT_FALSE(a) << want;
    EXPECT_NE(a.message().find(want), std::string::npos) << a.message();
    EXPECT_NE(a.message().find("config.json"), std::string::npos) << a.message();
  }
  EXPECT_FALSE(arch_from_config(json::array(), "config.json"));
}

}  // namespace
}  // namespace flashlm::hf
