#include "chat/chat_template.h"

#include <exception>
#include <string_view>

#include "chat/builtins.h"
#include "chat/lexer.h"
#include "chat/parser.h"

namespace flashlm::chat {

namespace {

Status to_status(const TemplateError& e) {
  // The template's own raise_exception is about the messages, not the template: said once,
  // without a line number that means nothing to whoever sent them.
  constexpr std::string_view kRaised = "template raised an exception: ";
  if (std::string_view(e.message).substr(0, kRaised.size()) == kRaised) {
    return Status::error("the model's chat template rejected the messages: " + e.message.substr(kRaised.size()));
  }
  std::string where = e.line > 0 ? "line " + std::to_string(e.line) + ", column " + std::to_string(e.column) + ": " : "";
  return Status::error("chat template: " + where + e.message);
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string source) { return parse(std::move(source), ChatTemplateOptions{}); }

Result<ChatTemplate> ChatTemplate::parse(std::string source, const ChatTemplateOptions& options) {
  try {
    LexOptions lex;
    lex.trim_blocks = options.trim_blocks;
    lex.lstrip_blocks = options.lstrip_blocks;
    auto body = std::make_shared<const Body>(parse_template(tokenize(source, lex)));
    return ChatTemplate(std::move(source), std::move(body), options);
  } catch (const TemplateError& e) {
    return to_status(e);
  } catch (const std::exception& e) {  // allocation failure and the like
    return Status::error(std::string("chat template: ") + e.what());
  }
}

Result<std::string> ChatTemplate::render_value(const Value& context) const {
  if (context.is_none()) return render_value(Value(ValueDict{}));  // null: no variables
  if (!context.is_dict()) return Status::error("chat template: the render context must be a JSON object");
  try {
    Evaluator ev(options_.limits, make_globals());
    return ev.render(*body_, context);
  } catch (const TemplateError& e) {
    return to_status(e);
  } catch (const std::exception& e) {
    return Status::error(std::string("chat template: ") + e.what());
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  return render_value(Value::from_json(context));
}

Result<std::string> ChatTemplate::render_ordered(const nlohmann::ordered_json& context) const {
  return render_value(Value::from_json(context));
}

Result<std::string> render_chat(const std::string& source, const nlohmann::json& messages, bool add_generation_prompt,
                                const std::string& bos_token, const std::string& eos_token) {
  Result<ChatTemplate> tmpl = ChatTemplate::parse(source);
  if (!tmpl) return tmpl.status();
  nlohmann::json context = {{"messages", messages},
                            {"add_generation_prompt", add_generation_prompt},
                            {"bos_token", bos_token},
                            {"eos_token", eos_token}};
  return tmpl->render(context);
}

}  // namespace flashlm::chat
