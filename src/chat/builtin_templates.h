// Chat templates for model families whose GGUF files often lack tokenizer.chat_template.
// Each is the family's published template text, rendered by our Jinja interpreter.
#pragma once

#include <string>

namespace flashlm::chat {

// Null when there is no built-in template for the architecture.
const char* builtin_template(const std::string& arch);

}  // namespace flashlm::chat
