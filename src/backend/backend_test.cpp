// The backend registry (names, what each build can make, the CUDA skeleton's error) and
// the CPU backend's row ops against the reference backend's on random rows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu_backend.h"
#include "backend/reference_backend.h"

namespace flashlm {
namespace {

TEST(Backend, NamesRoundTrip) {
  for (BackendKind k : {BackendKind::kCpu, BackendKind::kReference, BackendKind::kCuda}) {
    Result<BackendKind> back = backend_kind_from_name(backend_name(k));
    ASSERT_TRUE(back.is_ok());
    EXPECT_EQ(*back, k);
  }
  Result<BackendKind> bad = backend_kind_from_name("metal");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("cpu, reference or cuda"), std::string::npos) << bad.message();
}

TEST(Backend, HostBackendsPlaceWeightsOnTheCpu) {
  for (BackendKind k : {BackendKind::kCpu, BackendKind::kReference}) {
    Result<std::unique_ptr<ComputeBackend>> be = make_backend(k);
    ASSERT_TRUE(be.is_ok()) << be.message();
    EXPECT_EQ((*be)->kind(), k);
    float data[4] = {1, 2, 3, 4};
    TensorView v;
    v.data = data;
    v.device = Device::kCuda;  // whatever it said before, placement says where it is now
    Result<TensorView> p = (*be)->place(v);
    ASSERT_TRUE(p.is_ok());
    EXPECT_EQ(p->device, Device::kCpu);
    EXPECT_EQ(p->data, v.data);
  }
}

// Built without CUDA: says so. Built with it: the skeleton says its kernels are not there.
// Either way an error naming the backend, never a crash.
TEST(Backend, CudaSaysClearlyWhyItCannotRun) {
  Result<std::unique_ptr<ComputeBackend>> be = make_backend(BackendKind::kCuda);
  ASSERT_FALSE(be.is_ok());
  EXPECT_NE(be.message().find("backend 'cuda'"), std::string::npos) << be.message();
  const char* why = backend_compiled(BackendKind::kCuda) ? "kernels not implemented yet" : "this build has no CUDA";
  EXPECT_NE(be.message().find(why), std::string::npos) << be.message();
}

std::vector<float> random_vec(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TensorView f32_view(std::vector<float>& v, int64_t ne0, int64_t ne1) {
  TensorView t;
  t.dtype = DType::F32;
  t.n_dims = 2;
  t.ne = {ne0, ne1, 1, 1};
  t.nb = {sizeof(float), sizeof(float) * static_cast<size_t>(ne0), 0, 0};
  t.data = v.data();
  return t;
}

// F32 data: the two backends differ only in summation order and the fast exp, a few
// ulp per value (the row ops' own tests bound them tighter per ISA).
TEST(Backend, CpuRowOpsMatchReference) {
  const auto cpu = make_cpu_backend();
  const auto ref = make_reference_backend();
  ThreadPool pool(2);
  const ExecContext ctx{&pool, false};
  const int64_t rows = 7, dim = 96;
  const std::vector<float> x = random_vec(rows * dim, 1);
  std::vector<float> w = random_vec(dim, 2);
  std::vector<float> a(x.size()), b(x.size());
  cpu->rms_norm(ctx, x.data(), f32_view(w, dim, 1), a.data(), rows, dim, 1e-5f);
  ref->rms_norm(ctx, x.data(), f32_view(w, dim, 1), b.data(), rows, dim, 1e-5f);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * (1.0f + std::fabs(b[i]))) << i;

  for (Activation act : {Activation::kSilu, Activation::kGeluTanh}) {
    const std::vector<float> up = random_vec(x.size(), 3);
    a = x;
    b = x;
    cpu->glu(ctx, act, a.data(), up.data(), rows, dim);
    ref->glu(ctx, act, b.data(), up.data(), rows, dim);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * (1.0f + std::fabs(b[i]))) << i;
  }

  // An f32 weight of 33 rows (odd, so the pool's row split has a remainder).
  std::vector<float> wm = random_vec(33 * dim, 4);
  std::vector<float> ya(static_cast<size_t>(rows * 33)), yb(ya.size());
  cpu->matmul(ctx, f32_view(wm, dim, 33), x.data(), dim, ya.data(), 33, rows);
  ref->matmul(ctx, f32_view(wm, dim, 33), x.data(), dim, yb.data(), 33, rows);
  for (size_t i = 0; i < ya.size(); ++i) ASSERT_NEAR(ya[i], yb[i], 1e-4f * (1.0f + std::fabs(yb[i]))) << i;
  // A vocabulary slice: rows 5..19 land at columns 0..14 of each output row, and
  // nothing else is written; the same on both backends.
  for (const ComputeBackend* be : {cpu.get(), ref.get()}) {
    std::fill(ya.begin(), ya.end(), -7.0f);
    be->matmul_rows(ctx, f32_view(wm, dim, 33), 5, 20, x.data(), dim, ya.data(), 33, rows);
    for (int64_t t = 0; t < rows; ++t) {
      for (int64_t c = 0; c < 33; ++c) {
        const float got = ya[static_cast<size_t>(t * 33 + c)];
        if (c >= 15) ASSERT_EQ(got, -7.0f) << be->name();
        else ASSERT_NEAR(got, yb[static_cast<size_t>(t * 33 + c + 5)], 1e-4f * (1.0f + std::fabs(got))) << be->name();
      }
    }
  }
}

}  // namespace
}  // namespace flashlm
