#include "engine/decoder_embed.h"

namespace flashlm {

Result<std::vector<float>> decoder_embed(Runner& runner, int seq, const std::vector<int32_t>& tokens,
                                         embed::Pooling pooling, int64_t n_embd) {
  if (tokens.empty()) return Status::error("nothing to embed: the input has no tokens");
  runner.seq_truncate(seq, 0);
  runner.set_hidden_output(true);
  // Last-token pooling needs only eval's last row; the others every token's.
  std::vector<float> rows;
  Status st = runner.eval(seq, tokens, /*all_logits=*/pooling != embed::Pooling::kLastToken, &rows);
  runner.set_hidden_output(false);
  if (!st) return st;
  return embed::pool_rows(rows.data(), static_cast<int64_t>(rows.size()) / n_embd, n_embd, pooling, /*normalize=*/true);
}

}  // namespace flashlm
