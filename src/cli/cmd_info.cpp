// flashlm info: what a model file holds and how flashlm will run it (GGUF), or what a
// safetensors checkpoint holds.
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "cli/common.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors.h"
#include "hf/hf_model.h"
#include "models/registry.h"
#include "quant/quant.h"

namespace flashlm::cli {
namespace {

struct InfoArgs {
  std::string model;
  bool metadata = false;
  bool tensors = false;
};

std::string count(int64_t n) {
  char buf[32];
  const auto d = static_cast<double>(n);
  if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2f B", d / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.1f M", d / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f K", d / 1e3);
  return buf;
}

// Experts per MoE layer and the parameters a token uses: all but the unselected experts'
// slices of the 3-D ffn_{gate,up,down}_exps tensors.
void print_moe(const gguf::File& f, const ModelConfig& c, int64_t n_params) {
  int n_moe = 0;
  int64_t inactive = 0;
  const LayerConfig* first = nullptr;
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& l = c.layers[static_cast<size_t>(i)];
    if (l.ffn != FfnKind::kMoe) continue;
    first = first ? first : &l;
    ++n_moe;
    for (const char* part : {"gate", "up", "down"}) {
      const gguf::TensorInfo* t = f.find_tensor("blk." + std::to_string(i) + ".ffn_" + part + "_exps.weight");
      if (t == nullptr || t->ne[2] <= 0) continue;
      inactive += t->nelements() / t->ne[2] * (l.moe.n_expert - l.moe.n_expert_used);
    }
  }
  if (first == nullptr) return;
  const MoeConfig& m = first->moe;
  std::printf("  experts: %d MoE layers of %d, %d experts, %d used per token, expert n_ff %d", n_moe, c.n_layer,
              m.n_expert, m.n_expert_used, m.n_ff_exp);
  if (m.n_ff_shexp > 0) std::printf(", shared expert n_ff %d%s", m.n_ff_shexp, m.shexp_gate ? " (sigmoid-gated)" : "");
  std::printf("\n  routing: %s%s%s", m.gating == ExpertGating::kSoftmax ? "softmax" : "sigmoid",
              m.unit_weights ? ", unit weights" : m.norm_weights ? ", top-k weights normalised" : "",
              m.weights_scale != 1.0f ? ", scaled" : "");
  if (m.adaptive_threshold > 0.0f) {
    std::printf(", adaptive: fewest experts reaching %.2f softmax mass", static_cast<double>(m.adaptive_threshold));
  }
  std::printf("\n  active parameters per token: %s of %s total%s\n", count(n_params - inactive).c_str(),
              count(n_params).c_str(), m.adaptive_threshold > 0.0f ? " (at most)" : "");
}

// A safetensors file, sharded index or Hugging Face directory: its tensors by dtype.
int info_safetensors(const InfoArgs& a) {
  Result<safetensors::Shards> s = safetensors::Shards::open(a.model);
  if (!s) {
    print_error(s.message());
    return 1;
  }
  std::map<std::string, std::pair<int64_t, uint64_t>> by_type;
  int64_t n_params = 0;
  const std::vector<std::string> names = s->names();
  for (const std::string& n : names) {
    const safetensors::TensorInfo* t = s->find(n);
    auto& e = by_type[t->dtype];
    e.first += 1;
    e.second += t->end - t->begin;
    n_params += t->nelements();
  }
  std::printf("file: %s (safetensors, %zu file%s, %zu tensors)\nparameters: %.1f M\n", a.model.c_str(), s->n_files(),
              s->n_files() == 1 ? "" : "s", names.size(), static_cast<double>(n_params) / 1e6);
  for (const auto& [name, e] : by_type) {
    std::printf("  %-6s %4lld tensors %9.1f MiB\n", name.c_str(), static_cast<long long>(e.first),
                static_cast<double>(e.second) / (1024.0 * 1024.0));
  }
  if (hf::is_model_dir(a.model)) {
    // Whether -m DIR loads: the directory's config and tokenizer as convert reads them.
    Result<hf::HfModel> m = hf::HfModel::open(a.model);
    gguf::Writer probe;  // declares every tensor (names, types, shapes) without writing
    if (m) {
      if (Status st = m->to_gguf(hf::ConvertOptions{}, &probe); !st) m = st;
    }
    if (m) {
      std::printf("model: %s, loads as GGUF architecture '%s' (-m DIR converts in memory; flashlm convert writes the file)\n",
                  m->arch().hf_name.c_str(), m->arch().gguf_arch.c_str());
    } else {
      std::printf("model: does not load: %s\n", m.message().c_str());
    }
  } else {
    std::printf("model: no config.json beside the weights; -m takes a Hugging Face model directory (config.json, "
                "tokenizer.json, safetensors)\n");
  }
  if (a.metadata && !names.empty()) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : s->file_of(names[0])->metadata()) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  }
  if (a.tensors) {
    std::printf("tensors:\n");
    for (const std::string& n : names) {
      const safetensors::TensorInfo* t = s->find(n);
      std::string shape;
      for (int64_t d : t->shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
      std::printf("  %-40s %-6s [%s]\n", n.c_str(), t->dtype.c_str(), shape.c_str());
    }
  }
  return 0;
}

bool is_safetensors_path(const std::string& p) {
  auto ends = [&](const std::string& suffix) {
    return p.size() >= suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::error_code ec;
  return ends(".safetensors") || ends(".safetensors.index.json") || std::filesystem::is_directory(p, ec);
}

int info(const InfoArgs& a) {
  if (is_safetensors_path(a.model)) return info_safetensors(a);
  Result<gguf::File> f = gguf::File::open(a.model);
  if (!f) {
    print_error(f.message());
    return 1;
  }
  std::printf("file: %s (%.1f MiB, GGUF v%u, %zu tensors, %zu metadata keys)\n", a.model.c_str(),
              static_cast<double>(f->file_size()) / (1024.0 * 1024.0), f->version(), f->tensors().size(),
              f->metadata().size());
  // Tensor types, parameters and bytes: what the weights cost in memory.
  std::map<std::string, std::pair<int64_t, uint64_t>> by_type;
  int64_t n_params = 0;
  for (const gguf::TensorInfo& t : f->tensors()) {
    auto& e = by_type[type_traits(t.dtype).name];
    e.first += 1;
    e.second += t.size_bytes;
    n_params += t.nelements();
  }
  std::printf("parameters: %.1f M\n", static_cast<double>(n_params) / 1e6);
  for (const auto& [name, e] : by_type) {
    std::printf("  %-6s %4lld tensors %9.1f MiB\n", name.c_str(), static_cast<long long>(e.first),
                static_cast<double>(e.second) / (1024.0 * 1024.0));
  }
  Result<ModelConfig> cfg = parse_model_config(*f);
  int rc = 0;
  if (!cfg) {
    std::printf("model: cannot run: %s\n", cfg.message().c_str());
    rc = 1;
  } else {
    const ModelConfig& c = *cfg;
    const LayerConfig& l0 = c.layers[0];
    int n_local = 0;
    for (const LayerConfig& l : c.layers) n_local += l.sliding_window > 0 ? 1 : 0;
    std::printf("architecture: %s (%s)\n", c.arch.c_str(), c.name.c_str());
    std::printf("  n_vocab %lld, n_embd %d, n_layer %d, n_head %d, n_head_kv %d, head_dim %d, n_ff %d\n",
                static_cast<long long>(c.n_vocab), c.n_embd, c.n_layer, l0.n_head, l0.n_head_kv, l0.head_dim, l0.n_ff);
    std::printf("  context %lld, rms eps %g, rope %s over %d dims, base %g%s\n", static_cast<long long>(c.n_ctx_train),
                static_cast<double>(c.norm_eps), c.rope_style == ops::RopeStyle::kNeox ? "neox" : "norm", c.n_rot,
                static_cast<double>(c.layers.back().rope_base), c.tied_embeddings ? ", output tied to embeddings" : "");
    std::printf("  activation %s%s%s%s\n", c.act == Activation::kSilu ? "SiLU-gated" : "GELU-gated (tanh)",
                l0.qk_norm ? ", QK-norm" : "", l0.attn_bias ? ", q/k/v biases" : "",
                l0.post_attn_norm ? ", post-attention and post-FFN norms" : "");
    if (n_local > 0) {
      std::printf("  sliding window %d on %d of %d layers (local layers: rope base %g)\n", l0.sliding_window > 0 ? l0.sliding_window : c.layers.front().sliding_window,
                  n_local, c.n_layer, static_cast<double>(l0.rope_base));
    }
    print_moe(*f, c, n_params);
    // K and V slots of every layer, as KvCache sizes them, for each --kv-type.
    std::printf("  KV cache per token:");
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      const double bytes = 2.0 * static_cast<double>(kv_row_bytes(t, c.max_kv_dim())) * c.n_layer;
      std::printf(" %.1f KiB (%s)%s", bytes / 1024.0, kv_type_name(t), t == DType::Q8_0 ? "" : ",");
    }
    std::printf("; weights are used in place from the memory map\n");
  }
  if (a.metadata) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : f->metadata()) std::printf("  %s = %s\n", k.c_str(), v.to_string().c_str());
  }
  if (a.tensors) {
    std::printf("tensors:\n");
    for (const gguf::TensorInfo& t : f->tensors()) {
      std::printf("  %-32s %-6s [%lld, %lld, %lld, %lld]\n", t.name.c_str(), type_traits(t.dtype).name,
                  static_cast<long long>(t.ne[0]), static_cast<long long>(t.ne[1]), static_cast<long long>(t.ne[2]),
                  static_cast<long long>(t.ne[3]));
    }
  }
  return rc;
}

}  // namespace

void add_info(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand("info", "architecture, hyper-parameters, tensor types and sizes");
  sub->add_option("-m,--model", args->model,
                  "GGUF model file, or a safetensors file, sharded index or Hugging Face model directory")
      ->required();
  sub->add_flag("--metadata", args->metadata, "print all metadata");
  sub->add_flag("--tensors", args->tensors, "print every tensor");
  sub->final_callback([args, exit_code] { *exit_code = info(*args); });
}

}  // namespace flashlm::cli
