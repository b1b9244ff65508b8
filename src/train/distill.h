// Distillation from a teacher run on the fly: each training sequence goes through the
// teacher's forward first, its logits become top-k distributions at the temperature
// (factory::KlBase rows), and the student steps on distill_loss against them. The
// held-out figure is the plain KL(teacher || student) at temperature 1 over the same
// top-k coarsening (what `perplexity --kl-base` reports, on the training windows).
#pragma once

#include <memory>

#include "tokenizer/tokenizer.h"
#include "train/distill_loss.h"
#include "train/objective.h"

namespace flashlm::train {

struct DistillOptions {
  DistillLossConfig loss;
  int top_k = 64;  // teacher log-probabilities kept per position
};

class DistillObjective final : public Objective {
 public:
  DistillObjective(TrainModel& teacher, const DistillOptions& o) : teacher_(teacher), o_(o) {}
  Result<double> step(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) override;
  Result<double> held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) override;
  std::string held_out_name() const override { return "held-out KL"; }
  // The parts of the last step's loss.
  const DistillLossParts& last_parts() const { return last_; }

 private:
  // The teacher's distributions at every position of the sequence, at temperature tau.
  Result<factory::KlBase> teacher_rows(const int32_t* tokens, int64_t T, float tau, ThreadPool& pool);

  TrainModel& teacher_;
  DistillOptions o_;
  DistillLossParts last_;
};

// A teacher and a student can be distilled only with one vocabulary: the same size and
// the same token text at every id. The error names the first difference.
Status check_same_vocabulary(const tok::Tokenizer& teacher, const tok::Tokenizer& student);

}  // namespace flashlm::train
