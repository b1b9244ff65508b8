// MoE hyper-parameters from "<arch>.expert_*" metadata (llama.cpp's keys) plus flashlm's
// own "flashlm.moe.*" keys, for any architecture. A layer is MoE when the file has
// experts and that layer has a router (blk.N.ffn_gate_inp.weight); the rest stay dense.
#include <cmath>

#include "models/registry.h"

namespace flashlm {
namespace {

constexpr int64_t kMaxExperts = 1024;

Status check_range(const std::string& what, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return Status::error(what + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "]");
  }
  return Status::ok();
}

bool layer_has(const gguf::File& f, int layer, const char* suffix) {
  return f.find_tensor("blk." + std::to_string(layer) + "." + suffix) != nullptr;
}

}  // namespace

Status parse_moe(const gguf::File& f, const std::string& arch, const MoeDefaults& defaults, ModelConfig* cfg) {
  auto key = [&](const char* k) { return arch + "." + k; };
  Result<int64_t> n_expert = f.get_int_or(key("expert_count"), 0);
  if (!n_expert) return n_expert.status();
  if (*n_expert == 0) return Status::ok();
  Status st;
  if (!(st = check_range(key("expert_count"), *n_expert, 1, kMaxExperts))) return st;

  Result<int64_t> n_used = f.get_int(key("expert_used_count"));
  if (!n_used) return n_used.status();
  if (!(st = check_range(key("expert_used_count"), *n_used, 1, *n_expert))) return st;
  // Mixtral-style llama files give experts the dense feed_forward_length.
  Result<int64_t> n_ff_exp = f.get_int_or(key("expert_feed_forward_length"), cfg->layers[0].n_ff);
  if (!n_ff_exp) return n_ff_exp.status();
  if (!(st = check_range(key("expert_feed_forward_length"), *n_ff_exp, 1, 1 << 20))) return st;
  Result<int64_t> n_ff_shexp = f.get_int_or(key("expert_shared_feed_forward_length"), 0);
  if (!n_ff_shexp) return n_ff_shexp.status();
  if (!(st = check_range(key("expert_shared_feed_forward_length"), *n_ff_shexp, 0, 1 << 20))) return st;

  Result<int64_t> gating = f.get_int_or(key("expert_gating_func"), 0);
  if (!gating) return gating.status();
  MoeConfig m;
  m.n_expert = static_cast<int>(*n_expert);
  m.n_expert_used = static_cast<int>(*n_used);
  m.n_ff_exp = static_cast<int>(*n_ff_exp);
  switch (*gating) {
    case 0:  // not written: softmax, as llama.cpp defaults
    case 1: m.gating = ExpertGating::kSoftmax; break;
    case 2: m.gating = ExpertGating::kSigmoid; break;
    default:
      return Status::error(key("expert_gating_func") + " = " + std::to_string(*gating) +
                           " is not supported (1: softmax, 2: sigmoid)");
  }
  Result<bool> norm = f.get_bool_or(key("expert_weights_norm"), defaults.norm_weights);
  if (!norm) return norm.status();
  m.norm_weights = *norm;
  Result<double> scale = f.get_float_or(key("expert_weights_scale"), 0.0);
  if (!scale) return scale.status();
  if (!std::isfinite(*scale) || *scale < 0.0) return Status::error(key("expert_weights_scale") + " must be >= 0");
  m.weights_scale = *scale > 0.0 ? static_cast<float>(*scale) : 1.0f;  // 0 or absent: no scaling

  Result<bool> unit = f.get_bool_or("flashlm.moe.unit_weights", false);
  if (!unit) return unit.status();
  m.unit_weights = *unit;
  Result<double> thr = f.get_float_or("flashlm.moe.adaptive_threshold", 0.0);
  if (!thr) return thr.status();
  if (!(*thr >= 0.0 && *thr <= 1.0)) return Status::error("flashlm.moe.adaptive_threshold must be in [0, 1]");
  m.adaptive_threshold = static_cast<float>(*thr);

  for (int i = 0; i < cfg->n_layer; ++i) {
    if (!layer_has(f, i, "ffn_gate_inp.weight")) continue;
    LayerConfig& l = cfg->layers[static_cast<size_t>(i)];
    l.ffn = FfnKind::kMoe;
    l.moe = m;
    // Shared expert: its width from metadata, or (qwen2moe files may omit the key) the
    // dense feed_forward_length when its tensors are there.
    if (*n_ff_shexp > 0) {
      l.moe.n_ff_shexp = static_cast<int>(*n_ff_shexp);
    } else if (layer_has(f, i, "ffn_up_shexp.weight")) {
      l.moe.n_ff_shexp = l.n_ff;
    }
    l.moe.shexp_gate = l.moe.n_ff_shexp > 0 && layer_has(f, i, "ffn_gate_inp_shexp.weight");
  }
  return Status::ok();
}

}  // namespace flashlm
