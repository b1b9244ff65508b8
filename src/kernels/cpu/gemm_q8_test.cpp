// The prefill GEMM: unpacked panels reproduce the reference dequantization exactly, and
// gemm_rows (every tile kernel this CPU has) equals the per-row integer dot products on
// the same quantized activations up to float summation order.
#include "kernels/cpu/gemm_q8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_panel.h"
#include "kernels/cpu/vec_dot.h"
#include "kernels/cpu/vec_dot_test_util.h"

#if defined(FLASHLM_HAVE_AVX512)
#include "kernels/cpu/avx512/avx512_kernels.h"
#endif

namespace flashlm {
namespace {

using namespace testing_util;

constexpr double kEps = 1.0 / (1 << 23);

const DType kPanelTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                             DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

struct AlignedBuf {
  explicit AlignedBuf(size_t n) : p(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) & ~size_t{63}))) {}
  ~AlignedBuf() { std::free(p); }
  uint8_t* p;
};

// n_rows random rows of type t and pointers to them, as the panel unpackers take them.
struct RandomRows {
  RandomRows(DType t, int n_rows, int64_t n_in, std::mt19937& rng) {
    for (int r = 0; r < n_rows; ++r) rows.push_back(random_row(t, n_in, rng));
    for (const auto& r : rows) ptrs.push_back(r.data());
  }
  std::vector<std::vector<uint8_t>> rows;
  std::vector<const uint8_t*> ptrs;
};

// s * q + m for every element of every row equals dequantize_row bit for bit.
TEST(GemmPanel, UnpackReproducesDequantization) {
  std::mt19937 rng(5);
  for (DType t : kPanelTypes) {
    ASSERT_TRUE(gemm::panel_supported(t));
    const int64_t n_in = 2 * std::max<int64_t>(type_traits(t).block_size, 64);
    const int64_t nc = n_in / gemm::kChunk;
    for (int n_rows : {1, 3, gemm::kPanelRows}) {
      const RandomRows rr(t, n_rows, n_in, rng);
      AlignedBuf buf(gemm::Panel::bytes(nc));
      gemm::Panel p;
      p.bind(buf.p, nc);
      gemm::unpack_panel(t, rr.ptrs.data(), n_rows, n_in, false, p);
      for (int r = 0; r < gemm::kPanelRows; ++r) {
        const std::vector<float> ref = r < n_rows ? dequant(t, rr.rows[r].data(), n_in) : std::vector<float>(n_in, 0.0f);
        for (int64_t i = 0; i < n_in; ++i) {
          const int64_t c = i / gemm::kChunk, k = i % gemm::kChunk;
          const float s = p.s[(c * gemm::kPanelRows + r) * 8 + (k < 16 ? 0 : 4)];
          const float m = p.mb[(r * nc + c) * 2];
          const float q = static_cast<float>(p.q[(c * gemm::kPanelRows + r) * gemm::kChunk + k]);
          ASSERT_EQ(s * q + m, ref[i]) << type_traits(t).name << " row " << r << " element " << i;
        }
      }
    }
  }
}

#if defined(FLASHLM_HAVE_AVX512)
// The vectorized panel unpacker writes what the scalar one writes (with the unsigned
// activations' lane bias), byte for byte.
TEST(GemmPanel, VnniUnpackEqualsScalar) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU: the VNNI unpacker cannot run";
  std::mt19937 rng(6);
  const avx512::GemvFormat formats[] = {avx512::GemvFormat::kQ4_0, avx512::GemvFormat::kQ4_1,
                                        avx512::GemvFormat::kQ5_0, avx512::GemvFormat::kQ5_1,
                                        avx512::GemvFormat::kQ8_0, avx512::GemvFormat::kQ4_K,
                                        avx512::GemvFormat::kQ5_K, avx512::GemvFormat::kQ6_K};
  for (size_t i = 0; i < std::size(kPanelTypes); ++i) {
    const DType t = kPanelTypes[i];
    const int64_t n_in = 3 * std::max<int64_t>(type_traits(t).block_size, 64);
    const int64_t nc = n_in / gemm::kChunk;
    for (int n_rows : {1, 3, gemm::kPanelRows}) {
      const RandomRows rr(t, n_rows, n_in, rng);
      AlignedBuf a(gemm::Panel::bytes(nc)), b(gemm::Panel::bytes(nc));
      std::memset(a.p, 0x5A, gemm::Panel::bytes(nc));
      std::memset(b.p, 0xA5, gemm::Panel::bytes(nc));
      gemm::Panel pa, pb;
      pa.bind(a.p, nc);
      pb.bind(b.p, nc);
      gemm::unpack_panel(t, rr.ptrs.data(), n_rows, n_in, true, pa);
      avx512::unpack_panel_vnni(formats[i], rr.ptrs.data(), n_rows, n_in, pb);
      const size_t n = static_cast<size_t>(nc) * gemm::kPanelRows;
      ASSERT_EQ(std::memcmp(pa.q, pb.q, n * 32), 0) << type_traits(t).name;
      ASSERT_EQ(std::memcmp(pa.s, pb.s, n * 8 * sizeof(float)), 0) << type_traits(t).name;
      ASSERT_EQ(std::memcmp(pa.mb, pb.mb, n * 2 * sizeof(float)), 0) << type_traits(t).name;
      ASSERT_EQ(std::memcmp(pa.bias, pb.bias, n * 8 * sizeof(int32_t)), 0) << type_traits(t).name;
      ASSERT_EQ(pa.has_offsets, pb.has_offsets) << type_traits(t).name;
    }
  }
}
#endif

struct Case {
  DType type;
  int64_t n_in, n_out, n_tok;
};

void check_gemm(const Case& cs, gemm::TileKernel kernel, std::mt19937& rng) {
  const DType t = cs.type;
  const VecDotTraits& vt = vec_dot_traits(t);
  const size_t rb = row_size(t, cs.n_in);
  std::vector<uint8_t> data;
  for (int64_t r = 0; r < cs.n_out; ++r) {
    const std::vector<uint8_t> row = random_row(t, cs.n_in, rng);
    data.insert(data.end(), row.begin(), row.end());
  }
  TensorView w;
  w.dtype = t;
  w.n_dims = 2;
  w.ne = {cs.n_in, cs.n_out, 1, 1};
  w.nb = {type_traits(t).type_size, rb, rb * static_cast<size_t>(cs.n_out), rb * static_cast<size_t>(cs.n_out)};
  w.data = data.data();
  const int64_t ldx = cs.n_in + 3, ldy = cs.n_out + 2;
  std::vector<float> x(static_cast<size_t>(cs.n_tok * ldx), 1e30f);  // padding must not be read
  for (int64_t k = 0; k < cs.n_tok; ++k) {
    const std::vector<float> xr = random_activations(cs.n_in, rng);
    std::copy(xr.begin(), xr.end(), x.begin() + k * ldx);
  }
  std::vector<float> y(static_cast<size_t>(cs.n_tok * ldy), -7.0f);
  ThreadPool pool(2);
  ASSERT_TRUE(gemm::gemm_rows(w, 0, cs.n_out, x.data(), ldx, y.data(), ldy, cs.n_tok, pool, kernel));
  std::vector<uint8_t> xq(vt.row_bytes(cs.n_in));
  for (int64_t k = 0; k < cs.n_tok; ++k) {
    vt.quantize_row(x.data() + k * ldx, xq.data(), cs.n_in);
    const std::vector<float> xd = dequant(vt.vec_dot_type, xq.data(), cs.n_in);
    // Float rounding of sums whose terms reach |w| * (|x| + 128 dx) (the unsigned-code
    // kernels add and remove 128 * sum(q) per chunk).
    std::vector<float> xmag(xd.size());
    for (size_t i = 0; i < xd.size(); ++i) {
      const size_t c0 = i - i % 32;
      float amax = 0.0f;
      for (size_t j = c0; j < c0 + 32; ++j) amax = std::max(amax, std::fabs(xd[j]));
      xmag[i] = std::fabs(xd[i]) + 128.0f * amax / 127.0f;
    }
    for (int64_t r = 0; r < cs.n_out; ++r) {
      const std::vector<uint8_t> wrow(data.begin() + static_cast<std::ptrdiff_t>(r * rb),
                                      data.begin() + static_cast<std::ptrdiff_t>((r + 1) * rb));
      const double tol = 4.0 * static_cast<double>(cs.n_in / 32 + 8) * kEps * magnitude(t, wrow, xmag, cs.n_in) + 1e-30;
      const float ref = vt.vec_dot(w.row_ptr(r), xq.data(), cs.n_in);
      ASSERT_NEAR(y[k * ldy + r], ref, tol) << type_traits(t).name << " n_in=" << cs.n_in << " n_out=" << cs.n_out
                                            << " n_tok=" << cs.n_tok << " t=" << k << " r=" << r;
    }
    EXPECT_EQ(y[k * ldy + cs.n_out], -7.0f);  // past the rows: untouched
  }
}

std::vector<gemm::TileKernel> kernels_here() {
  std::vector<gemm::TileKernel> ks = {gemm::TileKernel::kReference};
  gemm::TileKernel best;
  if (gemm::best_tile_kernel(&best)) ks.push_back(best);
  return ks;
}

TEST(Gemm, EqualsRowDotsOnAwkwardShapes) {
  std::mt19937 rng(99);
  for (gemm::TileKernel k : kernels_here()) {
    for (DType t : kPanelTypes) {
      const int64_t bs = std::max<int64_t>(type_traits(t).block_size, 32);
      for (const Case& cs : {Case{t, bs, 1, 1}, Case{t, bs, 5, 3}, Case{t, 3 * bs, 4, 4}, Case{t, 2 * bs, 9, 7}, Case{t, 2 * bs, 6, 8},
                             Case{t, 5 * bs, 13, 18}, Case{t, bs, 2, 33}}) {
        SCOPED_TRACE(k == gemm::TileKernel::kVnni ? "vnni" : "reference");
        check_gemm(cs, k, rng);
      }
    }
  }
}

// The tile kernel follows the CPU's features (and says which one the other tests ran).
TEST(Gemm, TileKernelMatchesCpuFeatures) {
  gemm::TileKernel k = gemm::TileKernel::kReference;
  const bool fast = gemm::best_tile_kernel(&k);
  std::printf("[ INFO     ] prefill GEMM tile kernel: %s\n", fast ? "VNNI (AVX-512)" : "none (per-row dot products)");
  EXPECT_EQ(fast, cpu_has_avx512_vnni());
  if (fast) {
    EXPECT_EQ(k, gemm::TileKernel::kVnni);
  }
}

TEST(Gemm, UnsupportedTypeIsRefused) {
  std::vector<float> data(64, 1.0f);
  TensorView w;
  w.dtype = DType::F32;
  w.n_dims = 2;
  w.ne = {32, 2, 1, 1};
  w.nb = {4, 128, 256, 256};
  w.data = data.data();
  std::vector<float> x(32 * 20, 1.0f), y(2 * 20, -1.0f);
  ThreadPool pool(1);
  EXPECT_FALSE(gemm::gemm_rows(w, 0, 2, x.data(), 32, y.data(), 2, 20, pool, gemm::TileKernel::kReference));
  EXPECT_EQ(y[0], -1.0f);
}

}  // namespace
}  // namespace flashlm
