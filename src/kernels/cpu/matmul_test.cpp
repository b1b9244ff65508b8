// matmul (activations rounded to the vec_dot type, tiled, threaded) against
// matmul_reference (f32 activations, one row at a time). The two differ by the
// activation rounding, bounded per output by sum_i |w_i| |x_i - xq_i|, plus float
// rounding of the sums.
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/vec_dot_test_util.h"

namespace flashlm {
namespace {

using namespace testing_util;

constexpr double kEps = 1.0 / (1 << 23);

struct Weights {
  std::vector<uint8_t> data;
  TensorView view;
};

Weights random_weights(DType t, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  Weights w;
  const size_t rb = row_size(t, n_in);
  for (int64_t r = 0; r < n_out; ++r) {
    const std::vector<uint8_t> row = random_row(t, n_in, rng);
    w.data.insert(w.data.end(), row.begin(), row.end());
  }
  w.view.dtype = t;
  w.view.n_dims = 2;
  w.view.ne = {n_in, n_out, 1, 1};
  w.view.nb = {type_traits(t).type_size, rb, rb * static_cast<size_t>(n_out), rb * static_cast<size_t>(n_out)};
  w.view.data = w.data.data();
  return w;
}

std::vector<uint8_t> weight_row(const Weights& w, int64_t r) {
  const size_t rb = w.view.nb[1];
  return std::vector<uint8_t>(w.data.begin() + static_cast<std::ptrdiff_t>(r * rb),
                              w.data.begin() + static_cast<std::ptrdiff_t>((r + 1) * rb));
}

// Per-output tolerance: activation rounding error through |w|, plus float rounding of
// both results (the reference sums in double, so its own error is one rounding).
double tolerance(DType t, const std::vector<uint8_t>& wrow, const float* x, int64_t n) {
  const VecDotTraits& vt = vec_dot_traits(t);
  std::vector<uint8_t> xq(vt.row_bytes(n));
  vt.quantize_row(x, xq.data(), n);
  const std::vector<float> xd = dequant(vt.vec_dot_type, xq.data(), n);
  const std::vector<float> wd = dequant(t, wrow.data(), n);
  const std::vector<float> xv(x, x + n);
  double rounding = 0.0;
  for (int64_t i = 0; i < n; ++i) rounding += std::fabs((double)wd[i]) * std::fabs((double)x[i] - (double)xd[i]);
  const double terms = (double)(n / type_traits(t).block_size + 8);
  return rounding + q8_1_s_error(t, wrow, xq, n) +
         terms * kEps * (magnitude(t, wrow, xd, n) + magnitude(t, wrow, xv, n));
}

TEST(Matmul, EqualsReferenceWithinActivationRounding) {
  std::mt19937 rng(2024);
  ThreadPool pool(3);
  for (DType t : vec_dot_weight_types()) {
    const int64_t n_in = type_traits(t).block_size == 1 ? 96 : 2 * std::max<int64_t>(type_traits(t).block_size, 64);
    const int64_t n_out = 37;  // not a multiple of the row tile
    for (const int64_t n_tok : {int64_t{3}, kGemmMinTokens + 5}) {  // row dots, then the GEMM if the CPU has it
    const Weights w = random_weights(t, n_in, n_out, rng);
    std::vector<float> x;
    for (int64_t k = 0; k < n_tok; ++k) {
      const std::vector<float> xr = random_activations(n_in, rng);
      x.insert(x.end(), xr.begin(), xr.end());
      x.push_back(123.0f);  // row stride n_in + 1: padding that must not be read
    }
    const int64_t ldx = n_in + 1;
    const int64_t ldy = n_out + 2;
    std::vector<float> y(static_cast<size_t>(n_tok * ldy), -7.0f);
    std::vector<float> y_ref(static_cast<size_t>(n_tok * ldy), -7.0f);
    matmul(w.view, x.data(), ldx, y.data(), ldy, n_tok, pool);
    matmul_reference(w.view, x.data(), ldx, y_ref.data(), ldy, n_tok);
    for (int64_t tk = 0; tk < n_tok; ++tk) {
      for (int64_t r = 0; r < n_out; ++r) {
        const double tol = tolerance(t, weight_row(w, r), x.data() + tk * ldx, n_in);
        ASSERT_NEAR(y[tk * ldy + r], y_ref[tk * ldy + r], tol) << type_traits(t).name << " t=" << tk << " r=" << r;
      }
      EXPECT_EQ(y[tk * ldy + n_out], -7.0f);  // past the row: untouched
    }
    }
  }
}

// A slice of rows lands at the start of y and touches nothing else.
TEST(Matmul, RowSliceMatchesFullProduct) {
  std::mt19937 rng(8);
  ThreadPool pool(2);
  for (DType t : {DType::Q4_K, DType::Q8_0, DType::F32}) {
    const int64_t n_in = 256, n_out = 50, n_tok = 2;
    const Weights w = random_weights(t, n_in, n_out, rng);
    std::vector<float> x;
    for (int64_t k = 0; k < n_tok; ++k) {
      const std::vector<float> xr = random_activations(n_in, rng);
      x.insert(x.end(), xr.begin(), xr.end());
    }
    std::vector<float> full(static_cast<size_t>(n_tok * n_out));
    matmul(w.view, x.data(), n_in, full.data(), n_out, n_tok, pool);
    const int64_t r0 = 5, r1 = 41;
    std::vector<float> part(static_cast<size_t>(n_tok * (r1 - r0)) + 1, -1.0f);
    matmul_rows(w.view, r0, r1, x.data(), n_in, part.data(), r1 - r0, n_tok, pool);
    for (int64_t tk = 0; tk < n_tok; ++tk) {
      for (int64_t r = r0; r < r1; ++r) {
        // Same kernel, same quantized activations: bit-identical.
        EXPECT_EQ(part[tk * (r1 - r0) + (r - r0)], full[tk * n_out + r]) << type_traits(t).name;
      }
    }
    EXPECT_EQ(part.back(), -1.0f);
  }
}

// Token counts around the eight-token groups: every output equals the one-token kernel
// on that token's quantized row, whether its token went through a group or the tail.
TEST(Matmul, TokenGroupsEqualOneTokenKernel) {
  std::mt19937 rng(31);
  ThreadPool pool(2);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K,
                  DType::Q6_K, DType::F32}) {
    const VecDotTraits& vt = vec_dot_traits(t);
    const int64_t bs = type_traits(t).block_size;
    for (int64_t n_in : {std::max<int64_t>(bs, 32), 3 * std::max<int64_t>(bs, 64)}) {
      const int64_t n_out = 37;  // two full row tiles and a partial one
      const Weights w = random_weights(t, n_in, n_out, rng);
      for (int64_t n_tok : {1, 3, 4, 5, 7, 8, 9, 12, 13, 17}) {
        std::vector<float> x;
        for (int64_t k = 0; k < n_tok; ++k) {
          const std::vector<float> xr = random_activations(n_in, rng);
          x.insert(x.end(), xr.begin(), xr.end());
        }
        const int64_t ldy = n_out + 1;
        std::vector<float> y(static_cast<size_t>(n_tok * ldy), -7.0f);
        matmul(w.view, x.data(), n_in, y.data(), ldy, n_tok, pool);
        std::vector<uint8_t> xq(t == DType::F32 ? 0 : vt.row_bytes(n_in));
        for (int64_t k = 0; k < n_tok; ++k) {
          const float* xk = x.data() + k * n_in;
          const void* xrow = xk;
          if (t != DType::F32) {
            vt.quantize_row(xk, xq.data(), n_in);
            xrow = xq.data();
          }
          // Larger batches may take the panel GEMM (tested in gemm_q8_test.cpp).
          if (matmul_uses_gemm(t, n_tok)) continue;
          for (int64_t r = 0; r < n_out; ++r) {
            ASSERT_EQ(y[k * ldy + r], vt.vec_dot(w.view.row_ptr(r), xrow, n_in))
                << type_traits(t).name << " n_in=" << n_in << " n_tok=" << n_tok << " t=" << k << " r=" << r;
          }
          EXPECT_EQ(y[k * ldy + n_out], -7.0f);  // past the row: untouched
        }
      }
    }
  }
}

// batch_invariant: a token's outputs are the same bits alone and inside batches of any
// size (on VNNI CPUs every size takes the GEMM, elsewhere the per-row dots), and a row
// slice equals the full product's rows.
TEST(Matmul, BatchInvariantAtEveryBatchSize) {
  std::mt19937 rng(41);
  ThreadPool pool(2);
  const MatmulOptions inv{true};
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K,
                  DType::Q6_K, DType::F16, DType::F32}) {
    const int64_t n_in = 2 * std::max<int64_t>(type_traits(t).block_size, 64), n_out = 37;
    const Weights w = random_weights(t, n_in, n_out, rng);
    const int64_t n_max = 37;
    std::vector<float> x;
    for (int64_t k = 0; k < n_max; ++k) {
      const std::vector<float> xr = random_activations(n_in, rng);
      x.insert(x.end(), xr.begin(), xr.end());
    }
    std::vector<float> alone(static_cast<size_t>(n_max * n_out));
    for (int64_t k = 0; k < n_max; ++k) {
      matmul(w.view, x.data() + k * n_in, n_in, alone.data() + k * n_out, n_out, 1, pool, inv);
    }
    for (int64_t n_tok : {2, 3, 4, 5, 8, 9, 16, 17, 37}) {
      const int64_t t0 = n_max - n_tok;  // the batch is the last n_tok tokens
      std::vector<float> y(static_cast<size_t>(n_tok * n_out));
      matmul(w.view, x.data() + t0 * n_in, n_in, y.data(), n_out, n_tok, pool, inv);
      for (int64_t k = 0; k < n_tok; ++k) {
        for (int64_t r = 0; r < n_out; ++r) {
          ASSERT_EQ(y[k * n_out + r], alone[(t0 + k) * n_out + r])
              << type_traits(t).name << " n_tok=" << n_tok << " t=" << k << " r=" << r;
        }
      }
    }
    std::vector<float> part(static_cast<size_t>(3 * 30));
    matmul_rows(w.view, 5, 35, x.data(), n_in, part.data(), 30, 3, pool, inv);
    for (int64_t k = 0; k < 3; ++k) {
      for (int64_t r = 5; r < 35; ++r) ASSERT_EQ(part[k * 30 + r - 5], alone[k * n_out + r]) << type_traits(t).name;
    }
  }
}

// A group of matmuls of one input (a layer's q/k/v) gives each output's bits of its own
// matmul, for every batch size (one pool operation on VNNI decode batches, one matmul
// after another otherwise), also with mixed weight types (which cannot share a pass).
TEST(Matmul, GroupEqualsSeparateMatmuls) {
  std::mt19937 rng(53);
  ThreadPool pool(3);
  for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::F32}) {
    const int64_t n_in = 2 * std::max<int64_t>(type_traits(t).block_size, 64);
    const Weights a = random_weights(t, n_in, 45, rng), b = random_weights(t, n_in, 7, rng);
    const Weights c = random_weights(t == DType::Q8_0 ? DType::Q4_1 : t, n_in, 16, rng);
    for (int64_t n_tok : {1, 3, 8, 12, 16, 17, 30}) {
      std::vector<float> x;
      for (int64_t k = 0; k < n_tok; ++k) {
        const std::vector<float> xr = random_activations(n_in, rng);
        x.insert(x.end(), xr.begin(), xr.end());
      }
      for (bool inv : {false, true}) {
        const MatmulOptions opts{inv};
        std::vector<float> ya(static_cast<size_t>(n_tok * 45)), yb(static_cast<size_t>(n_tok * 7)),
            yc(static_cast<size_t>(n_tok * 16));
        const MatmulOut outs[] = {{&a.view, ya.data(), 45}, {&b.view, yb.data(), 7}, {&c.view, yc.data(), 16}};
        matmul_group(outs, 3, x.data(), n_in, n_tok, pool, opts);
        for (const MatmulOut& o : outs) {
          std::vector<float> ref(static_cast<size_t>(n_tok * o.ldy));
          matmul(*o.w, x.data(), n_in, ref.data(), o.ldy, n_tok, pool, opts);
          for (size_t i = 0; i < ref.size(); ++i) {
            ASSERT_EQ(o.y[i], ref[i]) << type_traits(o.w->dtype).name << " n_tok=" << n_tok << " i=" << i;
          }
        }
      }
    }
  }
}

// A larger batch after a smaller one (the activation scratch grows) and then a smaller
// one again (it is reused) give the same per-token results.
TEST(Matmul, ScratchReuseAcrossBatchSizes) {
  std::mt19937 rng(77);
  ThreadPool pool(2);
  const int64_t n_in = 64, n_out = 20;
  const Weights w = random_weights(DType::Q4_1, n_in, n_out, rng);
  std::vector<float> x;
  for (int k = 0; k < 8; ++k) {
    const std::vector<float> xr = random_activations(n_in, rng);
    x.insert(x.end(), xr.begin(), xr.end());
  }
  std::vector<float> one(n_out), many(static_cast<size_t>(8 * n_out)), again(n_out);
  matmul(w.view, x.data(), n_in, one.data(), n_out, 1, pool);
  matmul(w.view, x.data(), n_in, many.data(), n_out, 8, pool);
  matmul(w.view, x.data(), n_in, again.data(), n_out, 1, pool);
  for (int64_t r = 0; r < n_out; ++r) {
    EXPECT_EQ(one[r], many[r]);
    EXPECT_EQ(one[r], again[r]);
  }
}

}  // namespace
}  // namespace flashlm
