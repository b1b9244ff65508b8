// Architecture registry: general.architecture -> the family's config parser. One line
// per architecture in registry.cpp; nothing else in the code names architectures.
#pragma once

#include <string>

#include "formats/gguf.h"
#include "models/config.h"
#include "util/status.h"

namespace flashlm {

using ParseConfigFn = Result<ModelConfig> (*)(const gguf::File&);

struct ArchEntry {
  const char* name;
  ParseConfigFn parse_config;
};

// Null if unsupported.
const ArchEntry* find_arch(const std::string& name);
// "llama, qwen2, qwen3, gemma3, qwen2moe, qwen3moe"
std::string supported_archs();

// Builds the config of any supported file, or an error naming what is supported.
Result<ModelConfig> parse_model_config(const gguf::File& f);

// Family parsers (one file each).
Result<ModelConfig> parse_llama(const gguf::File& f);
Result<ModelConfig> parse_qwen2(const gguf::File& f);
Result<ModelConfig> parse_qwen3(const gguf::File& f);
Result<ModelConfig> parse_gemma3(const gguf::File& f);
Result<ModelConfig> parse_qwen2moe(const gguf::File& f);
Result<ModelConfig> parse_qwen3moe(const gguf::File& f);

// What a family assumes when its file leaves an MoE key out.
struct MoeDefaults {
  bool norm_weights = true;  // renormalise the top-k weights (Mixtral, Qwen3-MoE); Qwen2-MoE: false
};

// Hyper-parameters every family stores under "<arch>.*": sizes, heads, eps, RoPE, and
// experts (parse_moe), so any family's layers may be MoE.
Status parse_common(const gguf::File& f, const std::string& arch, ModelConfig* cfg, const MoeDefaults& moe = {});
// "<arch>.expert_*" and "flashlm.moe.*" keys; marks layers with a router as MoE.
Status parse_moe(const gguf::File& f, const std::string& arch, const MoeDefaults& defaults, ModelConfig* cfg);

}  // namespace flashlm
