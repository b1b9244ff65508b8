// The fine-tuning loop on a synthetic model: it learns, a stopped run resumes to the same
// bits as an uninterrupted one, damaged checkpoints and bad runs are refused with their
// reason, and the written model loads in the inference engine.
#include "train/finetune.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "formats/gguf.h"
#include "models/model.h"
#include "train/train_state.h"
#include "train/write_model.h"

namespace flashlm::train {
namespace {

const std::string kModel = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/synthetic/tiny-llama-f32.gguf";

std::unique_ptr<TrainModel> load() {
  auto m = TrainModel::load(kModel);
  EXPECT_TRUE(m.is_ok()) << m.message();
  return m.is_ok() ? std::move(m.value()) : nullptr;
}

// A stream with structure to learn: a repeating 23-token phrase.
std::vector<int32_t> phrase_stream(int64_t n) {
  std::vector<int32_t> s(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] = static_cast<int32_t>((i % 23) * 13 % 301);
  return s;
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("flashlm_ft_") + name)).string();
}

FinetuneOptions small_run() {
  FinetuneOptions o;
  o.seq = 16;
  o.batch = 2;
  o.steps = 12;
  o.adam.lr = 3e-3f;
  o.adam.warmup = 2;
  o.valid_fraction = 0.2;
  o.valid_seqs = 4;
  return o;
}

TEST(Finetune, LearnsARepeatedPhrase) {
  ThreadPool pool(2);
  auto m = load();
  ASSERT_NE(m, nullptr);
  std::vector<double> losses;
  auto r = finetune(*m, phrase_stream(1200), small_run(), 1, pool,
                    [&](const StepReport& s) { losses.push_back(s.loss); }, nullptr);
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r->steps_done, 12);
  ASSERT_EQ(losses.size(), 12u);
  std::printf("[finetune] valid loss %.3f -> %.3f, train loss %.3f -> %.3f\n", r->initial_valid_loss,
              r->final_valid_loss, losses.front(), losses.back());
  EXPECT_LT(r->final_valid_loss, 0.5 * r->initial_valid_loss);
  EXPECT_LT(losses.back(), losses.front());
}

TEST(Finetune, StoppedRunResumesToTheSameBits) {
  ThreadPool pool(2);
  const std::vector<int32_t> data = phrase_stream(1200);
  FinetuneOptions o = small_run();
  o.checkpoint = temp_path("resume.ckpt");
  std::filesystem::remove(o.checkpoint);
  auto whole = load();
  ASSERT_TRUE(finetune(*whole, data, o, 7, pool, nullptr, nullptr).is_ok());

  std::filesystem::remove(o.checkpoint);
  auto first = load();
  std::atomic<bool> stop{false};
  auto r1 = finetune(*first, data, o, 7, pool, [&](const StepReport& s) { stop = s.step >= 5; }, &stop);
  ASSERT_TRUE(r1.is_ok()) << r1.message();
  EXPECT_TRUE(r1->stopped);
  EXPECT_EQ(r1->steps_done, 5);
  o.resume = true;
  auto second = load();  // a fresh process: the base weights, then the checkpoint
  auto r2 = finetune(*second, data, o, 7, pool, nullptr, nullptr);
  ASSERT_TRUE(r2.is_ok()) << r2.message();
  EXPECT_EQ(r2->resumed_from, 5);
  EXPECT_EQ(r2->steps_done, 12);
  for (size_t i = 0; i < whole->params().size(); ++i) {
    ASSERT_EQ(second->params()[i].w, whole->params()[i].w) << whole->params()[i].name;
  }
  // Another base model or other options: refused, named.
  auto other = load();
  auto r3 = finetune(*other, data, o, 8, pool, nullptr, nullptr);
  ASSERT_FALSE(r3.is_ok());
  EXPECT_NE(r3.message().find("another base model"), std::string::npos) << r3.message();
  FinetuneOptions o2 = o;
  o2.adam.lr *= 2.0f;
  auto r4 = finetune(*other, data, o2, 7, pool, nullptr, nullptr);
  ASSERT_FALSE(r4.is_ok());
  EXPECT_NE(r4.message().find("other options"), std::string::npos) << r4.message();
  std::filesystem::remove(o.checkpoint);
}

TEST(Finetune, DamagedCheckpointsAreRefusedAndChangeNothing) {
  ThreadPool pool(2);
  FinetuneOptions o = small_run();
  o.steps = 2;
  o.checkpoint = temp_path("damaged.ckpt");
  auto m = load();
  ASSERT_TRUE(finetune(*m, phrase_stream(1200), o, 7, pool, nullptr, nullptr).is_ok());
  std::ifstream in(o.checkpoint, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(good.size(), 1000u);
  struct Damage {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  const Damage cases[] = {{"flipped byte", flipped, "checksum"},
                          {"truncated", good.substr(0, good.size() - 9), "truncated"},
                          {"not a checkpoint", "GGUF" + good.substr(4), "not a flashlm training checkpoint"},
                          {"empty", "", "not a flashlm training checkpoint"}};
  for (const Damage& d : cases) {
    std::ofstream(o.checkpoint, std::ios::binary) << d.bytes;
    auto fresh = load();
    const std::vector<float> before = fresh->params()[3].w;
    AdamW adam(fresh->params(), std::vector<bool>(fresh->params().size(), true), AdamWConfig{});
    TrainState st;
    Status s = load_checkpoint(o.checkpoint, &st, fresh->params(), adam);
    ASSERT_FALSE(s.is_ok()) << d.what;
    EXPECT_NE(s.message().find(d.expect), std::string::npos) << d.what << ": " << s.message();
    EXPECT_EQ(fresh->params()[3].w, before) << d.what;
  }
  std::filesystem::remove(o.checkpoint);
}

TEST(Finetune, BadRunsStopWithTheirReason) {
  ThreadPool pool(2);
  auto m = load();
  FinetuneOptions o = small_run();
  // A text shorter than one sequence (after the held-out tail).
  auto r = finetune(*m, phrase_stream(10), o, 1, pool, nullptr, nullptr);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.message().find("one sequence needs"), std::string::npos) << r.message();
  // A learning rate that blows the loss up: stopped before the weights are touched, the
  // last checkpoint still loads.
  o.adam.lr = 1e12f;
  o.adam.warmup = 0;
  o.adam.clip = 0.0f;
  o.save_every = 1;
  o.checkpoint = temp_path("nan.ckpt");
  std::filesystem::remove(o.checkpoint);
  r = finetune(*m, phrase_stream(1200), o, 1, pool, nullptr, nullptr);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.message().find("stopped being finite"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("last good checkpoint"), std::string::npos) << r.message();
  auto fresh = load();
  AdamW adam(fresh->params(), std::vector<bool>(fresh->params().size(), true), AdamWConfig{});
  TrainState st;
  EXPECT_TRUE(load_checkpoint(o.checkpoint, &st, fresh->params(), adam).is_ok());
  std::filesystem::remove(o.checkpoint);
  // --train lora on a model without adapters says what is missing.
  o = small_run();
  o.train = "lora";
  r = finetune(*m, phrase_stream(1200), o, 1, pool, nullptr, nullptr);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.message().find("has no LoRA adapters"), std::string::npos) << r.message();
}

// Norms only: every other tensor keeps its bits; the written file loads in the inference
// engine and in the trainer with the trained values.
TEST(Finetune, WrittenModelLoadsWithTheTrainedWeights) {
  ThreadPool pool(2);
  auto m = load();
  FinetuneOptions o = small_run();
  o.train = "norms";
  o.steps = 3;
  const std::vector<float> wq_before = m->find("blk.0.attn_q.weight")->w;
  const std::vector<float> norm_before = m->find("blk.0.attn_norm.weight")->w;
  auto r = finetune(*m, phrase_stream(1200), o, 1, pool, nullptr, nullptr);
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(m->find("blk.0.attn_q.weight")->w, wq_before);
  EXPECT_NE(m->find("blk.0.attn_norm.weight")->w, norm_before);
  auto base = gguf::File::open(kModel);
  ASSERT_TRUE(base.is_ok());
  const std::string out = temp_path("out.gguf");
  for (const char* type : {"f32", "f16", "same"}) {
    ASSERT_TRUE(write_trained_model(*base, m->params(), r->trained, type, out).is_ok()) << type;
    ASSERT_TRUE(Model::load(out).is_ok()) << type;
    auto back = TrainModel::load(out);
    ASSERT_TRUE(back.is_ok()) << back.message();
    const std::vector<float>& got = (*back)->find("blk.0.attn_norm.weight")->w;
    const std::vector<float>& want = m->find("blk.0.attn_norm.weight")->w;
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3f * std::fabs(want[i])) << type;
  }
  EXPECT_FALSE(write_trained_model(*base, m->params(), r->trained, "q9", out).is_ok());
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace flashlm::train
