// Quantization-aware training: the fake-quantized forward computes exactly what the
// written quantized model computes, gradients reach the F32 master weights (the
// straight-through estimator), and types that cannot hold a tensor's rows are refused.
#include "train/qat.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "train/finetune.h"
#include "train/write_model.h"

namespace flashlm::train {
namespace {

const std::string kModel = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/synthetic/tiny-llama-f32.gguf";

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("flashlm_qat_") + name)).string();
}

TEST(Qat, TheForwardIsTheWrittenQuantizedModels) {
  ThreadPool pool(2);
  auto base = gguf::File::open(kModel);
  auto m = TrainModel::load(kModel);
  ASSERT_TRUE(base.is_ok() && m.is_ok());
  for (const char* type : {"Q4_0", "Q8_0", "Q5_1"}) {
    auto qt = factory::parse_quant_type(type);
    ASSERT_TRUE(qt.is_ok());
    auto types = qat_types(*base, (*m)->params(), *qt);
    ASSERT_TRUE(types.is_ok()) << types.message();
    int quantized = 0;
    for (DType t : *types) quantized += t != DType::F32 ? 1 : 0;
    EXPECT_GT(quantized, 10) << type;
    ASSERT_TRUE((*m)->set_fake_quant(*types, pool).is_ok());
    const std::vector<int32_t> tokens = {1, 17, 250, 3, 99, 42, 7, 300, 12};
    std::vector<float> fq_logits, plain_logits;
    ASSERT_TRUE((*m)->forward(tokens.data(), nullptr, 9, pool, &fq_logits).is_ok());

    const std::string out = temp_path("model.gguf");
    const std::vector<bool> all((*m)->params().size(), true);
    ASSERT_TRUE(write_qat_model(*base, (*m)->params(), all, *qt, out).is_ok());
    EXPECT_FALSE(std::filesystem::exists(out + ".f32.tmp"));
    auto written = TrainModel::load(out);
    ASSERT_TRUE(written.is_ok()) << written.message();
    ASSERT_TRUE((*written)->forward(tokens.data(), nullptr, 9, pool, &plain_logits).is_ok());
    ASSERT_EQ(fq_logits.size(), plain_logits.size());
    for (size_t i = 0; i < fq_logits.size(); ++i) ASSERT_EQ(fq_logits[i], plain_logits[i]) << type << " at " << i;
    std::filesystem::remove(out);
  }
}

// --qat same: a quantized model trains for its own types and is written back in them.
TEST(Qat, SameTypesForwardIsTheWrittenModels) {
  ThreadPool pool(2);
  const std::string q8 = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/synthetic/tiny-llama-q8_0.gguf";
  auto base = gguf::File::open(q8);
  auto m = TrainModel::load(q8);
  ASSERT_TRUE(base.is_ok() && m.is_ok());
  const std::vector<DType> types = qat_types_same(*base, (*m)->params());
  int q8_0 = 0;
  for (DType t : types) q8_0 += t == DType::Q8_0 ? 1 : 0;
  EXPECT_GT(q8_0, 10);
  for (Param& p : (*m)->params()) {  // move the master weights off the Q8_0 grid
    for (size_t i = 0; i < p.w.size(); ++i) p.w[i] += 1e-3f * static_cast<float>(i % 7);
  }
  ASSERT_TRUE((*m)->set_fake_quant(types, pool).is_ok());
  const std::vector<int32_t> tokens = {1, 17, 250, 3, 99, 42, 7};
  std::vector<float> fq_logits, written_logits;
  ASSERT_TRUE((*m)->forward(tokens.data(), nullptr, 7, pool, &fq_logits).is_ok());
  const std::string out = temp_path("same.gguf");
  const std::vector<bool> all((*m)->params().size(), true);
  ASSERT_TRUE(write_trained_model(*base, (*m)->params(), all, "same", out).is_ok());
  auto written = TrainModel::load(out);
  ASSERT_TRUE(written.is_ok()) << written.message();
  ASSERT_TRUE((*written)->forward(tokens.data(), nullptr, 7, pool, &written_logits).is_ok());
  ASSERT_EQ(fq_logits, written_logits);
  std::filesystem::remove(out);
}

TEST(Qat, GradientsReachTheMasterWeights) {
  ThreadPool pool(2);
  auto base = gguf::File::open(kModel);
  auto m = TrainModel::load(kModel);
  ASSERT_TRUE(base.is_ok() && m.is_ok());
  auto types = qat_types(*base, (*m)->params(), *factory::parse_quant_type("Q4_0"));
  ASSERT_TRUE(types.is_ok());
  ASSERT_TRUE((*m)->set_fake_quant(*types, pool).is_ok());
  FinetuneOptions o;
  o.seq = 16;
  o.batch = 1;
  o.steps = 3;
  o.adam.lr = 1e-2f;
  o.valid_fraction = 0.0;
  std::vector<int32_t> stream(200);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int32_t>(i * 5 % 301);
  const Param& wq = (*m)->params()[2];
  const std::vector<float> before = wq.w;
  ASSERT_TRUE(finetune(**m, stream, o, 1, pool, nullptr, nullptr).is_ok());
  // Updates smaller than a quantization step still move the master weights.
  double moved = 0.0;
  for (size_t i = 0; i < before.size(); ++i) moved += std::abs(static_cast<double>(wq.w[i] - before[i]));
  EXPECT_GT(moved, 0.0);
}

TEST(Qat, RefusesATypeThatCannotHoldTheRows) {
  ThreadPool pool(1);
  auto m = TrainModel::load(kModel);
  ASSERT_TRUE(m.is_ok());
  std::vector<DType> types((*m)->params().size(), DType::F32);
  types[1] = DType::Q4_K;  // rows of 64: a 256-element block does not fit
  const Status st = (*m)->set_fake_quant(types, pool);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("cannot be quantized"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace flashlm::train
