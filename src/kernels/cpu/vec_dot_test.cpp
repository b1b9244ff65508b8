// vec_dot kernels: each scalar reference against dequantize(w) . dequantize(quantize(x))
// in double, each fast kernel against the scalar reference, and the Q8_1 activation
// format's invariants. Tolerances come from the inputs: (terms + slack) * 2^-23 times
// the sum of |products|, the bound on float summation error in any order.
#include "kernels/cpu/vec_dot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/neon/neon_kernels.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vec_dot_test_util.h"

namespace flashlm {
namespace {

using namespace testing_util;

constexpr double kEps = 1.0 / (1 << 23);  // 2 ulp of 1.0f: covers round-to-nearest twice over

std::vector<int64_t> lengths(DType t) {
  const int64_t bs = type_traits(t).block_size == 1 ? 32 : type_traits(t).block_size;
  return {bs, 3 * bs, 9 * bs, 4096 / bs * bs};  // one block, a few, many
}

// Float additions a kernel may make: one per block for quantized formats, one per
// element for float formats.
int64_t n_terms(DType t, int64_t n) { return n / type_traits(t).block_size; }

struct Case {
  std::vector<uint8_t> w;   // weight row (with `offset` bytes of padding in front)
  std::vector<uint8_t> xq;  // quantized activation row (same padding)
  std::vector<float> x;
  size_t offset = 0;
  const void* w_ptr() const { return w.data() + offset; }
  const void* xq_ptr() const { return xq.data() + offset; }
};

// Rows start `offset` bytes into their buffers so kernels see unaligned blocks, as
// they do in a mapped file (float rows stay float-aligned, as real ones are).
Case make_case(DType t, int64_t n, std::mt19937& rng) {
  Case c;
  const VecDotTraits& vt = vec_dot_traits_reference(t);
  c.offset = t == DType::F32 ? 4 : 1;
  const std::vector<uint8_t> w = random_row(t, n, rng);
  c.w.assign(c.offset, 0);
  c.w.insert(c.w.end(), w.begin(), w.end());
  c.x = random_activations(n, rng);
  std::vector<uint8_t> xq(vt.row_bytes(n));
  vt.quantize_row(c.x.data(), xq.data(), n);
  c.xq.assign(c.offset, 0);
  c.xq.insert(c.xq.end(), xq.begin(), xq.end());
  return c;
}

std::vector<uint8_t> unpadded(const std::vector<uint8_t>& v, size_t offset) {
  return std::vector<uint8_t>(v.begin() + static_cast<std::ptrdiff_t>(offset), v.end());
}

// Every level of fast kernels this binary has and this CPU runs: on a dotprod ARM CPU
// both the plain NEON and the dotprod kernels, so both are tested wherever either runs.
std::vector<CpuIsa> fast_levels() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kNeon, CpuIsa::kNeonDotprod}) {
    if (cpu_supports(isa)) out.push_back(isa);
  }
  return out;
}

const VecDotTraits& traits_at(CpuIsa isa, DType t) { return *vec_dot_traits_for(isa, t); }

TEST(VecDot, EveryWeightTypeHasTraits) {
  for (DType t : vec_dot_weight_types()) {
    const VecDotTraits& ref = vec_dot_traits_reference(t);
    ASSERT_NE(ref.vec_dot, nullptr) << type_traits(t).name;
    ASSERT_NE(ref.quantize_row, nullptr) << type_traits(t).name;
    EXPECT_NE(vec_dot_traits(t).vec_dot, nullptr) << type_traits(t).name;
    EXPECT_EQ(vec_dot_traits(t).vec_dot_type, ref.vec_dot_type);
  }
  EXPECT_EQ(vec_dot_traits(DType::Q4_1).vec_dot_type, DType::Q8_1);
  EXPECT_EQ(vec_dot_traits(DType::Q5_0).vec_dot_type, DType::Q8_0);
  EXPECT_EQ(vec_dot_traits(DType::Q4_K).vec_dot_type, DType::Q8_K);
  EXPECT_EQ(vec_dot_traits(DType::F16).vec_dot_type, DType::F16);
  EXPECT_EQ(vec_dot_traits(DType::Q8_K).vec_dot, nullptr);  // not a weight format
  EXPECT_EQ(vec_dot_traits(static_cast<DType>(1000)).vec_dot, nullptr);
}

TEST(VecDot, ReferenceEqualsDequantizedDot) {
  std::mt19937 rng(1234);
  for (DType t : vec_dot_weight_types()) {
    const VecDotTraits& vt = vec_dot_traits_reference(t);
    for (int64_t n : lengths(t)) {
      const Case c = make_case(t, n, rng);
      const std::vector<uint8_t> w = unpadded(c.w, c.offset);
      const std::vector<uint8_t> xq = unpadded(c.xq, c.offset);
      const std::vector<float> wd = dequant(t, w.data(), n);
      const std::vector<float> xd = dequant(vt.vec_dot_type, xq.data(), n);
      double exact = 0.0;
      for (int64_t i = 0; i < n; ++i) exact += (double)wd[i] * (double)xd[i];
      const double tol = (double)(n_terms(t, n) + 8) * kEps * magnitude(t, w, xd, n) + q8_1_s_error(t, w, xq, n);
      const float got = vt.vec_dot(c.w_ptr(), c.xq_ptr(), n);
      EXPECT_NEAR(got, exact, tol) << type_traits(t).name << " n=" << n;
    }
  }
}

// The activation rounding itself: dequantize(quantize(x)) is within half a step of x.
TEST(VecDot, ActivationQuantizationErrorIsBounded) {
  std::mt19937 rng(7);
  for (DType t : vec_dot_weight_types()) {
    const VecDotTraits& vt = vec_dot_traits_reference(t);
    const int64_t n = 512;
    const std::vector<float> x = random_activations(n, rng);
    std::vector<uint8_t> xq(vt.row_bytes(n));
    vt.quantize_row(x.data(), xq.data(), n);
    const std::vector<float> xd = dequant(vt.vec_dot_type, xq.data(), n);
    for (int64_t b = 0; b < n; b += vt.block_size) {
      float amax = 0.0f;
      for (int64_t i = b; i < b + vt.block_size; ++i) amax = std::max(amax, std::fabs(x[i]));
      // Integer formats: a step of amax/127 (its half rounding adds at most 127 * 2^-11
      // steps); float formats: relative rounding of the format.
      const bool is_int = vt.block_size > 1;
      for (int64_t i = b; i < b + vt.block_size; ++i) {
        const double bound = is_int ? amax / 127.0 * (0.5 + 127.0 / 2048.0) + amax * 1e-6
                                    : std::fabs(x[i]) * (vt.vec_dot_type == DType::BF16 ? 1.0 / 256 : 1.0 / 2048);
        ASSERT_LE(std::fabs((double)x[i] - (double)xd[i]), bound) << type_traits(t).name << " i=" << i;
      }
    }
  }
}

TEST(VecDot, Q8_1SumIsScaledSumOfCodes) {
  std::mt19937 rng(99);
  const std::vector<float> x = random_activations(128, rng);
  std::vector<quant::BlockQ8_1> blocks(4);
  quant::quantize_row<quant::BlockQ8_1>(x.data(), blocks.data(), 128);
  for (size_t b = 0; b < blocks.size(); ++b) {
    int sum = 0, qmax = 0;
    for (int8_t q : blocks[b].qs) {
      sum += q;
      qmax = std::max(qmax, std::abs((int)q));
    }
    const float d = fp16_to_fp32(blocks[b].d);
    EXPECT_EQ(blocks[b].s, fp32_to_fp16((float)sum * d)) << b;
    if (b == 1) {
      EXPECT_EQ(blocks[b].d, 0);  // the all-zero block
    } else {
      EXPECT_EQ(qmax, 127) << b;  // the largest |x| maps to the end of the range
    }
  }
}

// The level the dispatch picked, printed so a log shows which kernels a run tested, and
// checked: the dispatched table is that level's; an aarch64 build always has NEON; a
// native ARM Linux (its /proc/cpuinfo lists "Features") gets dotprod exactly when the
// CPU reports asimddp; and FLASHLM_EXPECT_ISA, when set, names the level a run must get
// (an emulated run with QEMU_CPU=cortex-a53 must get "neon", with the default "max" CPU
// "neon+dotprod").
TEST(CpuFeatures, DispatchedLevel) {
  const CpuIsa best = cpu_best_isa();
  std::string levels;
  for (CpuIsa isa : fast_levels()) levels += std::string(" ") + cpu_isa_name(isa);
  std::printf("dispatched kernels: %s (levels tested:%s)\n", cpu_isa_name(best), levels.c_str());
  RecordProperty("kernels", cpu_isa_name(best));
  EXPECT_TRUE(cpu_supports(best));
  for (DType t : vec_dot_weight_types()) {
    EXPECT_EQ(vec_dot_traits(t).vec_dot, traits_at(best, t).vec_dot) << type_traits(t).name;
    EXPECT_EQ(vec_dot_traits(t).quantize_row, traits_at(best, t).quantize_row) << type_traits(t).name;
  }
  EXPECT_EQ(vec_dot_traits_for(best, static_cast<DType>(1000))->vec_dot, nullptr);
#if defined(FLASHLM_HAVE_NEON)
  EXPECT_TRUE(best == CpuIsa::kNeon || best == CpuIsa::kNeonDotprod) << cpu_isa_name(best);
  EXPECT_EQ(vec_dot_traits_for(CpuIsa::kAvx2, DType::Q4_0), nullptr);
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("Features", 0) != 0) continue;
    const bool asimddp = (line + " ").find(" asimddp ") != std::string::npos;
    EXPECT_EQ(cpu_has_neon_dotprod(), asimddp) << line;
    break;
  }
#else
  EXPECT_FALSE(cpu_has_neon());
  EXPECT_EQ(vec_dot_traits_for(CpuIsa::kNeon, DType::Q4_0), nullptr);
#endif
  if (const char* want = std::getenv("FLASHLM_EXPECT_ISA"); want != nullptr && *want != '\0') {
    EXPECT_STREQ(cpu_isa_name(best), want);
  }
}

// Every fast kernel of every level this CPU runs against the scalar reference.
TEST(VecDot, FastKernelsEqualReference) {
  if (fast_levels().empty()) GTEST_SKIP() << "no fast kernels for this CPU (or not built): only the scalar path exists";
  for (CpuIsa isa : fast_levels()) {
    std::mt19937 rng(42);
    int n_fast = 0;
    for (DType t : vec_dot_weight_types()) {
      const VecDotTraits& ref = vec_dot_traits_reference(t);
      const VecDotTraits& fast = traits_at(isa, t);
      if (fast.vec_dot == ref.vec_dot) continue;
      ++n_fast;
      for (int64_t n : lengths(t)) {
        for (int rep = 0; rep < 4; ++rep) {
          const Case c = make_case(t, n, rng);
          const std::vector<uint8_t> w = unpadded(c.w, c.offset);
          const std::vector<float> xd = dequant(ref.vec_dot_type, unpadded(c.xq, c.offset).data(), n);
          // Both sums have rounding errors of up to (terms + slack) * eps * magnitude.
          const double tol = 2.0 * (double)(n_terms(t, n) + 8) * kEps * magnitude(t, w, xd, n);
          const float want = ref.vec_dot(c.w_ptr(), c.xq_ptr(), n);
          const float got = fast.vec_dot(c.w_ptr(), c.xq_ptr(), n);
          ASSERT_NEAR(got, want, tol) << cpu_isa_name(isa) << " " << type_traits(t).name << " n=" << n;
        }
      }
    }
    // The types in our real models must all have a fast kernel.
    EXPECT_GE(n_fast, 7) << cpu_isa_name(isa);
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
      EXPECT_NE(traits_at(isa, t).vec_dot, vec_dot_traits_reference(t).vec_dot)
          << cpu_isa_name(isa) << " " << type_traits(t).name;
    }
  }
}

// The fast activation quantizers write the reference's bytes exactly (goldens from
// llama.cpp depend on it), including all-zero blocks, ties, non-finite values, and for
// Q8_K which of two equal magnitudes sets the scale's sign.
TEST(VecDot, FastQuantizeEqualsReferenceBytes) {
  if (fast_levels().empty()) GTEST_SKIP() << "no fast kernels for this CPU (or not built): only the scalar path exists";
  for (CpuIsa isa : fast_levels()) {
    std::mt19937 rng(555);
    int n_fast = 0;
    for (DType t : vec_dot_weight_types()) {
      const VecDotTraits& ref = vec_dot_traits_reference(t);
      const VecDotTraits& fast = traits_at(isa, t);
      if (fast.quantize_row == ref.quantize_row) continue;
      ++n_fast;
      const int64_t bs = ref.block_size;
      for (int64_t n : {bs, int64_t{512}, 9 * bs}) {  // one block, a few, an odd count
        for (int rep = 0; rep < 12; ++rep) {
          std::vector<float> x = random_activations(n, rng);
          auto put = [&](int64_t i, float v) {
            if (i < n) x[static_cast<size_t>(i)] = v;
          };
          if (rep == 1) {  // exact halves of the step: round-half-even ties
            for (int64_t i = 0; i < n; ++i) x[i] = (float)((int)(i % 64) - 32) * 0.5f + (i % 32 == 0 ? 127.0f : 0.0f);
          }
          if (rep == 2) {
            put(3, NAN);
            put(70, INFINITY);
            put(100, -INFINITY);
            put(101, NAN);
            for (int64_t i = 192; i < 224; ++i) put(i, 0.0f);
            put(200, 1e-30f);  // a tiny block scale: d rounds to a half subnormal
            put(400, NAN);     // a NaN in a block with a finite scale
          }
          if (rep == 3) {  // equal magnitudes of both signs: the first one sets Q8_K's sign
            put(10, -50.0f);
            put(20, 50.0f);
            put(300, 50.0f);
            put(301, -50.0f);
          }
          if (rep == 4) {  // every element the same magnitude
            for (int64_t i = 0; i < n; ++i) x[i] = (i % 3 == 1) ? 3.0f : -3.0f;
          }
          if (rep == 5) put(n - 1, -1000.0f);  // the scale from a row's last element
          std::vector<uint8_t> want(ref.row_bytes(n)), got(fast.row_bytes(n));
          ref.quantize_row(x.data(), want.data(), n);
          fast.quantize_row(x.data(), got.data(), n);
          ASSERT_EQ(got, want) << cpu_isa_name(isa) << " " << type_traits(t).name << " n=" << n << " rep=" << rep;
        }
      }
    }
    EXPECT_GE(n_fast, 5) << cpu_isa_name(isa);
  }
}

// The eight-token kernels against the one-token fast kernel (bit-identical by design:
// matmul relies on it so grouping never changes a token's result) and the reference,
// with activation rows packed (matmul's layout) and with odd padding between them.
TEST(VecDot, EightTokenKernelsEqualOneTokenKernels) {
  if (fast_levels().empty()) GTEST_SKIP() << "no fast kernels for this CPU (or not built): no eight-token kernels";
  for (CpuIsa isa : fast_levels()) {
    std::mt19937 rng(4242);
    int n_x8 = 0;
    for (DType t : vec_dot_weight_types()) {
      const VecDotTraits& ref = vec_dot_traits_reference(t);
      const VecDotTraits& fast = traits_at(isa, t);
      EXPECT_EQ(ref.vec_dot_x8, nullptr) << type_traits(t).name;
      if (fast.vec_dot_x8 == nullptr) continue;
      ++n_x8;
      for (int64_t n : lengths(t)) {
        for (int rep = 0; rep < 3; ++rep) {
          // An unaligned weight row; activation rows one byte off alignment.
          const size_t stride = ref.row_bytes(n) + (rep == 0 ? 0 : 3);
          std::vector<uint8_t> xq(1 + kVecDotGroup * stride, 0xAB);
          std::vector<std::vector<float>> xd;
          for (int64_t k = 0; k < kVecDotGroup; ++k) {
            const std::vector<float> x = random_activations(n, rng);
            uint8_t* row = xq.data() + 1 + k * stride;
            ref.quantize_row(x.data(), row, n);
            xd.push_back(dequant(ref.vec_dot_type, row, n));
          }
          const std::vector<uint8_t> w = random_row(t, n, rng);
          std::vector<uint8_t> w_padded(1, 0);
          w_padded.insert(w_padded.end(), w.begin(), w.end());
          float out[kVecDotGroup];
          fast.vec_dot_x8(w_padded.data() + 1, xq.data() + 1, stride, n, out);
          for (int64_t k = 0; k < kVecDotGroup; ++k) {
            const uint8_t* row = xq.data() + 1 + k * stride;
            EXPECT_EQ(out[k], fast.vec_dot(w_padded.data() + 1, row, n))
                << cpu_isa_name(isa) << " " << type_traits(t).name << " n=" << n << " k=" << k;
            const double tol = 2.0 * (double)(n_terms(t, n) + 8) * kEps * magnitude(t, w, xd[k], n);
            EXPECT_NEAR(out[k], ref.vec_dot(w_padded.data() + 1, row, n), tol)
                << cpu_isa_name(isa) << " " << type_traits(t).name << " n=" << n;
          }
        }
      }
    }
    // Every quantized format of our real models has one.
    for (DType t :
         {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
      EXPECT_NE(traits_at(isa, t).vec_dot_x8, nullptr) << cpu_isa_name(isa) << " " << type_traits(t).name;
    }
    EXPECT_GE(n_x8, 8) << cpu_isa_name(isa);
  }
}

// Extreme codes: all-max nibbles and full-scale activations stay clear of the int16
// intermediate sums (AVX2's maddubs, plain NEON's widening multiply-adds).
TEST(VecDot, FastKernelsExactOnExtremeCodes) {
  if (fast_levels().empty()) GTEST_SKIP() << "no fast kernels for this CPU (or not built)";
  for (CpuIsa isa : fast_levels()) {
    for (DType t : vec_dot_weight_types()) {
      const VecDotTraits& ref = vec_dot_traits_reference(t);
      const VecDotTraits& fast = traits_at(isa, t);
      if (fast.vec_dot == ref.vec_dot || !type_traits(t).is_quantized) continue;
      for (uint8_t fill : {uint8_t{0xFF}, uint8_t{0x80}, uint8_t{0x00}}) {
        const int64_t n = type_traits(t).block_size * 2;
        std::vector<uint8_t> w(row_size(t, n), fill);
        for (size_t b = 0; b < w.size() / type_traits(t).type_size; ++b) {
          for (size_t o : half_fields(t).scales) put_half(w.data() + b * type_traits(t).type_size + o, 1.0f);
          for (size_t o : half_fields(t).mins) put_half(w.data() + b * type_traits(t).type_size + o, 0.5f);
        }
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) x[i] = (i % 3 == 0) ? -1.0f : 1.0f;  // every code at +-127
        std::vector<uint8_t> xq(ref.row_bytes(n));
        ref.quantize_row(x.data(), xq.data(), n);
        const std::vector<float> xd = dequant(ref.vec_dot_type, xq.data(), n);
        const double tol = 2.0 * (double)(n_terms(t, n) + 8) * kEps * magnitude(t, w, xd, n);
        const float want = ref.vec_dot(w.data(), xq.data(), n);
        EXPECT_NEAR(fast.vec_dot(w.data(), xq.data(), n), want, tol)
            << cpu_isa_name(isa) << " " << type_traits(t).name << " fill=" << (int)fill;
        if (fast.vec_dot_x8 != nullptr) {  // the same row for all eight tokens (stride 0)
          float out[kVecDotGroup];
          fast.vec_dot_x8(w.data(), xq.data(), 0, n, out);
          for (float o : out) EXPECT_NEAR(o, want, tol) << cpu_isa_name(isa) << " " << type_traits(t).name << " x8";
        }
      }
    }
  }
}

TEST(OpsDot, MatchesDoubleSum) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t n : {0, 1, 7, 8, 31, 32, 33, 100, 1000, 4099}) {
    std::vector<float> a(static_cast<size_t>(n) + 1), b(static_cast<size_t>(n) + 1);
    for (auto& v : a) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    double exact = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      exact += (double)a[i + 1] * (double)b[i + 1];
      mag += std::fabs((double)a[i + 1] * (double)b[i + 1]);
    }
    const double tol = (double)(n + 2) * kEps * mag;
    // Offset by one float: rows need not be 32-byte aligned.
    EXPECT_NEAR(ops::dot(a.data() + 1, b.data() + 1, n), exact, tol) << n;
#if defined(FLASHLM_HAVE_AVX2)
    if (cpu_has_avx2()) {
      EXPECT_NEAR(avx2::dot_f32(a.data() + 1, b.data() + 1, n), exact, tol) << n;
    }
#endif
#if defined(FLASHLM_HAVE_NEON)
    EXPECT_NEAR(neon::dot_f32(a.data() + 1, b.data() + 1, n), exact, tol) << n;
#endif
  }
}

}  // namespace
}  // namespace flashlm
