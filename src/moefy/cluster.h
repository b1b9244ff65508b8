// Balanced k-means: groups n items (feature rows) into k clusters of exactly n / k items,
// so every expert gets the same number of FFN neurons.
#pragma once

#include <cstdint>
#include <vector>

#include "util/status.h"

namespace flashlm::moefy {

// features: [n, dim]. Returns the cluster of each item; every cluster holds n / k items.
// n must be a positive multiple of k. Deterministic for a given seed.
Result<std::vector<int>> balanced_kmeans(const float* features, int64_t n, int64_t dim, int k, int iters,
                                         uint64_t seed);

// Items of each cluster, ascending.
std::vector<std::vector<int32_t>> cluster_members(const std::vector<int>& assign, int k);

}  // namespace flashlm::moefy
