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
// "llama, gemma3, qwen2, qwen3"
std::string supported_archs();

// Builds the config of any supported file, or an error naming what is supported.
Result<ModelConfig> parse_model_config(const gguf::File& f);

// Family parsers (one file each).
Result<ModelConfig> parse_llama(const gguf::File& f);
Result<ModelConfig> parse_qwen2(const gguf::File& f);
Result<ModelConfig> parse_qwen3(const gguf::File& f);
Result<ModelConfig> parse_gemma3(const gguf::File& f);

// Hyper-parameters every family stores under "<arch>.*": sizes, heads, eps, RoPE.
Status parse_common(const gguf::File& f, const std::string& arch, ModelConfig* cfg);

}  // namespace flashlm
