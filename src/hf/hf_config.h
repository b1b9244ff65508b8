// A Hugging Face config.json as GGUF architecture metadata: the keys llama.cpp's
// convert_hf_to_gguf.py writes for the same model, so the directory loads through the
// same model parsers as a GGUF file. Only what the engine honours is accepted; any
// other architecture, activation, bias or RoPE scaling is refused by name.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "formats/gguf.h"
#include "util/status.h"

namespace flashlm::hf {

struct HfArch {
  std::string hf_name;    // "LlamaForCausalLM"
  std::string gguf_arch;  // "llama"
  int64_t n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  bool tied_embeddings = false;
  std::vector<std::pair<std::string, gguf::Value>> keys;  // general.* and <arch>.* metadata
};

// `origin` names the file in errors.
Result<HfArch> arch_from_config(const nlohmann::json& config, const std::string& origin);

}  // namespace flashlm::hf
