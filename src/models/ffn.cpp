#include "models/ffn.h"

#include "kernels/cpu/ops.h"

namespace flashlm {

void ffn_dense(const FfnWeights& w, Activation act, const float* x, int64_t n, int64_t n_embd, float* out,
               float* gate_buf, float* up_buf, ThreadPool& pool, MatmulOptions mm, FfnTap tap) {
  const int64_t n_ff = w.gate.ne[1];
  matmul(w.gate, x, n_embd, gate_buf, n_ff, n, pool, mm);
  matmul(w.up, x, n_embd, up_buf, n_ff, n, pool, mm);
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* g = gate_buf + t * n_ff;
      const float* u = up_buf + t * n_ff;
      if (act == Activation::kSilu) ops::silu_mul(g, u, g, n_ff);
      else ops::gelu_tanh_mul(g, u, g, n_ff);
    }
  });
  if (tap.observer != nullptr) tap.observer->on_ffn(tap.layer, x, gate_buf, n);
  matmul(w.down, gate_buf, n_ff, out, n_embd, n, pool, mm);
}

}  // namespace flashlm
