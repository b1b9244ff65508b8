#include "grammar/token_trie.h"

#include <algorithm>
#include <numeric>
#include <string_view>

namespace flashlm::grammar {

// Sorting the ids by piece makes every node's tokens and children contiguous: the trie is
// built in one pass, depth-first, without per-node containers.
TokenTrie::TokenTrie(const std::vector<std::string>& pieces) : n_vocab_(static_cast<int32_t>(pieces.size())) {
  std::vector<int32_t> ids;
  ids.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].empty()) ids.push_back(static_cast<int32_t>(i));
  }
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return pieces[a] != pieces[b] ? pieces[a] < pieces[b] : a < b;
  });
  tokens_.reserve(ids.size());

  // build(lo, hi, depth): the node for ids[lo, hi), which all share their first `depth`
  // bytes. Explicit work list: pieces can be hundreds of bytes long.
  struct Work {
    uint32_t node;
    size_t lo, hi, depth;
  };
  nodes_.push_back({});
  std::vector<Work> todo{{0, 0, ids.size(), 0}};
  while (!todo.empty()) {
    const Work w = todo.back();
    todo.pop_back();
    max_depth_ = std::max(max_depth_, w.depth);
    size_t i = w.lo;
    nodes_[w.node].tokens_begin = static_cast<uint32_t>(tokens_.size());
    for (; i < w.hi && pieces[ids[i]].size() == w.depth; ++i) tokens_.push_back(ids[i]);
    nodes_[w.node].tokens_end = static_cast<uint32_t>(tokens_.size());
    nodes_[w.node].edges_begin = static_cast<uint32_t>(edges_.size());
    while (i < w.hi) {
      const auto b = static_cast<uint8_t>(pieces[ids[i]][w.depth]);
      size_t j = i;
      while (j < w.hi && static_cast<uint8_t>(pieces[ids[j]][w.depth]) == b) ++j;
      const auto child = static_cast<uint32_t>(nodes_.size());
      nodes_.push_back({});
      edges_.push_back({b, child});
      todo.push_back({child, i, j, w.depth + 1});
      i = j;
    }
    nodes_[w.node].edges_end = static_cast<uint32_t>(edges_.size());
  }
}

}  // namespace flashlm::grammar
