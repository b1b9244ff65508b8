#include "factory/quantize.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

#include "formats/gguf_writer.h"
#include "kernels/cpu/thread_pool.h"
#include "quant/quant.h"
#include "quant/quantize_weighted.h"

namespace flashlm::factory {
namespace {

// llama.cpp's llama_ftype numbers (include/llama.h) for the types flashlm makes.
const QuantType kMade[] = {
    {"F32", DType::F32, 0},
    {"F16", DType::F16, 1},
    {"BF16", DType::BF16, 32},
    {"Q8_0", DType::Q8_0, 7},
    {"Q5_1", DType::Q5_1, 9},
    {"Q5_0", DType::Q5_0, 8},
    {"Q4_1", DType::Q4_1, 3},
    {"Q4_0", DType::Q4_0, 2},
    {"Q6_K", DType::Q6_K, 18, QuantMix::kQ6_K},
    {"Q5_K_M", DType::Q5_K, 17, QuantMix::kQ5_K_M},
    {"Q5_K_S", DType::Q5_K, 16, QuantMix::kQ5_K_S},
    {"Q4_K_M", DType::Q4_K, 15, QuantMix::kQ4_K_M},
    {"Q4_K_S", DType::Q4_K, 14, QuantMix::kQ4_K_S},
    {"Q3_K_L", DType::Q3_K, 13, QuantMix::kQ3_K_L},
    {"Q3_K_M", DType::Q3_K, 12, QuantMix::kQ3_K_M},
    {"Q3_K_S", DType::Q3_K, 11, QuantMix::kQ3_K_S},
    {"Q2_K", DType::Q2_K, 10, QuantMix::kQ2_K},
    {"Q2_K_S", DType::Q2_K, 21, QuantMix::kQ2_K_S},
};

// llama-quantize names flashlm knows but cannot make yet.
constexpr std::string_view kNotYet[] = {"IQ4_NL", "IQ4_XS", "IQ3_S", "IQ3_M", "IQ3_XS", "IQ3_XXS", "IQ2_S",
                                        "IQ2_M",  "IQ2_XS", "IQ2_XXS", "IQ1_S", "IQ1_M", "TQ1_0",  "TQ2_0"};

std::string made_names() {
  std::string s;
  for (const QuantType& q : kMade) s += (s.empty() ? "" : ", ") + q.name;
  return s;
}

// Weight matrices: what llama-quantize quantizes for our families.
bool is_weight_matrix(const gguf::TensorInfo& t) {
  const std::string_view n = t.name;
  return t.n_dims >= 2 && n.ends_with("weight") && n.find("ffn_gate_inp") == std::string_view::npos;
}

bool fits(DType t, int64_t row) { return row % type_traits(t).block_size == 0; }

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third one
// between them.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// "blk.N.<rest>" -> N, or -1.
int64_t layer_of(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  int64_t v = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) v = v * 10 + (name[i] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? v : -1;
}

// What the per-tensor choices depend on besides the name.
struct MixContext {
  int64_t n_layer = 0;   // 0: no per-layer choices
  int64_t n_gqa = 0;     // query heads per KV head
  int64_t n_expert = 0;
  bool has_imatrix = false;
};

// The type llama-quantize gives a weight matrix under a mix (llama_tensor_get_type for
// the dense and MoE families other than Falcon), before the fallback for rows the type
// cannot hold.
DType mixed_type(const QuantType& q, std::string_view name, bool is_output, const MixContext& c) {
  if (is_output) return q.type == DType::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  const int64_t il = layer_of(name), n = c.n_layer;
  if (il < 0 || n <= 0) return q.type;
  const QuantMix m = q.mix;
  const bool n8 = c.n_expert == 8;
  if (name.ends_with("attn_v.weight")) {
    if (n8) return DType::Q8_0;  // 8 experts: attn_v is small beside them
    switch (m) {
      case QuantMix::kQ2_K: return c.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
      case QuantMix::kQ2_K_S: return c.n_gqa >= 4 ? DType::Q4_K : q.type;
      case QuantMix::kQ3_K_M: return il < 2 ? DType::Q5_K : DType::Q4_K;
      case QuantMix::kQ3_K_L: return DType::Q5_K;
      case QuantMix::kQ4_K_M:
      case QuantMix::kQ5_K_M: return use_more_bits(il, n) ? DType::Q6_K : q.type;
      case QuantMix::kQ4_K_S: return il < 4 ? DType::Q5_K : q.type;
      default: return q.type;
    }
  }
  if (name.ends_with("attn_k.weight")) return n8 ? DType::Q8_0 : q.type;
  if (name.ends_with("attn_output.weight")) {
    if (n8) {
      const bool up = m == QuantMix::kQ2_K || m == QuantMix::kQ3_K_S || m == QuantMix::kQ3_K_M ||
                      m == QuantMix::kQ4_K_S || m == QuantMix::kQ4_K_M;
      return up ? DType::Q5_K : q.type;
    }
    switch (m) {
      case QuantMix::kQ2_K: return DType::Q3_K;
      case QuantMix::kQ3_K_M: return DType::Q4_K;
      case QuantMix::kQ3_K_L: return DType::Q5_K;
      default: return q.type;
    }
  }
  if (name.find("ffn_down") != std::string_view::npos) {
    switch (m) {
      case QuantMix::kQ2_K: return DType::Q3_K;
      case QuantMix::kQ2_K_S: return il < n / 8 ? DType::Q4_K : q.type;
      case QuantMix::kQ3_K_M: return il < n / 16 ? DType::Q5_K : DType::Q4_K;
      case QuantMix::kQ3_K_L: return DType::Q5_K;
      case QuantMix::kQ4_K_M:
      case QuantMix::kQ5_K_M: return use_more_bits(il, n) ? DType::Q6_K : q.type;
      case QuantMix::kQ4_K_S: return il < n / 8 ? DType::Q5_K : q.type;
      default: break;
    }
    // With an imatrix, llama-quantize guards the first ffn_down layers of Q4_0/Q5_0.
    if (c.has_imatrix && il < n / 8 && (q.type == DType::Q4_0 || q.type == DType::Q5_0)) {
      return q.type == DType::Q4_0 ? DType::Q4_1 : DType::Q5_1;
    }
  }
  return q.type;
}

// llama.cpp's replacement for a K-quant whose blocks do not fit the rows (other types
// are left for the caller's error).
DType fallback(DType t, int64_t row) {
  if (fits(t, row)) return t;
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K: t = DType::Q4_0; break;
    case DType::Q4_K: t = DType::Q5_0; break;
    case DType::Q5_K: t = DType::Q5_1; break;
    case DType::Q6_K: t = DType::Q8_0; break;
    default: return t;
  }
  return fits(t, row) ? t : DType::F16;
}

// Rows per piece handed to the writer: about 4 MiB of f32 at a time.
int64_t rows_per_piece(int64_t row_len) { return std::max<int64_t>(1, (int64_t{1} << 20) / row_len); }

}  // namespace

Result<QuantType> parse_quant_type(std::string_view name) {
  std::string up(name);
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (up == "Q3_K" || up == "Q4_K" || up == "Q5_K") up += "_M";  // llama-quantize's aliases
  for (const QuantType& q : kMade) {
    if (up == q.name) return q;
  }
  if (std::find(std::begin(kNotYet), std::end(kNotYet), up) != std::end(kNotYet)) {
    return Status::error("type '" + std::string(name) + "' is not implemented yet: flashlm cannot make i-quants or "
                         "ternary types; types it makes: " + made_names());
  }
  return Status::error("unknown type '" + std::string(name) + "'; types flashlm makes: " + made_names());
}

Result<std::vector<TensorPlan>> plan_quantize(const gguf::File& in, const QuantType& to, bool pure,
                                              bool has_imatrix) {
  std::vector<TensorPlan> plan;
  plan.reserve(in.tensors().size());
  const bool has_output = in.find_tensor("output.weight") != nullptr;
  Result<std::string> arch_r = in.get_string_or("general.architecture", "");
  const std::string arch = arch_r ? *arch_r : std::string();
  auto key_or_0 = [&in, &arch](const char* key) {
    Result<int64_t> v = in.get_int_or(arch + "." + key, 0);  // per-layer arrays count as absent
    return v ? *v : 0;
  };
  MixContext mc;
  mc.n_layer = key_or_0("block_count");
  const int64_t n_head = key_or_0("attention.head_count"), n_head_kv = key_or_0("attention.head_count_kv");
  mc.n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 0;
  mc.n_expert = key_or_0("expert_count");
  mc.has_imatrix = has_imatrix;
  const bool quantized = type_traits(to.type).is_quantized;
  for (const gguf::TensorInfo& t : in.tensors()) {
    TensorPlan p{&t, t.dtype};
    if (!is_weight_matrix(t)) {
      plan.push_back(p);
      continue;
    }
    DType want = to.type;
    if (!pure && quantized) {
      const bool is_output = t.name == "output.weight" || (!has_output && t.name == "token_embd.weight");
      want = fallback(mixed_type(to, t.name, is_output, mc), t.ne[0]);
    }
    if (want != t.dtype) {
      if (type_traits(t.dtype).to_float == nullptr) {
        return Status::error("tensor '" + t.name + "': its type cannot be read for requantizing");
      }
      if (!fits(want, t.ne[0])) {
        return Status::error("tensor '" + t.name + "': rows of " + std::to_string(t.ne[0]) + " elements cannot be " +
                             type_traits(want).name + " (blocks of " + std::to_string(type_traits(want).block_size) +
                             ")");
      }
    }
    p.type = want;
    plan.push_back(p);
  }
  return plan;
}

Status quantize_model(const gguf::File& in, const QuantType& to, const std::string& out_path,
                      const QuantizeOptions& opts) {
  std::error_code ec;
  if (std::filesystem::equivalent(in.path(), out_path, ec)) {
    return Status::error("the output '" + out_path + "' is the input file; write to another path");
  }
  if (opts.imatrix != nullptr) {
    if (Status st = check_imatrix_fits(*opts.imatrix, in); !st) return st;
  }
  Result<std::vector<TensorPlan>> plan = plan_quantize(in, to, opts.pure, opts.imatrix != nullptr);
  if (!plan) return plan.status();
  // Written in llama-quantize's order (its loader's: by layer, tensors outside the blocks
  // first, then by name), so whole files can be compared byte for byte.
  std::stable_sort(plan->begin(), plan->end(), [](const TensorPlan& a, const TensorPlan& b) {
    const int64_t la = layer_of(a.src->name), lb = layer_of(b.src->name);
    return la != lb ? la < lb : a.src->name < b.src->name;
  });
  // Each converted matrix's imatrix rows ([n_mat][n_cols]), where the file has them and
  // its type uses them.
  std::vector<std::vector<float>> importance(plan->size());
  for (size_t i = 0; i < plan->size(); ++i) {
    TensorPlan& p = (*plan)[i];
    if (opts.imatrix == nullptr || !p.converted() || quant::quantize_row_weighted(p.type) == nullptr) continue;
    const gguf::TensorInfo& t = *p.src;
    Result<std::vector<float>> w = opts.imatrix->importance(t.name, t.ne[0], t.n_dims >= 3 ? t.ne[2] : 1);
    if (!w) return w.status();
    importance[i] = std::move(w).value();
    p.weighted = !importance[i].empty();
  }

  gguf::Writer w;
  w.copy_metadata(in);
  // Removed and appended in llama-quantize's order (ggml's gguf_set_* moves a key to the
  // end), so the output's bytes can be compared with its output.
  for (const char* k : {"general.quantization_version", "general.file_type"}) w.remove(k);
  w.set("general.quantization_version", gguf::make_u32(2));  // ggml's GGML_QNT_VERSION
  w.set("general.file_type", gguf::make_u32(to.file_type));
  if (opts.imatrix != nullptr) {  // llama-quantize's record of the imatrix used
    const Imatrix& m = *opts.imatrix;
    w.set("quantize.imatrix.file", gguf::make_string(opts.imatrix_path));
    if (!m.datasets.empty()) w.set("quantize.imatrix.dataset", gguf::make_string(m.datasets.front()));
    w.set("quantize.imatrix.entries_count", gguf::make_u32(static_cast<uint32_t>(m.entries.size())));
    w.set("quantize.imatrix.chunks_count", gguf::make_u32(m.chunk_count));
  }

  auto pool = std::make_shared<ThreadPool>(opts.n_threads > 0 ? opts.n_threads : usable_cpu_count());
  const size_t n_tensors = plan->size();
  for (size_t i = 0; i < n_tensors; ++i) {
    const TensorPlan* p = &(*plan)[i];
    const gguf::TensorInfo& t = *p->src;
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    // Progress is reported as each tensor's bytes are produced, i.e. during the write.
    auto report = [&opts, i, n_tensors, p] {
      if (opts.progress) opts.progress({i + 1, n_tensors, p});
    };
    Status st;
    if (!p->converted()) {
      st = w.add_tensor(t.name, t.dtype, std::move(ne), gguf::TensorProducer([report, &t](gguf::TensorSink& sink) {
                          report();
                          return sink.write(t.data, t.size_bytes);
                        }));
    } else {
      const float* qw = importance[i].empty() ? nullptr : importance[i].data();
      st = w.add_tensor(t.name, p->type, std::move(ne), [report, p, pool, qw](gguf::TensorSink& sink) {
        report();
        const gguf::TensorInfo& src = *p->src;
        const int64_t n = src.ne[0];
        const int64_t rows = src.nelements() / n;
        const int64_t rows_per_mat = src.ne[1];  // a 3-D stack has one imatrix row per matrix
        const quant::QuantizeRowWeightedFn weighted = quant::quantize_row_weighted(p->type);
        const size_t in_bytes = row_size(src.dtype, n), out_bytes = row_size(p->type, n);
        const int64_t piece = rows_per_piece(n);
        std::vector<uint8_t> out(static_cast<size_t>(std::min(piece, rows)) * out_bytes);
        std::vector<std::vector<float>> scratch(static_cast<size_t>(pool->size()), std::vector<float>(static_cast<size_t>(n)));
        for (int64_t r0 = 0; r0 < rows; r0 += piece) {
          const int64_t nr = std::min(piece, rows - r0);
          pool->parallel_for(nr, [&](int64_t b, int64_t e, int chunk) {
            float* f = scratch[static_cast<size_t>(chunk)].data();
            for (int64_t r = b; r < e; ++r) {
              type_traits(src.dtype).to_float(src.data + static_cast<size_t>(r0 + r) * in_bytes, f, n);
              uint8_t* dst = out.data() + static_cast<size_t>(r) * out_bytes;
              if (qw != nullptr) weighted(f, dst, n, qw + (r0 + r) / rows_per_mat * n);
              else type_traits(p->type).from_float(f, dst, n);
            }
          });
          if (Status s = sink.write(out.data(), static_cast<size_t>(nr) * out_bytes); !s) return s;
        }
        return Status::ok();
      });
    }
    if (!st) return st.with_context("tensor '" + t.name + "'");
  }
  return w.write(out_path);
}

}  // namespace flashlm::factory
