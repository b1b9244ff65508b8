// KL divergence of a candidate model (a quantized or pruned one) against its base, the
// figure llama.cpp users compare quantizations by. The base's run stores, per scored
// position, its top_k log-probabilities, the log of the mass left over and the
// log-probability of the token that followed; the candidate's run reads them back.
//
// The divergence is that of the two distributions coarsened to the base's top_k tokens
// plus one "everything else" outcome: exact when the rest holds no mass, and never more
// than the full KL (coarsening cannot increase it), so a stored file of 256 entries per
// position stands in for a full vocabulary of 49k-262k. llama.cpp's --kl-divergence-base
// keeps every logit (as 16-bit values) instead.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace flashlm::factory {

struct KlBase {
  uint32_t n_vocab = 0;
  uint32_t n_ctx = 0;  // the windowing the positions come from (as perplexity's)
  uint32_t top_k = 0;
  std::vector<int32_t> tokens;  // the evaluated text, to check the candidate reads the same
  // Per position p: ids[p * top_k + j], logp[p * top_k + j] (most likely first), the log
  // of the mass outside them, the token that followed and its log-probability.
  std::vector<int32_t> ids;
  std::vector<float> logp;
  std::vector<float> log_rest;
  std::vector<int32_t> next;
  std::vector<float> logp_next;

  size_t n_positions() const { return logp_next.size(); }
  // Appends a position from the base's logits (n_vocab of them) and the next token.
  void add(const float* logits, int32_t next);
};

// Writes the file (to a temporary beside path, renamed when complete) / reads and
// validates one: magic, version, sizes that add up to the file's, checksum.
Status save_kl_base(const std::string& path, const KlBase& b);
Result<KlBase> load_kl_base(const std::string& path);
// The file's bytes, and the same checks as load_kl_base over bytes (for the fuzzer).
std::vector<uint8_t> encode_kl_base(const KlBase& b);
Result<KlBase> parse_kl_base(std::span<const uint8_t> bytes);

struct KlSummary {
  size_t n = 0;
  double kl_mean = 0.0, kl_p90 = 0.0, kl_p99 = 0.0, kl_max = 0.0;
  double top1_agree = 0.0;          // share of positions where both rank the same token first
  double ppl_base = 0.0, ppl = 0.0;  // perplexity of the base and of the candidate
};

// Collects the candidate's positions in the base's order.
class KlAccumulator {
 public:
  explicit KlAccumulator(const KlBase& base) : base_(base) {}
  // The candidate's logits at base position `pos`; fails past the base's positions.
  Status add(size_t pos, const float* logits);
  KlSummary summary() const;

 private:
  const KlBase& base_;
  std::vector<double> kl_;
  size_t agree_ = 0;
  double nll_base_ = 0.0, nll_ = 0.0;
};

// KL(P || Q) of one position over the coarsened outcomes (exposed for tests).
double kl_position(const KlBase& base, size_t pos, std::span<const float> logits);
// The same with the logits' logsumexp already computed.
double kl_position(const KlBase& base, size_t pos, std::span<const float> logits, float lse);

}  // namespace flashlm::factory
