#include "train/finetune.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "train/train_state.h"

namespace flashlm::train {

Result<std::vector<bool>> trainable_mask(const TrainModel& m, const std::string& mode) {
  const std::vector<Param>& params = m.params();
  std::vector<bool> mask(params.size(), false);
  if (mode == "all") {
    mask.assign(params.size(), true);
  } else if (mode == "norms") {
    for (size_t i = 0; i < params.size(); ++i) mask[i] = params[i].name.find("norm") != std::string::npos;
  } else if (mode == "router" || mode == "experts") {
    // router: the MoE routers (and shared-expert gates); experts: the routed and shared
    // experts' matrices.
    bool any = false;
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& n = params[i].name;
      mask[i] = mode == "router" ? n.find("ffn_gate_inp") != std::string::npos
                                 : n.find("_exps.") != std::string::npos || n.find("_shexp.") != std::string::npos;
      any = any || mask[i];
    }
    if (!any) return Status::error("--train " + mode + ": the model has no MoE layers");
    bool any_weighted = false;  // a unit-weight layer's router gets no gradient (moe_grad.h)
    for (const LayerConfig& l : m.config().layers) any_weighted |= l.ffn == FfnKind::kMoe && !l.moe.unit_weights;
    if (mode == "router" && !any_weighted) {
      return Status::error("--train router: every MoE layer sums its experts with unit weights "
                           "(flashlm.moe.unit_weights), so no gradient reaches the routers; train experts instead");
    }
  } else if (mode == "lora") {
    bool any = false;
    for (size_t i = 0; i < params.size(); ++i) {
      mask[i] = is_lora_param(params[i].name);
      any = any || mask[i];
    }
    if (!any) return Status::error("--train lora: the model has no LoRA adapters (TrainModel::add_lora)");
  } else {
    return Status::error("unknown --train mode '" + mode + "' (available: all, norms, router, experts, lora)");
  }
  return mask;
}

Result<double> mean_held_out(TrainModel& m, Objective& objective, const std::vector<int32_t>& stream, int64_t seq,
                             int64_t stride, int64_t n, ThreadPool& pool) {
  double sum = 0.0;
  int64_t k = 0;
  for (; k < n && k * stride + seq + 1 <= static_cast<int64_t>(stream.size()); ++k) {
    Result<double> v = objective.held_out(m, stream.data() + k * stride, seq, pool);
    if (!v) return v.status();
    sum += *v;
  }
  return k > 0 ? sum / static_cast<double>(k) : -1.0;
}

namespace {

std::string shaping_options(const FinetuneOptions& o, int64_t n_tokens) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "seq=%lld batch=%lld steps=%lld train=%s lr=%g warmup=%lld min_lr=%g wd=%g tokens=%lld",
                static_cast<long long>(o.seq), static_cast<long long>(o.batch), static_cast<long long>(o.steps),
                o.train.c_str(), static_cast<double>(o.adam.lr), static_cast<long long>(o.adam.warmup),
                static_cast<double>(o.adam.min_lr_ratio), static_cast<double>(o.adam.weight_decay),
                static_cast<long long>(n_tokens));
  std::string s = buf;
  if (o.stride > 0) s += " stride=" + std::to_string(o.stride);
  return o.objective.empty() ? s : s + " " + o.objective;
}

}  // namespace

Result<FinetuneResult> finetune(TrainModel& m, const std::vector<int32_t>& tokens, const FinetuneOptions& o,
                                uint64_t base_fingerprint, ThreadPool& pool,
                                const std::function<void(const StepReport&)>& progress,
                                const std::atomic<bool>* stop) {
  CrossEntropyObjective ce;
  return finetune(m, tokens, o, ce, base_fingerprint, pool, progress, stop);
}

Result<FinetuneResult> finetune(TrainModel& m, const std::vector<int32_t>& tokens, const FinetuneOptions& o,
                                Objective& objective, uint64_t base_fingerprint, ThreadPool& pool,
                                const std::function<void(const StepReport&)>& progress,
                                const std::atomic<bool>* stop) {
  if (o.seq < 2 || o.batch < 1) return Status::error("the sequence length must be >= 2 and the batch >= 1");
  const SgemmInputsScope matmul_inputs(o.matmul);  // every matmul of the run, held-out figures included
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t stride = o.stride > 0 ? o.stride : o.seq;
  int64_t n_valid = o.valid_fraction > 0.0 ? static_cast<int64_t>(static_cast<double>(n) * o.valid_fraction) : 0;
  if (o.stride > 0) n_valid -= n_valid % o.stride;  // the held-out part starts on a sequence boundary
  const std::vector<int32_t> train(tokens.begin(), tokens.end() - n_valid);
  const std::vector<int32_t> valid(tokens.end() - n_valid, tokens.end());
  const auto n_train = static_cast<int64_t>(train.size());
  const int64_t n_seqs = n_train >= o.seq + 1 ? (n_train - o.seq - 1) / stride + 1 : 0;
  if (n_seqs < 1) {
    return Status::error("the training text has " + std::to_string(train.size()) + " tokens after the held-out " +
                         std::to_string(n_valid) + "; one sequence needs " + std::to_string(o.seq + 1) +
                         " (a longer text or a smaller --ctx)");
  }
  if (n_valid > 0 && static_cast<int64_t>(valid.size()) < o.seq + 1) {
    return Status::error("the held-out tail (" + std::to_string(valid.size()) + " tokens) is shorter than one " +
                         "sequence of " + std::to_string(o.seq + 1) + ": a longer text, a larger --valid-fraction " +
                         "or --valid-fraction 0");
  }
  Result<std::vector<bool>> mask = trainable_mask(m, o.train);
  if (!mask) return mask.status();
  FinetuneOptions opt = o;
  opt.steps = o.steps > 0 ? o.steps : std::max<int64_t>(1, n_seqs / o.batch);
  opt.adam.total_steps = opt.steps;
  m.set_trained(*mask);  // no gradient is computed for what does not train
  AdamW adam(m.params(), *mask, opt.adam);
  m.set_checkpoint_every(o.checkpoint_every);

  FinetuneResult res;
  res.trained = *mask;
  TrainState st;
  st.base_fingerprint = base_fingerprint;
  st.options = shaping_options(opt, n);
  if (o.resume && !o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    TrainState saved;
    if (Status s = load_checkpoint(o.checkpoint, &saved, m.params(), adam); !s) return s;
    if (saved.base_fingerprint != base_fingerprint) {
      return Status::error("checkpoint '" + o.checkpoint + "' belongs to another base model");
    }
    if (saved.options != st.options) {
      return Status::error("checkpoint '" + o.checkpoint + "' was made with other options (" + saved.options +
                           "); this run has (" + st.options + ")");
    }
    st = saved;
    res.resumed_from = st.step;
    m.refresh_fake_quant(pool, &*mask);  // the checkpoint's weights
  }
  auto save = [&]() -> Status {
    return o.checkpoint.empty() ? Status::ok() : save_checkpoint(o.checkpoint, st, m.params(), adam);
  };
  auto held_out = [&]() { return mean_held_out(m, objective, valid, o.seq, stride, o.valid_seqs, pool); };
  if (n_valid > 0) {
    Result<double> v = held_out();
    if (!v) return v.status();
    res.initial_valid_loss = *v;
  }

  double step_secs = 0.0;  // training steps only: evaluations and checkpoint writes excluded
  int64_t tokens_run = 0;
  const int64_t first = st.step;
  while (st.step < opt.steps) {
    if (stop != nullptr && stop->load()) {  // between steps: the checkpoint is a clean one
      if (Status s = save(); !s) return s;
      res.stopped = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    m.zero_grad();
    double loss = 0.0;
    for (int64_t b = 0; b < o.batch; ++b) {
      const int32_t* s = train.data() + (st.cursor % n_seqs) * stride;
      Result<double> l = objective.step(m, s, o.seq, pool);
      if (!l) return l.status();
      loss += *l / static_cast<double>(o.batch);
      ++st.cursor;
      tokens_run += o.seq;
    }
    StepReport r;
    r.lr = lr_at(adam.config(), adam.t());
    if (!std::isfinite(loss)) {
      return Status::error("the loss stopped being finite at step " + std::to_string(st.step + 1) +
                           " (learning rate " + std::to_string(r.lr) + "): stopped before updating the weights" +
                           (o.checkpoint.empty() ? std::string()
                                                 : "; the last good checkpoint is '" + o.checkpoint + "'"));
    }
    r.grad_norm = adam.step(m.params(), 1.0f / static_cast<float>(o.batch), pool);
    if (!std::isfinite(r.grad_norm)) {
      return Status::error("the gradient stopped being finite at step " + std::to_string(st.step + 1) +
                           ": the weights may be damaged and are not written" +
                           (o.checkpoint.empty() ? std::string()
                                                 : "; the last good checkpoint is '" + o.checkpoint + "'"));
    }
    m.refresh_fake_quant(pool, &*mask);  // only what the update moved
    ++st.step;
    st.last_loss = loss;
    step_secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.peak_act_bytes = m.peak_act_bytes();  // the step's, before a held-out forward
    const bool last = st.step == opt.steps;
    if (n_valid > 0 && (last || (o.eval_every > 0 && st.step % o.eval_every == 0))) {
      Result<double> v = held_out();
      if (!v) return v.status();
      r.valid_loss = res.final_valid_loss = *v;
    }
    if (last || (o.save_every > 0 && st.step % o.save_every == 0)) {
      if (Status s = save(); !s) return s;
    }
    r.step = st.step;
    r.total = opt.steps;
    r.loss = loss;
    r.tokens_per_s = static_cast<double>(tokens_run) / std::max(step_secs, 1e-9);
    r.eta_s = step_secs / static_cast<double>(st.step - first) * static_cast<double>(opt.steps - st.step);
    if (progress) progress(r);
  }
  res.steps_done = st.step;
  return res;
}

}  // namespace flashlm::train
