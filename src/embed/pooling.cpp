#include "embed/pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flashlm::embed {

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kMax: return "max";
    case Pooling::kLastToken: return "last";
    case Pooling::kMeanSqrtLen: return "mean_sqrt_len";
  }
  return "?";
}

Result<Pooling> pooling_from_name(const std::string& name) {
  for (Pooling p : {Pooling::kMean, Pooling::kCls, Pooling::kMax, Pooling::kLastToken, Pooling::kMeanSqrtLen}) {
    if (name == pooling_name(p)) return p;
  }
  return Status::error("unknown pooling '" + name + "' (mean, cls, max, last, mean_sqrt_len)");
}

std::vector<float> pool_rows(const float* rows, int64_t n_rows, int64_t dim, Pooling p, bool normalize) {
  const auto d = static_cast<size_t>(dim);
  std::vector<double> acc(d, 0.0);
  auto row = [&](int64_t r) { return rows + r * dim; };
  switch (p) {
    case Pooling::kCls:
    case Pooling::kLastToken: {
      const float* r = row(p == Pooling::kCls ? 0 : n_rows - 1);
      for (size_t i = 0; i < d; ++i) acc[i] = r[i];
      break;
    }
    case Pooling::kMax:
      std::fill(acc.begin(), acc.end(), -std::numeric_limits<double>::infinity());
      for (int64_t t = 0; t < n_rows; ++t) {
        for (size_t i = 0; i < d; ++i) acc[i] = std::max(acc[i], static_cast<double>(row(t)[i]));
      }
      break;
    case Pooling::kMean:
    case Pooling::kMeanSqrtLen: {
      for (int64_t t = 0; t < n_rows; ++t) {
        for (size_t i = 0; i < d; ++i) acc[i] += row(t)[i];
      }
      const double n = static_cast<double>(n_rows);
      const double div = p == Pooling::kMean ? n : std::sqrt(n);
      for (double& v : acc) v /= div;
      break;
    }
  }
  double norm = 1.0;
  if (normalize) {
    double ss = 0.0;
    for (double v : acc) ss += v * v;
    norm = std::max(std::sqrt(ss), 1e-12);
  }
  std::vector<float> out(d);
  for (size_t i = 0; i < d; ++i) out[i] = static_cast<float>(acc[i] / norm);
  return out;
}

}  // namespace flashlm::embed
