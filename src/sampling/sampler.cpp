#include "sampling/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace flashlm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Up to this k, top-k keeps a k-element heap while scanning the vocabulary, skipping blocks
// that cannot beat the current k-th best; above it, a selection over the whole vocabulary
// is cheaper. (Random-ish logits replace the heap front about k * ln(n_vocab / k) times.)
constexpr int32_t kHeapTopKMax = 2048;

// Top-p ranks candidates lazily, starting with this many.
constexpr size_t kTopPFirstChunk = 64;
// Up to this many unsorted candidates top-p ranks them directly; above, it first narrows
// them down with a histogram of kTopPBuckets buckets covering kTopPRange logits below the
// maximum (exp(-32) ~ 1e-14: everything lower shares the last bucket).
constexpr size_t kTopPDirectMax = 2048;
constexpr int kTopPBuckets = 1024;
constexpr float kTopPRange = 32.0f;

inline float clean(float x) { return std::isnan(x) ? kNegInf : x; }

// The total order used everywhere a ranking is needed: higher logit first, then lower id.
// Being total, it makes top-k and the candidate order independent of the sort algorithm.
struct Better {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

// exp((x - max) / temp) without producing inf - inf or 0 * inf: the maximum itself
// (possibly +/-inf) weighs exactly 1.
inline float rel_weight(float x, float max, float temp) {
  return x == max ? 1.0f : std::exp((x - max) / temp);
}

Status range_error(const char* name, float value, const char* expected) {
  return Status::error(std::string("sampling: ") + name + " = " + std::to_string(value) +
                       ", expected " + expected);
}

}  // namespace

Status SamplingParams::validate() const {
  if (!std::isfinite(temperature)) {
    return range_error("temperature", temperature, "a finite number (<= 0 means greedy)");
  }
  if (!(top_p >= 0.0f && top_p <= 1.0f)) return range_error("top_p", top_p, "a value in [0, 1]");
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return range_error("min_p", min_p, "a value in [0, 1]");
  if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty)) {
    return range_error("repeat_penalty", repeat_penalty, "a finite value > 0 (1 is off)");
  }
  if (repeat_last_n < -1) {
    return Status::error("sampling: repeat_last_n = " + std::to_string(repeat_last_n) +
                         ", expected >= -1 (0 is off, -1 is all history)");
  }
  if (!std::isfinite(frequency_penalty)) {
    return range_error("frequency_penalty", frequency_penalty, "a finite number");
  }
  if (!std::isfinite(presence_penalty)) {
    return range_error("presence_penalty", presence_penalty, "a finite number");
  }
  for (size_t i = 0; i < logit_bias.size(); ++i) {
    if (!std::isfinite(logit_bias[i].second)) return range_error("logit_bias", logit_bias[i].second, "finite biases");
    if (i > 0 && logit_bias[i].first <= logit_bias[i - 1].first) {
      return Status::error("sampling: logit_bias ids must be sorted and unique");
    }
  }
  return Status::ok();
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  // Neutralise what validate() would reject, so a Sampler built without it still behaves.
  SamplingParams& p = params_;
  std::erase_if(p.logit_bias, [](const auto& b) { return !std::isfinite(b.second); });
  std::sort(p.logit_bias.begin(), p.logit_bias.end());
  p.logit_bias.erase(std::unique(p.logit_bias.begin(), p.logit_bias.end(),
                                 [](const auto& a, const auto& b) { return a.first == b.first; }),
                     p.logit_bias.end());
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) p.temperature = 0.0f;
  if (!(p.top_p >= 0.0f)) p.top_p = 1.0f;
  if (!(p.min_p > 0.0f)) p.min_p = 0.0f;
  p.min_p = std::min(p.min_p, 1.0f);
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) p.repeat_penalty = 1.0f;
  if (!std::isfinite(p.frequency_penalty)) p.frequency_penalty = 0.0f;
  if (!std::isfinite(p.presence_penalty)) p.presence_penalty = 0.0f;
  if (p.repeat_last_n < -1) p.repeat_last_n = 0;

  if (is_random_seed(p.seed)) {
    std::random_device rd;
    seed_ = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  } else {
    seed_ = p.seed;
  }
  rng_.seed(seed_);

  if (p.repeat_last_n > 0) {
    const auto n = static_cast<size_t>(p.repeat_last_n);
    history_.reserve(n);
    window_.reserve(n);
    penalized_.reserve(n);
  }
  if (p.top_k > 0 && p.top_k <= kHeapTopKMax) cand_.reserve(static_cast<size_t>(p.top_k));
}

Result<Sampler> Sampler::create(const SamplingParams& params) {
  Status st = params.validate();
  if (!st) return st;
  return Sampler(params);
}

void Sampler::accept(int32_t token) {
  const int32_t last_n = params_.repeat_last_n;
  if (last_n == 0) return;
  if (last_n < 0 || history_.size() < static_cast<size_t>(last_n)) {
    history_.push_back(token);
    return;
  }
  history_[history_head_] = token;
  history_head_ = (history_head_ + 1) % history_.size();
}

void Sampler::reset() {
  history_.clear();
  history_head_ = 0;
  rng_.seed(seed_);
}

double Sampler::next_uniform() {
  // 53 random bits -> [0, 1). Written out because std::uniform_real_distribution's output
  // is implementation-defined, and a seed must give the same tokens everywhere.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void Sampler::build_penalties(const float* logits, int32_t n_vocab) {
  penalized_.clear();
  const SamplingParams& p = params_;
  const bool active = p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f ||
                      p.presence_penalty != 0.0f;
  if (active && !history_.empty()) add_penalties(logits, n_vocab);
  if (!p.logit_bias.empty()) add_logit_bias(logits, n_vocab);
}

// Merges logit_bias into penalized_ (both sorted by id): a biased token keeps its penalty.
void Sampler::add_logit_bias(const float* logits, int32_t n_vocab) {
  biased_.clear();
  size_t i = 0;
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id < 0 || id >= n_vocab) continue;
    for (; i < penalized_.size() && penalized_[i].id < id; ++i) biased_.push_back(penalized_[i]);
    float x = clean(logits[id]);
    if (i < penalized_.size() && penalized_[i].id == id) x = penalized_[i++].logit;
    biased_.push_back({id, bias <= -100.0f ? kNegInf : x + bias});
  }
  for (; i < penalized_.size(); ++i) biased_.push_back(penalized_[i]);
  penalized_.swap(biased_);
}

void Sampler::add_penalties(const float* logits, int32_t n_vocab) {
  const SamplingParams& p = params_;

  // Counting by sorting the (short) window keeps memory per sequence independent of the
  // vocabulary size, and leaves penalized_ sorted by id for the merge in for_each_logit.
  window_.assign(history_.begin(), history_.end());
  std::sort(window_.begin(), window_.end());
  for (size_t i = 0; i < window_.size();) {
    const int32_t id = window_[i];
    size_t j = i;
    while (j < window_.size() && window_[j] == id) ++j;
    const auto count = static_cast<float>(j - i);
    i = j;
    if (id < 0 || id >= n_vocab) continue;  // stale or foreign ids: nothing to penalise
    float x = clean(logits[id]);
    x = x <= 0.0f ? x * p.repeat_penalty : x / p.repeat_penalty;
    x -= count * p.frequency_penalty + p.presence_penalty;
    penalized_.push_back({id, x});
  }
}

// Visits every id in [0, n_vocab) in increasing order with its logit after penalties and
// with NaN replaced by -inf. The input logits are never modified.
template <typename F>
void Sampler::for_each_logit(const float* logits, int32_t n_vocab, F&& visit) const {
  int32_t i = 0;
  for (const Penalized& pen : penalized_) {
    for (; i < pen.id; ++i) visit(i, clean(logits[i]));
    visit(i, pen.logit);
    ++i;
  }
  for (; i < n_vocab; ++i) visit(i, clean(logits[i]));
}

// As for_each_logit, but may skip tokens whose logit is <= floor. floor is re-read between
// chunks and must only grow; callers that only act on x > floor see no difference. A chunk
// without penalised tokens is skipped after a branch-free max, which is most of them once
// floor is high (top-k, argmax), so the vocabulary scan runs at memory speed.
template <typename F>
void Sampler::for_each_logit_above(const float* logits, int32_t n_vocab, const float& floor,
                                   F&& visit) const {
  constexpr int32_t kChunk = 64;
  size_t next_pen = 0;
  for (int32_t start = 0; start < n_vocab; start += kChunk) {
    const int32_t end = std::min(start + kChunk, n_vocab);
    if (next_pen < penalized_.size() && penalized_[next_pen].id < end) {
      for (int32_t i = start; i < end; ++i) {
        if (next_pen < penalized_.size() && penalized_[next_pen].id == i) {
          visit(i, penalized_[next_pen++].logit);
        } else {
          visit(i, clean(logits[i]));
        }
      }
      continue;
    }
    // Independent lanes so the compare chain is not one long dependency; NaN never wins.
    float m[8] = {kNegInf, kNegInf, kNegInf, kNegInf, kNegInf, kNegInf, kNegInf, kNegInf};
    int32_t i = start;
    for (; i + 8 <= end; i += 8) {
      for (int32_t j = 0; j < 8; ++j) m[j] = logits[i + j] > m[j] ? logits[i + j] : m[j];
    }
    for (; i < end; ++i) m[0] = logits[i] > m[0] ? logits[i] : m[0];
    float chunk_max = m[0];
    for (int32_t j = 1; j < 8; ++j) chunk_max = std::max(chunk_max, m[j]);
    if (!(chunk_max > floor)) continue;
    for (i = start; i < end; ++i) visit(i, clean(logits[i]));
  }
}

int32_t Sampler::argmax(const float* logits, int32_t n_vocab) const {
  int32_t best = 0;
  float best_x = kNegInf;
  // Strict '>' over increasing ids: ties go to the lowest id; all -inf gives id 0.
  for_each_logit_above(logits, n_vocab, best_x, [&](int32_t i, float x) {
    if (x > best_x) {
      best_x = x;
      best = i;
    }
  });
  return best;
}

void Sampler::fill_all(const float* logits, int32_t n_vocab) {
  cand_.clear();
  cand_.reserve(static_cast<size_t>(n_vocab));
  // -inf tokens can never be drawn and add nothing to any softmax, so they are dropped here
  // (top-k is off on this path, so they do not count towards anything either).
  for_each_logit(logits, n_vocab, [&](int32_t i, float x) {
    if (x != kNegInf) cand_.push_back({x, i});
  });
  if (cand_.empty()) cand_.push_back({kNegInf, 0});
  n_sorted_ = 0;
}

void Sampler::fill_top_k(const float* logits, int32_t n_vocab, int32_t k) {
  const auto n_keep = static_cast<size_t>(k);
  cand_.clear();
  // -inf tokens are left out: they have probability 0 and change no later step.
  if (k <= kHeapTopKMax) {
    // With Better as "less", the heap's front is the worst kept candidate. Ids arrive in
    // increasing order, so a newcomer that only ties the worst loses the tie: strict '>'.
    // `worst` lives in a register, so most tokens cost one compare.
    cand_.reserve(n_keep);
    float worst = kNegInf;
    for_each_logit_above(logits, n_vocab, worst, [&](int32_t i, float x) {
      if (!(x > worst)) return;
      if (cand_.size() < n_keep) {
        cand_.push_back({x, i});
        if (cand_.size() < n_keep) return;
        std::make_heap(cand_.begin(), cand_.end(), Better());
      } else {
        std::pop_heap(cand_.begin(), cand_.end(), Better());
        cand_.back() = {x, i};
        std::push_heap(cand_.begin(), cand_.end(), Better());
      }
      worst = cand_.front().logit;
    });
    std::sort(cand_.begin(), cand_.end(), Better());
  } else {
    // Large k: find the k-th best, then collect everything at least as good in id order,
    // so the result does not depend on how the library's nth_element permutes.
    cand_.reserve(static_cast<size_t>(n_vocab));
    for_each_logit(logits, n_vocab, [&](int32_t i, float x) {
      if (x != kNegInf) cand_.push_back({x, i});
    });
    if (cand_.size() > n_keep) {
      std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end(), Better());
      const Candidate pivot = cand_[n_keep - 1];
      cand_.clear();
      for_each_logit(logits, n_vocab, [&](int32_t i, float x) {
        const Candidate c{x, i};
        if (x != kNegInf && !Better()(pivot, c)) cand_.push_back(c);
      });
    }
  }
  if (cand_.empty()) cand_.push_back({kNegInf, 0});  // all -inf: see draw()
  n_sorted_ = k <= kHeapTopKMax ? cand_.size() : 0;
}

void Sampler::sort_prefix(std::vector<Candidate>& v, size_t& n_sorted, size_t m) {
  m = std::min(m, v.size());
  if (m <= n_sorted) return;
  const auto first = v.begin() + static_cast<std::ptrdiff_t>(n_sorted);
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(m);
  if (m < v.size()) std::nth_element(first, mid, v.end(), Better());
  std::sort(first, mid, Better());
  n_sorted = m;
}

size_t Sampler::take_nucleus(std::vector<Candidate>& v, size_t& n_sorted, float max,
                             double cum, double target) {
  // Sorting only as far as the walk goes: nuclei are usually far smaller than v.
  for (size_t i = 0; i < v.size(); ++i) {
    if (i == n_sorted) sort_prefix(v, n_sorted, std::max(kTopPFirstChunk, 2 * n_sorted));
    cum += rel_weight(v[i].logit, max, 1.0f);
    if (cum >= target) return i + 1;
  }
  return v.size();
}

void Sampler::apply_top_p() {
  // Keeps the smallest set of best-ranked tokens whose probability reaches top_p (at least
  // one token). Probabilities are compared unnormalised: cum >= top_p * sum.
  const float top_p = params_.top_p;
  if (top_p >= 1.0f) return;
  float max = kNegInf;
  for (const Candidate& c : cand_) max = std::max(max, c.logit);

  if (cand_.size() <= kTopPDirectMax || n_sorted_ == cand_.size() || !std::isfinite(max)) {
    double sum = 0.0;
    for (const Candidate& c : cand_) sum += rel_weight(c.logit, max, 1.0f);
    const size_t keep = take_nucleus(cand_, n_sorted_, max, 0.0, top_p * sum);
    cand_.resize(keep);
    n_sorted_ = std::min(n_sorted_, keep);
    return;
  }

  // Large unsorted set: a histogram of probability mass over logit buckets (bucket 0 just
  // below the max) finds the one bucket where the cumulative mass crosses the target.
  // Everything in better buckets is in the nucleus, everything in worse ones is out, and
  // only the crossing bucket has to be ranked.
  constexpr float kScale = kTopPBuckets / kTopPRange;
  auto bucket_of = [&](float x) {
    const float d = (max - x) * kScale;  // >= 0; +inf for -inf logits
    return d < static_cast<float>(kTopPBuckets - 1) ? static_cast<int>(d) : kTopPBuckets - 1;
  };
  std::array<double, kTopPBuckets> mass{};
  for (const Candidate& c : cand_) mass[bucket_of(c.logit)] += rel_weight(c.logit, max, 1.0f);
  const double target = top_p * std::accumulate(mass.begin(), mass.end(), 0.0);
  double cum = 0.0;
  int crossing = kTopPBuckets - 1;
  for (int b = 0; b < kTopPBuckets; ++b) {
    if (cum + mass[b] >= target) {
      crossing = b;
      break;
    }
    cum += mass[b];
  }
  // Stable compaction keeps the better buckets in id order (a canonical order for the
  // draw); the crossing bucket goes to boundary_ to be ranked.
  boundary_.clear();
  boundary_.reserve(cand_.size());  // the bound, so later calls never reallocate
  size_t n_kept = 0;
  for (const Candidate& c : cand_) {
    const int b = bucket_of(c.logit);
    if (b < crossing) {
      cand_[n_kept++] = c;
    } else if (b == crossing) {
      boundary_.push_back(c);
    }
  }
  size_t n_sorted_boundary = 0;
  const size_t n_take = take_nucleus(boundary_, n_sorted_boundary, max, cum, target);
  cand_.resize(n_kept);
  cand_.insert(cand_.end(), boundary_.begin(),
               boundary_.begin() + static_cast<std::ptrdiff_t>(n_take));
  n_sorted_ = n_kept == 0 ? n_take : 0;
}

void Sampler::apply_min_p() {
  if (params_.min_p <= 0.0f) return;
  float max = kNegInf;
  for (const Candidate& c : cand_) max = std::max(max, c.logit);
  // p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p); the maximum always survives.
  const float threshold = max + std::log(params_.min_p);
  size_t n_kept = 0;
  size_t n_kept_sorted = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    if (cand_[i].logit >= threshold) {
      // The dropped tokens are the lowest-ranked, so the kept part of the sorted prefix is
      // still a sorted prefix. The compaction is stable to keep the order canonical.
      if (i < n_sorted_) ++n_kept_sorted;
      cand_[n_kept++] = cand_[i];
    }
  }
  cand_.resize(n_kept);
  n_sorted_ = n_kept_sorted;
}

int32_t Sampler::draw() {
  const double u = next_uniform();  // drawn first so every sampled call uses one number
  float max = kNegInf;
  int32_t min_id = cand_[0].id;
  for (const Candidate& c : cand_) {
    max = std::max(max, c.logit);
    min_id = std::min(min_id, c.id);
  }
  if (max == kNegInf) return min_id;

  // Temperature and softmax in one step: exp((x - max) / T) equals the softmax of x / T
  // up to normalisation and cannot overflow, even for tiny T.
  const float temp = params_.temperature;
  double sum = 0.0;
  for (Candidate& c : cand_) {
    c.logit = rel_weight(c.logit, max, temp);  // the logit slot now holds the weight
    sum += c.logit;
  }
  const double target = u * sum;
  double cum = 0.0;
  int32_t last = -1;
  for (const Candidate& c : cand_) {
    if (c.logit <= 0.0f) continue;
    cum += c.logit;
    last = c.id;
    if (cum > target) return c.id;
  }
  return last;  // rounding left target at the very top: take the last positive weight
}

namespace {

// Log-probabilities over the logits for_each visits (id, logit) (with temperature temp):
// the chosen token's (its logit x_chosen) and the n_top most likely. One arithmetic for
// sampled tokens and for scored prompts, so a prompt token scored equals the same token
// sampled greedily without penalties, bit for bit.
template <typename ForEach>
void logprobs_over(ForEach&& for_each, int32_t n_vocab, float temp, float x_chosen, int32_t n_top,
                   SampleLogprobs* out) {
  float max = kNegInf;
  for_each([&](int32_t, float x) { max = std::max(max, x); });
  double sum = 0.0;
  for_each([&](int32_t, float x) { sum += rel_weight(x, max, temp); });
  const double log_sum = std::log(sum);
  auto logprob = [&](float x) {
    const double rel = x == max ? 0.0 : (static_cast<double>(x) - max) / temp;
    return static_cast<float>(rel - log_sum);
  };
  out->chosen = logprob(x_chosen);

  // Top-n by the same heap selection as top-k; logprob holds the raw logit until the end.
  const size_t n_keep = static_cast<size_t>(std::clamp(n_top, 0, n_vocab));
  std::vector<TokenLogprob>& top = out->top;
  top.clear();
  if (n_keep == 0) return;
  top.reserve(n_keep);
  auto better = [](const TokenLogprob& a, const TokenLogprob& b) {
    return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
  };
  for_each([&](int32_t i, float x) {
    if (top.size() < n_keep) {
      top.push_back({i, x});
      if (top.size() == n_keep) std::make_heap(top.begin(), top.end(), better);
    } else if (x > top.front().logprob) {
      std::pop_heap(top.begin(), top.end(), better);
      top.back() = {i, x};
      std::push_heap(top.begin(), top.end(), better);
    }
  });
  std::sort(top.begin(), top.end(), better);
  for (TokenLogprob& t : top) t.logprob = logprob(t.logprob);
}

}  // namespace

void Sampler::compute_logprobs(const float* logits, int32_t n_vocab, int32_t chosen,
                               int32_t n_top, SampleLogprobs* out) {
  const float temp = params_.temperature > 0.0f ? params_.temperature : 1.0f;
  const auto pen = std::lower_bound(penalized_.begin(), penalized_.end(), chosen,
                                    [](const Penalized& a, int32_t id) { return a.id < id; });
  const float x_chosen =
      pen != penalized_.end() && pen->id == chosen ? pen->logit : clean(logits[chosen]);
  logprobs_over([&](auto&& visit) { for_each_logit(logits, n_vocab, visit); }, n_vocab, temp,
                x_chosen, n_top, out);
}

void Sampler::score(const float* logits, int32_t n_vocab, int32_t token, int32_t n_top,
                    SampleLogprobs* out) {
  if (logits == nullptr || n_vocab <= 0 || token < 0 || token >= n_vocab) {
    out->chosen = kNegInf;
    out->top.clear();
    return;
  }
  logprobs_over(
      [&](auto&& visit) {
        for (int32_t i = 0; i < n_vocab; ++i) visit(i, clean(logits[i]));
      },
      n_vocab, 1.0f, clean(logits[token]), n_top, out);
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab) {
  return sample(logits, n_vocab, 0, nullptr);
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab, int32_t n_top,
                        SampleLogprobs* out) {
  if (logits == nullptr || n_vocab <= 0) {
    if (out != nullptr) {
      out->chosen = 0.0f;
      out->top.clear();
    }
    return -1;
  }
  build_penalties(logits, n_vocab);

  int32_t token = 0;
  if (params_.temperature <= 0.0f) {
    token = argmax(logits, n_vocab);
  } else {
    const int32_t k = params_.top_k;
    if (k > 0 && k < n_vocab) {
      fill_top_k(logits, n_vocab, k);
    } else {
      fill_all(logits, n_vocab);
    }
    apply_top_p();
    apply_min_p();
    token = draw();
  }
  if (out != nullptr) compute_logprobs(logits, n_vocab, token, n_top, out);
  return token;
}

}  // namespace flashlm
