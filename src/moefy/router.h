// Router fitting: a linear map from the FFN input (n_embd) to one logit per expert whose
// softmax ranks the experts by the activation mass they would carry for that token.
#pragma once

#include <cstdint>
#include <vector>

#include "util/status.h"

namespace flashlm::moefy {

struct RouterFitOptions {
  double ridge = 1e-3;      // L2 penalty, relative to the mean diagonal of X^T X
  double share_floor = 1e-3;  // added to each expert's mass share before the log
};

// x: [T, d] inputs; mass: [T, E] non-negative mass per expert. Returns W: [E, d].
// Ridge regression onto the centred log mass shares (the ranking), then one scale
// fitted so softmax(W x) matches the shares in cross-entropy (so the probabilities
// mean something for an adaptive mass threshold).
Result<std::vector<float>> fit_router(const float* x, const float* mass, int64_t T, int64_t d, int E,
                                      const RouterFitOptions& opts);

// Logits of one token: out[e] = W[e] . x.
void router_logits(const std::vector<float>& w, const float* x, int64_t d, int E, float* out);

// Fraction of the mass that the router's top-k experts carry, averaged over tokens,
// divided by what the best k experts per token carry (1 = oracle ranking). When
// share_of_total is given it receives the router's top-k mass over all the mass.
double captured_mass_ratio(const std::vector<float>& w, const float* x, const float* mass, int64_t T, int64_t d,
                           int E, int k, double* share_of_total = nullptr);

}  // namespace flashlm::moefy
