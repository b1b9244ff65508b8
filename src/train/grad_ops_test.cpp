// Every op's backward against central finite differences of its forward. Each check
// takes L = sum_i r_i y_i for a fixed random r (so dy = r), perturbs inputs one element
// at a time by +-h, and compares the analytic gradient with (L+ - L-) / 2h over the
// whole input: relative error ||analytic - fd|| / ||fd|| below kTol. The forwards run in
// float, so h is large enough (1e-2) that rounding (~1e-7 |L| / h) stays far below it.
#include "train/grad_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cpu/rope.h"

namespace flashlm::train {
namespace {

using Vec = std::vector<float>;
constexpr double kTol = 2e-3;
constexpr float kH = 1e-2f;

Vec random_vec(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  Vec v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// ||analytic - fd|| / ||fd|| for d loss / d theta.
double fd_error(Vec* theta, const std::function<double()>& loss, const Vec& analytic) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < theta->size(); ++i) {
    const float keep = (*theta)[i];
    (*theta)[i] = keep + kH;
    const double lp = loss();
    (*theta)[i] = keep - kH;
    const double lm = loss();
    (*theta)[i] = keep;
    const double fd = (lp - lm) / (2.0 * kH);
    num += (analytic[i] - fd) * (analytic[i] - fd);
    den += fd * fd;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST(GradOps, Matmul) {
  std::mt19937 rng(1);
  ThreadPool pool(2);
  const int64_t T = 3, n_in = 7, n_out = 5;
  Vec x = random_vec(T * n_in, rng), w = random_vec(n_out * n_in, rng), r = random_vec(T * n_out, rng);
  Vec y(T * n_out);
  auto loss = [&] {
    matmul_fwd(x.data(), w.data(), y.data(), T, n_in, n_out, pool);
    return dot(y, r);
  };
  Vec dx(x.size(), 0.0f), dw(w.size(), 0.0f);
  matmul_bwd(x.data(), w.data(), r.data(), dx.data(), dw.data(), T, n_in, n_out, pool);
  EXPECT_LT(fd_error(&x, loss, dx), kTol);
  EXPECT_LT(fd_error(&w, loss, dw), kTol);
}

TEST(GradOps, RmsNormAndBias) {
  std::mt19937 rng(2);
  const int64_t T = 4, n = 9;
  Vec x = random_vec(T * n, rng), w = random_vec(n, rng), b = random_vec(n, rng), r = random_vec(T * n, rng);
  Vec y(T * n), rstd(T);
  auto loss = [&] {
    rms_norm_fwd(x.data(), w.data(), y.data(), rstd.data(), T, n, 1e-5f);
    bias_fwd(y.data(), b.data(), T, n);
    return dot(y, r);
  };
  loss();
  Vec dx(x.size(), 0.0f), dw(n, 0.0f), db(n, 0.0f);
  rms_norm_bwd(x.data(), w.data(), rstd.data(), r.data(), dx.data(), dw.data(), T, n);
  bias_bwd(r.data(), db.data(), T, n);
  EXPECT_LT(fd_error(&x, loss, dx), kTol);
  EXPECT_LT(fd_error(&w, loss, dw), kTol);
  EXPECT_LT(fd_error(&b, loss, db), kTol);
}

TEST(GradOps, RopeBothStyles) {
  for (ops::RopeStyle style : {ops::RopeStyle::kNorm, ops::RopeStyle::kNeox}) {
    std::mt19937 rng(3);
    const int64_t T = 3, n_head = 2, hd = 8, n_rot = 6;  // partial rotation: the last dims pass through
    ops::RopeFreqs rf(n_rot, 10000.0f, 1.0f, nullptr);
    Vec cs(T * n_rot);
    for (int64_t p = 0; p < T; ++p) rf.cos_sin(p + 5, cs.data() + p * n_rot);
    Vec x = random_vec(T * n_head * hd, rng), r = random_vec(x.size(), rng);
    auto loss = [&] {
      Vec y = x;
      rope_fwd(y.data(), cs.data(), T, n_head, hd, n_rot, style);
      return dot(y, r);
    };
    Vec dx = r;
    rope_bwd(dx.data(), cs.data(), T, n_head, hd, n_rot, style);
    EXPECT_LT(fd_error(&x, loss, dx), kTol) << (style == ops::RopeStyle::kNeox ? "neox" : "norm");
  }
}

TEST(GradOps, GatedActivations) {
  for (Glu kind : {Glu::kSilu, Glu::kGeluTanh}) {
    std::mt19937 rng(4);
    const int64_t n = 24;
    Vec gate = random_vec(n, rng, 2.0f), up = random_vec(n, rng), r = random_vec(n, rng), y(n);
    auto loss = [&] {
      glu_fwd(kind, gate.data(), up.data(), y.data(), n);
      return dot(y, r);
    };
    Vec dgate(n, 0.0f), dup(n, 0.0f);
    glu_bwd(kind, gate.data(), up.data(), r.data(), dgate.data(), dup.data(), n);
    EXPECT_LT(fd_error(&gate, loss, dgate), kTol);
    EXPECT_LT(fd_error(&up, loss, dup), kTol);
  }
}

TEST(GradOps, Softcap) {
  std::mt19937 rng(5);
  const int64_t n = 16;
  Vec x = random_vec(n, rng, 20.0f), r = random_vec(n, rng), y(n);
  auto loss = [&] {
    softcap_fwd(x.data(), y.data(), n, 30.0f);
    return dot(y, r);
  };
  loss();
  Vec dx(n, 0.0f);
  softcap_bwd(y.data(), r.data(), dx.data(), n, 30.0f);
  EXPECT_LT(fd_error(&x, loss, dx), kTol);
}

// Causal GQA attention with and without a window and a soft-cap.
TEST(GradOps, Attention) {
  struct Case {
    int64_t window;
    float softcap;
  };
  for (Case cs : {Case{0, 0.0f}, Case{3, 0.0f}, Case{0, 2.0f}, Case{2, 1.5f}}) {
    std::mt19937 rng(6);
    AttentionShape a{6, 4, 2, 4, cs.window, 0.5f, cs.softcap};
    const size_t qn = static_cast<size_t>(a.T * a.n_head * a.head_dim);
    const size_t kvn = static_cast<size_t>(a.T * a.n_head_kv * a.head_dim);
    Vec q = random_vec(qn, rng), k = random_vec(kvn, rng), v = random_vec(kvn, rng), r = random_vec(qn, rng);
    Vec out(qn), probs(static_cast<size_t>(a.n_head * a.T * a.T));
    auto loss = [&] {
      attention_fwd_reference(a, q.data(), k.data(), v.data(), out.data(), probs.data());
      return dot(out, r);
    };
    loss();
    Vec dq(qn, 0.0f), dk(kvn, 0.0f), dv(kvn, 0.0f);
    attention_bwd_reference(a, q.data(), k.data(), v.data(), probs.data(), r.data(), dq.data(), dk.data(), dv.data());
    EXPECT_LT(fd_error(&q, loss, dq), kTol) << "window " << cs.window << " softcap " << cs.softcap;
    EXPECT_LT(fd_error(&k, loss, dk), kTol) << "window " << cs.window << " softcap " << cs.softcap;
    EXPECT_LT(fd_error(&v, loss, dv), kTol) << "window " << cs.window << " softcap " << cs.softcap;
  }
}

// The GEMM form against the reference: the same probabilities, output and gradients up
// to float summation order, on a shape with several GEMM tiles per head (T = 70).
TEST(GradOps, AttentionGemmMatchesReference) {
  ThreadPool pool(2);
  struct Case {
    int64_t window;
    float softcap;
  };
  for (Case cs : {Case{0, 0.0f}, Case{17, 0.0f}, Case{0, 2.0f}, Case{9, 1.5f}}) {
    std::mt19937 rng(8);
    AttentionShape a{70, 6, 2, 16, cs.window, 0.25f, cs.softcap};
    const size_t qn = static_cast<size_t>(a.T * a.n_head * a.head_dim);
    const size_t kvn = static_cast<size_t>(a.T * a.n_head_kv * a.head_dim);
    Vec q = random_vec(qn, rng), k = random_vec(kvn, rng), v = random_vec(kvn, rng), r = random_vec(qn, rng);
    const size_t pn = static_cast<size_t>(a.n_head * a.T * a.T);
    Vec out_ref(qn), p_ref(pn), out(qn), p(pn);
    attention_fwd_reference(a, q.data(), k.data(), v.data(), out_ref.data(), p_ref.data());
    attention_fwd(a, q.data(), k.data(), v.data(), out.data(), p.data(), pool);
    Vec dq_ref(qn, 0.1f), dk_ref(kvn, 0.1f), dv_ref(kvn, 0.1f), dq(qn, 0.1f), dk(kvn, 0.1f), dv(kvn, 0.1f);
    attention_bwd_reference(a, q.data(), k.data(), v.data(), p_ref.data(), r.data(), dq_ref.data(), dk_ref.data(),
                            dv_ref.data());
    attention_bwd(a, q.data(), k.data(), v.data(), p.data(), r.data(), dq.data(), dk.data(), dv.data(), pool);
    auto worst = [](const Vec& x, const Vec& y) {
      float m = 0.0f;
      for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
      return m;
    };
    const std::string what = "window " + std::to_string(cs.window) + " softcap " + std::to_string(cs.softcap);
    EXPECT_LT(worst(p, p_ref), 1e-6f) << what;
    EXPECT_LT(worst(out, out_ref), 1e-5f) << what;
    EXPECT_LT(worst(dq, dq_ref), 1e-5f) << what;  // accumulated into 0.1: the form adds, as the reference
    EXPECT_LT(worst(dk, dk_ref), 1e-5f) << what;
    EXPECT_LT(worst(dv, dv_ref), 1e-5f) << what;
  }
}

TEST(GradOps, CrossEntropy) {
  std::mt19937 rng(7);
  const int64_t T = 4, V = 11;
  Vec logits = random_vec(T * V, rng, 2.0f);
  const int32_t targets[T] = {3, -1, 0, 10};  // one position not scored
  int64_t n = 0;
  auto loss = [&] { return cross_entropy(logits.data(), targets, T, V, nullptr, &n); };
  Vec dl(logits.size());
  const double l = cross_entropy(logits.data(), targets, T, V, dl.data(), &n);
  EXPECT_EQ(n, 3);
  EXPECT_GT(l, 0.0);
  EXPECT_LT(fd_error(&logits, loss, dl), kTol);
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(dl[static_cast<size_t>(V + i)], 0.0f);  // the unscored row
}

}  // namespace
}  // namespace flashlm::train
