#include "moefy/cluster.h"

#include <algorithm>
#include <limits>
#include <random>

namespace flashlm::moefy {
namespace {

float sq_dist(const float* a, const float* b, int64_t dim) {
  float s = 0.0f;
  for (int64_t i = 0; i < dim; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

// k-means++ seeding: each next centre drawn with probability proportional to the
// squared distance to the nearest centre so far.
std::vector<float> seed_centres(const float* x, int64_t n, int64_t dim, int k, std::mt19937_64& rng) {
  std::vector<float> c(static_cast<size_t>(k * dim));
  std::vector<double> best(static_cast<size_t>(n), std::numeric_limits<double>::max());
  int64_t pick = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
  for (int j = 0; j < k; ++j) {
    std::copy(x + pick * dim, x + (pick + 1) * dim, c.begin() + j * dim);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      best[static_cast<size_t>(i)] = std::min<double>(best[static_cast<size_t>(i)], sq_dist(x + i * dim, c.data() + j * dim, dim));
      total += best[static_cast<size_t>(i)];
    }
    if (total <= 0.0) {
      pick = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      continue;
    }
    double r = std::uniform_real_distribution<double>(0.0, total)(rng);
    pick = n - 1;
    for (int64_t i = 0; i < n; ++i) {
      r -= best[static_cast<size_t>(i)];
      if (r <= 0.0) {
        pick = i;
        break;
      }
    }
  }
  return c;
}

// Capacity-constrained assignment: (item, cluster) pairs taken in order of distance,
// each item to the nearest cluster that still has room.
void assign_balanced(const std::vector<float>& dist, int64_t n, int k, int64_t cap, std::vector<int>* assign) {
  std::vector<int64_t> order(static_cast<size_t>(n * k));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return dist[static_cast<size_t>(a)] < dist[static_cast<size_t>(b)];
  });
  std::vector<int64_t> fill(static_cast<size_t>(k), 0);
  assign->assign(static_cast<size_t>(n), -1);
  for (int64_t p : order) {
    const int64_t i = p / k;
    const int j = static_cast<int>(p % k);
    if ((*assign)[static_cast<size_t>(i)] >= 0 || fill[static_cast<size_t>(j)] >= cap) continue;
    (*assign)[static_cast<size_t>(i)] = j;
    ++fill[static_cast<size_t>(j)];
  }
}

}  // namespace

Result<std::vector<int>> balanced_kmeans(const float* x, int64_t n, int64_t dim, int k, int iters, uint64_t seed) {
  if (k < 1 || n < k || n % k != 0) {
    return Status::error("cannot split " + std::to_string(n) + " items into " + std::to_string(k) + " equal clusters");
  }
  if (dim < 1) return Status::error("clustering needs at least one feature");
  std::mt19937_64 rng(seed);
  std::vector<float> c = seed_centres(x, n, dim, k, rng);
  const int64_t cap = n / k;
  std::vector<float> dist(static_cast<size_t>(n * k));
  std::vector<int> assign, prev;
  for (int it = 0; it < std::max(iters, 1); ++it) {
    for (int64_t i = 0; i < n; ++i) {
      for (int j = 0; j < k; ++j) dist[static_cast<size_t>(i * k + j)] = sq_dist(x + i * dim, c.data() + j * dim, dim);
    }
    assign_balanced(dist, n, k, cap, &assign);
    if (assign == prev) break;
    prev = assign;
    std::fill(c.begin(), c.end(), 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      float* cj = c.data() + assign[static_cast<size_t>(i)] * dim;
      for (int64_t d = 0; d < dim; ++d) cj[d] += x[i * dim + d];
    }
    for (float& v : c) v /= static_cast<float>(cap);
  }
  return assign;
}

std::vector<std::vector<int32_t>> cluster_members(const std::vector<int>& assign, int k) {
  std::vector<std::vector<int32_t>> m(static_cast<size_t>(k));
  for (size_t i = 0; i < assign.size(); ++i) m[static_cast<size_t>(assign[i])].push_back(static_cast<int32_t>(i));
  return m;
}

}  // namespace flashlm::moefy
