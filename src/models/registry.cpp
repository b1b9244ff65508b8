#include "models/registry.h"

#include <cmath>

namespace flashlm {
namespace {

constexpr ArchEntry kArchs[] = {
    {"llama", parse_llama},
    {"qwen2", parse_qwen2},
    {"qwen3", parse_qwen3},
    {"gemma3", parse_gemma3},
    {"qwen2moe", parse_qwen2moe},
    {"qwen3moe", parse_qwen3moe},
};

// Keeps hyper-parameters in ranges the kernels and buffers are sized for; a hostile file
// could otherwise ask for absurd allocations.
Status check_range(const char* what, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return Status::error(std::string(what) + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) +
                         ", " + std::to_string(hi) + "]");
  }
  return Status::ok();
}

}  // namespace

const ArchEntry* find_arch(const std::string& name) {
  for (const ArchEntry& a : kArchs) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

std::string supported_archs() {
  std::string out;
  for (const ArchEntry& a : kArchs) {
    if (!out.empty()) out += ", ";
    out += a.name;
  }
  return out;
}

Result<ModelConfig> parse_model_config(const gguf::File& f) {
  Result<std::string> arch = f.get_string("general.architecture");
  if (!arch) return arch.status();
  const ArchEntry* entry = find_arch(*arch);
  if (entry == nullptr) {
    return Status::error("unsupported architecture '" + *arch + "' (supported: " + supported_archs() + ")");
  }
  Result<ModelConfig> cfg = entry->parse_config(f);
  if (!cfg) return cfg.status().with_context("architecture " + *arch);
  return cfg;
}

Status parse_common(const gguf::File& f, const std::string& arch, ModelConfig* cfg, const MoeDefaults& moe) {
  auto key = [&](const char* k) { return arch + "." + k; };
  cfg->arch = arch;
  Result<std::string> name = f.get_string_or("general.name", "");
  cfg->name = name ? *name : "";

  Result<int64_t> n_embd = f.get_int(key("embedding_length"));
  Result<int64_t> n_layer = f.get_int(key("block_count"));
  Result<int64_t> n_head = f.get_int(key("attention.head_count"));
  Result<int64_t> n_ff = f.get_int(key("feed_forward_length"));
  for (const Result<int64_t>* r : {&n_embd, &n_layer, &n_head, &n_ff}) {
    if (!r->is_ok()) return r->status();
  }
  Result<int64_t> n_head_kv = f.get_int_or(key("attention.head_count_kv"), *n_head);
  Result<int64_t> n_ctx = f.get_int_or(key("context_length"), 2048);
  Result<double> eps = f.get_float_or(key("attention.layer_norm_rms_epsilon"), 1e-5);
  Result<double> rope_base = f.get_float_or(key("rope.freq_base"), 10000.0);
  for (const Status& s : {n_head_kv.status(), n_ctx.status(), eps.status(), rope_base.status()}) {
    if (!s) return s;
  }

  Status st;
  if (!(st = check_range("embedding_length", *n_embd, 1, 65536))) return st;
  if (!(st = check_range("block_count", *n_layer, 1, 1024))) return st;
  if (!(st = check_range("head_count", *n_head, 1, 1024))) return st;
  if (!(st = check_range("head_count_kv", *n_head_kv, 1, *n_head))) return st;
  if (*n_head % *n_head_kv != 0) return Status::error("head_count must be a multiple of head_count_kv");
  if (!(st = check_range("feed_forward_length", *n_ff, 1, 1 << 20))) return st;
  if (!(st = check_range("context_length", *n_ctx, 1, int64_t{1} << 24))) return st;

  Result<int64_t> head_dim = f.get_int_or(key("attention.key_length"), *n_embd / *n_head);
  if (!head_dim) return head_dim.status();
  if (!(st = check_range("attention.key_length", *head_dim, 2, 1024))) return st;
  Result<int64_t> v_dim = f.get_int_or(key("attention.value_length"), *head_dim);
  if (!v_dim) return v_dim.status();
  if (*v_dim != *head_dim) return Status::error("attention.value_length different from key_length is not supported");
  Result<int64_t> n_rot = f.get_int_or(key("rope.dimension_count"), *head_dim);
  if (!n_rot) return n_rot.status();
  if (*n_rot <= 0 || *n_rot > *head_dim || *n_rot % 2 != 0) {
    return Status::error("rope.dimension_count must be even and at most the head size");
  }
  if (!(*eps > 0.0 && *eps < 1.0)) return Status::error("layer_norm_rms_epsilon out of range");
  if (!(*rope_base > 0.0 && std::isfinite(*rope_base))) return Status::error("rope.freq_base must be positive");

  // The vocabulary size is the token embedding's row count (metadata may omit it).
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) return Status::error("missing tensor 'token_embd.weight'");
  cfg->n_vocab = embd->ne[1];
  cfg->n_embd = static_cast<int>(*n_embd);
  cfg->n_layer = static_cast<int>(*n_layer);
  cfg->n_ctx_train = *n_ctx;
  cfg->norm_eps = static_cast<float>(*eps);
  cfg->n_rot = static_cast<int>(*n_rot);
  cfg->tied_embeddings = f.find_tensor("output.weight") == nullptr;
  cfg->layers.assign(static_cast<size_t>(*n_layer), LayerConfig{});
  for (LayerConfig& l : cfg->layers) {
    l.n_head = static_cast<int>(*n_head);
    l.n_head_kv = static_cast<int>(*n_head_kv);
    l.head_dim = static_cast<int>(*head_dim);
    l.n_ff = static_cast<int>(*n_ff);
    l.rope_base = static_cast<float>(*rope_base);
  }

  // Linear RoPE scaling, when the file asks for it.
  Result<std::string> scaling = f.get_string_or(key("rope.scaling.type"), "none");
  if (!scaling) return scaling.status();
  Result<double> factor = f.get_float_or(key("rope.scaling.factor"), 1.0);
  if (!factor) return factor.status();
  if (*scaling == "linear" && *factor > 0.0) {
    for (LayerConfig& l : cfg->layers) l.rope_scale = static_cast<float>(1.0 / *factor);
  } else if (*scaling != "none" && *scaling != "linear" && !(*scaling == "yarn" && *factor == 1.0)) {
    return Status::error("RoPE scaling '" + *scaling + "' is not supported yet");
  }
  return parse_moe(f, arch, moe, cfg);
}

int ModelConfig::max_head_dim() const {
  int m = 0;
  for (const LayerConfig& l : layers) m = l.head_dim > m ? l.head_dim : m;
  return m;
}

int64_t ModelConfig::max_kv_dim() const {
  int64_t m = 0;
  for (const LayerConfig& l : layers) {
    const int64_t d = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    m = d > m ? d : m;
  }
  return m;
}

bool ModelConfig::has_sliding_window() const {
  for (const LayerConfig& l : layers) {
    if (l.sliding_window > 0) return true;
  }
  return false;
}

}  // namespace flashlm
