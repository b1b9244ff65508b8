#include "engine/decoder_embed.h"

#include <cmath>

namespace flashlm {

Result<DecoderPooling> decoder_pooling_from_name(const std::string& name) {
  if (name == "mean") return DecoderPooling::kMean;
  if (name == "last") return DecoderPooling::kLast;
  if (name == "cls") return DecoderPooling::kCls;
  return Status::error("unknown pooling '" + name + "' for a decoder model (mean, last, cls)");
}

Result<std::vector<float>> decoder_embed(Runner& runner, int seq, const std::vector<int32_t>& tokens,
                                         DecoderPooling pooling, int64_t n_embd) {
  if (tokens.empty()) return Status::error("nothing to embed: the input has no tokens");
  runner.seq_truncate(seq, 0);
  runner.set_hidden_output(true);
  std::vector<float> rows;
  // Mean needs every token's row; last gets its row from eval's last-row mode; cls the
  // first token's, which eval gives when it is the only token, else from all rows.
  const bool all_rows = pooling == DecoderPooling::kMean || (pooling == DecoderPooling::kCls && tokens.size() > 1);
  Status st = runner.eval(seq, tokens, all_rows, &rows);
  runner.set_hidden_output(false);
  if (!st) return st;
  const auto n_rows = static_cast<int64_t>(rows.size()) / n_embd;
  std::vector<double> acc(static_cast<size_t>(n_embd), 0.0);
  if (pooling == DecoderPooling::kMean) {
    for (int64_t r = 0; r < n_rows; ++r) {
      for (int64_t i = 0; i < n_embd; ++i) acc[static_cast<size_t>(i)] += rows[static_cast<size_t>(r * n_embd + i)];
    }
    for (double& v : acc) v /= static_cast<double>(n_rows);
  } else {
    const int64_t r = pooling == DecoderPooling::kLast ? n_rows - 1 : 0;
    for (int64_t i = 0; i < n_embd; ++i) acc[static_cast<size_t>(i)] = rows[static_cast<size_t>(r * n_embd + i)];
  }
  double ss = 0.0;
  for (double v : acc) ss += v * v;
  const double norm = ss > 0.0 ? std::sqrt(ss) : 1.0;
  std::vector<float> out(static_cast<size_t>(n_embd));
  for (int64_t i = 0; i < n_embd; ++i) out[static_cast<size_t>(i)] = static_cast<float>(acc[static_cast<size_t>(i)] / norm);
  return out;
}

}  // namespace flashlm
