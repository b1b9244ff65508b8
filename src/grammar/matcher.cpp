#include "grammar/matcher.h"

#include <algorithm>

namespace flashlm::grammar {
namespace {

bool ends_alternative(const Elem* e) { return e->op == Op::kEnd || e->op == Op::kAlt; }

}  // namespace

Matcher::Matcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  const std::vector<Elem>& root = g_->rules[g_->root];
  Stack s;
  // One stack per alternative of the root rule.
  for (size_t i = 0; i < root.size();) {
    s.clear();
    if (!ends_alternative(&root[i])) s.push_back(&root[i]);
    expand(s, &state_.stacks);
    while (i < root.size() && root[i].op != Op::kAlt && root[i].op != Op::kEnd) ++i;
    ++i;
  }
  std::sort(state_.stacks.begin(), state_.stacks.end());
  state_.stacks.erase(std::unique(state_.stacks.begin(), state_.stacks.end()), state_.stacks.end());
}

// Pushes onto *out every stack `stack` can become with a code-point set on top (or empty):
// a rule reference on top is replaced by each of the rule's alternatives.
void Matcher::expand(Stack stack, std::vector<Stack>* out) const {
  todo_.clear();
  todo_.push_back(std::move(stack));
  while (!todo_.empty()) {
    Stack s = std::move(todo_.back());
    todo_.pop_back();
    if (++steps_ > kMaxExpandSteps || out->size() >= kMaxStacks) {
      failed_ = true;
      return;
    }
    if (s.empty() || s.back()->op != Op::kRef) {
      out->push_back(std::move(s));
      continue;
    }
    const Elem* ref = s.back();
    s.pop_back();
    if (!ends_alternative(ref + 1)) s.push_back(ref + 1);  // where to resume afterwards
    const std::vector<Elem>& rule = g_->rules[ref->value];
    for (size_t i = 0; i < rule.size();) {
      Stack t = s;
      if (!ends_alternative(&rule[i])) t.push_back(&rule[i]);
      todo_.push_back(std::move(t));
      while (rule[i].op != Op::kAlt && rule[i].op != Op::kEnd) ++i;
      ++i;
    }
  }
}

void Matcher::advance(const std::vector<Stack>& in, uint32_t cp, std::vector<Stack>* out) const {
  out->clear();
  steps_ = 0;
  for (const Stack& s : in) {
    if (s.empty() || !Grammar::set_matches(s.back(), cp)) continue;
    Stack t = s;
    const Elem* next = Grammar::after_set(t.back());
    if (ends_alternative(next)) {
      t.pop_back();
    } else {
      t.back() = next;
    }
    expand(std::move(t), out);
    if (failed_) return;
  }
  if (out->size() > 1) {
    std::sort(out->begin(), out->end());
    out->erase(std::unique(out->begin(), out->end()), out->end());
  }
}

bool Matcher::step(const State& in, uint8_t b, State* out) const {
  uint32_t bits = 0;
  int need = 0;
  if (in.need == 0) {
    if (b < 0x80) {
      advance(in.stacks, b, &out->stacks);
      out->need = 0;
      out->lead = 0;
      return !out->stacks.empty();
    }
    if (b < 0xC2 || b > 0xF4) return false;  // continuation, overlong C0/C1, past U+10FFFF
    if ((b & 0xE0) == 0xC0) {
      bits = b & 0x1F;
      need = 1;
    } else if ((b & 0xF0) == 0xE0) {
      bits = b & 0x0F;
      need = 2;
    } else if ((b & 0xF8) == 0xF0) {
      bits = b & 0x07;
      need = 3;
    } else {
      return false;  // a stray continuation byte or an invalid lead byte
    }
  } else {
    if ((b & 0xC0) != 0x80) return false;
    if (in.lead != 0) {  // the second byte: no overlong forms, surrogates or values past U+10FFFF
      const uint8_t l = in.lead;
      if ((l == 0xE0 && b < 0xA0) || (l == 0xED && b > 0x9F) || (l == 0xF0 && b < 0x90) || (l == 0xF4 && b > 0x8F)) {
        return false;
      }
    }
    bits = (in.bits << 6) | (b & 0x3F);
    need = in.need - 1;
    if (need == 0) {
      advance(in.stacks, bits, &out->stacks);
      out->need = 0;
      out->bits = 0;
      out->lead = 0;
      return !out->stacks.empty();
    }
  }
  // Inside a character: keep the stacks whose next set could hold one starting so.
  // After the lead byte alone, the shortest-form minimum applies (E0 starts at U+0800, not 0).
  static constexpr uint32_t kMinOfLength[5] = {0, 0, 0x80, 0x800, 0x10000};
  const uint32_t lo = std::max(bits << (6 * need), in.need == 0 ? kMinOfLength[need + 1] : 0u);
  const uint32_t hi = lo | ((1u << (6 * need)) - 1);
  out->stacks.clear();
  for (const Stack& s : in.stacks) {
    if (!s.empty() && Grammar::set_may_match(s.back(), lo, hi)) out->stacks.push_back(s);
  }
  out->bits = bits;
  out->need = need;
  out->lead = in.need == 0 ? b : 0;
  return !out->stacks.empty();
}

bool Matcher::can_accept(std::string_view bytes) const {
  if (failed_) return false;
  State a = state_, b;
  for (char c : bytes) {
    if (!step(a, static_cast<uint8_t>(c), &b) || failed_) return false;
    std::swap(a, b);
  }
  return !bytes.empty();
}

bool Matcher::accept(std::string_view bytes) {
  if (failed_ || bytes.empty()) return false;
  State a = state_, b;
  for (char c : bytes) {
    if (!step(a, static_cast<uint8_t>(c), &b) || failed_) return false;
    std::swap(a, b);
  }
  state_ = std::move(a);
  return true;
}

bool Matcher::accepting() const {
  if (failed_ || state_.need != 0) return false;
  return std::any_of(state_.stacks.begin(), state_.stacks.end(), [](const Stack& s) { return s.empty(); });
}

bool Matcher::can_continue() const {
  if (failed_) return false;
  return std::any_of(state_.stacks.begin(), state_.stacks.end(), [](const Stack& s) { return !s.empty(); });
}

int32_t Matcher::intern(State&& s) const {
  uint64_t h = 1469598103934665603ull ^ (static_cast<uint64_t>(s.bits) << 8) ^ static_cast<uint64_t>(s.need) ^
               (static_cast<uint64_t>(s.lead) << 40);
  for (const Stack& st : s.stacks) {
    for (const Elem* e : st) h = (h ^ reinterpret_cast<uintptr_t>(e)) * 1099511628211ull;
    h = (h ^ 0xFF) * 1099511628211ull;  // stack boundary
  }
  std::vector<int32_t>& ids = state_ids_[h];
  for (int32_t id : ids) {
    const State& o = states_[static_cast<size_t>(id)];
    if (o.bits == s.bits && o.need == s.need && o.lead == s.lead && o.stacks == s.stacks) return id;
  }
  const auto id = static_cast<int32_t>(states_.size());
  states_.push_back(std::move(s));
  ids.push_back(id);
  transitions_.resize(states_.size() * 256, -2);
  return id;
}

int32_t Matcher::transition(int32_t from, uint8_t byte) const {
  const size_t key = static_cast<size_t>(from) * 256 + byte;
  if (transitions_[key] != -2) return transitions_[key];
  State next;
  const int32_t to = step(states_[static_cast<size_t>(from)], byte, &next) ? intern(std::move(next)) : -1;
  transitions_[key] = to;
  return to;
}

void Matcher::walk(const TokenTrie& trie, uint32_t node, int32_t state, std::vector<uint8_t>* mask) const {
  const TokenTrie::Node& n = trie.nodes()[node];
  for (uint32_t e = n.edges_begin; e < n.edges_end; ++e) {
    const TokenTrie::Edge& edge = trie.edges()[e];
    const int32_t next = transition(state, edge.byte);
    if (failed_) return;
    if (next < 0) continue;
    const TokenTrie::Node& c = trie.nodes()[edge.child];
    for (uint32_t t = c.tokens_begin; t < c.tokens_end; ++t) (*mask)[trie.tokens()[t]] = 1;
    walk(trie, edge.child, next, mask);
  }
}

void Matcher::fill_mask(const TokenTrie& trie, std::vector<uint8_t>* mask) const {
  mask->assign(static_cast<size_t>(trie.n_vocab()), 0);
  if (failed_) return;
  states_.clear();
  state_ids_.clear();
  transitions_.clear();
  State start = state_;
  walk(trie, 0, intern(std::move(start)), mask);
}

}  // namespace flashlm::grammar
