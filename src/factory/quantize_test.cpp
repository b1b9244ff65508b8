// flashlm quantize on small files made here: which tensors change, that converted rows
// are the reference quantizer's bytes (quant/quant_ref.h), that unchanged tensors and
// metadata are copied, and the errors. tests/check_quantize.py checks real models
// against gguf-py's independent quantizers and llama.cpp's reader.
#include "factory/quantize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "formats/gguf_writer.h"
#include "quant/quant.h"

namespace flashlm::factory {
namespace {

std::string temp_path(const std::string& tag) {
  return ::testing::TempDir() + "quantize_" + tag + "_" + std::to_string(getpid()) + ".gguf";
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.5f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A model-shaped file: an F16 embedding and matrix, an F32 norm, a router, a 3-D expert
// tensor, and a matrix whose rows are 48 long (not a multiple of 32) when `odd_rows`.
struct SmallModel {
  std::vector<float> embd = random_floats(64 * 10, 1), wq = random_floats(64 * 16, 2), norm = random_floats(64, 3),
                     router = random_floats(64 * 4, 4), exps = random_floats(64 * 8 * 4, 5), odd = random_floats(48 * 4, 6);
  std::vector<uint8_t> embd16 = to_f16(embd), wq16 = to_f16(wq);

  static std::vector<uint8_t> to_f16(const std::vector<float>& f) {
    std::vector<uint8_t> b(f.size() * 2);
    type_traits(DType::F16).from_float(f.data(), b.data(), static_cast<int64_t>(f.size()));
    return b;
  }

  std::string write(const std::string& tag, bool odd_rows = false) const {
    gguf::Writer w;
    w.set("general.architecture", gguf::make_string("llama"));
    w.set("general.file_type", gguf::make_u32(1));
    w.set("llama.block_count", gguf::make_u32(1));
    EXPECT_TRUE(w.add_tensor("token_embd.weight", DType::F16, {64, 10}, embd16.data()));
    EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", DType::F16, {64, 16}, wq16.data()));
    EXPECT_TRUE(w.add_tensor("blk.0.attn_norm.weight", DType::F32, {64}, norm.data()));
    EXPECT_TRUE(w.add_tensor("blk.0.ffn_gate_inp.weight", DType::F32, {64, 4}, router.data()));
    EXPECT_TRUE(w.add_tensor("blk.0.ffn_up_exps.weight", DType::F32, {64, 8, 4}, exps.data()));
    if (odd_rows) {
      EXPECT_TRUE(w.add_tensor("blk.0.odd.weight", DType::F32, {48, 4}, odd.data()));
    }
    const std::string path = temp_path(tag);
    EXPECT_TRUE(w.write(path));
    return path;
  }
};

gguf::File open(const std::string& path) {
  Result<gguf::File> f = gguf::File::open(path);
  EXPECT_TRUE(f) << f.message();
  return std::move(f).value();
}

// The reference quantizer's bytes for a tensor's rows (dequantized source first).
std::vector<uint8_t> reference_bytes(const gguf::TensorInfo& src, DType to) {
  const int64_t n = src.ne[0], rows = src.nelements() / n;
  std::vector<float> f(static_cast<size_t>(n));
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_size(to, n));
  for (int64_t r = 0; r < rows; ++r) {
    type_traits(src.dtype).to_float(src.data + static_cast<size_t>(r) * row_size(src.dtype, n), f.data(), n);
    type_traits(to).from_float(f.data(), out.data() + static_cast<size_t>(r) * row_size(to, n), n);
  }
  return out;
}

TEST(Quantize, TypeNamesAreLlamaQuantizes) {
  for (const char* n : {"Q4_0", "q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "bf16", "F32", "Q6_K", "q4_k_m",
                        "Q4_K_S", "Q5_K_M", "Q5_K_S", "Q4_K", "Q5_K", "Q3_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q2_K",
                        "q2_k_s"}) {
    EXPECT_TRUE(parse_quant_type(n)) << n;
  }
  EXPECT_EQ(parse_quant_type("q8_0")->type, DType::Q8_0);
  EXPECT_EQ(parse_quant_type("Q4_0")->file_type, 2u);  // llama.h: LLAMA_FTYPE_MOSTLY_Q4_0
  EXPECT_EQ(parse_quant_type("F16")->file_type, 1u);
  EXPECT_EQ(parse_quant_type("Q4_K")->name, "Q4_K_M");  // llama-quantize's alias
  EXPECT_EQ(parse_quant_type("Q4_K_M")->file_type, 15u);
  EXPECT_EQ(parse_quant_type("Q3_K")->name, "Q3_K_M");
  EXPECT_EQ(parse_quant_type("Q2_K")->file_type, 10u);
  EXPECT_EQ(parse_quant_type("Q2_K_S")->file_type, 21u);
  const Result<QuantType> iq = parse_quant_type("IQ4_XS");
  ASSERT_FALSE(iq);
  EXPECT_NE(iq.message().find("not implemented yet"), std::string::npos) << iq.message();
  const Result<QuantType> bad = parse_quant_type("Q9_9");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("unknown type 'Q9_9'"), std::string::npos) << bad.message();
}

TEST(Quantize, WeightMatricesChangeAndTheRestIsCopied) {
  const SmallModel m;
  const std::string in_path = m.write("in");
  const gguf::File in = open(in_path);
  for (const char* type : {"Q8_0", "Q4_0", "Q5_1", "BF16"}) {  // pure: all matrices in the type
    SCOPED_TRACE(type);
    const QuantType to = parse_quant_type(type).value();
    const std::string out_path = temp_path(std::string("out_") + type);
    size_t reported = 0;
    QuantizeOptions opts;
    opts.n_threads = 2;
    opts.pure = true;
    opts.progress = [&reported](const QuantizeProgress& p) { reported = p.index; };
    ASSERT_TRUE(quantize_model(in, to, out_path, opts));
    EXPECT_EQ(reported, in.tensors().size());
    const gguf::File out = open(out_path);
    EXPECT_EQ(out.get_string("general.architecture").value(), "llama");
    EXPECT_EQ(out.get_int("general.file_type").value(), static_cast<int64_t>(to.file_type));
    EXPECT_EQ(out.get_int("general.quantization_version").value(), 2);
    ASSERT_EQ(out.tensors().size(), in.tensors().size());
    for (const gguf::TensorInfo& s : in.tensors()) {
      const gguf::TensorInfo* o = out.find_tensor(s.name);
      ASSERT_NE(o, nullptr) << s.name;
      EXPECT_EQ(std::vector<int64_t>(o->ne, o->ne + 4), std::vector<int64_t>(s.ne, s.ne + 4)) << s.name;
      const bool matrix = s.n_dims >= 2 && s.name != "blk.0.ffn_gate_inp.weight";
      if (!matrix) {  // norms and the router: same type, same bytes
        EXPECT_EQ(o->dtype, s.dtype) << s.name;
        ASSERT_EQ(o->size_bytes, s.size_bytes);
        EXPECT_EQ(std::memcmp(o->data, s.data, s.size_bytes), 0) << s.name;
        continue;
      }
      EXPECT_EQ(o->dtype, to.type) << s.name;
      const std::vector<uint8_t> ref = reference_bytes(s, to.type);
      ASSERT_EQ(o->size_bytes, ref.size()) << s.name;
      EXPECT_EQ(std::memcmp(o->data, ref.data(), ref.size()), 0) << s.name;
    }
    std::remove(out_path.c_str());
  }
  std::remove(in_path.c_str());
}

// llama-quantize's Q4_K_M choices on 16 layers whose rows K-quant blocks fit (512) and
// one matrix whose rows they do not (rows of 64: the Q4_K fallback Q5_0).
TEST(Quantize, MixesFollowLlamaQuantize) {
  const int n_layer = 16;
  const std::vector<float> w512 = random_floats(512 * 4, 7), w64 = random_floats(64 * 8, 8), embd = random_floats(512 * 8, 9);
  gguf::Writer w;
  w.set("general.architecture", gguf::make_string("llama"));
  w.set("llama.block_count", gguf::make_u32(n_layer));
  ASSERT_TRUE(w.add_tensor("token_embd.weight", DType::F32, {512, 8}, embd.data()));
  for (int il = 0; il < n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    ASSERT_TRUE(w.add_tensor(b + "attn_v.weight", DType::F32, {512, 4}, w512.data()));
    ASSERT_TRUE(w.add_tensor(b + "ffn_down.weight", DType::F32, {512, 4}, w512.data()));
    ASSERT_TRUE(w.add_tensor(b + "attn_q.weight", DType::F32, {64, 8}, w64.data()));
  }
  const std::string path = temp_path("mix");
  ASSERT_TRUE(w.write(path));
  const gguf::File in = open(path);
  Result<std::vector<TensorPlan>> plan = plan_quantize(in, parse_quant_type("Q4_K_M").value(), false);
  ASSERT_TRUE(plan) << plan.message();
  // use_more_bits(i, 16): i < 2, i >= 14, (i - 2) % 3 == 2.
  const std::vector<int> more = {0, 1, 4, 7, 10, 13, 14, 15};
  for (const TensorPlan& p : *plan) {
    const std::string& n = p.src->name;
    if (n == "token_embd.weight") {
      EXPECT_EQ(p.type, DType::Q6_K) << "the tied output";
      continue;
    }
    const int il = std::stoi(n.substr(4));
    if (n.ends_with("attn_q.weight")) {
      EXPECT_EQ(p.type, DType::Q5_0) << n;
    } else {
      const bool m = std::find(more.begin(), more.end(), il) != more.end();
      EXPECT_EQ(p.type, m ? DType::Q6_K : DType::Q4_K) << n;
    }
  }
  plan = plan_quantize(in, parse_quant_type("Q4_K_S").value(), false);
  ASSERT_TRUE(plan);
  for (const TensorPlan& p : *plan) {
    const std::string& n = p.src->name;
    if (n.starts_with("blk.") && !n.ends_with("attn_q.weight")) {
      const int il = std::stoi(n.substr(4));
      const bool five = n.ends_with("attn_v.weight") ? il < 4 : il < n_layer / 8;
      EXPECT_EQ(p.type, five ? DType::Q5_K : DType::Q4_K) << n;
    }
  }
  // --pure: rows of 64 cannot be Q4_K.
  const Result<std::vector<TensorPlan>> pure = plan_quantize(in, parse_quant_type("Q4_K_M").value(), true);
  ASSERT_FALSE(pure);
  EXPECT_NE(pure.message().find("rows of 64 elements cannot be q4_K"), std::string::npos) << pure.message();
  std::remove(path.c_str());
}

// The K-quant quantizers against llama.cpp's llama-quantize --pure on the same F16 input
// (tests/golden/quant/, made by scripts/reference/make_kquant_golden.py): every tensor
// byte for byte.
TEST(Quantize, KQuantsAreLlamaQuantizesBytes) {
  const std::string dir = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/quant/";
  const gguf::File in = open(dir + "kquant-f16.gguf");
  QuantizeOptions opts;
  opts.pure = true;
  for (const auto& [type, stem] : {std::pair{"Q4_K_M", "q4_k"}, {"Q5_K_M", "q5_k"}, {"Q6_K", "q6_k"}}) {
    SCOPED_TRACE(type);
    const std::string out_path = temp_path(std::string("kq_") + stem);
    ASSERT_TRUE(quantize_model(in, parse_quant_type(type).value(), out_path, opts));
    const gguf::File got = open(out_path);
    const gguf::File want = open(dir + "kquant-" + stem + ".gguf");
    ASSERT_EQ(got.tensors().size(), want.tensors().size());
    for (const gguf::TensorInfo& w : want.tensors()) {
      const gguf::TensorInfo* g = got.find_tensor(w.name);
      ASSERT_NE(g, nullptr) << w.name;
      EXPECT_EQ(g->dtype, w.dtype) << w.name;
      ASSERT_EQ(g->size_bytes, w.size_bytes) << w.name;
      EXPECT_EQ(std::memcmp(g->data, w.data, w.size_bytes), 0) << w.name;
    }
    EXPECT_EQ(got.get_int("general.file_type").value(), want.get_int("general.file_type").value());
    std::remove(out_path.c_str());
  }
}

TEST(Quantize, SameTypeIsCopiedBitForBit) {
  const SmallModel m;
  const std::string in_path = m.write("same");
  const gguf::File in = open(in_path);
  const std::string out_path = temp_path("same_out");
  ASSERT_TRUE(quantize_model(in, parse_quant_type("F16").value(), out_path, {}));
  const gguf::File out = open(out_path);
  const gguf::TensorInfo* o = out.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->dtype, DType::F16);
  EXPECT_EQ(std::memcmp(o->data, m.wq16.data(), m.wq16.size()), 0);
  std::remove(out_path.c_str());
  std::remove(in_path.c_str());
}

TEST(Quantize, ErrorsNameTheProblemAndLeaveNoFile) {
  const SmallModel m;
  const std::string in_path = m.write("odd", /*odd_rows=*/true);
  const gguf::File in = open(in_path);
  const std::string out_path = temp_path("odd_out");
  // Rows of 48 cannot be 32-element blocks; F16 has no blocks and takes them.
  QuantizeOptions pure;
  pure.pure = true;
  const Status st = quantize_model(in, parse_quant_type("Q4_0").value(), out_path, pure);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("'blk.0.odd.weight': rows of 48 elements cannot be q4_0"), std::string::npos)
      << st.message();
  EXPECT_FALSE(std::filesystem::exists(out_path));
  EXPECT_TRUE(quantize_model(in, parse_quant_type("F16").value(), out_path, {}));
  std::remove(out_path.c_str());
  // The input itself as the output.
  const Status same = quantize_model(in, parse_quant_type("Q8_0").value(), in_path, {});
  ASSERT_FALSE(same);
  EXPECT_NE(same.message().find("is the input file"), std::string::npos) << same.message();
  // A directory that does not exist.
  const Status nodir = quantize_model(in, parse_quant_type("Q8_0").value(), "/nonexistent/dir/out.gguf", {});
  EXPECT_FALSE(nodir);
  std::remove(in_path.c_str());
}

}  // namespace
}  // namespace flashlm::factory
