// The vocabulary as a byte trie, so a grammar mask walks each shared prefix once: tokens
// that start alike ("\"na", "\"name", "\"names") are checked together, and a prefix the
// grammar rejects drops its whole subtree. Built once per model, shared read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashlm::grammar {

class TokenTrie {
 public:
  // pieces[id]: the bytes token id stands for; an empty piece (control tokens) is never
  // offered to a grammar.
  explicit TokenTrie(const std::vector<std::string>& pieces);

  struct Node {
    uint32_t edges_begin, edges_end;    // into edges()
    uint32_t tokens_begin, tokens_end;  // into tokens(): ids whose piece ends here
  };
  struct Edge {
    uint8_t byte;
    uint32_t child;
  };

  const std::vector<Node>& nodes() const { return nodes_; }  // nodes()[0] is the root
  const std::vector<Edge>& edges() const { return edges_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int32_t n_vocab() const { return n_vocab_; }
  size_t max_depth() const { return max_depth_; }

 private:
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<int32_t> tokens_;
  int32_t n_vocab_ = 0;
  size_t max_depth_ = 0;
};

}  // namespace flashlm::grammar
