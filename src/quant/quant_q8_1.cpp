// Q8_1: the activation format llama.cpp pairs with Q4_1/Q5_1 weights. Not a weight
// format (it has no traits-table entry); kernels/cpu quantizes activation rows into it.
// Follows ggml's quantize_row_q8_1_ref operation for operation.
#include <cmath>

#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {

void dequantize_block(const BlockQ8_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int64_t j = 0; j < BlockQ8_1::kElems; ++j) y[j] = (float)b.qs[j] * d;
}

void quantize_block(const float* x, BlockQ8_1& b) {
  float amax = 0.0f;
  for (int64_t j = 0; j < BlockQ8_1::kElems; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  int sum = 0;
  for (int64_t j = 0; j < BlockQ8_1::kElems; ++j) {
    const float v = x[j] * id;
    // roundf as ggml; |v| <= 127 for finite input, the clamp only keeps NaN/inf defined.
    const int q = std::isnan(v) ? 0 : (int)std::roundf(std::fmax(-127.0f, std::fmin(127.0f, v)));
    b.qs[j] = (int8_t)q;
    sum += q;
  }
  b.s = fp32_to_fp16((float)sum * d);
}

}  // namespace flashlm::quant
