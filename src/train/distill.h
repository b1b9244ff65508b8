// Distillation from a teacher run on the fly: each training sequence goes through the
// teacher's forward first, its logits become top-k distributions at the temperature
// (factory::KlBase rows), and the student steps on distill_loss against them. The
// held-out figure is the plain KL(teacher || student) at temperature 1 over the same
// top-k coarsening (what `perplexity --kl-base` reports, on the training windows).
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

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

 private:
  // The teacher's distributions at every position of the sequence, at temperature tau.
  Result<factory::KlBase> teacher_rows(const int32_t* tokens, int64_t T, float tau, ThreadPool& pool);

  TrainModel& teacher_;
  DistillOptions o_;
};

// Distillation from a `perplexity --kl-save` file: the teacher's stored top-k
// log-probabilities (temperature 1) at the scored positions of each of its chunks (the
// second half). The training sequences must be the file's chunks: seq = n_ctx - 1 and
// stride = n_ctx over the file's own tokens (stored_teacher_shape). A sequence is matched
// to its chunk by content; one the file does not hold is an error.
class StoredTeacherObjective final : public Objective {
 public:
  StoredTeacherObjective(const factory::KlBase& base, const DistillLossConfig& loss);
  Result<double> step(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) override;
  Result<double> held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) override;
  std::string held_out_name() const override { return "held-out KL"; }

 private:
  Result<std::vector<int64_t>> rows_for(const int32_t* tokens, int64_t T) const;

  const factory::KlBase& base_;
  DistillLossConfig loss_;
  std::unordered_multimap<size_t, int64_t> chunk_by_hash_;
};

// The training shape a stored teacher needs: sequences of n_ctx - 1 inputs every n_ctx
// tokens.
inline void stored_teacher_shape(const factory::KlBase& base, int64_t* seq, int64_t* stride) {
  *seq = static_cast<int64_t>(base.n_ctx) - 1;
  *stride = base.n_ctx;
}

// The stored teacher's chunks are the text's tokens cut as `perplexity` cuts them (n_ctx
// each, the first replaced by bos when bos >= 0): an error naming the first chunk that
// differs (another text or tokenizer) or is missing.
Status check_stored_chunks(const factory::KlBase& base, const std::vector<int32_t>& text_tokens, int32_t bos);

// A teacher and a student can be distilled only with one vocabulary: the same size and
// the same token text at every id. The error names the first difference.
Status check_same_vocabulary(const tok::Tokenizer& teacher, const tok::Tokenizer& student);

}  // namespace flashlm::train
