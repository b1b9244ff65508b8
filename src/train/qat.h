// Quantization-aware training's two ends: which type each parameter is fake-quantized to
// (the choice `flashlm quantize --type T` makes for the same file: factory::plan_quantize,
// so QAT and post-training quantization are compared tensor for tensor), and the trained
// model written in those types with the same rounding the forward used.
#pragma once

#include <string>
#include <vector>

#include "factory/quantize.h"
#include "formats/gguf.h"
#include "train/train_model.h"

namespace flashlm::train {

// Per parameter: its planned type, or F32 for one that stays unquantized (vectors).
Result<std::vector<DType>> qat_types(const gguf::File& base, const std::vector<Param>& params,
                                     const factory::QuantType& to);

// `--qat same`: each parameter in its own type in the base file (F32 for F32/F16/BF16
// tensors), so a quantized student trains for the types it is written back in
// (write_trained_model's "same").
std::vector<DType> qat_types_same(const gguf::File& base, const std::vector<Param>& params);

// The trained model (write_trained_model's tensors at F32) quantized to `to` by
// factory::quantize_model, through a temporary F32 file beside path.
Status write_qat_model(const gguf::File& base, const std::vector<Param>& params, const std::vector<bool>& trained,
                       const factory::QuantType& to, const std::string& path);

}  // namespace flashlm::train
