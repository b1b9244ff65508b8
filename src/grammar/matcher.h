// Where a generation stands in a grammar, and which tokens may come next.
//
// The state is a set of stacks (llama.cpp's design): each stack is one way the text so far
// can be parsed, its top the code-point set that must match next, its lower entries where
// to resume in the enclosing rules. An empty stack means the text is a complete match.
// Text arrives as bytes; a token that ends inside a multi-byte character leaves the partial
// character in the state, and the next token completes it.
//
// Each sequence owns one Matcher; the Grammar and the TokenTrie are shared read-only.
#pragma once

#include <memory>
#include <unordered_map>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/token_trie.h"

namespace flashlm::grammar {

// Bounds that keep an ambiguous grammar from exploding: stacks alive at once, and
// expansion steps per code point. Past them the matcher fails (failed() says so).
inline constexpr size_t kMaxStacks = 4096;
inline constexpr size_t kMaxExpandSteps = 1u << 16;

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const Grammar> grammar);

  // Feeds a token's bytes. Returns false, leaving the state as it was, when the bytes
  // cannot continue any parse.
  bool accept(std::string_view bytes);
  bool can_accept(std::string_view bytes) const;

  // The text so far is a complete match (an end-of-generation token may come now).
  bool accepting() const;
  // Some parse wants more text (false once the grammar is finished: only the end may come).
  bool can_continue() const;
  // The grammar blew past kMaxStacks / kMaxExpandSteps; nothing is accepted after that.
  bool failed() const { return failed_; }

  // mask[id] = 1 for every token of the trie whose bytes continue the grammar, 0 for the
  // rest (end-of-generation tokens are the caller's: see accepting()). mask is resized to
  // trie.n_vocab().
  void fill_mask(const TokenTrie& trie, std::vector<uint8_t>* mask) const;

 private:
  using Stack = std::vector<const Elem*>;
  struct State {
    std::vector<Stack> stacks;
    uint32_t bits = 0;  // the partial code point's bits so far
    int need = 0;       // continuation bytes it still needs
    uint8_t lead = 0;   // the lead byte while only it has arrived (checks the second byte)
  };

  // false when the byte kills every stack (out is then unspecified).
  bool step(const State& in, uint8_t byte, State* out) const;
  void advance(const std::vector<Stack>& in, uint32_t cp, std::vector<Stack>* out) const;
  void expand(Stack stack, std::vector<Stack>* out) const;
  void walk(const TokenTrie& trie, uint32_t node, int32_t state, std::vector<uint8_t>* mask) const;
  int32_t intern(State&& s) const;      // the id of an equal state in states_, added if new
  int32_t transition(int32_t from, uint8_t byte) const;  // -1: the byte kills every stack

  std::shared_ptr<const Grammar> g_;
  State state_;
  mutable bool failed_ = false;
  // fill_mask(): the distinct states met in one walk and the byte transitions between
  // them. Inside a JSON string nearly every byte leads back to the same few states, so
  // the walk over ~100k trie nodes is mostly table lookups, not stack copies.
  mutable std::vector<State> states_;
  mutable std::unordered_map<uint64_t, std::vector<int32_t>> state_ids_;  // by content hash
  mutable std::vector<int32_t> transitions_;  // [state * 256 + byte]: next state, -1 dead, -2 unknown
  mutable std::vector<Stack> todo_;    // expand()'s work list
  mutable size_t steps_ = 0;
};

}  // namespace flashlm::grammar
