// Planning a structured prune: the file's shape, the scores, what each layer keeps.
// Writing the pruned file is prune_write.cpp.
#include "factory/prune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "quant/quant.h"

namespace flashlm::factory {
namespace {

constexpr const char* kSupported = "pruning supports dense llama/gemma3/qwen models";

std::string blk(int layer, const char* suffix) { return "blk." + std::to_string(layer) + "." + suffix; }

// A matrix [ne0, ne1] (ne0 the row length) or a vector [ne0] (ne1 == 0) of exactly that
// shape; the writer and the norms rely on it, so a file that lies fails here.
Status expect_shape(const gguf::File& f, const std::string& name, int64_t ne0, int64_t ne1, bool required) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr) return required ? Status::error("missing tensor '" + name + "'") : Status::ok();
  const int dims = ne1 == 0 ? 1 : 2;
  if (t->n_dims != dims || t->ne[0] != ne0 || (dims == 2 && t->ne[1] != ne1)) {
    return Status::error("tensor '" + name + "' has an unexpected shape for this model's hyper-parameters");
  }
  if (type_traits(t->dtype).to_float == nullptr) {
    return Status::error("tensor '" + name + "': its type cannot be read for pruning");
  }
  return Status::ok();
}

// The indices of the k highest scores (ties to the lower index), ascending.
template <typename Index>
std::vector<Index> top_k(const std::vector<double>& score, int64_t k) {
  std::vector<Index> idx(score.size());
  std::iota(idx.begin(), idx.end(), Index{0});
  std::stable_sort(idx.begin(), idx.end(), [&](Index a, Index b) {
    return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
  });
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Root mean square of each column's inputs, from a weight's calibration statistics.
Result<std::vector<double>> input_rms(const ActivationStats& stats, const std::string& name, int64_t n_cols) {
  auto it = stats.matrices.find(name);
  if (it == stats.matrices.end() || it->second.n_cols != n_cols || it->second.n_mat() != 1) {
    return Status::error("the calibration statistics have no activations for '" + name + "'");
  }
  const MatrixActivations& m = it->second;
  if (m.count[0] <= 0) return Status::error("the calibration never ran '" + name + "'");
  std::vector<double> rms(static_cast<size_t>(n_cols));
  for (size_t j = 0; j < rms.size(); ++j) rms[j] = std::sqrt(m.sum_x2[j] / static_cast<double>(m.count[0]));
  return rms;
}

double sum_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// Sum of squares of every column of a [n_cols, n_rows] matrix, dequantized row by row.
std::vector<double> column_sq_sums(const gguf::TensorInfo& t) {
  const int64_t n = t.ne[0], rows = t.ne[1];
  const size_t rb = row_size(t.dtype, n);
  std::vector<double> sq(static_cast<size_t>(n), 0.0);
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    type_traits(t.dtype).to_float(t.data + static_cast<size_t>(r) * rb, row.data(), n);
    for (int64_t j = 0; j < n; ++j) sq[static_cast<size_t>(j)] += static_cast<double>(row[j]) * row[j];
  }
  return sq;
}

}  // namespace

Result<PruneShape> read_prune_shape(const gguf::File& f) {
  Result<std::string> arch = f.get_string("general.architecture");
  if (!arch) return arch.status();
  if (*arch != "llama" && *arch != "gemma3" && *arch != "qwen2" && *arch != "qwen3") {
    return Status::error(std::string(kSupported) + " (this file is '" + *arch + "')");
  }
  const std::string a = *arch;
  Result<int64_t> experts = f.get_int_or(a + ".expert_count", 0);
  if (!experts) return experts.status();
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (*experts > 0 || t.name.find("_exps.") != std::string::npos || t.name.find("ffn_gate_inp") != std::string::npos) {
      return Status::error(std::string(kSupported) + "; this one has Mixture-of-Experts layers");
    }
  }
  PruneShape s;
  s.arch = a;
  Result<int64_t> n_layer = f.get_int(a + ".block_count");
  Result<int64_t> n_embd = f.get_int(a + ".embedding_length");
  Result<int64_t> n_head = f.get_int(a + ".attention.head_count");
  Result<int64_t> n_ff = f.get_int(a + ".feed_forward_length");
  for (const Result<int64_t>* r : {&n_layer, &n_embd, &n_head, &n_ff}) {
    if (!r->is_ok()) return r->status();
  }
  Result<int64_t> n_head_kv = f.get_int_or(a + ".attention.head_count_kv", *n_head);
  if (!n_head_kv) return n_head_kv.status();
  if (*n_layer < 1 || *n_layer > 1024 || *n_head < 1 || *n_head > 1024 || *n_head_kv < 1 || *n_head % *n_head_kv != 0 ||
      *n_ff < 1 || *n_ff > (int64_t{1} << 20) || *n_embd < 1) {
    return Status::error("the model's hyper-parameters are out of range");
  }
  Result<int64_t> head_dim = f.get_int_or(a + ".attention.key_length", *n_embd / *n_head);
  if (!head_dim) return head_dim.status();
  if (*head_dim < 1 || *head_dim > 1024) return Status::error("attention.key_length is out of range");
  s.n_layer = static_cast<int>(*n_layer);
  s.n_embd = *n_embd;
  s.n_head = static_cast<int>(*n_head);
  s.n_head_kv = static_cast<int>(*n_head_kv);
  s.head_dim = static_cast<int>(*head_dim);
  s.n_ff = *n_ff;
  const int64_t q_dim = int64_t{s.n_head} * s.head_dim, kv_dim = int64_t{s.n_head_kv} * s.head_dim;
  for (int l = 0; l < s.n_layer; ++l) {
    const Status checks[] = {
        expect_shape(f, blk(l, "ffn_gate.weight"), s.n_embd, s.n_ff, true),
        expect_shape(f, blk(l, "ffn_up.weight"), s.n_embd, s.n_ff, true),
        expect_shape(f, blk(l, "ffn_down.weight"), s.n_ff, s.n_embd, true),
        expect_shape(f, blk(l, "attn_q.weight"), s.n_embd, q_dim, true),
        expect_shape(f, blk(l, "attn_k.weight"), s.n_embd, kv_dim, true),
        expect_shape(f, blk(l, "attn_v.weight"), s.n_embd, kv_dim, true),
        expect_shape(f, blk(l, "attn_output.weight"), q_dim, s.n_embd, true),
        expect_shape(f, blk(l, "attn_q.bias"), q_dim, 0, false),
        expect_shape(f, blk(l, "attn_k.bias"), kv_dim, 0, false),
        expect_shape(f, blk(l, "attn_v.bias"), kv_dim, 0, false),
    };
    for (const Status& st : checks) {
      if (!st) return st;
    }
  }
  return s;
}

Status check_prune_options(const PruneShape& s, const PruneOptions& o) {
  auto range = [](const std::string& what, int64_t v, int64_t hi, const std::string& why) {
    if (v >= 1 && v <= hi) return Status::ok();
    return Status::error("cannot keep " + std::to_string(v) + " " + what + ": keep 1.." + std::to_string(hi) + why);
  };
  Status st;
  if (o.ffn_neurons != -1 && !(st = range("FFN neurons per layer", o.ffn_neurons, s.n_ff,
                                          " (the model has " + std::to_string(s.n_ff) + ")"))) {
    return st;
  }
  if (o.kv_groups != -1 && !(st = range("KV groups per layer", o.kv_groups, s.n_head_kv,
                                        " (the model has " + std::to_string(s.n_head_kv) + ")"))) {
    return st;
  }
  if (o.heads_per_group != -1 && !(st = range("query heads per KV group", o.heads_per_group, s.n_gqa(),
                                              " (the model has " + std::to_string(s.n_gqa()) + " per group)"))) {
    return st;
  }
  if (o.drop_layers < 0 || o.drop_layers >= s.n_layer) {
    return Status::error("cannot drop " + std::to_string(o.drop_layers) + " layers: drop 0.." +
                         std::to_string(s.n_layer - 1) + " (the model has " + std::to_string(s.n_layer) + ")");
  }
  return Status::ok();
}

Result<WeightNorms> read_weight_norms(const gguf::File& f, const PruneShape& s) {
  WeightNorms w;
  for (int l = 0; l < s.n_layer; ++l) {
    const gguf::TensorInfo* down = f.find_tensor(blk(l, "ffn_down.weight"));
    const gguf::TensorInfo* wo = f.find_tensor(blk(l, "attn_output.weight"));
    if (down == nullptr || wo == nullptr) return Status::error("layer " + std::to_string(l) + " lacks its matrices");
    std::vector<double> d = column_sq_sums(*down);
    for (double& x : d) x = std::sqrt(x);
    w.ffn_down_cols.push_back(std::move(d));
    const std::vector<double> o = column_sq_sums(*wo);
    std::vector<double> heads(static_cast<size_t>(s.n_head), 0.0);
    for (size_t c = 0; c < o.size(); ++c) heads[c / static_cast<size_t>(s.head_dim)] += o[c];
    for (double& x : heads) x = std::sqrt(x);
    w.attn_out_heads.push_back(std::move(heads));
  }
  return w;
}

bool PrunePlan::keeps_all() const {
  return after.n_layer == before.n_layer && after.n_ff == before.n_ff && after.n_head == before.n_head &&
         after.n_head_kv == before.n_head_kv;
}

Result<PrunePlan> plan_prune(const PruneShape& s, const ActivationStats& stats, const WeightNorms& norms,
                             const PruneOptions& o) {
  if (Status st = check_prune_options(s, o); !st) return st;
  if (norms.ffn_down_cols.size() != static_cast<size_t>(s.n_layer) ||
      norms.attn_out_heads.size() != static_cast<size_t>(s.n_layer)) {
    return Status::error("the weight norms do not match the model's layers");
  }
  PrunePlan p;
  p.before = s;
  p.after = s;
  p.after.n_ff = o.ffn_neurons == -1 ? s.n_ff : o.ffn_neurons;
  const int kv_keep = o.kv_groups == -1 ? s.n_head_kv : o.kv_groups;
  const int per_group = o.heads_per_group == -1 ? s.n_gqa() : o.heads_per_group;
  p.after.n_head_kv = kv_keep;
  p.after.n_head = kv_keep * per_group;
  p.after.n_layer = s.n_layer - o.drop_layers;

  // Depth: the layers that change the hidden state least go.
  p.influence.resize(static_cast<size_t>(s.n_layer));
  for (int l = 0; l < s.n_layer; ++l) p.influence[static_cast<size_t>(l)] = stats.block_influence(l);
  if (o.drop_layers > 0 && stats.layer_cos_n.size() != static_cast<size_t>(s.n_layer)) {
    return Status::error("the calibration statistics have no layer influence for this model");
  }
  const std::vector<int> kept = top_k<int>(p.influence, s.n_layer - o.drop_layers);
  for (int l = 0, k = 0; l < s.n_layer; ++l) {
    if (k < static_cast<int>(kept.size()) && kept[static_cast<size_t>(k)] == l) ++k;
    else p.dropped.push_back(l);
  }

  for (int l : kept) {
    LayerPlan lp;
    lp.src = l;
    const std::vector<double>& down = norms.ffn_down_cols[static_cast<size_t>(l)];
    const std::vector<double>& wo = norms.attn_out_heads[static_cast<size_t>(l)];
    if (down.size() != static_cast<size_t>(s.n_ff) || wo.size() != static_cast<size_t>(s.n_head)) {
      return Status::error("the weight norms of layer " + std::to_string(l) + " do not match the model");
    }
    if (p.after.n_ff == s.n_ff) {
      lp.neurons.resize(static_cast<size_t>(s.n_ff));
      std::iota(lp.neurons.begin(), lp.neurons.end(), int64_t{0});
    } else {
      Result<std::vector<double>> rms = input_rms(stats, blk(l, "ffn_down.weight"), s.n_ff);
      if (!rms) return rms.status();
      std::vector<double> score(*rms);
      for (size_t j = 0; j < score.size(); ++j) score[j] *= down[j];
      lp.neurons = top_k<int64_t>(score, p.after.n_ff);
      double kept_sum = 0;
      for (int64_t j : lp.neurons) kept_sum += score[static_cast<size_t>(j)];
      lp.ffn_score_kept = sum_of(score) > 0 ? kept_sum / sum_of(score) : 1.0;
    }
    if (kv_keep == s.n_head_kv && per_group == s.n_gqa()) {
      lp.kv_groups.resize(static_cast<size_t>(s.n_head_kv));
      std::iota(lp.kv_groups.begin(), lp.kv_groups.end(), 0);
      lp.heads.resize(static_cast<size_t>(s.n_head));
      std::iota(lp.heads.begin(), lp.heads.end(), 0);
    } else {
      Result<std::vector<double>> rms =
          input_rms(stats, blk(l, "attn_output.weight"), int64_t{s.n_head} * s.head_dim);
      if (!rms) return rms.status();
      std::vector<double> head(static_cast<size_t>(s.n_head), 0.0), group(static_cast<size_t>(s.n_head_kv), 0.0);
      for (size_t h = 0; h < head.size(); ++h) {
        double e = 0;  // mean energy of the head's columns, summed
        for (size_t c = 0; c < static_cast<size_t>(s.head_dim); ++c) {
          const double r = (*rms)[h * static_cast<size_t>(s.head_dim) + c];
          e += r * r;
        }
        head[h] = std::sqrt(e) * wo[h];
        group[h / static_cast<size_t>(s.n_gqa())] += head[h];
      }
      lp.kv_groups = top_k<int>(group, kv_keep);
      double kept_sum = 0;
      for (int g : lp.kv_groups) {
        const auto first = head.begin() + static_cast<ptrdiff_t>(g) * s.n_gqa();
        const std::vector<double> in_group(first, first + s.n_gqa());
        for (int h : top_k<int>(in_group, per_group)) {
          lp.heads.push_back(g * s.n_gqa() + h);
          kept_sum += head[static_cast<size_t>(g * s.n_gqa() + h)];
        }
      }
      lp.head_score_kept = sum_of(head) > 0 ? kept_sum / sum_of(head) : 1.0;
    }
    p.layers.push_back(std::move(lp));
  }
  if (s.arch == "gemma3" && o.drop_layers > 0) {
    p.warnings.push_back(
        "gemma3 takes each layer's local/global (sliding-window) role from its index: renumbering the kept layers "
        "shifts that pattern for the layers after the first dropped one");
  }
  return p;
}

std::string describe_plan(const PrunePlan& p) {
  const PruneShape &b = p.before, &a = p.after;
  std::string out;
  auto pct = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * x);
    return std::string(buf);
  };
  out += "FFN neurons per layer: " + std::to_string(b.n_ff) + " -> " + std::to_string(a.n_ff) + "\n";
  out += "attention per layer: " + std::to_string(b.n_head) + " heads in " + std::to_string(b.n_head_kv) +
         " KV groups -> " + std::to_string(a.n_head) + " heads in " + std::to_string(a.n_head_kv) +
         " (head size " + std::to_string(b.head_dim) + ")\n";
  out += "layers: " + std::to_string(b.n_layer) + " -> " + std::to_string(a.n_layer);
  if (!p.dropped.empty()) {
    out += ", dropped (block influence):";
    for (int l : p.dropped) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " %d (%.4f)", l, p.influence[static_cast<size_t>(l)]);
      out += buf;
    }
  }
  out += "\n";
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const LayerPlan& l = p.layers[i];
    char buf[96];
    std::snprintf(buf, sizeof buf, "  blk.%zu <- blk.%d (influence %.4f):", i, l.src,
                  p.influence[static_cast<size_t>(l.src)]);
    out += buf;
    if (a.n_ff != b.n_ff) out += " FFN score kept " + pct(l.ffn_score_kept) + ";";
    if (a.n_head != b.n_head) {
      out += " KV groups {";
      for (size_t g = 0; g < l.kv_groups.size(); ++g) out += (g ? "," : "") + std::to_string(l.kv_groups[g]);
      out += "} heads {";
      for (size_t h = 0; h < l.heads.size(); ++h) out += (h ? "," : "") + std::to_string(l.heads[h]);
      out += "} head score kept " + pct(l.head_score_kept) + ";";
    }
    out += "\n";
  }
  return out;
}

}  // namespace flashlm::factory
