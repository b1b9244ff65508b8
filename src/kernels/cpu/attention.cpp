#include "kernels/cpu/attention.h"

#include <cmath>
#include <limits>

#include "kernels/cpu/ops.h"

namespace flashlm {

void attention_paged(const float* q, const PagedKvView& kv, const AttentionParams& p, int64_t pos_begin,
                     int64_t pos_end, int head_begin, int head_end, float* out) {
  const int group = p.n_head / p.n_head_kv;
  for (int h = head_begin; h < head_end; ++h) {
    const float* qh = q + static_cast<int64_t>(h) * p.head_dim;
    float* oh = out + static_cast<int64_t>(h) * p.head_dim;
    const int64_t kv_off = static_cast<int64_t>(h / group) * p.head_dim;
    for (int d = 0; d < p.head_dim; ++d) oh[d] = 0.0f;
    // Online softmax: running max m and normaliser l; the accumulator is rescaled
    // whenever the max grows.
    float m = -std::numeric_limits<float>::infinity();
    float l = 0.0f;
    for (int64_t pos = pos_begin; pos <= pos_end; ++pos) {
      const int64_t block = kv.block_table[pos / kv.block_size];
      const int64_t slot = (block * kv.block_size + pos % kv.block_size) * kv.kv_dim + kv_off;
      float s = ops::dot(qh, kv.k + slot, p.head_dim) * p.scale;
      if (p.softcap > 0.0f) s = p.softcap * std::tanh(s / p.softcap);
      if (s > m) {
        const float corr = std::exp(m - s);  // 0 on the first key (m = -inf)
        l *= corr;
        ops::scale(oh, corr, p.head_dim);
        m = s;
      }
      const float e = std::exp(s - m);
      l += e;
      ops::axpy(e, kv.v + slot, oh, p.head_dim);
    }
    if (l > 0.0f) ops::scale(oh, 1.0f / l, p.head_dim);
  }
}

}  // namespace flashlm
