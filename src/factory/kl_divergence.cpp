#include "factory/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <queue>

#include "kernels/cpu/ops.h"
#include "util/atomic_file.h"
#include "util/xxhash64.h"

namespace flashlm::factory {
namespace {

constexpr char kMagic[8] = {'F', 'L', 'K', 'L', 'B', 'A', 'S', 'E'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxTopK = 1024;

struct Header {
  char magic[8];
  uint32_t version, n_vocab, n_ctx, top_k;
  uint64_t n_tokens, n_positions;
};
static_assert(sizeof(Header) == 40);

// Bytes of the body after the header.
uint64_t body_bytes(uint64_t n_tokens, uint64_t n_pos, uint64_t k) {
  return n_tokens * 4 + n_pos * (k * 8 + 12);
}

// Copies v's bytes to *at and advances it.
template <typename T>
void put(uint8_t** at, const std::vector<T>& v) {
  if (v.empty()) return;
  std::memcpy(*at, v.data(), v.size() * sizeof(T));
  *at += v.size() * sizeof(T);
}

template <typename T>
void take(const uint8_t** p, size_t n, std::vector<T>* v) {
  v->resize(n);
  if (n == 0) return;  // an empty vector's data() may be null, which memcpy forbids
  std::memcpy(v->data(), *p, n * sizeof(T));
  *p += n * sizeof(T);
}

}  // namespace

void KlBase::add(const float* logits, int32_t next_token) {
  const float lse = ops::logsumexp(logits, n_vocab);
  // The top_k largest logits: a min-heap of k, so the scan is one compare per entry.
  using E = std::pair<float, int32_t>;
  std::priority_queue<E, std::vector<E>, std::greater<E>> heap;
  for (uint32_t i = 0; i < n_vocab; ++i) {
    const E e{logits[i], -static_cast<int32_t>(i)};  // ties: the lower id ranks higher
    if (heap.size() < top_k) heap.push(e);
    else if (e > heap.top()) {
      heap.pop();
      heap.push(e);
    }
  }
  const size_t at = ids.size();
  ids.resize(at + top_k);
  logp.resize(at + top_k);
  for (size_t j = top_k; j-- > 0;) {
    ids[at + j] = -heap.top().second;
    logp[at + j] = heap.top().first - lse;
    heap.pop();
  }
  double mass = 0.0;  // summed in kl_position's order
  for (size_t j = 0; j < top_k; ++j) mass += std::exp(static_cast<double>(logp[at + j]));
  log_rest.push_back(static_cast<float>(mass >= 1.0 ? -INFINITY : std::log1p(-mass)));
  next.push_back(next_token);
  logp_next.push_back(logits[next_token] - lse);
}

std::vector<uint8_t> encode_kl_base(const KlBase& b) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.n_vocab = b.n_vocab;
  h.n_ctx = b.n_ctx;
  h.top_k = b.top_k;
  h.n_tokens = b.tokens.size();
  h.n_positions = b.n_positions();
  std::vector<uint8_t> out(sizeof h + body_bytes(h.n_tokens, h.n_positions, h.top_k) + sizeof(uint64_t));
  std::memcpy(out.data(), &h, sizeof h);
  uint8_t* at = out.data() + sizeof h;
  put(&at, b.tokens);
  put(&at, b.ids);
  put(&at, b.logp);
  put(&at, b.log_rest);
  put(&at, b.next);
  put(&at, b.logp_next);
  const uint64_t sum = xxh64(out.data(), out.size() - sizeof sum);
  std::memcpy(out.data() + out.size() - sizeof sum, &sum, sizeof sum);
  return out;
}

Status save_kl_base(const std::string& path, const KlBase& b) {
  return write_file_atomic(path, encode_kl_base(b));
}

Result<KlBase> load_kl_base(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error("cannot read '" + path + "'");
  const std::vector<uint8_t> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Result<KlBase> b = parse_kl_base(buf);
  if (!b) return Status::error("'" + path + "' " + b.message());
  return b;
}

Result<KlBase> parse_kl_base(std::span<const uint8_t> buf) {
  auto bad = [](const std::string& why) { return Status::error("is not a KL base file: " + why); };
  Header h{};
  if (buf.size() < sizeof h + 8) return bad("too short");
  std::memcpy(&h, buf.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return bad("wrong magic");
  if (h.version != kVersion) return bad("version " + std::to_string(h.version) + ", expected " + std::to_string(kVersion));
  if (h.top_k == 0 || h.top_k > kMaxTopK || h.n_vocab == 0 || h.top_k > h.n_vocab) return bad("bad top_k or vocabulary size");
  // Bounded before multiplying, so a corrupt count cannot wrap the size check.
  if (h.n_tokens > buf.size() || h.n_positions > buf.size()) return bad("counts larger than the file");
  if (sizeof h + body_bytes(h.n_tokens, h.n_positions, h.top_k) + 8 != buf.size()) return bad("sizes do not add up");
  uint64_t sum;
  std::memcpy(&sum, buf.data() + buf.size() - 8, 8);
  if (xxh64(buf.data(), buf.size() - 8) != sum) return bad("checksum mismatch");
  KlBase b;
  b.n_vocab = h.n_vocab;
  b.n_ctx = h.n_ctx;
  b.top_k = h.top_k;
  const uint8_t* p = buf.data() + sizeof h;
  const size_t n = h.n_positions, k = h.top_k;
  take(&p, h.n_tokens, &b.tokens);
  take(&p, n * k, &b.ids);
  take(&p, n * k, &b.logp);
  take(&p, n, &b.log_rest);
  take(&p, n, &b.next);
  take(&p, n, &b.logp_next);
  for (int32_t id : b.ids) {
    if (id < 0 || static_cast<uint32_t>(id) >= b.n_vocab) return bad("token id out of range");
  }
  for (int32_t id : b.next) {
    if (id < 0 || static_cast<uint32_t>(id) >= b.n_vocab) return bad("token id out of range");
  }
  return b;
}

double kl_position(const KlBase& base, size_t pos, std::span<const float> logits) {
  return kl_position(base, pos, logits, ops::logsumexp(logits.data(), static_cast<int64_t>(logits.size())));
}

double kl_position(const KlBase& base, size_t pos, std::span<const float> logits, float lse) {
  // Log-probabilities rounded as KlBase::add rounds them, so a model against its own
  // file gives exactly 0.
  const size_t k = base.top_k;
  double kl = 0.0, q_mass = 0.0;
  for (size_t j = 0; j < k; ++j) {
    const double lp = base.logp[pos * k + j];
    const double lq = logits[static_cast<size_t>(base.ids[pos * k + j])] - lse;
    kl += std::exp(lp) * (lp - lq);
    q_mass += std::exp(lq);
  }
  const double lp_rest = base.log_rest[pos];
  if (std::isfinite(lp_rest)) {
    // The candidate's rest, floored so a candidate that puts everything on the top
    // entries gives a large finite term rather than infinity.
    const double lq_rest = std::max(q_mass >= 1.0 ? -60.0 : static_cast<float>(std::log1p(-q_mass)), -60.0);
    kl += std::exp(lp_rest) * (lp_rest - lq_rest);
  }
  return std::max(kl, 0.0);  // rounding can take an exact 0 slightly below
}

Status KlAccumulator::add(size_t pos, const float* logits) {
  if (pos >= base_.n_positions()) return Status::error("the candidate scored more positions than the base file holds");
  const std::span<const float> l(logits, base_.n_vocab);
  const float lse = ops::logsumexp(logits, base_.n_vocab);
  kl_.push_back(kl_position(base_, pos, l, lse));
  const auto top = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
  agree_ += top == base_.ids[pos * base_.top_k] ? 1 : 0;
  nll_base_ -= base_.logp_next[pos];
  nll_ += lse - logits[base_.next[pos]];
  return Status::ok();
}

KlSummary KlAccumulator::summary() const {
  KlSummary s;
  s.n = kl_.size();
  if (s.n == 0) return s;
  std::vector<double> v = kl_;
  std::sort(v.begin(), v.end());
  double sum = 0.0;
  for (double x : v) sum += x;
  const auto nd = static_cast<double>(s.n);
  const auto at = [&v](double q) { return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)]; };
  s.kl_mean = sum / nd;
  s.kl_p90 = at(0.90);
  s.kl_p99 = at(0.99);
  s.kl_max = v.back();
  s.top1_agree = static_cast<double>(agree_) / nd;
  s.ppl_base = std::exp(nll_base_ / nd);
  s.ppl = std::exp(nll_ / nd);
  return s;
}

}  // namespace flashlm::factory
