#include "moefy/moefy.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "formats/gguf_writer.h"
#include "moefy/cluster.h"
#include "moefy/router.h"
#include "quant/quant.h"

namespace flashlm::moefy {
namespace {

std::string layer_name(int il, const char* suffix) { return "blk." + std::to_string(il) + "." + suffix; }

Result<const gguf::TensorInfo*> ffn_tensor(const gguf::File& f, int il, const char* role) {
  const std::string name = layer_name(il, role);
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr) return Status::error("tensor '" + name + "' not found (is this a dense model?)");
  if (type_traits(t->dtype).to_float == nullptr) return Status::error("tensor '" + name + "': unsupported type");
  return t;
}

// down: [n_ff, n_embd] as stored -> floats, one row per output dimension.
std::vector<float> dequantize_matrix(const gguf::TensorInfo& t) {
  const int64_t n = t.ne[0], rows = t.ne[1];
  const size_t rs = row_size(t.dtype, n);
  std::vector<float> out(static_cast<size_t>(n * rows));
  for (int64_t r = 0; r < rows; ++r) type_traits(t.dtype).to_float(t.data + r * rs, out.data() + r * n, n);
  return out;
}

bool is_dense_ffn(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return false;
  for (const char* s : {".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"}) {
    const std::string suf(s);
    if (name.size() > suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0) return true;
  }
  return false;
}

// Emits the rows `neurons` of a [row_len, n_ff] matrix as stored (gate/up: one row per neuron).
Status write_rows(gguf::TensorSink& s, const gguf::TensorInfo& t, const std::vector<int32_t>& neurons) {
  const size_t rs = row_size(t.dtype, t.ne[0]);
  for (int32_t j : neurons) {
    Status st = s.write(t.data + static_cast<size_t>(j) * rs, rs);
    if (!st) return st;
  }
  return Status::ok();
}

// Emits down-projection rows restricted to the columns `neurons`, in `type`.
Status write_down_cols(gguf::TensorSink& s, const std::vector<float>& down, int64_t n_ff, int64_t n_embd,
                       const std::vector<int32_t>& neurons, DType type) {
  const auto n = static_cast<int64_t>(neurons.size());
  std::vector<float> row(static_cast<size_t>(n));
  std::vector<uint8_t> q(row_size(type, n));
  for (int64_t r = 0; r < n_embd; ++r) {
    for (int64_t i = 0; i < n; ++i) row[static_cast<size_t>(i)] = down[static_cast<size_t>(r * n_ff + neurons[static_cast<size_t>(i)])];
    type_traits(type).from_float(row.data(), q.data(), n);
    Status st = s.write(q.data(), q.size());
    if (!st) return st;
  }
  return Status::ok();
}

}  // namespace

DType expert_down_type(DType dense_down) {
  if (dense_down == DType::F32 || dense_down == DType::F16 || dense_down == DType::BF16) return dense_down;
  return DType::Q8_0;
}

Status check_options(const gguf::File& dense, const ModelConfig& cfg, const MoefyOptions& o) {
  if (o.n_expert < 2) return Status::error("--experts must be at least 2");
  if (o.n_used < 1 || o.n_used > o.n_expert) return Status::error("--top-k must be between 1 and --experts");
  if (o.adaptive_threshold < 0.0f || o.adaptive_threshold > 1.0f) return Status::error("--adaptive-threshold must be in [0, 1]");
  if (o.n_shared < 0) return Status::error("--shared-expert must not be negative");
  for (int il = 0; il < cfg.n_layer; ++il) {
    const LayerConfig& L = cfg.layers[static_cast<size_t>(il)];
    if (L.ffn != FfnKind::kDense) return Status::error("layer " + std::to_string(il) + " is not a dense FFN");
    Result<const gguf::TensorInfo*> down = ffn_tensor(dense, il, "ffn_down.weight");
    if (!down) return down.status();
    for (const char* r : {"ffn_gate.weight", "ffn_up.weight"}) {
      Result<const gguf::TensorInfo*> t = ffn_tensor(dense, il, r);
      if (!t) return t.status();
    }
    const DType dt = expert_down_type((*down)->dtype);
    const int64_t block = type_traits(dt).block_size;
    const int64_t rest = L.n_ff - o.n_shared;
    const std::string ctx = "layer " + std::to_string(il) + " (n_ff " + std::to_string(L.n_ff) + ")";
    if (rest <= 0 || rest % o.n_expert != 0) {
      return Status::error(ctx + ": " + std::to_string(rest) + " non-shared neurons do not split into " +
                           std::to_string(o.n_expert) + " equal experts");
    }
    if ((rest / o.n_expert) % block != 0 || o.n_shared % block != 0) {
      return Status::error(ctx + ": expert and shared widths must be multiples of " + std::to_string(block) + " (" +
                           type_traits(dt).name + " blocks of the down projection)");
    }
  }
  return Status::ok();
}

Result<std::vector<LayerPlan>> plan_layers(const gguf::File& dense, const ModelConfig& cfg,
                                           const CalibrationData& calib, const MoefyOptions& o) {
  const int64_t T = calib.n_tokens, d = calib.n_embd;
  if (T < 16) return Status::error("too few calibration tokens (" + std::to_string(T) + ")");
  const int E = o.n_expert;
  // The router is fitted on the first 80% of tokens and judged on the rest.
  const int64_t T_fit = std::max<int64_t>(T * 4 / 5, 1);
  std::vector<LayerPlan> plans;
  for (int il = 0; il < cfg.n_layer; ++il) {
    const LayerSamples& S = calib.layers[static_cast<size_t>(il)];
    const int64_t n_ff = S.n_ff;
    Result<const gguf::TensorInfo*> down_t = ffn_tensor(dense, il, "ffn_down.weight");
    if (!down_t) return down_t.status();
    // A neuron's contribution to the output: |act| times its down-projection column norm.
    const std::vector<float> down = dequantize_matrix(**down_t);
    std::vector<float> col_norm(static_cast<size_t>(n_ff), 0.0f);
    for (int64_t r = 0; r < d; ++r) {
      for (int64_t j = 0; j < n_ff; ++j) col_norm[static_cast<size_t>(j)] += down[static_cast<size_t>(r * n_ff + j)] * down[static_cast<size_t>(r * n_ff + j)];
    }
    for (float& v : col_norm) v = std::sqrt(v);
    std::vector<float> mass(static_cast<size_t>(T * n_ff));  // [T, n_ff]
    std::vector<double> mean(static_cast<size_t>(n_ff), 0.0);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < n_ff; ++j) {
        const float m = std::fabs(S.act[static_cast<size_t>(t * n_ff + j)]) * col_norm[static_cast<size_t>(j)];
        mass[static_cast<size_t>(t * n_ff + j)] = m;
        mean[static_cast<size_t>(j)] += m;
      }
    }
    LayerPlan p;
    // Shared expert: the neurons with the largest mean mass.
    std::vector<int32_t> order(static_cast<size_t>(n_ff));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return mean[static_cast<size_t>(a)] > mean[static_cast<size_t>(b)]; });
    p.shared.assign(order.begin(), order.begin() + o.n_shared);
    std::vector<int32_t> rest(order.begin() + o.n_shared, order.end());
    std::sort(p.shared.begin(), p.shared.end());
    std::sort(rest.begin(), rest.end());
    // Features: each remaining neuron's mass over the first tokens, unit-normalised, so
    // neurons that fire on the same tokens land in the same expert.
    const int64_t n_rest = static_cast<int64_t>(rest.size());
    const int64_t n_feat = std::min(T_fit, o.cluster_tokens);
    std::vector<float> feat(static_cast<size_t>(n_rest * n_feat));
    for (int64_t i = 0; i < n_rest; ++i) {
      float* f = feat.data() + i * n_feat;
      double norm = 0.0;
      for (int64_t t = 0; t < n_feat; ++t) {
        f[t] = mass[static_cast<size_t>(t * n_ff + rest[static_cast<size_t>(i)])];
        norm += static_cast<double>(f[t]) * f[t];
      }
      const float inv = norm > 0.0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (int64_t t = 0; t < n_feat; ++t) f[t] *= inv;
    }
    Result<std::vector<int>> assign = balanced_kmeans(feat.data(), n_rest, n_feat, E, o.kmeans_iters, o.seed + static_cast<uint64_t>(il));
    if (!assign) return assign.status().with_context("layer " + std::to_string(il));
    p.experts = cluster_members(*assign, E);
    for (auto& ex : p.experts) {
      for (int32_t& j : ex) j = rest[static_cast<size_t>(j)];
    }
    // Each token's mass per expert, the router's target.
    std::vector<float> emass(static_cast<size_t>(T * E), 0.0f);
    for (int64_t t = 0; t < T; ++t) {
      for (int e = 0; e < E; ++e) {
        float s = 0.0f;
        for (int32_t j : p.experts[static_cast<size_t>(e)]) s += mass[static_cast<size_t>(t * n_ff + j)];
        emass[static_cast<size_t>(t * E + e)] = s;
      }
    }
    RouterFitOptions ro;
    ro.ridge = o.ridge;
    Result<std::vector<float>> w = fit_router(S.input.data(), emass.data(), T_fit, d, E, ro);
    if (!w) return w.status().with_context("layer " + std::to_string(il));
    p.router = std::move(w.value());
    const int64_t T_test = T - T_fit;
    p.captured = T_test > 0 ? captured_mass_ratio(p.router, S.input.data() + T_fit * d, emass.data() + T_fit * E, T_test, d, E, o.n_used, &p.routed_share)
                            : captured_mass_ratio(p.router, S.input.data(), emass.data(), T, d, E, o.n_used, &p.routed_share);
    plans.push_back(std::move(p));
  }
  return plans;
}

Status write_moe(const gguf::File& dense, const ModelConfig& cfg, const std::vector<LayerPlan>& plans,
                 const MoefyOptions& o, const std::string& path) {
  Result<std::string> arch = dense.get_string("general.architecture");
  if (!arch) return arch.status();
  if (static_cast<int>(plans.size()) != cfg.n_layer) return Status::error("internal: one plan per layer expected");
  const int E = o.n_expert;
  const int64_t n_embd = cfg.n_embd;
  const auto n_ff_exp = static_cast<int64_t>(plans[0].experts[0].size());
  gguf::Writer w;
  w.copy_metadata(dense);
  const std::string a = *arch + ".";
  w.set(a + "expert_count", gguf::make_u32(static_cast<uint32_t>(E)));
  w.set(a + "expert_used_count", gguf::make_u32(static_cast<uint32_t>(o.n_used)));
  w.set(a + "expert_feed_forward_length", gguf::make_u32(static_cast<uint32_t>(n_ff_exp)));
  w.set(a + "expert_weights_norm", gguf::make_bool(false));
  w.set(a + "expert_gating_func", gguf::make_u32(1));  // softmax
  if (o.n_shared > 0) w.set(a + "expert_shared_feed_forward_length", gguf::make_u32(static_cast<uint32_t>(o.n_shared)));
  w.set("flashlm.moe.unit_weights", gguf::make_bool(true));
  if (o.adaptive_threshold > 0.0f) w.set("flashlm.moe.adaptive_threshold", gguf::make_f32(o.adaptive_threshold));

  for (const gguf::TensorInfo& t : dense.tensors()) {
    if (is_dense_ffn(t.name)) continue;
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    Status st = w.add_tensor(t.name, t.dtype, std::move(ne), static_cast<const void*>(t.data));
    if (!st) return st;
  }
  for (int il = 0; il < cfg.n_layer; ++il) {
    const LayerPlan& p = plans[static_cast<size_t>(il)];
    Result<const gguf::TensorInfo*> gate = ffn_tensor(dense, il, "ffn_gate.weight");
    Result<const gguf::TensorInfo*> up = ffn_tensor(dense, il, "ffn_up.weight");
    Result<const gguf::TensorInfo*> down = ffn_tensor(dense, il, "ffn_down.weight");
    if (!gate || !up || !down) return Status::error("layer " + std::to_string(il) + ": dense FFN tensors missing");
    const gguf::TensorInfo* g = *gate;
    const gguf::TensorInfo* u = *up;
    const gguf::TensorInfo* dn = *down;
    const DType down_type = expert_down_type(dn->dtype);
    const int64_t n_ff = dn->ne[0];
    Status st = w.add_tensor(layer_name(il, "ffn_gate_inp.weight"), DType::F32, {n_embd, E},
                             static_cast<const void*>(p.router.data()));
    const auto rows_of = [&p](const gguf::TensorInfo* t) {
      return [&p, t](gguf::TensorSink& s) -> Status {
        for (const auto& ex : p.experts) {
          Status r = write_rows(s, *t, ex);
          if (!r) return r;
        }
        return Status::ok();
      };
    };
    if (st) st = w.add_tensor(layer_name(il, "ffn_gate_exps.weight"), g->dtype, {n_embd, n_ff_exp, E}, rows_of(g));
    if (st) st = w.add_tensor(layer_name(il, "ffn_up_exps.weight"), u->dtype, {n_embd, n_ff_exp, E}, rows_of(u));
    // The down projection is dequantized once per tensor, at write time.
    if (st) {
      st = w.add_tensor(layer_name(il, "ffn_down_exps.weight"), down_type, {n_ff_exp, n_embd, E},
                        [&p, dn, n_ff, n_embd, down_type](gguf::TensorSink& s) -> Status {
                          const std::vector<float> m = dequantize_matrix(*dn);
                          for (const auto& ex : p.experts) {
                            Status r = write_down_cols(s, m, n_ff, n_embd, ex, down_type);
                            if (!r) return r;
                          }
                          return Status::ok();
                        });
    }
    if (st && !p.shared.empty()) {
      const auto n_sh = static_cast<int64_t>(p.shared.size());
      st = w.add_tensor(layer_name(il, "ffn_gate_shexp.weight"), g->dtype, {n_embd, n_sh},
                        [&p, g](gguf::TensorSink& s) { return write_rows(s, *g, p.shared); });
      if (st) {
        st = w.add_tensor(layer_name(il, "ffn_up_shexp.weight"), u->dtype, {n_embd, n_sh},
                          [&p, u](gguf::TensorSink& s) { return write_rows(s, *u, p.shared); });
      }
      if (st) {
        st = w.add_tensor(layer_name(il, "ffn_down_shexp.weight"), down_type, {n_sh, n_embd},
                          [&p, dn, n_ff, n_embd, down_type](gguf::TensorSink& s) {
                            return write_down_cols(s, dequantize_matrix(*dn), n_ff, n_embd, p.shared, down_type);
                          });
      }
    }
    if (!st) return st;
  }
  return w.write(path);
}

}  // namespace flashlm::moefy
