#include "models/ffn.h"

namespace flashlm {

void ffn_dense(const ComputeBackend& be, const ExecContext& ctx, const FfnWeights& w, Activation act, const float* x,
               int64_t n, int64_t n_embd, float* out, float* gate_buf, float* up_buf, FfnTap tap, FfnLora lora) {
  const int64_t n_ff = w.gate.ne[1];
  const MatmulOut gate_up[] = {{&w.gate, gate_buf, n_ff}, {&w.up, up_buf, n_ff}};
  be.matmul_group(ctx, gate_up, 2, x, n_embd, n);
  if (lora.lora != nullptr) {
    apply_lora(be, ctx, (*lora.lora)[LoraTarget::kGate], x, n_embd, gate_buf, n_ff, n, lora.h, lora.tmp);
    apply_lora(be, ctx, (*lora.lora)[LoraTarget::kUp], x, n_embd, up_buf, n_ff, n, lora.h, lora.tmp);
  }
  be.glu(ctx, act, gate_buf, up_buf, n, n_ff);
  if (tap.observer != nullptr) tap.observer->on_ffn(tap.layer, x, gate_buf, n);
  be.matmul(ctx, w.down, gate_buf, n_ff, out, n_embd, n);
  if (lora.lora != nullptr) {
    apply_lora(be, ctx, (*lora.lora)[LoraTarget::kDown], gate_buf, n_ff, out, n_embd, n, lora.h, lora.tmp);
  }
}

}  // namespace flashlm
