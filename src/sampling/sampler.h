// Sampling: logits -> token for one sequence.
//
// The engine keeps one Sampler per sequence. The chain follows llama.cpp's default order so
// that outputs are comparable with it:
//   penalties (repeat over the last N, frequency, presence) -> top-k -> top-p -> min-p
//   -> temperature -> softmax -> draw.
// Greedy (temperature <= 0) is the argmax after penalties, ties to the lowest token id.
// Note that top-p and min-p therefore see the untempered distribution, as in llama.cpp.
//
// Steady-state calls allocate nothing: every buffer is owned by the Sampler and keeps its
// capacity between calls.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "sampling/stop_matcher.h"
#include "util/status.h"

namespace flashlm {

// Seeds that mean "pick a random seed": llama.cpp's LLAMA_DEFAULT_SEED (0xFFFFFFFF), and
// all ones in 64 bits, which is what a client's "seed": -1 becomes after a cast.
inline constexpr uint64_t kSeedRandom = 0xFFFFFFFFull;
inline bool is_random_seed(uint64_t seed) { return seed == kSeedRandom || seed == ~0ull; }

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy
  int32_t top_k = 40;        // <= 0 or >= n_vocab: off
  float top_p = 0.95f;       // in [0, 1]; >= 1: off; 0 keeps only the most likely token
  float min_p = 0.05f;       // in [0, 1]; <= 0: off
  // llama.cpp semantics: a token seen in the last repeat_last_n accepted tokens has a
  // positive logit divided by repeat_penalty and a negative one multiplied by it.
  float repeat_penalty = 1.0f;   // > 0; 1: off
  int32_t repeat_last_n = 64;    // window for all three penalties; 0: off; -1: all history
  // OpenAI semantics: logit -= count * frequency_penalty + (count > 0) * presence_penalty,
  // with counts taken over the same window as the repeat penalty (as llama.cpp does).
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = kSeedRandom;  // see is_random_seed(); otherwise fully deterministic
  // OpenAI's logit_bias: (token id, bias) sorted by id, each id once; the bias is added to
  // the logit after the penalties, in every mode (greedy too). -100 or less bans the token.
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Rejects NaN/inf anywhere, top_p or min_p outside [0, 1], repeat_penalty <= 0 and
  // repeat_last_n < -1. A negative temperature is allowed (greedy), as in llama.cpp.
  Status validate() const;
};

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// Log-probabilities of a sampled token, over the whole vocabulary after penalties and
// temperature (temperature 1 when greedy), before top-k/top-p/min-p truncation.
struct SampleLogprobs {
  float chosen = 0.0f;             // log-probability of the returned token
  std::vector<TokenLogprob> top;   // the n most likely tokens, most likely first
};

class Sampler {
 public:
  // Out-of-range values are neutralised (NaN temperature -> greedy, NaN top_p -> off,
  // ...) so a Sampler never misbehaves; callers should still validate() and report errors.
  explicit Sampler(const SamplingParams& params);

  // Validates first, for callers that want the error as a value.
  static Result<Sampler> create(const SamplingParams& params);

  // Records a token (prompt or generated) in the penalty history.
  void accept(int32_t token);

  // Picks the next token. logits: [n_vocab]. NaN logits count as -inf; if every logit is
  // -inf, token 0 is returned. Returns -1 only if n_vocab <= 0 or logits is null. Does not
  // call accept(): the caller decides what enters the history (prompt tokens included).
  // Deterministic for a given seed and call sequence; ties rank the lower id first.
  int32_t sample(const float* logits, int32_t n_vocab);

  // As above, and also fills *out with the chosen token's log-probability and the n_top
  // most likely alternatives (reusing out->top's capacity).
  int32_t sample(const float* logits, int32_t n_vocab, int32_t n_top, SampleLogprobs* out);

  // The model's own log-probabilities (no penalties, temperature 1) of `token` and of the
  // n_top most likely tokens: scoring a given text (a prompt echoed with its logprobs).
  // Equal to sample()'s logprobs of the same token for a greedy sampler without penalties.
  static void score(const float* logits, int32_t n_vocab, int32_t token, int32_t n_top, SampleLogprobs* out);

  // Forgets the history and restarts the random stream from seed(), so a sequence can be
  // replayed exactly.
  void reset();

  uint64_t seed() const { return seed_; }  // the seed in use (resolved if it was random)
  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  struct Penalized {
    int32_t id;
    float logit;
  };

  void build_penalties(const float* logits, int32_t n_vocab);
  void add_penalties(const float* logits, int32_t n_vocab);
  void add_logit_bias(const float* logits, int32_t n_vocab);
  template <typename F>
  void for_each_logit(const float* logits, int32_t n_vocab, F&& visit) const;
  template <typename F>
  void for_each_logit_above(const float* logits, int32_t n_vocab, const float& floor,
                            F&& visit) const;
  int32_t argmax(const float* logits, int32_t n_vocab) const;
  void fill_top_k(const float* logits, int32_t n_vocab, int32_t k);
  void fill_all(const float* logits, int32_t n_vocab);
  static void sort_prefix(std::vector<Candidate>& v, size_t& n_sorted, size_t m);
  static size_t take_nucleus(std::vector<Candidate>& v, size_t& n_sorted, float max, double cum,
                             double target);
  void apply_top_p();
  void apply_min_p();
  int32_t draw();
  double next_uniform();
  void compute_logprobs(const float* logits, int32_t n_vocab, int32_t chosen, int32_t n_top,
                        SampleLogprobs* out);

  SamplingParams params_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;

  // Penalty history: a ring of repeat_last_n tokens, or all tokens when it is -1.
  std::vector<int32_t> history_;
  size_t history_head_ = 0;  // next slot to overwrite once the ring is full

  // Per-call scratch, kept for its capacity.
  std::vector<int32_t> window_;       // history copy, sorted to count repeats
  std::vector<Penalized> penalized_;  // penalised (and biased) logits, sorted by id
  std::vector<Penalized> biased_;     // add_logit_bias()'s merge buffer
  std::vector<Candidate> cand_;       // surviving candidates
  size_t n_sorted_ = 0;               // cand_[0, n_sorted_) holds the best, in final order
  std::vector<Candidate> boundary_;   // top-p: candidates in the histogram's crossing bucket
};

}  // namespace flashlm
