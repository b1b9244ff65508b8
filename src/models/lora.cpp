#include "models/lora.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul.h"
#include "models/weights.h"
#include "quant/quant.h"
#include "util/xxhash64.h"

namespace flashlm {
namespace {

constexpr const char* kTargetNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

const TensorView& base_view(const LayerWeights& lw, LoraTarget t) {
  switch (t) {
    case LoraTarget::kQ: return lw.wq;
    case LoraTarget::kK: return lw.wk;
    case LoraTarget::kV: return lw.wv;
    case LoraTarget::kO: return lw.wo;
    case LoraTarget::kGate: return lw.ffn.gate;
    case LoraTarget::kUp: return lw.ffn.up;
    default: return lw.ffn.down;
  }
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// "blk.N.KIND.weight" -> (N, KIND); false for any other name.
bool parse_target(const std::string& name, int n_layer, int* layer, LoraTarget* target) {
  if (name.rfind("blk.", 0) != 0 || !ends_with(name, ".weight")) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4 || dot - 4 > 6) return false;
  int il = 0;
  for (size_t i = 4; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    il = il * 10 + (name[i] - '0');
  }
  if (il >= n_layer) return false;
  const std::string kind = name.substr(dot + 1, name.size() - dot - 1 - std::strlen(".weight"));
  for (int t = 0; t < static_cast<int>(LoraTarget::kCount); ++t) {
    if (kind == kTargetNames[t]) {
      *layer = il;
      *target = static_cast<LoraTarget>(t);
      return true;
    }
  }
  return false;
}

std::string shape_text(const gguf::TensorInfo& t) {
  return "[" + std::to_string(t.ne[0]) + ", " + std::to_string(t.ne[1]) + ", " + std::to_string(t.ne[2]) + ", " +
         std::to_string(t.ne[3]) + "]";
}

TensorView f32_view(float* data, int64_t ne0, int64_t ne1) {
  TensorView v;
  v.dtype = DType::F32;
  v.n_dims = 2;
  v.ne = {ne0, ne1, 1, 1};
  const size_t row = static_cast<size_t>(ne0) * sizeof(float);
  v.nb = {sizeof(float), row, row * static_cast<size_t>(ne1), row * static_cast<size_t>(ne1)};
  v.data = data;
  return v;
}

}  // namespace

const char* lora_target_name(LoraTarget t) { return kTargetNames[static_cast<int>(t)]; }

Result<LoraSet> LoraSet::load(const std::vector<LoraSpec>& specs, const gguf::File& base, const ModelConfig& cfg,
                              const ModelWeights& w, const ComputeBackend& backend) {
  LoraSet set;
  if (specs.empty()) return set;
  set.layers_.resize(static_cast<size_t>(cfg.n_layer));
  Result<std::string> base_arch = base.get_string("general.architecture");
  if (!base_arch) return base_arch.status();
  uint64_t fp = 0x6c6f7261ULL;  // "lora"
  for (const LoraSpec& spec : specs) {
    const std::string where = "LoRA adapter '" + spec.path + "'";
    Result<gguf::File> f = gguf::File::open(spec.path);
    if (!f) return f.status().with_context(where);
    Result<std::string> type = f->get_string_or("general.type", "");
    Result<std::string> kind = f->get_string_or("adapter.type", "");
    Result<std::string> arch = f->get_string_or("general.architecture", "");
    Result<double> alpha = f->get_float_or("adapter.lora.alpha", 0.0);
    if (!type || !kind || !arch || !alpha) {
      return Status::error(where + ": " + (!type ? type.message() : !kind ? kind.message() : !arch ? arch.message()
                                                                                                    : alpha.message()));
    }
    if (*type != "adapter" || *kind != "lora") {
      return Status::error(where + " is not a LoRA adapter (general.type '" + *type + "', adapter.type '" + *kind +
                           "'; expected 'adapter' and 'lora')");
    }
    if (*arch != *base_arch) {
      return Status::error(where + " is for architecture '" + *arch + "', the model is '" + *base_arch + "'");
    }
    int n_pairs = 0;
    for (const gguf::TensorInfo& ta : f->tensors()) {
      if (ends_with(ta.name, ".lora_b")) continue;  // met through its lora_a
      if (!ends_with(ta.name, ".lora_a")) {
        return Status::error(where + ": tensor '" + ta.name + "' is neither a .lora_a nor a .lora_b");
      }
      const std::string target = ta.name.substr(0, ta.name.size() - std::strlen(".lora_a"));
      const gguf::TensorInfo* tb = f->find_tensor(target + ".lora_b");
      if (tb == nullptr) return Status::error(where + ": '" + ta.name + "' has no '" + target + ".lora_b'");
      int il = 0;
      LoraTarget t = LoraTarget::kQ;
      const bool known = parse_target(target, cfg.n_layer, &il, &t);
      const TensorView* bv = known ? &base_view(w.layers[static_cast<size_t>(il)], t) : nullptr;
      if (bv == nullptr || bv->data == nullptr) {
        return Status::error(where + " adapts '" + target +
                             "', which flashlm cannot adapt in this model (LoRA applies to the attn_q, attn_k, "
                             "attn_v, attn_output, ffn_gate, ffn_up and ffn_down matrices of dense layers)");
      }
      const int64_t rank = ta.ne[1];
      if (ta.n_dims > 2 || tb->n_dims > 2 || rank < 1 || tb->ne[0] != rank || ta.ne[0] != bv->ne[0] ||
          tb->ne[1] != bv->ne[1]) {
        return Status::error(where + ": '" + target + "' pairs lora_a " + shape_text(ta) + " with lora_b " +
                             shape_text(*tb) + "; the base matrix needs [" + std::to_string(bv->ne[0]) +
                             ", rank] and [rank, " + std::to_string(bv->ne[1]) + "]");
      }
      for (const gguf::TensorInfo* ti : {&ta, tb}) {
        if (type_traits(ti->dtype).to_float == nullptr) {
          return Status::error(where + ": tensor '" + ti->name + "' has type " + type_traits(ti->dtype).name +
                               ", which cannot be read");
        }
      }
      // llama.cpp's scaling: alpha / rank when the adapter states alpha, else 1.
      const float scale = spec.scale * (*alpha != 0.0 ? static_cast<float>(*alpha / static_cast<double>(rank)) : 1.0f);
      LoraPair pair;
      for (int which = 0; which < 2; ++which) {
        const gguf::TensorInfo& ti = which == 0 ? ta : *tb;
        std::vector<float>& dst = set.store_.emplace_back(static_cast<size_t>(ti.ne[0] * ti.ne[1]));
        const TensorView src = ti.view();
        for (int64_t r = 0; r < ti.ne[1]; ++r) dequantize_row(src, r, dst.data() + r * ti.ne[0]);
        if (which == 1) {
          for (float& v : dst) v *= scale;
        }
        Result<TensorView> placed = backend.place(f32_view(dst.data(), ti.ne[0], ti.ne[1]));
        if (!placed) return placed.status().with_context(where);
        (which == 0 ? pair.a : pair.b) = *placed;
      }
      set.layers_[static_cast<size_t>(il)].at[static_cast<int>(t)].push_back(pair);
      set.max_rank_ = std::max(set.max_rank_, rank);
      ++n_pairs;
    }
    if (n_pairs == 0) return Status::error(where + " holds no LoRA tensors");
    fp = xxh64(f->bytes(), f->file_size(), fp);
    fp = xxh64(&spec.scale, sizeof spec.scale, fp);
  }
  set.fingerprint_ = fp;
  return set;
}

void apply_lora(const ComputeBackend& be, const ExecContext& ctx, const std::vector<LoraPair>& pairs, const float* x,
                int64_t ldx, float* y, int64_t n_out, int64_t n, float* h, float* tmp) {
  for (const LoraPair& p : pairs) {
    const int64_t rank = p.a.ne[1];
    be.matmul(ctx, p.a, x, ldx, h, rank, n);
    be.matmul(ctx, p.b, h, rank, tmp, n_out, n);
    be.add(ctx, y, tmp, y, n * n_out);
  }
}

}  // namespace flashlm
