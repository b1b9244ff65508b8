// model_fingerprint: equal files agree, and a change in any sampled region (metadata,
// tensor infos, a tensor's first bytes, the data section's pages, the file size) gives
// another fingerprint. On the real models: stable across opens, different between
// models, and fast.
#include "formats/gguf_fingerprint.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "formats/gguf_writer_test_util.h"

namespace flashlm::gguf {
namespace {

using testing::GgufBuilder;

uint64_t fingerprint_of(const std::vector<uint8_t>& b) {
  Result<File> f = File::parse(MappedFile::from_bytes(b.data(), b.size()));
  EXPECT_TRUE(f.is_ok()) << f.message();
  return f ? model_fingerprint(*f) : 0;
}

// Two tensors, the second big enough that the data section spans many pages.
GgufBuilder base_model() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama").kv_u32("llama.block_count", 2);
  b.tensor_f32("a", {16}, 1.0f).tensor_f32("b", {256, 256}, 0.5f);
  return b;
}

TEST(ModelFingerprint, EqualFilesAgreeAndEveryRegionCounts) {
  const std::vector<uint8_t> ref = base_model().build();
  const uint64_t fp = fingerprint_of(ref);
  EXPECT_EQ(fingerprint_of(base_model().build()), fp);

  GgufBuilder meta = base_model();
  meta.kv_string("general.name", "other");
  EXPECT_NE(fingerprint_of(meta.build()), fp) << "metadata";

  GgufBuilder shape;
  shape.kv_string("general.architecture", "llama").kv_u32("llama.block_count", 2);
  shape.tensor_f32("a", {16}, 1.0f).tensor_f32("b", {128, 512}, 0.5f);  // same bytes, other shape
  EXPECT_NE(fingerprint_of(shape.build()), fp) << "tensor info";

  // One byte in the first tensor's first bytes, one in the middle of the big tensor.
  const size_t data_start = ref.size() - 256 * 256 * 4 - 64;  // "a" is 64 bytes, aligned
  std::vector<uint8_t> first = ref;
  first[data_start + 3] ^= 1;
  EXPECT_NE(fingerprint_of(first), fp) << "first tensor bytes";
  std::vector<uint8_t> mid = ref;
  mid[data_start + 64 + 256 * 256 * 2 + 1] ^= 1;
  EXPECT_NE(fingerprint_of(mid), fp) << "middle of a tensor";
  std::vector<uint8_t> last = ref;
  last[ref.size() - 1] ^= 1;
  EXPECT_NE(fingerprint_of(last), fp) << "last page";

  GgufBuilder bigger = base_model();
  bigger.tensor_f32("c", {8}, 0.0f);
  EXPECT_NE(fingerprint_of(bigger.build()), fp) << "extra tensor";
}

TEST(ModelFingerprint, RealModelsStableDistinctAndFast) {
  namespace fs = std::filesystem;
  const std::string dir = std::string(FLASHLM_SOURCE_DIR) + "/models/";
  const std::string a = dir + "SmolLM2-135M-Instruct.Q4_1.gguf", b = dir + "gemma-3-270m-q4_k_m.gguf";
  if (!fs::exists(a) || !fs::exists(b)) GTEST_SKIP() << "MODEL FILES MISSING in " << dir << " — run scripts/fetch_models.sh";
  Result<File> fa = File::open(a), fa2 = File::open(a), fb = File::open(b);
  ASSERT_TRUE(fa && fa2 && fb);
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t ha = model_fingerprint(*fa);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(model_fingerprint(*fa2), ha);
  EXPECT_NE(model_fingerprint(*fb), ha);
  std::printf("fingerprint of %s (%zu bytes, %zu tensors): %016llx in %.2f ms\n", a.c_str(), fa->file_size(),
              fa->tensors().size(), static_cast<unsigned long long>(ha), ms);
}

}  // namespace
}  // namespace flashlm::gguf
