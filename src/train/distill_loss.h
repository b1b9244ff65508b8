// Knowledge distillation's loss on a student's logits: KL(teacher || student) against the
// teacher's distribution coarsened to its top-k tokens plus one outcome for the rest (the
// form factory/kl_divergence.h stores, so a `perplexity --kl-save` file and a teacher run
// on the fly feed the same loss), at a temperature, plus an optional cross-entropy on
// the next tokens.
//
//   loss = tau^2 * mean_t KL(P_t || softmax(z_t / tau)) + ce_weight * mean_t CE(z_t, next_t)
//
// Coarsened, the student's own probability of "the rest" is the sum of its mass outside
// the teacher's top-k, so the gradient pushes down tokens the teacher ranks low as a
// group and is exact when k covers the vocabulary. tau^2 keeps the gradient's scale
// independent of the temperature (Hinton et al.).
#pragma once

#include <cstdint>
#include <span>

#include "factory/kl_divergence.h"

namespace flashlm::train {

struct DistillLossConfig {
  float temperature = 1.0f;
  float ce_weight = 0.0f;  // 0: KL only
};

struct DistillLossParts {
  double kl = 0.0;  // mean KL at the temperature, before the tau^2 factor
  double ce = 0.0;  // mean cross-entropy (0 when ce_weight is 0)
  int64_t n = 0;    // positions scored
};

// logits [T][n_vocab]; rows[t] is position t's row of `teacher` (its distribution at the
// temperature), or < 0 for a position not scored; next[t] is the token that followed
// (used when ce_weight > 0). dlogits (may be null) gets the gradient, every entry.
double distill_loss(const float* logits, int64_t T, int64_t n_vocab, const factory::KlBase& teacher,
                    std::span<const int64_t> rows, const int32_t* next, const DistillLossConfig& cfg, float* dlogits,
                    DistillLossParts* parts);

}  // namespace flashlm::train
