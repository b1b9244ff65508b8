// Renders a model's own chat template (GGUF `tokenizer.chat_template`, Jinja source)
// the way Hugging Face transformers does: an immutable sandbox with trim_blocks and
// lstrip_blocks on, `raise_exception`, `strftime_now` and a json.dumps-style `tojson`.
// The interpreter covers the Jinja subset real templates use; anything else is a
// Status error naming the line and column, never a crash.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/ast.h"
#include "chat/evaluator.h"
#include "util/status.h"

namespace flashlm::chat {

struct ChatTemplateOptions {
  bool trim_blocks = true;    // transformers' setting; Jinja's own default is false
  bool lstrip_blocks = true;  // likewise
  RenderLimits limits;
};

class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(std::string source);
  static Result<ChatTemplate> parse(std::string source, const ChatTemplateOptions& options);

  // context: {"messages": [...], "add_generation_prompt": bool, "bos_token": "...",
  // "eos_token": "...", ...extra such as "tools" or "enable_thinking"}.
  // nlohmann::json sorts object keys; use render_ordered to keep the caller's key order
  // (visible wherever the template applies `tojson`, e.g. tool schemas).
  Result<std::string> render(const nlohmann::json& context) const;
  Result<std::string> render_ordered(const nlohmann::ordered_json& context) const;
  Result<std::string> render_value(const Value& context) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate(std::string source, std::shared_ptr<const Body> body, ChatTemplateOptions options)
      : source_(std::move(source)), body_(std::move(body)), options_(std::move(options)) {}

  std::string source_;
  std::shared_ptr<const Body> body_;  // shared: templates are immutable once parsed
  ChatTemplateOptions options_;
};

// Convenience: messages = [{"role":..., "content":...}, ...]
Result<std::string> render_chat(const std::string& source, const nlohmann::json& messages, bool add_generation_prompt,
                                const std::string& bos_token, const std::string& eos_token);

}  // namespace flashlm::chat
