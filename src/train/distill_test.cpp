// Distillation's loss against finite differences and against the KL divergence that
// `perplexity --kl-base` reports (factory::kl_position), and the objective end to end: a
// student that starts away from its teacher gets closer on held-out text.
#include "train/distill.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "train/finetune.h"

namespace flashlm::train {
namespace {

std::vector<float> random_logits(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A teacher of T positions over V tokens, rows at temperature tau, top_k kept.
factory::KlBase teacher_of(const std::vector<float>& logits, int64_t T, int64_t V, uint32_t top_k, float tau) {
  factory::KlBase b;
  b.n_vocab = static_cast<uint32_t>(V);
  b.top_k = top_k;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> row(logits.begin() + t * V, logits.begin() + (t + 1) * V);
    for (float& x : row) x /= tau;
    b.add(row.data(), 0);
  }
  return b;
}

struct Case {
  uint32_t top_k;
  float tau;
  float ce_weight;
};

class DistillLossGrad : public ::testing::TestWithParam<Case> {};

TEST_P(DistillLossGrad, MatchesFiniteDifferences) {
  const Case c = GetParam();
  const int64_t T = 3, V = 17;
  const std::vector<float> tl = random_logits(T * V, 1, 2.0f);
  std::vector<float> sl = random_logits(T * V, 2, 2.0f);
  const factory::KlBase teacher = teacher_of(tl, T, V, c.top_k, c.tau);
  const std::vector<int64_t> rows = {0, -1, 2};  // the middle position is not scored
  const std::vector<int32_t> next = {3, 5, 16};
  const DistillLossConfig cfg{c.tau, c.ce_weight};
  std::vector<float> grad(static_cast<size_t>(T * V));
  DistillLossParts parts;
  const double loss = distill_loss(sl.data(), T, V, teacher, rows, next.data(), cfg, grad.data(), &parts);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(parts.kl, 0.0);
  EXPECT_EQ(parts.n, 2);
  double worst = 0.0, gmax = 0.0;
  for (size_t i = 0; i < sl.size(); ++i) {
    const float keep = sl[i];
    const float h = 1e-2f;
    sl[i] = keep + h;
    const double up = distill_loss(sl.data(), T, V, teacher, rows, next.data(), cfg, nullptr, nullptr);
    sl[i] = keep - h;
    const double down = distill_loss(sl.data(), T, V, teacher, rows, next.data(), cfg, nullptr, nullptr);
    sl[i] = keep;
    const double fd = (up - down) / static_cast<double>(2.0f * h);
    worst = std::max(worst, std::abs(fd - static_cast<double>(grad[i])));
    gmax = std::max(gmax, std::abs(static_cast<double>(grad[i])));
  }
  EXPECT_LT(worst, 2e-4 * std::max(1.0, gmax)) << "top_k " << c.top_k << " tau " << c.tau;
  for (int64_t j = 0; j < V; ++j) EXPECT_EQ(grad[static_cast<size_t>(V + j)], 0.0f);  // unscored row
}

INSTANTIATE_TEST_SUITE_P(Shapes, DistillLossGrad,
                         ::testing::Values(Case{17, 1.0f, 0.0f}, Case{4, 1.0f, 0.0f}, Case{4, 2.5f, 0.0f},
                                           Case{1, 0.5f, 0.0f}, Case{6, 1.5f, 0.7f}));

TEST(DistillLoss, IsTheKlThatPerplexityReportsAtTemperatureOne) {
  const int64_t T = 4, V = 300;
  const std::vector<float> tl = random_logits(T * V, 3, 3.0f), sl = random_logits(T * V, 4, 3.0f);
  for (uint32_t k : {1u, 16u, 300u}) {
    const factory::KlBase teacher = teacher_of(tl, T, V, k, 1.0f);
    double want = 0.0;
    for (int64_t t = 0; t < T; ++t) {
      want += factory::kl_position(teacher, static_cast<size_t>(t),
                                   std::span<const float>(sl.data() + t * V, static_cast<size_t>(V)));
    }
    want /= static_cast<double>(T);
    const std::vector<int64_t> rows = {0, 1, 2, 3};
    DistillLossParts parts;
    const double loss = distill_loss(sl.data(), T, V, teacher, rows, nullptr, DistillLossConfig{}, nullptr, &parts);
    EXPECT_NEAR(loss, want, 1e-6 * std::max(1.0, want)) << "top_k " << k;
  }
}

TEST(DistillLoss, IsZeroWithZeroGradientWhenTheStudentIsTheTeacher) {
  const int64_t T = 2, V = 40;
  const std::vector<float> tl = random_logits(T * V, 5, 2.0f);
  for (uint32_t k : {5u, 40u}) {
    for (float tau : {1.0f, 2.0f}) {
      const factory::KlBase teacher = teacher_of(tl, T, V, k, tau);
      const std::vector<int64_t> rows = {0, 1};
      std::vector<float> grad(static_cast<size_t>(T * V));
      const double loss = distill_loss(tl.data(), T, V, teacher, rows, nullptr, DistillLossConfig{tau, 0.0f},
                                       grad.data(), nullptr);
      EXPECT_NEAR(loss, 0.0, 1e-6);
      for (float g : grad) EXPECT_NEAR(g, 0.0f, 1e-6f);
    }
  }
}

const std::string kModel = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/synthetic/tiny-llama-f32.gguf";

std::vector<int32_t> phrase_stream(int64_t n) {
  std::vector<int32_t> s(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + i / 11) % 301);
  return s;
}

TEST(Distill, BringsADamagedStudentBackTowardsItsTeacher) {
  ThreadPool pool(2);
  auto teacher = TrainModel::load(kModel, /*trainable=*/false);
  auto student = TrainModel::load(kModel);
  ASSERT_TRUE(teacher.is_ok() && student.is_ok());
  // The student: the teacher with noise on every weight.
  std::mt19937 rng(9);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  for (Param& p : (*student)->params()) {
    for (float& w : p.w) w += noise(rng);
  }
  DistillOptions d;
  d.top_k = 32;
  d.loss.temperature = 1.0f;
  DistillObjective kd(**teacher, d);
  FinetuneOptions o;
  o.seq = 16;
  o.batch = 2;
  o.steps = 200;
  o.adam.lr = 1e-3f;
  o.valid_fraction = 0.2;
  o.valid_seqs = 4;
  auto r = finetune(**student, phrase_stream(2000), o, kd, 1, pool, nullptr, nullptr);
  ASSERT_TRUE(r.is_ok()) << r.message();
  std::printf("held-out KL %.4f -> %.4f\n", r->initial_valid_loss, r->final_valid_loss);
  EXPECT_GT(r->initial_valid_loss, 0.01);
  EXPECT_LT(r->final_valid_loss, 0.6 * r->initial_valid_loss)
      << "held-out KL " << r->initial_valid_loss << " -> " << r->final_valid_loss;
  // The teacher's own KL to itself is zero (to rounding: the stored log-probabilities are
  // floats; -2.2e-9 under aarch64's fused multiply-adds): the held-out figure measures the
  // distance.
  EXPECT_NEAR(mean_held_out(**teacher, kd, phrase_stream(100), 16, 16, 2, pool).value(), 0.0, 1e-6);
  // A teacher has no gradients to step with.
  const std::vector<int32_t> s = phrase_stream(17);
  EXPECT_FALSE(kd.step(**teacher, s.data(), 16, pool).is_ok());
}

// A stored teacher (perplexity --kl-save's form): chunks of n_ctx tokens, rows for the
// second half of each. The teacher scores zero against its own rows, a damaged student
// gets closer, and a sequence that is not one of the chunks is refused.
TEST(Distill, FromAStoredTeacher) {
  ThreadPool pool(2);
  auto teacher = TrainModel::load(kModel, /*trainable=*/false);
  auto student = TrainModel::load(kModel);
  ASSERT_TRUE(teacher.is_ok() && student.is_ok());
  const int64_t n_ctx = 16, first = n_ctx / 2, n_chunks = 60;
  const std::vector<int32_t> stream = phrase_stream(n_ctx * n_chunks);
  factory::KlBase base;
  base.n_vocab = static_cast<uint32_t>((*teacher)->config().n_vocab);
  base.n_ctx = static_cast<uint32_t>(n_ctx);
  base.top_k = 32;
  base.tokens = stream;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<float> logits;
    ASSERT_TRUE((*teacher)->forward(stream.data() + c * n_ctx, nullptr, n_ctx, pool, &logits).is_ok());
    for (int64_t j = first; j < n_ctx - 1; ++j) base.add(logits.data() + j * base.n_vocab, stream[c * n_ctx + j + 1]);
  }
  StoredTeacherObjective kd(base, DistillLossConfig{});
  FinetuneOptions o;
  stored_teacher_shape(base, &o.seq, &o.stride);
  EXPECT_EQ(o.seq, 15);
  EXPECT_EQ(o.stride, 16);
  EXPECT_NEAR(mean_held_out(**teacher, kd, stream, o.seq, o.stride, 4, pool).value(), 0.0, 1e-6);
  std::mt19937 rng(9);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  for (Param& p : (*student)->params()) {
    for (float& w : p.w) w += noise(rng);
  }
  o.batch = 2;
  o.steps = 150;
  o.adam.lr = 1e-3f;
  o.valid_fraction = 0.2;
  o.valid_seqs = 4;
  auto r = finetune(**student, stream, o, kd, 1, pool, nullptr, nullptr);
  ASSERT_TRUE(r.is_ok()) << r.message();
  std::printf("stored teacher: held-out KL %.4f -> %.4f\n", r->initial_valid_loss, r->final_valid_loss);
  // Only the second half of each chunk is scored (7 of 15 positions): slower than the
  // on-the-fly teacher's every position (measured 0.443 -> 0.368).
  EXPECT_LT(r->final_valid_loss, 0.9 * r->initial_valid_loss);
  const std::vector<int32_t> other(17, 3);
  EXPECT_FALSE(kd.step(**student, other.data(), 15, pool).is_ok());
  EXPECT_FALSE(kd.step(**student, stream.data(), 14, pool).is_ok());
}

TEST(Distill, StoredChunksAreCheckedAgainstTheText) {
  factory::KlBase base;
  base.n_ctx = 4;
  base.tokens = {1, 5, 6, 7, 1, 9, 10, 11};  // two chunks, BOS (1) first in each
  const std::vector<int32_t> text = {1, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_TRUE(check_stored_chunks(base, text, 1).is_ok());
  EXPECT_FALSE(check_stored_chunks(base, text, -1).is_ok());  // chunk 2 starts with 8 without BOS
  std::vector<int32_t> other = text;
  other[6] = 3;
  const Status st = check_stored_chunks(base, other, 1);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("chunk 2"), std::string::npos) << st.message();
  EXPECT_FALSE(check_stored_chunks(base, std::vector<int32_t>(text.begin(), text.begin() + 6), 1).is_ok());
}

}  // namespace
}  // namespace flashlm::train
