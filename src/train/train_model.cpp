#include "train/train_model.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "formats/gguf.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/sgemm.h"
#include "models/registry.h"
#include "models/weights.h"
#include "quant/quant.h"
#include "train/grad_ops.h"
#include "train/moe_grad.h"

namespace flashlm::train {
namespace {

using Vec = std::vector<float>;

Vec zeros(int64_t n) { return Vec(static_cast<size_t>(n), 0.0f); }

void copy_weights(const TensorView& t, Param* p) {
  for (int64_t r = 0; r < p->ne1; ++r) dequantize_row(t, r, p->w.data() + r * p->ne0);
}

std::string blk(int il, const char* suffix) { return "blk." + std::to_string(il) + "." + suffix; }

}  // namespace

int TrainModel::add_param(std::string name, int64_t ne0, int64_t ne1) {
  Param p;
  p.name = std::move(name);
  p.ne0 = ne0;
  p.ne1 = ne1;
  p.w = zeros(ne0 * ne1);
  if (trainable_) p.g = zeros(ne0 * ne1);
  params_.push_back(std::move(p));
  return static_cast<int>(params_.size()) - 1;
}

const Param* TrainModel::find(const std::string& name) const {
  for (const Param& p : params_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

void TrainModel::zero_grad() {
  for (Param& p : params_) std::fill(p.g.begin(), p.g.end(), 0.0f);
}

void TrainModel::set_trained(const std::vector<bool>& trained) {
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    if (trainable_ && i < trained.size() && trained[i]) {
      if (p.g.empty()) p.g = zeros(p.size());
    } else {
      std::vector<float>().swap(p.g);
    }
  }
}

bool is_lora_param(const std::string& n) {
  return n.size() > 7 && (n.compare(n.size() - 7, 7, ".lora_a") == 0 || n.compare(n.size() - 7, 7, ".lora_b") == 0);
}

namespace {
constexpr const char* kSlotNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
}  // namespace

int TrainModel::base_index(const Layer& l, Slot s) {
  const int idx[] = {l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down};
  return idx[s];
}

Status TrainModel::add_lora(const LoraConfig& c) {
  if (has_lora()) return Status::error("the model already has LoRA adapters");
  if (c.rank < 1 || !(c.alpha > 0.0f)) return Status::error("LoRA needs a rank >= 1 and an alpha > 0");
  bool want[kLoraSlots] = {};
  for (const std::string& t : c.targets) {
    int k = 0;
    while (k < kLoraSlots && t != kSlotNames[k]) ++k;
    if (k == kLoraSlots) {
      return Status::error("unknown LoRA target '" + t +
                           "' (attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down)");
    }
    want[k] = true;
  }
  if (c.targets.empty()) std::fill(std::begin(want), std::end(want), true);
  // Every slot first (params_ must not move under the indices), then the values.
  std::vector<std::pair<int, int64_t>> fill_a;  // (A's index, n_in)
  for (size_t il = 0; il < layers_.size(); ++il) {
    Layer& l = layers_[il];
    for (int k = 0; k < kLoraSlots; ++k) {
      const int w = base_index(l, static_cast<Slot>(k));
      if (!want[k] || w < 0) continue;
      const std::string base = params_[static_cast<size_t>(w)].name;
      const int64_t n_in = params_[static_cast<size_t>(w)].ne0, n_out = params_[static_cast<size_t>(w)].ne1;
      l.lora_a[k] = add_param(base + ".lora_a", n_in, c.rank);
      l.lora_b[k] = add_param(base + ".lora_b", c.rank, n_out);
      fill_a.emplace_back(l.lora_a[k], n_in);
    }
  }
  if (fill_a.empty()) return Status::error("none of the LoRA targets exists in this model");
  std::mt19937_64 rng(c.seed);
  for (const auto& [i, n_in] : fill_a) {
    std::uniform_real_distribution<float> u(-1.0f / std::sqrt(static_cast<float>(n_in)),
                                            1.0f / std::sqrt(static_cast<float>(n_in)));
    for (float& v : params_[static_cast<size_t>(i)].w) v = u(rng);
  }
  lora_ = c;
  lora_scale_ = c.alpha / static_cast<float>(c.rank);
  return Status::ok();
}

std::vector<int> TrainModel::merge_lora() {
  std::vector<int> merged;
  for (const Layer& l : layers_) {
    for (int k = 0; k < kLoraSlots; ++k) {
      if (l.lora_a[k] < 0) continue;
      const int w = base_index(l, static_cast<Slot>(k));
      Param& p = params_[static_cast<size_t>(w)];
      const Param& a = params_[static_cast<size_t>(l.lora_a[k])];
      const Param& b = params_[static_cast<size_t>(l.lora_b[k])];
      // W[n_out][n_in] += scale * B[n_out][r] . A[r][n_in]
      for (int64_t o = 0; o < p.ne1; ++o) {
        for (int64_t r = 0; r < a.ne1; ++r) {
          const float f = lora_scale_ * b.w[static_cast<size_t>(o * b.ne0 + r)];
          const float* ar = a.w.data() + r * a.ne0;
          float* wr = p.w.data() + o * p.ne0;
          for (int64_t i = 0; i < p.ne0; ++i) wr[i] += f * ar[i];
        }
      }
      merged.push_back(w);
    }
  }
  return merged;
}

Result<std::unique_ptr<TrainModel>> TrainModel::load(const std::string& path, bool trainable) {
  Result<gguf::File> f = gguf::File::open(path);
  if (!f) return f.status();
  Result<ModelConfig> cfg = parse_model_config(*f);
  if (!cfg) return cfg.status().with_context("'" + path + "'");
  Result<ModelWeights> mw = load_decoder_weights(*f, *cfg);
  if (!mw) return mw.status().with_context("'" + path + "'");
  std::unique_ptr<TrainModel> m(new TrainModel());
  m->trainable_ = trainable;
  m->cfg_ = std::move(cfg.value());
  const ModelConfig& c = m->cfg_;
  const ModelWeights& W = *mw;
  // Every tensor gets its slot before any is filled: params_ must not move under the
  // indices being taken.
  auto take = [&](const TensorView& t, std::string name) {
    if (t.data == nullptr) return -1;
    const int i = m->add_param(std::move(name), t.ne[0], t.ne[1]);
    copy_weights(t, &m->params_[static_cast<size_t>(i)]);
    return i;
  };
  m->tok_embd_ = take(W.tok_embd, "token_embd.weight");
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = W.layers[static_cast<size_t>(il)];
    Layer L;
    L.attn_norm = take(lw.attn_norm, blk(il, "attn_norm.weight"));
    L.wq = take(lw.wq, blk(il, "attn_q.weight"));
    L.wk = take(lw.wk, blk(il, "attn_k.weight"));
    L.wv = take(lw.wv, blk(il, "attn_v.weight"));
    L.bq = take(lw.bq, blk(il, "attn_q.bias"));
    L.bk = take(lw.bk, blk(il, "attn_k.bias"));
    L.bv = take(lw.bv, blk(il, "attn_v.bias"));
    L.q_norm = take(lw.q_norm, blk(il, "attn_q_norm.weight"));
    L.k_norm = take(lw.k_norm, blk(il, "attn_k_norm.weight"));
    L.wo = take(lw.wo, blk(il, "attn_output.weight"));
    L.post_attn_norm = take(lw.post_attn_norm, blk(il, "post_attention_norm.weight"));
    L.ffn_norm = take(lw.ffn_norm, blk(il, "ffn_norm.weight"));
    L.gate = take(lw.ffn.gate, blk(il, "ffn_gate.weight"));
    L.up = take(lw.ffn.up, blk(il, "ffn_up.weight"));
    L.down = take(lw.ffn.down, blk(il, "ffn_down.weight"));
    if (c.layers[static_cast<size_t>(il)].ffn == FfnKind::kMoe) {
      const MoeWeights& mo = lw.moe;
      // Expert 0's view widened to every expert: the 3-D tensor's rows are contiguous.
      auto all_experts = [&](TensorView v) {
        v.ne[1] *= static_cast<int64_t>(mo.experts.size());
        return v;
      };
      L.router = take(mo.router, blk(il, "ffn_gate_inp.weight"));
      L.gate_exps = take(all_experts(mo.experts[0].gate), blk(il, "ffn_gate_exps.weight"));
      L.up_exps = take(all_experts(mo.experts[0].up), blk(il, "ffn_up_exps.weight"));
      L.down_exps = take(all_experts(mo.experts[0].down), blk(il, "ffn_down_exps.weight"));
      L.gate_shexp = take(mo.shexp.gate, blk(il, "ffn_gate_shexp.weight"));
      L.up_shexp = take(mo.shexp.up, blk(il, "ffn_up_shexp.weight"));
      L.down_shexp = take(mo.shexp.down, blk(il, "ffn_down_shexp.weight"));
      L.gate_inp_shexp = take(mo.shexp_gate, blk(il, "ffn_gate_inp_shexp.weight"));
    }
    L.post_ffn_norm = take(lw.post_ffn_norm, blk(il, "post_ffw_norm.weight"));
    m->layers_.push_back(L);
  }
  m->output_norm_ = take(W.output_norm, "output_norm.weight");
  m->output_ = c.tied_embeddings ? m->tok_embd_ : take(W.output, "output.weight");
  if (W.rope_freqs.data != nullptr) {
    const auto* ff = static_cast<const float*>(W.rope_freqs.data);
    m->rope_factors_.assign(ff, ff + W.rope_freqs.ne[0]);
  }
  return m;
}

Status TrainModel::check_ids(const int32_t* tokens, const int32_t* targets, int64_t T) const {
  if (T < 1) return Status::error("a training sequence needs at least one token");
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= cfg_.n_vocab) {
      return Status::error("token id " + std::to_string(tokens[t]) + " at position " + std::to_string(t) +
                           " is outside the vocabulary (" + std::to_string(cfg_.n_vocab) + ")");
    }
    if (targets != nullptr && targets[t] >= cfg_.n_vocab) {
      return Status::error("target id " + std::to_string(targets[t]) + " at position " + std::to_string(t) +
                           " is outside the vocabulary (" + std::to_string(cfg_.n_vocab) + ")");
    }
  }
  return Status::ok();
}

namespace {

LogitLoss cross_entropy_loss(const int32_t* targets) {
  return [targets](const float* logits, int64_t T, int64_t V, float* dlogits) {
    int64_t n_scored = 0;
    return cross_entropy(logits, targets, T, V, dlogits, &n_scored);
  };
}

}  // namespace

Result<double> TrainModel::step(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool) {
  if (Status st = check_ids(tokens, targets, T); !st) return st;
  if (targets == nullptr) return Status::error("a training step needs targets");
  return step(tokens, T, cross_entropy_loss(targets), pool);
}

Result<double> TrainModel::step(const int32_t* tokens, int64_t T, const LogitLoss& loss, ThreadPool& pool) {
  if (Status st = check_ids(tokens, nullptr, T); !st) return st;
  if (!trainable_) return Status::error("this model was loaded for inference only (no gradients)");
  return run(tokens, T, &loss, true, pool, nullptr);
}

Result<double> TrainModel::forward(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool,
                                   Vec* logits) {
  if (Status st = check_ids(tokens, targets, T); !st) return st;
  if (targets == nullptr) return run(tokens, T, nullptr, false, pool, logits);
  const LogitLoss ce = cross_entropy_loss(targets);
  return run(tokens, T, &ce, false, pool, logits);
}

Status TrainModel::set_fake_quant(const std::vector<DType>& types, ThreadPool& pool) {
  if (types.size() != params_.size()) return Status::error("fake quantization needs one type per parameter");
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == DType::F32) continue;
    const TypeTraits& tt = type_traits(types[i]);
    if (tt.from_float == nullptr || tt.to_float == nullptr || params_[i].ne0 % tt.block_size != 0) {
      return Status::error("tensor '" + params_[i].name + "' (rows of " + std::to_string(params_[i].ne0) +
                           ") cannot be quantized to " + std::string(tt.name != nullptr ? tt.name : "that type"));
    }
  }
  fq_types_ = types;
  fq_w_.assign(params_.size(), Vec());
  refresh_fake_quant(pool);
  return Status::ok();
}

void TrainModel::refresh_fake_quant(ThreadPool& pool, const std::vector<bool>* changed) {
  for (size_t i = 0; i < fq_types_.size(); ++i) {
    if (fq_types_[i] == DType::F32 || (changed != nullptr && !(*changed)[i])) continue;
    const Param& p = params_[i];
    Vec& out = fq_w_[i];
    out.resize(p.w.size());
    const TypeTraits& tt = type_traits(fq_types_[i]);
    const size_t row = row_size(fq_types_[i], p.ne0);
    pool.parallel_for(p.ne1, [&](int64_t r0, int64_t r1, int) {
      std::vector<uint8_t> buf(row);
      for (int64_t r = r0; r < r1; ++r) {
        tt.from_float(p.w.data() + r * p.ne0, buf.data(), p.ne0);
        tt.to_float(buf.data(), out.data() + r * p.ne0, p.ne0);
      }
    });
  }
}

// What one layer's backward needs: its input and the intermediate values the forward
// made (RMS norms keep their inverse RMS per row).
struct TrainModel::LayerActs {
  Vec x_in, r_attn, cur;
  Vec q_pre, k_pre, q_rstd, k_rstd;  // before QK-norm (iff the layer has it)
  Vec q, k, v, probs, attn;          // q and k after QK-norm and RoPE
  Vec proj, r_post_attn;             // attention output projection before its post-norm
  Vec x_mid, r_ffn, cur2, gate, up, glu;
  Vec ffn_out, r_post_ffn;           // FFN output before its post-norm
  MoeActs moe;                       // an MoE layer's FFN (instead of gate, up, glu)
  Vec lora_h[kLoraSlots];            // per LoRA slot: (alpha / rank) A x

  int64_t bytes() const {
    size_t n = 0;
    for (const Vec& h : lora_h) n += h.size();
    for (const Vec* e : {&x_in, &r_attn, &cur, &q_pre, &k_pre, &q_rstd, &k_rstd, &q, &k, &v, &probs, &attn, &proj,
                         &r_post_attn, &x_mid, &r_ffn, &cur2, &gate, &up, &glu, &ffn_out, &r_post_ffn}) {
      n += e->size();
    }
    return static_cast<int64_t>(n * sizeof(float)) + moe.bytes();
  }
};

AttentionShape TrainModel::attention_shape(int il, int64_t T) const {
  const LayerConfig& L = cfg_.layers[static_cast<size_t>(il)];
  const float scale = cfg_.attn_scale > 0.0f ? cfg_.attn_scale : 1.0f / std::sqrt(static_cast<float>(L.head_dim));
  return AttentionShape{T, L.n_head, L.n_head_kv, L.head_dim, L.sliding_window, scale, cfg_.attn_softcap};
}

const float* TrainModel::W(int i) const {
  if (i < 0) return nullptr;
  const auto k = static_cast<size_t>(i);
  return k < fq_w_.size() && !fq_w_[k].empty() ? fq_w_[k].data() : params_[k].w.data();
}
float* TrainModel::G(int i) {
  if (i < 0) return nullptr;
  std::vector<float>& g = params_[static_cast<size_t>(i)].g;
  return g.empty() ? nullptr : g.data();
}

void TrainModel::linear_fwd(const Layer& l, Slot s, const float* x, float* y, int64_t T, int64_t n_in, int64_t n_out,
                            Vec* h, ThreadPool& pool) const {
  matmul_fwd(x, W(base_index(l, s)), y, T, n_in, n_out, pool);
  if (l.lora_a[s] < 0) return;
  const int64_t r = params_[static_cast<size_t>(l.lora_a[s])].ne1;
  *h = zeros(T * r);
  matmul_fwd(x, W(l.lora_a[s]), h->data(), T, n_in, r, pool);
  for (float& v : *h) v *= lora_scale_;
  // y += h . B^T
  sgemm({T, n_out, r, h->data(), r, false, W(l.lora_b[s]), r, true, y, n_out, 1.0f}, pool);
}

void TrainModel::linear_bwd(const Layer& l, Slot s, const float* x, const Vec& h, const float* dy, float* dx,
                            int64_t T, int64_t n_in, int64_t n_out, ThreadPool& pool) {
  const int w = base_index(l, s);
  matmul_bwd(x, W(w), dy, dx, G(w), T, n_in, n_out, pool);
  if (l.lora_a[s] < 0) return;
  const int64_t r = params_[static_cast<size_t>(l.lora_a[s])].ne1;
  // h = scale * A x: dB += dy^T h, dh = dy B, then d(A x) = scale * dh.
  Vec dh = zeros(T * r);
  matmul_bwd(h.data(), W(l.lora_b[s]), dy, dh.data(), G(l.lora_b[s]), T, r, n_out, pool);
  for (float& v : dh) v *= lora_scale_;
  matmul_bwd(x, W(l.lora_a[s]), dh.data(), dx, G(l.lora_a[s]), T, n_in, r, pool);
}

MoeParamPtrs TrainModel::moe_params(const Layer& l) const {
  return MoeParamPtrs{W(l.router),     W(l.gate_exps), W(l.up_exps),   W(l.down_exps),
                      W(l.gate_shexp), W(l.up_shexp),  W(l.down_shexp), W(l.gate_inp_shexp)};
}

// x_out = x_in + post_norm(attention) then + post_norm(FFN), keeping what the backward needs.
void TrainModel::layer_forward(int il, const Vec& x_in, const Vec& rope_cs, int64_t T, ThreadPool& pool,
                               LayerActs* a, Vec* x_out) const {
  const LayerConfig& L = cfg_.layers[static_cast<size_t>(il)];
  const Layer& l = layers_[static_cast<size_t>(il)];
  const int64_t d = cfg_.n_embd, hd = L.head_dim, qd = L.n_head * hd, kvd = L.n_head_kv * hd, ff = L.n_ff;
  const float eps = cfg_.norm_eps;
  a->x_in = x_in;
  a->r_attn = zeros(T);
  a->cur = zeros(T * d);
  rms_norm_fwd(x_in.data(), W(l.attn_norm), a->cur.data(), a->r_attn.data(), T, d, eps);
  a->q = zeros(T * qd);
  a->k = zeros(T * kvd);
  a->v = zeros(T * kvd);
  linear_fwd(l, kQ, a->cur.data(), a->q.data(), T, d, qd, &a->lora_h[kQ], pool);
  linear_fwd(l, kK, a->cur.data(), a->k.data(), T, d, kvd, &a->lora_h[kK], pool);
  linear_fwd(l, kV, a->cur.data(), a->v.data(), T, d, kvd, &a->lora_h[kV], pool);
  if (l.bq >= 0) bias_fwd(a->q.data(), W(l.bq), T, qd);
  if (l.bk >= 0) bias_fwd(a->k.data(), W(l.bk), T, kvd);
  if (l.bv >= 0) bias_fwd(a->v.data(), W(l.bv), T, kvd);
  if (L.qk_norm) {
    a->q_pre = a->q;
    a->k_pre = a->k;
    a->q_rstd = zeros(T * L.n_head);
    a->k_rstd = zeros(T * L.n_head_kv);
    rms_norm_fwd(a->q_pre.data(), W(l.q_norm), a->q.data(), a->q_rstd.data(), T * L.n_head, hd, eps);
    rms_norm_fwd(a->k_pre.data(), W(l.k_norm), a->k.data(), a->k_rstd.data(), T * L.n_head_kv, hd, eps);
  }
  rope_fwd(a->q.data(), rope_cs.data(), T, L.n_head, hd, cfg_.n_rot, cfg_.rope_style);
  rope_fwd(a->k.data(), rope_cs.data(), T, L.n_head_kv, hd, cfg_.n_rot, cfg_.rope_style);
  a->probs = zeros(L.n_head * T * T);
  a->attn = zeros(T * qd);
  attention_fwd(attention_shape(il, T), a->q.data(), a->k.data(), a->v.data(), a->attn.data(), a->probs.data(),
                pool);
  a->proj = zeros(T * d);
  linear_fwd(l, kO, a->attn.data(), a->proj.data(), T, qd, d, &a->lora_h[kO], pool);
  Vec branch = a->proj;
  if (l.post_attn_norm >= 0) {
    a->r_post_attn = zeros(T);
    rms_norm_fwd(a->proj.data(), W(l.post_attn_norm), branch.data(), a->r_post_attn.data(), T, d, eps);
  }
  a->x_mid = x_in;
  for (size_t i = 0; i < branch.size(); ++i) a->x_mid[i] += branch[i];
  a->r_ffn = zeros(T);
  a->cur2 = zeros(T * d);
  rms_norm_fwd(a->x_mid.data(), W(l.ffn_norm), a->cur2.data(), a->r_ffn.data(), T, d, eps);
  a->ffn_out = zeros(T * d);
  if (L.ffn == FfnKind::kMoe) {
    moe_fwd(L.moe, glu_kind(), moe_params(l), a->cur2.data(), T, d, a->ffn_out.data(), &a->moe, pool);
  } else {
    a->gate = zeros(T * ff);
    a->up = zeros(T * ff);
    a->glu = zeros(T * ff);
    linear_fwd(l, kGate, a->cur2.data(), a->gate.data(), T, d, ff, &a->lora_h[kGate], pool);
    linear_fwd(l, kUp, a->cur2.data(), a->up.data(), T, d, ff, &a->lora_h[kUp], pool);
    glu_fwd(glu_kind(), a->gate.data(), a->up.data(), a->glu.data(), T * ff);
    linear_fwd(l, kDown, a->glu.data(), a->ffn_out.data(), T, ff, d, &a->lora_h[kDown], pool);
  }
  branch = a->ffn_out;
  if (l.post_ffn_norm >= 0) {
    a->r_post_ffn = zeros(T);
    rms_norm_fwd(a->ffn_out.data(), W(l.post_ffn_norm), branch.data(), a->r_post_ffn.data(), T, d, eps);
  }
  *x_out = a->x_mid;
  for (size_t i = 0; i < branch.size(); ++i) (*x_out)[i] += branch[i];
}

// dx: the gradient of the layer's output on entry, of its input on return.
void TrainModel::layer_backward(int il, const LayerActs& a, const Vec& rope_cs, int64_t T, ThreadPool& pool, Vec* dx) {
  const LayerConfig& L = cfg_.layers[static_cast<size_t>(il)];
  const Layer& l = layers_[static_cast<size_t>(il)];
  const int64_t d = cfg_.n_embd, hd = L.head_dim, qd = L.n_head * hd, kvd = L.n_head_kv * hd, ff = L.n_ff;

  // FFN branch: x_out = x_mid + post_norm(down(glu(gate(cur2), up(cur2)))).
  Vec dbranch = *dx;
  if (l.post_ffn_norm >= 0) {
    dbranch = zeros(T * d);
    rms_norm_bwd(a.ffn_out.data(), W(l.post_ffn_norm), a.r_post_ffn.data(), dx->data(), dbranch.data(),
                 G(l.post_ffn_norm), T, d);
  }
  Vec dcur = zeros(T * d);
  if (L.ffn == FfnKind::kMoe) {
    const MoeGradPtrs mg{G(l.router),     G(l.gate_exps), G(l.up_exps),   G(l.down_exps),
                         G(l.gate_shexp), G(l.up_shexp),  G(l.down_shexp), G(l.gate_inp_shexp)};
    moe_bwd(L.moe, glu_kind(), moe_params(l), a.moe, a.cur2.data(), dbranch.data(), T, d, dcur.data(), mg, pool);
  } else {
    Vec dglu = zeros(T * ff), dgate = zeros(T * ff), dup = zeros(T * ff);
    linear_bwd(l, kDown, a.glu.data(), a.lora_h[kDown], dbranch.data(), dglu.data(), T, ff, d, pool);
    glu_bwd(glu_kind(), a.gate.data(), a.up.data(), dglu.data(), dgate.data(), dup.data(), T * ff);
    linear_bwd(l, kGate, a.cur2.data(), a.lora_h[kGate], dgate.data(), dcur.data(), T, d, ff, pool);
    linear_bwd(l, kUp, a.cur2.data(), a.lora_h[kUp], dup.data(), dcur.data(), T, d, ff, pool);
  }
  rms_norm_bwd(a.x_mid.data(), W(l.ffn_norm), a.r_ffn.data(), dcur.data(), dx->data(), G(l.ffn_norm), T, d);

  // Attention branch: x_mid = x_in + post_norm(wo(attention(rope(qk_norm(q)), ...))).
  dbranch = *dx;
  if (l.post_attn_norm >= 0) {
    dbranch = zeros(T * d);
    rms_norm_bwd(a.proj.data(), W(l.post_attn_norm), a.r_post_attn.data(), dx->data(), dbranch.data(),
                 G(l.post_attn_norm), T, d);
  }
  Vec dattn = zeros(T * qd), dq = zeros(T * qd), dk = zeros(T * kvd), dv = zeros(T * kvd);
  linear_bwd(l, kO, a.attn.data(), a.lora_h[kO], dbranch.data(), dattn.data(), T, qd, d, pool);
  attention_bwd(attention_shape(il, T), a.q.data(), a.k.data(), a.v.data(), a.probs.data(), dattn.data(), dq.data(),
                dk.data(), dv.data(), pool);
  rope_bwd(dq.data(), rope_cs.data(), T, L.n_head, hd, cfg_.n_rot, cfg_.rope_style);
  rope_bwd(dk.data(), rope_cs.data(), T, L.n_head_kv, hd, cfg_.n_rot, cfg_.rope_style);
  if (L.qk_norm) {
    Vec dq_pre = zeros(T * qd), dk_pre = zeros(T * kvd);
    rms_norm_bwd(a.q_pre.data(), W(l.q_norm), a.q_rstd.data(), dq.data(), dq_pre.data(), G(l.q_norm), T * L.n_head,
                 hd);
    rms_norm_bwd(a.k_pre.data(), W(l.k_norm), a.k_rstd.data(), dk.data(), dk_pre.data(), G(l.k_norm),
                 T * L.n_head_kv, hd);
    dq.swap(dq_pre);
    dk.swap(dk_pre);
  }
  if (G(l.bq) != nullptr) bias_bwd(dq.data(), G(l.bq), T, qd);
  if (G(l.bk) != nullptr) bias_bwd(dk.data(), G(l.bk), T, kvd);
  if (G(l.bv) != nullptr) bias_bwd(dv.data(), G(l.bv), T, kvd);
  std::fill(dcur.begin(), dcur.end(), 0.0f);
  linear_bwd(l, kQ, a.cur.data(), a.lora_h[kQ], dq.data(), dcur.data(), T, d, qd, pool);
  linear_bwd(l, kK, a.cur.data(), a.lora_h[kK], dk.data(), dcur.data(), T, d, kvd, pool);
  linear_bwd(l, kV, a.cur.data(), a.lora_h[kV], dv.data(), dcur.data(), T, d, kvd, pool);
  rms_norm_bwd(a.x_in.data(), W(l.attn_norm), a.r_attn.data(), dcur.data(), dx->data(), G(l.attn_norm), T, d);
}

double TrainModel::run(const int32_t* tokens, int64_t T, const LogitLoss* loss, bool backward, ThreadPool& pool,
                       Vec* logits_out) {
  const ModelConfig& c = cfg_;
  const int64_t d = c.n_embd;
  const int64_t V = c.n_vocab;
  const int nl = c.n_layer;
  // Layers whose activations are kept through the forward: all of them without
  // checkpointing; otherwise only segment inputs are kept and each segment of
  // checkpoint_every_ layers is run again, one at a time, during the backward.
  const int seg = checkpoint_every_ > 0 ? checkpoint_every_ : nl;
  const bool keep_all = checkpoint_every_ <= 0;

  // RoPE cos/sin per layer configuration, as the inference model fills them.
  std::vector<Vec> cs(static_cast<size_t>(nl));
  for (int il = 0; il < nl; ++il) {
    const LayerConfig& L = c.layers[static_cast<size_t>(il)];
    ops::RopeFreqs rf(c.n_rot, L.rope_base, L.rope_scale, rope_factors_.empty() ? nullptr : rope_factors_.data());
    Vec& t = cs[static_cast<size_t>(il)];
    t = zeros(T * c.n_rot);
    for (int64_t p = 0; p < T; ++p) rf.cos_sin(p, t.data() + p * c.n_rot);
  }
  int64_t held = 0;  // activation bytes held now; peak_act_bytes_ is its maximum
  peak_act_bytes_ = 0;
  auto hold = [&](int64_t bytes) {
    held += bytes;
    peak_act_bytes_ = std::max(peak_act_bytes_, held);
  };

  // --- forward ---
  Vec x = zeros(T * d);
  for (int64_t t = 0; t < T; ++t) {
    const float* e = W(tok_embd_) + static_cast<int64_t>(tokens[t]) * d;
    for (int64_t i = 0; i < d; ++i) x[static_cast<size_t>(t * d + i)] = e[i] * c.embd_scale;
  }
  std::vector<LayerActs> acts(backward ? static_cast<size_t>(keep_all ? nl : seg) : 0);
  std::vector<Vec> seg_in;  // checkpointing: each segment's input
  LayerActs scratch;
  for (int il = 0; il < nl; ++il) {
    if (!backward) {  // nothing is kept: one layer's values at a time
      layer_forward(il, x, cs[static_cast<size_t>(il)], T, pool, &scratch, &x);
      peak_act_bytes_ = std::max(peak_act_bytes_, scratch.bytes());
      continue;
    }
    if (keep_all) {
      layer_forward(il, x, cs[static_cast<size_t>(il)], T, pool, &acts[static_cast<size_t>(il)], &x);
      hold(acts[static_cast<size_t>(il)].bytes());
      continue;
    }
    if (il % seg == 0) {
      seg_in.push_back(x);
      hold(static_cast<int64_t>(x.size() * sizeof(float)));
    }
    layer_forward(il, x, cs[static_cast<size_t>(il)], T, pool, &scratch, &x);
    peak_act_bytes_ = std::max(peak_act_bytes_, held + scratch.bytes());
  }
  scratch = LayerActs();
  Vec r_out = zeros(T), xo = zeros(T * d), raw = zeros(T * V);
  rms_norm_fwd(x.data(), W(output_norm_), xo.data(), r_out.data(), T, d, c.norm_eps);
  matmul_fwd(xo.data(), W(output_), raw.data(), T, d, V, pool);
  Vec capped;
  const Vec* logits = &raw;
  if (c.final_softcap > 0.0f) {
    capped = zeros(T * V);
    softcap_fwd(raw.data(), capped.data(), T * V, c.final_softcap);
    logits = &capped;
  }
  hold(static_cast<int64_t>((x.size() + xo.size() + raw.size() + capped.size()) * sizeof(float)));
  if (logits_out != nullptr) *logits_out = *logits;
  if (loss == nullptr) return 0.0;
  Vec dlogits = backward ? zeros(T * V) : Vec();
  const double value = (*loss)(logits->data(), T, V, backward ? dlogits.data() : nullptr);
  if (!backward) return value;

  // --- backward: each op adds its input gradients; dx is the residual stream's ---
  if (c.final_softcap > 0.0f) {
    Vec draw = zeros(T * V);
    softcap_bwd(capped.data(), dlogits.data(), draw.data(), T * V, c.final_softcap);
    dlogits.swap(draw);
  }
  Vec dxo = zeros(T * d), dx = zeros(T * d);
  matmul_bwd(xo.data(), W(output_), dlogits.data(), dxo.data(), G(output_), T, d, V, pool);
  rms_norm_bwd(x.data(), W(output_norm_), r_out.data(), dxo.data(), dx.data(), G(output_norm_), T, d);
  for (int s0 = ((nl - 1) / seg) * seg; s0 >= 0; s0 -= seg) {
    const int s1 = std::min(nl, s0 + seg);
    if (!keep_all) {  // the segment again from its input, this time keeping everything
      Vec xs = seg_in[static_cast<size_t>(s0 / seg)];
      int64_t seg_bytes = 0;
      for (int il = s0; il < s1; ++il) {
        layer_forward(il, xs, cs[static_cast<size_t>(il)], T, pool, &acts[static_cast<size_t>(il - s0)], &xs);
        seg_bytes += acts[static_cast<size_t>(il - s0)].bytes();
      }
      peak_act_bytes_ = std::max(peak_act_bytes_, held + seg_bytes);
    }
    for (int il = s1 - 1; il >= s0; --il) {
      LayerActs& a = acts[static_cast<size_t>(keep_all ? il : il - s0)];
      layer_backward(il, a, cs[static_cast<size_t>(il)], T, pool, &dx);
      a = LayerActs();
    }
  }
  float* de = G(tok_embd_);
  for (int64_t t = 0; de != nullptr && t < T; ++t) {
    float* row = de + static_cast<int64_t>(tokens[t]) * d;
    for (int64_t i = 0; i < d; ++i) row[i] += dx[static_cast<size_t>(t * d + i)] * c.embd_scale;
  }
  return value;
}

}  // namespace flashlm::train
