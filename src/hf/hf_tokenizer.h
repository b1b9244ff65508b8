// A Hugging Face directory's tokenizer as GGUF tokenizer metadata: tokenizer.json read
// by tokenizer/tokenizer_json.h into a Vocab, written as the tokenizer.ggml.* keys
// llama.cpp reads (model, pre-tokenizer name, tokens, types, merges, special ids,
// add-bos/eos), plus tokenizer.chat_template from chat_template.jinja or
// tokenizer_config.json's "chat_template". Byte-level BPE only so far. The keys carry
// the vocabulary, not Hugging Face's matching rules (tokenizer_json.h's hf_rules), so the
// GGUF tokenizes as llama.cpp does: on the SmolLM2 golden, 1 string of 159 differs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "formats/gguf.h"
#include "util/status.h"

namespace flashlm::hf {

Result<std::vector<std::pair<std::string, gguf::Value>>> tokenizer_keys(const std::string& dir);

}  // namespace flashlm::hf
