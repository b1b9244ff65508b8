#include "hf/hf_model.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "hf/hf_tokenizer.h"
#include "quant/quant.h"
#include "util/huge_pages.h"

namespace flashlm::hf {
namespace {

namespace fs = std::filesystem;

// How one Hugging Face tensor becomes a GGUF one.
struct Mapped {
  std::string name;  // GGUF name
  int64_t permute_heads = 0;  // > 0: rows reordered as llama.cpp's converter does for Q/K
};

// Llama's names: Hugging Face -> GGUF. std::nullopt for a tensor the GGUF does not keep.
Result<std::optional<Mapped>> map_llama(const std::string& hf, const HfArch& a) {
  static const std::map<std::string, std::string> kTop = {{"model.embed_tokens.weight", "token_embd.weight"},
                                                          {"model.norm.weight", "output_norm.weight"},
                                                          {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> kLayer = {
      {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.o_proj.weight", "attn_output.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (auto it = kTop.find(hf); it != kTop.end()) {
    if (hf == "lm_head.weight" && a.tied_embeddings) return std::optional<Mapped>();  // the embedding serves
    return std::optional<Mapped>(Mapped{it->second, 0});
  }
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) == 0) {
    const size_t dot = hf.find('.', prefix.size());
    const std::string idx = hf.substr(prefix.size(), dot == std::string::npos ? 0 : dot - prefix.size());
    if (dot != std::string::npos && !idx.empty() && idx.size() < 6 &&
        idx.find_first_not_of("0123456789") == std::string::npos && std::stoll(idx) < a.n_layer) {
      const std::string rest = hf.substr(dot + 1);
      if (rest == "self_attn.rotary_emb.inv_freq") return std::optional<Mapped>();  // recomputed from rope_theta
      if (auto it = kLayer.find(rest); it != kLayer.end()) {
        const int64_t heads = rest == "self_attn.q_proj.weight"   ? a.n_head
                              : rest == "self_attn.k_proj.weight" ? a.n_head_kv
                                                                  : 0;
        return std::optional<Mapped>(Mapped{"blk." + idx + "." + it->second, heads});
      }
    }
  }
  return Status::error("tensor '" + hf + "' has no place in a " + a.hf_name + " model");
}

// GGUF row r of a Q or K matrix reads Hugging Face row src_row(r): llama.cpp's converter
// moves each head's rotate-half pairs (j, j + d/2) next to each other (RoPE on adjacent
// pairs), so row h*d + 2j + p comes from row h*d + p*d/2 + j.
int64_t src_row(int64_t r, int64_t head_dim) {
  const int64_t h = r / head_dim, i = r % head_dim;
  return h * head_dim + (i % 2) * (head_dim / 2) + i / 2;
}

Result<nlohmann::json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::error("cannot read '" + p.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::error("'" + p.string() + "' is not valid JSON");
  return j;
}

}  // namespace

bool is_model_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

Result<HfModel> HfModel::open(const std::string& dir) {
  HfModel m;
  m.dir_ = dir;
  const fs::path config = fs::path(dir) / "config.json";
  Result<nlohmann::json> cj = read_json(config);
  if (!cj) return cj.status();
  Result<HfArch> arch = arch_from_config(*cj, config.string());
  if (!arch) return arch.status();
  m.arch_ = std::move(arch.value());
  Result<safetensors::Shards> shards = safetensors::Shards::open(dir);
  if (!shards) return shards.status();
  m.shards_ = std::move(shards.value());
  if (!fs::exists(fs::path(dir) / "tokenizer.json")) {
    return Status::error("'" + dir + "' has no tokenizer.json (the only tokenizer format read from a directory)");
  }
  Result<std::vector<std::pair<std::string, gguf::Value>>> tk = tokenizer_keys(dir);
  if (!tk) return tk.status();
  m.tokenizer_keys_ = std::move(tk.value());
  return m;
}

Status HfModel::to_gguf(const ConvertOptions& opts, gguf::Writer* out) const {
  if (opts.type && *opts.type != DType::F32 && *opts.type != DType::F16 && *opts.type != DType::BF16 &&
      *opts.type != DType::Q8_0) {
    return Status::error("conversion to " + std::string(type_traits(*opts.type).name ? type_traits(*opts.type).name : "this type") +
                         " is not supported (supported: f32, f16, bf16, q8_0)");
  }
  // Untied weights need their own output matrix: without one the loader would tie them.
  if (!arch_.tied_embeddings && shards_.find("lm_head.weight") == nullptr) {
    return Status::error("'" + dir_ + "': 'tie_word_embeddings' is false but there is no 'lm_head.weight'");
  }
  for (const auto& [k, v] : arch_.keys) out->set(k, v);
  fs::path named = fs::path(dir_).lexically_normal();
  if (named.filename().empty()) named = named.parent_path();  // "models/x/" names x, not ""
  out->set("general.name", gguf::make_string(named.filename().string()));
  for (const auto& [k, v] : tokenizer_keys_) out->set(k, v);
  for (const std::string& name : shards_.names()) {
    Result<std::optional<Mapped>> mapped = map_llama(name, arch_);
    if (!mapped) return mapped.status();
    if (!*mapped) continue;
    const safetensors::TensorInfo* t = shards_.find(name);
    if (!t->supported) {
      return Status::error("tensor '" + name + "' is stored as " + t->dtype + " (supported: F32, F16, BF16)");
    }
    if (t->shape.empty() || t->shape.size() > 2) {
      return Status::error("tensor '" + name + "' has " + std::to_string(t->shape.size()) +
                           " dimensions (1 or 2 expected)");
    }
    const bool matrix = t->shape.size() == 2;
    const int64_t n_in = t->shape.back();
    const int64_t n_rows = matrix ? t->shape[0] : 1;
    const int64_t heads = (*mapped)->permute_heads;
    if (heads > 0 && n_rows != heads * arch_.head_dim) {
      return Status::error("tensor '" + name + "' has " + std::to_string(n_rows) + " rows, expected " +
                           std::to_string(heads * arch_.head_dim));
    }
    const DType src = t->type;
    const DType dst = matrix ? opts.type.value_or(src) : DType::F32;
    std::vector<int64_t> ne = matrix ? std::vector<int64_t>{n_in, n_rows} : std::vector<int64_t>{n_in};
    Status st;
    if (src == dst && heads == 0) {
      st = out->add_tensor((*mapped)->name, dst, std::move(ne), t->data);
    } else {
      const uint8_t* data = t->data;
      const size_t src_row_bytes = static_cast<size_t>(n_in) * type_traits(src).type_size;
      const int64_t head_dim = arch_.head_dim;
      st = out->add_tensor((*mapped)->name, dst, std::move(ne), [=](gguf::TensorSink& sink) -> Status {
        const TypeTraits& from = type_traits(src);
        const TypeTraits& to = type_traits(dst);
        std::vector<float> row(static_cast<size_t>(n_in));
        std::vector<uint8_t> packed(static_cast<size_t>(n_in / to.block_size) * to.type_size);
        for (int64_t r = 0; r < n_rows; ++r) {
          const int64_t s = heads > 0 ? src_row(r, head_dim) : r;
          from.to_float(data + static_cast<size_t>(s) * src_row_bytes, row.data(), n_in);
          to.from_float(row.data(), packed.data(), n_in);
          if (Status ws = sink.write(packed.data(), packed.size()); !ws) return ws;
        }
        return Status::ok();
      });
    }
    if (!st) return st.with_context("tensor '" + name + "'");
  }
  return Status::ok();
}

Result<gguf::File> open_as_gguf(const std::string& dir) {
  Result<HfModel> m = HfModel::open(dir);
  if (!m) return m.status();
  gguf::Writer w;
  if (Status st = m->to_gguf(ConvertOptions{}, &w); !st) return st.with_context("'" + dir + "'");
  // The image lives in anonymous memory: refuse what would not fit rather than be killed.
  const uint64_t need = w.size_bytes();
  const uint64_t avail = available_memory_bytes();
  if (avail > 0 && need > avail) {
    return Status::error("'" + dir + "' needs " + std::to_string(need >> 20) + " MiB in memory, " +
                         std::to_string(avail >> 20) +
                         " MiB are available: write a file with flashlm convert and load that with --mmap");
  }
  Result<MappedFile> bytes = w.write_to_memory(dir);
  if (!bytes) return bytes.status();
  Result<gguf::File> f = gguf::File::parse(std::move(bytes.value()));
  if (!f) return f.status().with_context("'" + dir + "' (converted)");
  return f;
}

Result<gguf::File> open_model(const std::string& path, FileBacking backing) {
  return is_model_dir(path) ? open_as_gguf(path) : gguf::File::open(path, backing);
}

Status check_backing(const std::string& path, FileBacking backing) {
  if (backing == FileBacking::kMap && is_model_dir(path)) {
    return Status::error("'" + path +
                         "' is a Hugging Face directory, converted in memory; --mmap maps files only (write one "
                         "with flashlm convert)");
  }
  return Status::ok();
}

}  // namespace flashlm::hf
