#include "moefy/router.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

namespace flashlm::moefy {
namespace {

// In-place Cholesky solve of A Z = B (A: [d, d] symmetric positive definite, B: [d, m]).
Status cholesky_solve(std::vector<double>& a, std::vector<double>& b, int64_t d, int64_t m) {
  for (int64_t j = 0; j < d; ++j) {
    double s = a[static_cast<size_t>(j * d + j)];
    for (int64_t p = 0; p < j; ++p) s -= a[static_cast<size_t>(j * d + p)] * a[static_cast<size_t>(j * d + p)];
    if (s <= 0.0) return Status::error("router fit: normal equations are not positive definite");
    const double l = std::sqrt(s);
    a[static_cast<size_t>(j * d + j)] = l;
    for (int64_t i = j + 1; i < d; ++i) {
      double t = a[static_cast<size_t>(i * d + j)];
      for (int64_t p = 0; p < j; ++p) t -= a[static_cast<size_t>(i * d + p)] * a[static_cast<size_t>(j * d + p)];
      a[static_cast<size_t>(i * d + j)] = t / l;
    }
  }
  for (int64_t c = 0; c < m; ++c) {
    for (int64_t i = 0; i < d; ++i) {  // L y = b
      double t = b[static_cast<size_t>(i * m + c)];
      for (int64_t p = 0; p < i; ++p) t -= a[static_cast<size_t>(i * d + p)] * b[static_cast<size_t>(p * m + c)];
      b[static_cast<size_t>(i * m + c)] = t / a[static_cast<size_t>(i * d + i)];
    }
    for (int64_t i = d - 1; i >= 0; --i) {  // L^T z = y
      double t = b[static_cast<size_t>(i * m + c)];
      for (int64_t p = i + 1; p < d; ++p) t -= a[static_cast<size_t>(p * d + i)] * b[static_cast<size_t>(p * m + c)];
      b[static_cast<size_t>(i * m + c)] = t / a[static_cast<size_t>(i * d + i)];
    }
  }
  return Status::ok();
}

// Mean cross-entropy between the mass shares and softmax(scale * logits).
double cross_entropy(const std::vector<float>& logits, const std::vector<double>& share, int64_t T, int E,
                     double scale) {
  double ce = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const float* z = logits.data() + t * E;
    const double mx = scale * *std::max_element(z, z + E);
    double sum = 0.0;
    for (int e = 0; e < E; ++e) sum += std::exp(scale * z[e] - mx);
    const double lse = mx + std::log(sum);
    for (int e = 0; e < E; ++e) ce -= share[static_cast<size_t>(t * E + e)] * (scale * z[e] - lse);
  }
  return ce / static_cast<double>(T);
}

}  // namespace

void router_logits(const std::vector<float>& w, const float* x, int64_t d, int E, float* out) {
  for (int e = 0; e < E; ++e) {
    const float* we = w.data() + e * d;
    float s = 0.0f;
    for (int64_t i = 0; i < d; ++i) s += we[i] * x[i];
    out[e] = s;
  }
}

Result<std::vector<float>> fit_router(const float* x, const float* mass, int64_t T, int64_t d, int E,
                                      const RouterFitOptions& opts) {
  if (T < 1 || d < 1 || E < 1) return Status::error("router fit: empty problem");
  // Targets: centred log shares; shares for the cross-entropy scale.
  std::vector<double> share(static_cast<size_t>(T * E)), y(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t) {
    const float* m = mass + t * E;
    const double total = std::accumulate(m, m + E, 0.0);
    double mean = 0.0;
    for (int e = 0; e < E; ++e) {
      const double s = total > 0.0 ? m[e] / total : 1.0 / E;
      share[static_cast<size_t>(t * E + e)] = s;
      y[static_cast<size_t>(t * E + e)] = std::log(s + opts.share_floor);
      mean += y[static_cast<size_t>(t * E + e)];
    }
    for (int e = 0; e < E; ++e) y[static_cast<size_t>(t * E + e)] -= mean / E;
  }
  // Normal equations (X^T X + lambda I) W^T = X^T Y, accumulated in double from float
  // rows (the upper triangle, mirrored).
  std::vector<double> a(static_cast<size_t>(d * d), 0.0), b(static_cast<size_t>(d * E), 0.0);
  std::vector<double> row(static_cast<size_t>(d));
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * d;
    for (int64_t i = 0; i < d; ++i) row[static_cast<size_t>(i)] = xt[i];
    for (int64_t i = 0; i < d; ++i) {
      const double xi = row[static_cast<size_t>(i)];
      double* ai = a.data() + i * d;
      for (int64_t j = i; j < d; ++j) ai[j] += xi * row[static_cast<size_t>(j)];
      for (int e = 0; e < E; ++e) b[static_cast<size_t>(i * E + e)] += xi * y[static_cast<size_t>(t * E + e)];
    }
  }
  double diag = 0.0;
  for (int64_t i = 0; i < d; ++i) diag += a[static_cast<size_t>(i * d + i)];
  const double lambda = std::max(opts.ridge * diag / static_cast<double>(d), 1e-12);
  for (int64_t i = 0; i < d; ++i) {
    a[static_cast<size_t>(i * d + i)] += lambda;
    for (int64_t j = 0; j < i; ++j) a[static_cast<size_t>(i * d + j)] = a[static_cast<size_t>(j * d + i)];
  }
  Status st = cholesky_solve(a, b, d, E);
  if (!st) return st;
  std::vector<float> w(static_cast<size_t>(E * d));
  for (int e = 0; e < E; ++e) {
    for (int64_t i = 0; i < d; ++i) w[static_cast<size_t>(e * d + i)] = static_cast<float>(b[static_cast<size_t>(i * E + e)]);
  }
  // One scale for the logits: a golden-section search on the cross-entropy over log scale.
  std::vector<float> z(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t) router_logits(w, x + t * d, d, E, z.data() + t * E);
  double lo = std::log(1e-2), hi = std::log(1e2);
  const double g = (std::sqrt(5.0) - 1.0) / 2.0;
  for (int it = 0; it < 40; ++it) {
    const double m1 = hi - g * (hi - lo), m2 = lo + g * (hi - lo);
    if (cross_entropy(z, share, T, E, std::exp(m1)) < cross_entropy(z, share, T, E, std::exp(m2))) hi = m2;
    else lo = m1;
  }
  const auto scale = static_cast<float>(std::exp((lo + hi) / 2.0));
  for (float& v : w) v *= scale;
  return w;
}

double captured_mass_ratio(const std::vector<float>& w, const float* x, const float* mass, int64_t T, int64_t d,
                           int E, int k, double* share_of_total) {
  std::vector<float> z(static_cast<size_t>(E));
  std::vector<int> idx(static_cast<size_t>(E));
  std::vector<float> sorted(static_cast<size_t>(E));
  double got = 0.0, best = 0.0, total = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const float* m = mass + t * E;
    router_logits(w, x + t * d, d, E, z.data());
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return z[static_cast<size_t>(a)] > z[static_cast<size_t>(b)]; });
    for (int j = 0; j < k; ++j) got += m[idx[static_cast<size_t>(j)]];
    for (int e = 0; e < E; ++e) total += m[e];
    sorted.assign(m, m + E);
    std::partial_sort(sorted.begin(), sorted.begin() + k, sorted.end(), std::greater<float>());
    for (int j = 0; j < k; ++j) best += sorted[static_cast<size_t>(j)];
  }
  if (share_of_total != nullptr) *share_of_total = total > 0.0 ? got / total : 1.0;
  return best > 0.0 ? got / best : 1.0;
}

}  // namespace flashlm::moefy
