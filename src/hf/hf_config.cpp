#include "hf/hf_config.h"

#include <optional>

#include "formats/gguf_writer.h"

namespace flashlm::hf {
namespace {

using nlohmann::json;

Status bad(const std::string& origin, const std::string& what) { return Status::error("'" + origin + "': " + what); }

// An integer field in [lo, hi]; `fallback` when absent (and the field optional), range
// checked too (a derived default can be out of range).
Result<int64_t> get_int(const json& c, const char* k, const std::string& origin, int64_t lo, int64_t hi,
                        std::optional<int64_t> fallback = std::nullopt) {
  int64_t v = 0;
  if (!c.contains(k) || c[k].is_null()) {
    if (!fallback) return bad(origin, std::string("'") + k + "' is missing");
    v = *fallback;
  } else if (!c[k].is_number_integer()) {
    return bad(origin, std::string("'") + k + "' must be an integer");
  } else {
    v = c[k].get<int64_t>();
  }
  if (v < lo || v > hi) {
    return bad(origin, std::string("'") + k + "' = " + std::to_string(v) + " is outside [" + std::to_string(lo) +
                           ", " + std::to_string(hi) + "]");
  }
  return v;
}

// A string field, `fallback` when absent or null.
Result<std::string> get_string(const json& c, const char* k, const std::string& origin, const std::string& fallback) {
  if (!c.contains(k) || c[k].is_null()) return fallback;
  if (!c[k].is_string()) return bad(origin, std::string("'") + k + "' must be a string");
  return c[k].get<std::string>();
}

// A RoPE scaling object (transformers' "rope_scaling", or v5's "rope_parameters"): only
// the plain kind is honoured.
Status check_rope_kind(const json& rs, const char* field, const std::string& origin) {
  if (rs.is_null()) return Status::ok();
  if (!rs.is_object()) return bad(origin, std::string("'") + field + "' must be an object");
  for (const char* k : {"rope_type", "type"}) {
    Result<std::string> t = get_string(rs, k, origin, "default");
    if (!t) return t.status();
    if (*t != "default") {
      return bad(origin, std::string("'") + field + "' of type '" + *t + "' is not supported yet");
    }
  }
  return Status::ok();
}

Result<double> get_float(const json& c, const char* k, const std::string& origin, double fallback) {
  if (!c.contains(k) || c[k].is_null()) return fallback;
  if (!c[k].is_number()) return bad(origin, std::string("'") + k + "' must be a number");
  const double v = c[k].get<double>();
  if (!(v > 0.0)) return bad(origin, std::string("'") + k + "' must be positive");
  return v;
}

// A boolean field that must hold `want` (the engine has no other behaviour for it).
Status require_bool(const json& c, const char* k, bool want, const std::string& origin) {
  if (!c.contains(k) || c[k].is_null()) return Status::ok();
  if (!c[k].is_boolean()) return bad(origin, std::string("'") + k + "' must be true or false");
  if (c[k].get<bool>() != want) {
    return bad(origin, std::string("'") + k + "' = " + (want ? "false" : "true") + " is not supported");
  }
  return Status::ok();
}

}  // namespace

Result<HfArch> arch_from_config(const json& c, const std::string& origin) {
  if (!c.is_object()) return bad(origin, "not a JSON object");
  std::string name;
  if (c.contains("architectures") && c["architectures"].is_array() && c["architectures"].size() == 1 &&
      c["architectures"][0].is_string()) {
    name = c["architectures"][0].get<std::string>();
  } else {
    return bad(origin, "'architectures' must list exactly one architecture");
  }
  // Llama and Mistral share one GGUF architecture; other families need mappings of
  // their own (norm offsets, biases, QK-norm) that are not written yet.
  if (name != "LlamaForCausalLM" && name != "MistralForCausalLM") {
    return bad(origin, "architecture '" + name +
                           "' is not supported for Hugging Face directories yet (supported: LlamaForCausalLM, "
                           "MistralForCausalLM); convert it with llama.cpp's convert_hf_to_gguf.py");
  }
  HfArch a;
  a.hf_name = name;
  a.gguf_arch = "llama";
  Result<std::string> act = get_string(c, "hidden_act", origin, "silu");
  if (!act) return act.status();
  if (*act != "silu") return bad(origin, "'hidden_act' = '" + *act + "' is not supported (supported: silu)");
  // Quantized checkpoints (GPTQ, AWQ, FP8, bitsandbytes) store other tensors and types.
  if (c.contains("quantization_config")) return bad(origin, "'quantization_config' (a quantized checkpoint) is not supported");
  if (c.contains("rope_scaling")) {
    if (Status st = check_rope_kind(c["rope_scaling"], "rope_scaling", origin); !st) return st;
  }
  // transformers 5 moves rope_theta and the scaling into "rope_parameters".
  std::optional<double> theta_v5;
  if (c.contains("rope_parameters") && !c["rope_parameters"].is_null()) {
    const json& rp = c["rope_parameters"];
    if (Status st = check_rope_kind(rp, "rope_parameters", origin); !st) return st;
    Result<double> t = get_float(rp, "rope_theta", origin, 10000.0);
    if (!t) return t.status();
    theta_v5 = *t;
  }
  for (const char* k : {"attention_bias", "mlp_bias"}) {
    if (Status st = require_bool(c, k, false, origin); !st) return st;
  }

  Result<int64_t> n_embd = get_int(c, "hidden_size", origin, 1, 1 << 16);
  if (!n_embd) return n_embd.status();
  Result<int64_t> n_ff = get_int(c, "intermediate_size", origin, 1, 1 << 20);
  if (!n_ff) return n_ff.status();
  Result<int64_t> n_layer = get_int(c, "num_hidden_layers", origin, 1, 1024);
  if (!n_layer) return n_layer.status();
  Result<int64_t> n_head = get_int(c, "num_attention_heads", origin, 1, 1024);
  if (!n_head) return n_head.status();
  Result<int64_t> n_kv = get_int(c, "num_key_value_heads", origin, 1, *n_head, *n_head);
  if (!n_kv) return n_kv.status();
  if (*n_head % *n_kv != 0) return bad(origin, "'num_attention_heads' must be a multiple of 'num_key_value_heads'");
  Result<int64_t> head_dim = get_int(c, "head_dim", origin, 2, 1024, *n_embd / *n_head);
  if (!head_dim) return head_dim.status();
  if (*head_dim % 2 != 0) return bad(origin, "'head_dim' must be even");
  Result<int64_t> n_ctx = get_int(c, "max_position_embeddings", origin, 1, int64_t{1} << 24, 2048);
  if (!n_ctx) return n_ctx.status();
  Result<int64_t> n_vocab = get_int(c, "vocab_size", origin, 1, int64_t{1} << 24);
  if (!n_vocab) return n_vocab.status();
  Result<double> eps = get_float(c, "rms_norm_eps", origin, 1e-6);
  if (!eps) return eps.status();
  Result<double> theta = get_float(c, "rope_theta", origin, theta_v5.value_or(10000.0));
  if (!theta) return theta.status();
  if (theta_v5 && *theta != *theta_v5) {
    return bad(origin, "'rope_theta' and 'rope_parameters.rope_theta' disagree");
  }
  // transformers' Llama ignores "sliding_window"; Mistral's defaults it to 4096 when the
  // key is absent, and null means none.
  int64_t window = 0;
  if (name == "MistralForCausalLM") {
    const bool absent = !c.contains("sliding_window");
    Result<int64_t> w = get_int(c, "sliding_window", origin, 0, int64_t{1} << 24, absent ? 4096 : 0);
    if (!w) return w.status();
    window = *w;
  }
  if (c.contains("tie_word_embeddings") && !c["tie_word_embeddings"].is_boolean()) {
    return bad(origin, "'tie_word_embeddings' must be true or false");
  }

  a.n_layer = *n_layer;
  a.n_head = *n_head;
  a.n_head_kv = *n_kv;
  a.head_dim = *head_dim;
  a.tied_embeddings = c.value("tie_word_embeddings", false);
  const std::string p = a.gguf_arch + ".";
  auto u32 = [](int64_t v) { return gguf::make_u32(static_cast<uint32_t>(v)); };
  a.keys = {
      {"general.architecture", gguf::make_string(a.gguf_arch)},
      {p + "block_count", u32(*n_layer)},
      {p + "context_length", u32(*n_ctx)},
      {p + "embedding_length", u32(*n_embd)},
      {p + "feed_forward_length", u32(*n_ff)},
      {p + "attention.head_count", u32(*n_head)},
      {p + "attention.head_count_kv", u32(*n_kv)},
      {p + "rope.freq_base", gguf::make_f32(static_cast<float>(*theta))},
      {p + "attention.layer_norm_rms_epsilon", gguf::make_f32(static_cast<float>(*eps))},
      {p + "vocab_size", u32(*n_vocab)},
      {p + "rope.dimension_count", u32(*head_dim)},
  };
  if (*head_dim != *n_embd / *n_head) {
    a.keys.emplace_back(p + "attention.key_length", u32(*head_dim));
    a.keys.emplace_back(p + "attention.value_length", u32(*head_dim));
  }
  if (window > 0) a.keys.emplace_back(p + "attention.sliding_window", u32(window));
  return a;
}

}  // namespace flashlm::hf
