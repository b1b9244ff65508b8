// The fine-tuning loop: next-token cross-entropy over a token stream cut into sequences,
// gradient accumulation over a batch of them per AdamW step, periodic held-out loss,
// checkpoints that a killed run resumes from, and a stop that ends cleanly (after the
// step in flight, with a checkpoint). A loss or gradient that stops being finite ends the
// run with an error before it reaches the weights, so the last checkpoint stays good.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/sgemm.h"
#include "train/adamw.h"
#include "train/objective.h"
#include "train/train_model.h"

namespace flashlm::train {

struct FinetuneOptions {
  int64_t seq = 128;             // tokens per training sequence
  int64_t stride = 0;            // tokens between sequence starts; 0: seq (back to back)
  int64_t batch = 4;             // sequences per optimizer step (gradient accumulation)
  int64_t steps = 0;             // optimizer steps; 0: one pass over the training split
  AdamWConfig adam;              // total_steps is set from steps
  std::string train = "all";     // which tensors train: all | norms
  int checkpoint_every = 0;      // gradient checkpointing: 0 none, N: every N layers
  double valid_fraction = 0.1;   // the stream's tail held out for the validation loss
  int64_t eval_every = 0;        // steps between validation losses; 0: at the end only
  int64_t valid_seqs = 8;        // held-out sequences per validation loss
  std::string checkpoint;        // checkpoint file; empty: none
  int64_t save_every = 0;        // steps between checkpoints; 0: at the end and on stop
  bool resume = false;           // continue from the checkpoint file when it exists
  SgemmInputs matmul = SgemmInputs::kF32;  // what every matmul's inputs are rounded to
                                 // (weights and activations; masters and moments stay F32)
  std::string objective;         // what else shapes the run (distillation's teacher and
                                 // settings, QAT's type): a checkpoint resumes only with it
};

struct StepReport {
  int64_t step = 0;              // updates done
  int64_t total = 0;
  double loss = 0.0;             // mean over the step's sequences
  double valid_loss = -1.0;      // < 0: not evaluated at this step
  double grad_norm = 0.0;
  float lr = 0.0f;
  double tokens_per_s = 0.0;     // this run's training tokens / time in training steps
                                 // (held-out losses and checkpoint writes excluded)
  double eta_s = 0.0;
  int64_t peak_act_bytes = 0;
};

struct FinetuneResult {
  int64_t steps_done = 0;
  int64_t resumed_from = -1;     // step of the checkpoint resumed, or -1
  bool stopped = false;          // ended by the stop flag
  double final_valid_loss = -1.0;
  double initial_valid_loss = -1.0;
  std::vector<bool> trained;     // per parameter
};

// The tensors a --train mode updates, or an error naming what is not available.
Result<std::vector<bool>> trainable_mask(const TrainModel& m, const std::string& mode);
// Mean held-out figure over up to n sequences of seq + 1 tokens from the stream, starting
// every stride tokens.
Result<double> mean_held_out(TrainModel& m, Objective& objective, const std::vector<int32_t>& stream, int64_t seq,
                             int64_t stride, int64_t n, ThreadPool& pool);

// Trains m on the objective. With fake quantization set on m (QAT), the quantized
// copies are refreshed after every update and after a resume.
Result<FinetuneResult> finetune(TrainModel& m, const std::vector<int32_t>& tokens, const FinetuneOptions& o,
                                Objective& objective, uint64_t base_fingerprint, ThreadPool& pool,
                                const std::function<void(const StepReport&)>& progress,
                                const std::atomic<bool>* stop);
// Fine-tuning: the next-token cross-entropy objective.
Result<FinetuneResult> finetune(TrainModel& m, const std::vector<int32_t>& tokens, const FinetuneOptions& o,
                                uint64_t base_fingerprint, ThreadPool& pool,
                                const std::function<void(const StepReport&)>& progress,
                                const std::atomic<bool>* stop);

}  // namespace flashlm::train
