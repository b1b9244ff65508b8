#include "train/distill.h"

#include <vector>

namespace flashlm::train {

Result<factory::KlBase> DistillObjective::teacher_rows(const int32_t* tokens, int64_t T, float tau, ThreadPool& pool) {
  std::vector<float> logits;
  Result<double> r = teacher_.forward(tokens, nullptr, T, pool, &logits);
  if (!r) return r.status().with_context("the teacher");
  const int64_t V = teacher_.config().n_vocab;
  factory::KlBase b;
  b.n_vocab = static_cast<uint32_t>(V);
  b.top_k = static_cast<uint32_t>(std::min<int64_t>(o_.top_k, V));
  if (tau != 1.0f) {
    for (float& v : logits) v /= tau;
  }
  for (int64_t t = 0; t < T; ++t) b.add(logits.data() + t * V, tokens[t + 1]);
  return b;
}

Result<double> DistillObjective::step(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) {
  if (m.config().n_vocab != teacher_.config().n_vocab) {
    return Status::error("the teacher's vocabulary (" + std::to_string(teacher_.config().n_vocab) +
                         ") differs from the student's (" + std::to_string(m.config().n_vocab) + ")");
  }
  Result<factory::KlBase> rows = teacher_rows(tokens, T, o_.loss.temperature, pool);
  if (!rows) return rows.status();
  std::vector<int64_t> index(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) index[static_cast<size_t>(t)] = t;
  const factory::KlBase& teacher = *rows;
  const DistillLossConfig cfg = o_.loss;
  DistillLossParts* parts = &last_;
  const int32_t* next = tokens + 1;
  return m.step(tokens, T,
                [&](const float* logits, int64_t n, int64_t V, float* dlogits) {
                  return distill_loss(logits, n, V, teacher, index, next, cfg, dlogits, parts);
                },
                pool);
}

Result<double> DistillObjective::held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) {
  Result<factory::KlBase> rows = teacher_rows(tokens, T, 1.0f, pool);
  if (!rows) return rows.status();
  std::vector<float> logits;
  if (Result<double> r = m.forward(tokens, nullptr, T, pool, &logits); !r) return r.status();
  std::vector<int64_t> index(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) index[static_cast<size_t>(t)] = t;
  DistillLossParts parts;
  distill_loss(logits.data(), T, m.config().n_vocab, *rows, index, tokens + 1, DistillLossConfig{}, nullptr, &parts);
  return parts.kl;
}

Status check_same_vocabulary(const tok::Tokenizer& teacher, const tok::Tokenizer& student) {
  if (teacher.n_vocab() != student.n_vocab()) {
    return Status::error("the teacher's vocabulary has " + std::to_string(teacher.n_vocab()) +
                         " tokens and the student's " + std::to_string(student.n_vocab()) +
                         ": distillation needs one vocabulary");
  }
  for (int32_t id = 0; id < teacher.n_vocab(); ++id) {
    if (teacher.token_text(id) != student.token_text(id)) {
      return Status::error("the teacher's and the student's vocabularies differ at token " + std::to_string(id) +
                           " ('" + teacher.token_text(id) + "' vs '" + student.token_text(id) +
                           "'): distillation needs one vocabulary");
    }
  }
  return Status::ok();
}

}  // namespace flashlm::train
