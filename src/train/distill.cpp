#include "train/distill.h"

#include <algorithm>
#include <string_view>
#include <vector>

namespace flashlm::train {
namespace {

// One training step of m against a teacher's rows (rows[t] < 0: position t not scored).
Result<double> step_against(TrainModel& m, const int32_t* tokens, int64_t T, const factory::KlBase& teacher,
                            const std::vector<int64_t>& rows, const DistillLossConfig& cfg, ThreadPool& pool) {
  return m.step(tokens, T,
                [&](const float* logits, int64_t n, int64_t V, float* dlogits) {
                  return distill_loss(logits, n, V, teacher, rows, tokens + 1, cfg, dlogits, nullptr);
                },
                pool);
}

// The plain KL of m to a teacher's rows at temperature 1 (no gradient).
Result<double> kl_against(TrainModel& m, const int32_t* tokens, int64_t T, const factory::KlBase& teacher,
                          const std::vector<int64_t>& rows, ThreadPool& pool) {
  std::vector<float> logits;
  if (Result<double> r = m.forward(tokens, nullptr, T, pool, &logits); !r) return r.status();
  DistillLossParts parts;
  distill_loss(logits.data(), T, m.config().n_vocab, teacher, rows, tokens + 1, DistillLossConfig{}, nullptr, &parts);
  return parts.kl;
}

// Every position of a sequence scored, row t for position t.
std::vector<int64_t> all_rows(int64_t T) {
  std::vector<int64_t> rows(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) rows[static_cast<size_t>(t)] = t;
  return rows;
}

}  // namespace

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
  return step_against(m, tokens, T, *rows, all_rows(T), o_.loss, pool);
}

Result<double> DistillObjective::held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) {
  Result<factory::KlBase> rows = teacher_rows(tokens, T, 1.0f, pool);
  if (!rows) return rows.status();
  return kl_against(m, tokens, T, *rows, all_rows(T), pool);
}

namespace {

size_t hash_tokens(const int32_t* tokens, int64_t n) {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(tokens), static_cast<size_t>(n) * sizeof(int32_t)));
}

}  // namespace

StoredTeacherObjective::StoredTeacherObjective(const factory::KlBase& base, const DistillLossConfig& loss)
    : base_(base), loss_(loss) {
  const auto n_ctx = static_cast<int64_t>(base.n_ctx);
  const int64_t n_chunks = n_ctx > 0 ? static_cast<int64_t>(base.tokens.size()) / n_ctx : 0;
  for (int64_t c = 0; c < n_chunks; ++c) chunk_by_hash_.emplace(hash_tokens(base.tokens.data() + c * n_ctx, n_ctx), c);
}

// Position t of a sequence (a chunk's first n_ctx - 1 tokens) has the file's row when it
// is scored: first = n_ctx / 2 <= t <= n_ctx - 2, rows stored chunk after chunk.
Result<std::vector<int64_t>> StoredTeacherObjective::rows_for(const int32_t* tokens, int64_t T) const {
  const auto n_ctx = static_cast<int64_t>(base_.n_ctx);
  if (T != n_ctx - 1) {
    return Status::error("a stored teacher's sequences are its chunks of " + std::to_string(n_ctx) + " tokens");
  }
  const auto range = chunk_by_hash_.equal_range(hash_tokens(tokens, n_ctx));
  for (auto it = range.first; it != range.second; ++it) {
    const int64_t c = it->second;
    if (!std::equal(tokens, tokens + n_ctx, base_.tokens.begin() + c * n_ctx)) continue;
    const int64_t first = n_ctx / 2, per_chunk = n_ctx - 1 - first;
    std::vector<int64_t> rows(static_cast<size_t>(T), -1);
    for (int64_t t = first; t < T; ++t) rows[static_cast<size_t>(t)] = c * per_chunk + (t - first);
    return rows;
  }
  return Status::error("a training sequence is not one of the stored teacher's chunks");
}

Result<double> StoredTeacherObjective::step(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) {
  Result<std::vector<int64_t>> rows = rows_for(tokens, T);
  if (!rows) return rows.status();
  return step_against(m, tokens, T, base_, *rows, loss_, pool);
}

Result<double> StoredTeacherObjective::held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) {
  Result<std::vector<int64_t>> rows = rows_for(tokens, T);
  if (!rows) return rows.status();
  return kl_against(m, tokens, T, base_, *rows, pool);
}

Status check_stored_chunks(const factory::KlBase& base, const std::vector<int32_t>& text_tokens, int32_t bos) {
  const auto n_ctx = static_cast<int64_t>(base.n_ctx);
  const int64_t n_chunks = n_ctx > 0 ? static_cast<int64_t>(base.tokens.size()) / n_ctx : 0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int32_t* want = base.tokens.data() + c * n_ctx;
    bool same = static_cast<int64_t>(text_tokens.size()) >= (c + 1) * n_ctx;
    for (int64_t i = 0; same && i < n_ctx; ++i) {
      const int32_t got = i == 0 && bos >= 0 ? bos : text_tokens[static_cast<size_t>(c * n_ctx + i)];
      same = got == want[i];
    }
    if (!same) {
      return Status::error("chunk " + std::to_string(c + 1) + " differs from the stored teacher's: another text or " +
                           "tokenizer than its perplexity --kl-save run");
    }
  }
  return Status::ok();
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
