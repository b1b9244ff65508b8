// Writes a fine-tuned model: the base GGUF's metadata and untrained tensors as they are,
// each trained tensor converted from its F32 master weights to the chosen type.
#pragma once

#include <string>
#include <vector>

#include "formats/gguf.h"
#include "train/train_model.h"
#include "util/status.h"

namespace flashlm::train {

// out_type: "f32", "f16", "bf16", or "same" (the base tensor's own type, requantized with
// the reference quantizer of quant/; the base's quantized types lose what the
// quantization loses, so train an F16/F32 base for the best result). Vectors (norms,
// biases) are always F32.
Status write_trained_model(const gguf::File& base, const std::vector<Param>& params, const std::vector<bool>& trained,
                           const std::string& out_type, const std::string& path);

// A LoRA adapter in llama.cpp's LoRA GGUF: the base's architecture, general.type
// "adapter", adapter.type "lora", m's adapter.lora.alpha, and every "*.lora_a" / "*.lora_b"
// parameter of m as F32 (ne = [n_in, rank] and [rank, n_out]); llama.cpp and `--lora` load it.
Status write_lora_adapter(const gguf::File& base, const TrainModel& m, const std::string& path);

}  // namespace flashlm::train
