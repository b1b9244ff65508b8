#include "train/train_model.h"

#include <algorithm>
#include <cmath>

#include "formats/gguf.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rope.h"
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

  int64_t bytes() const {
    size_t n = 0;
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
float* TrainModel::G(int i) { return i < 0 ? nullptr : params_[static_cast<size_t>(i)].g.data(); }

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
  matmul_fwd(a->cur.data(), W(l.wq), a->q.data(), T, d, qd, pool);
  matmul_fwd(a->cur.data(), W(l.wk), a->k.data(), T, d, kvd, pool);
  matmul_fwd(a->cur.data(), W(l.wv), a->v.data(), T, d, kvd, pool);
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
  attention_fwd(attention_shape(il, T), a->q.data(), a->k.data(), a->v.data(), a->attn.data(), a->probs.data());
  a->proj = zeros(T * d);
  matmul_fwd(a->attn.data(), W(l.wo), a->proj.data(), T, qd, d, pool);
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
    matmul_fwd(a->cur2.data(), W(l.gate), a->gate.data(), T, d, ff, pool);
    matmul_fwd(a->cur2.data(), W(l.up), a->up.data(), T, d, ff, pool);
    glu_fwd(glu_kind(), a->gate.data(), a->up.data(), a->glu.data(), T * ff);
    matmul_fwd(a->glu.data(), W(l.down), a->ffn_out.data(), T, ff, d, pool);
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
    matmul_bwd(a.glu.data(), W(l.down), dbranch.data(), dglu.data(), G(l.down), T, ff, d, pool);
    glu_bwd(glu_kind(), a.gate.data(), a.up.data(), dglu.data(), dgate.data(), dup.data(), T * ff);
    matmul_bwd(a.cur2.data(), W(l.gate), dgate.data(), dcur.data(), G(l.gate), T, d, ff, pool);
    matmul_bwd(a.cur2.data(), W(l.up), dup.data(), dcur.data(), G(l.up), T, d, ff, pool);
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
  matmul_bwd(a.attn.data(), W(l.wo), dbranch.data(), dattn.data(), G(l.wo), T, qd, d, pool);
  attention_bwd(attention_shape(il, T), a.q.data(), a.k.data(), a.v.data(), a.probs.data(), dattn.data(), dq.data(),
                dk.data(), dv.data());
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
  if (l.bq >= 0) bias_bwd(dq.data(), G(l.bq), T, qd);
  if (l.bk >= 0) bias_bwd(dk.data(), G(l.bk), T, kvd);
  if (l.bv >= 0) bias_bwd(dv.data(), G(l.bv), T, kvd);
  std::fill(dcur.begin(), dcur.end(), 0.0f);
  matmul_bwd(a.cur.data(), W(l.wq), dq.data(), dcur.data(), G(l.wq), T, d, qd, pool);
  matmul_bwd(a.cur.data(), W(l.wk), dk.data(), dcur.data(), G(l.wk), T, d, kvd, pool);
  matmul_bwd(a.cur.data(), W(l.wv), dv.data(), dcur.data(), G(l.wv), T, d, kvd, pool);
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
  for (int64_t t = 0; t < T; ++t) {
    float* row = de + static_cast<int64_t>(tokens[t]) * d;
    for (int64_t i = 0; i < d; ++i) row[i] += dx[static_cast<size_t>(t * d + i)] * c.embd_scale;
  }
  return value;
}

}  // namespace flashlm::train
