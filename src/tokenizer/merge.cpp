// The two merge algorithms. Both keep the text as a linked list of symbols (byte
// ranges) and a priority queue of candidate adjacent pairs; a popped pair is stale when
// either side has since changed size, which is cheaper than llama.cpp's string compare
// and equivalent: merges only ever grow the left symbol and empty the right one.
// Each merge pushes at most two pairs, so a word of n characters costs O(n log n).
#include <cstring>
#include <queue>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

struct Symbol {
  uint32_t offset;  // into the word
  uint32_t n;       // bytes; 0 once merged into its left neighbour
  int32_t prev, next;
};

struct Pair {
  float score;  // SPM: token score (higher first); BPE: -rank
  int32_t left, right;
  uint32_t size;  // bytes of left + right when queued
};

// Highest score first; ties go to the leftmost pair (the order llama.cpp pops them in).
struct PairLess {
  bool operator()(const Pair& a, const Pair& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};
using PairQueue = std::priority_queue<Pair, std::vector<Pair>, PairLess>;

std::vector<Symbol> split_chars(std::string_view word) {
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  size_t off = 0;
  while (off < word.size()) {
    size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(word[off])), word.size() - off);
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), idx - 1, -1});
    off += len;
  }
  for (size_t i = 0; i + 1 < syms.size(); ++i) syms[i].next = static_cast<int32_t>(i + 1);
  return syms;
}

// Runs the queue to exhaustion; `make_pair(l, r, &pair)` decides whether two adjacent
// symbols may merge and with what priority.
template <typename MakePair>
void run_merges(std::vector<Symbol>& syms, MakePair&& make_pair) {
  PairQueue queue;
  auto try_push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    Pair p{0.0f, l, r, syms[l].n + syms[r].n};
    if (make_pair(syms[l], syms[r], &p.score)) queue.push(p);
  };
  for (size_t i = 1; i < syms.size(); ++i) try_push(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  while (!queue.empty()) {
    const Pair p = queue.top();
    queue.pop();
    Symbol& l = syms[p.left];
    Symbol& r = syms[p.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = p.left;
    try_push(l.prev, p.left);
    try_push(p.left, l.next);
  }
}

}  // namespace

int32_t Tokenizer::bpe_rank(std::string_view left, std::string_view right) const {
  // Key layout matches init(): 4-byte left length, then both texts.
  const uint32_t left_len = static_cast<uint32_t>(left.size());
  std::string key(sizeof(left_len) + left.size() + right.size(), '\0');
  std::memcpy(key.data(), &left_len, sizeof(left_len));
  std::memcpy(key.data() + sizeof(left_len), left.data(), left.size());
  std::memcpy(key.data() + sizeof(left_len) + left.size(), right.data(), right.size());
  auto it = merge_rank_.find(key);
  return it == merge_rank_.end() ? -1 : it->second;
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>* out) const {
  const std::string clean = sanitize_utf8(text);
  std::vector<std::string_view> words;
  pre_->split(clean, &words);
  std::string encoded;
  for (std::string_view w : words) {
    encoded.clear();
    for (unsigned char c : w) encoded += byte_enc_[c];
    encode_bpe_word(encoded, out);
  }
}

void Tokenizer::encode_bpe_word(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (vocab_.ignore_merges) {
    if (int32_t id = lookup(word); id != kNoToken) {
      out->push_back(id);
      return;
    }
  }
  std::vector<Symbol> syms = split_chars(word);
  run_merges(syms, [&](const Symbol& l, const Symbol& r, float* score) {
    int32_t rank = bpe_rank(word.substr(l.offset, l.n), word.substr(r.offset, r.n));
    if (rank < 0) return false;
    *score = -static_cast<float>(rank);  // exact: ranks stay far below 2^24
    return true;
  });
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    std::string_view s = word.substr(syms[i].offset, syms[i].n);
    if (int32_t id = lookup(s); id != kNoToken) {
      out->push_back(id);
      continue;
    }
    // Not a token: emit whichever single bytes are tokens (llama.cpp's fallback).
    for (char c : s) {
      if (int32_t id = lookup(std::string_view(&c, 1)); id != kNoToken) out->push_back(id);
    }
  }
}

int32_t Tokenizer::spm_byte_token(uint8_t b) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
  if (int32_t id = lookup(std::string_view(buf, 6)); id != kNoToken) return id;
  const char c = static_cast<char>(b);
  if (int32_t id = lookup(std::string_view(&c, 1)); id != kNoToken) return id;
  return vocab_.unk;  // llama.cpp aborts here; a vocabulary without byte tokens gets <unk>
}

void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  if (vocab_.ignore_merges) {
    if (int32_t id = lookup(text); id != kNoToken) {
      out->push_back(id);
      return;
    }
  }
  std::vector<Symbol> syms = split_chars(text);
  if (vocab_.spm_ranked_merges) {
    // A tokenizer.json's BPE with byte fallback: its merge table ranks the pairs (only
    // listed pairs merge), as Hugging Face tokenizers does; scores play no part.
    run_merges(syms, [&](const Symbol& l, const Symbol& r, float* score) {
      int32_t rank = bpe_rank(text.substr(l.offset, l.n), text.substr(r.offset, r.n));
      if (rank < 0) return false;
      *score = -static_cast<float>(rank);  // exact: ranks stay far below 2^24
      return true;
    });
  } else {
    run_merges(syms, [&](const Symbol& l, const Symbol& r, float* score) {
      int32_t id = lookup(text.substr(l.offset, l.n + r.n));  // adjacent symbols are contiguous
      if (id == kNoToken) return false;
      *score = vocab_.scores[id];
      return true;
    });
  }
  // A merged symbol is always a token; only single characters can miss and fall back.
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    std::string_view s = text.substr(syms[i].offset, syms[i].n);
    if (int32_t id = lookup(s); id != kNoToken) {
      out->push_back(id);
      continue;
    }
    for (char c : s) {
      int32_t id = spm_byte_token(static_cast<uint8_t>(c));
      if (id != kNoToken) out->push_back(id);
    }
  }
}

}  // namespace flashlm::tok
