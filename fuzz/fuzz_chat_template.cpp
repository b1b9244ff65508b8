// libFuzzer target: arbitrary bytes are a Jinja chat template, rendered against a fixed
// conversation (system, user, assistant with tool calls, tool result) and a tool list.
// Parse and render must end in a value or a Status, within the render limits: the step
// and output limits are lowered here so each input runs in milliseconds; the nesting
// limit stays at its default, since that is what guards the stack.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi <b>there</b> \u00e9\u4e2d"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
      {"role": "tool", "content": "{\"temp\": 21}", "name": "get_weather"},
      {"role": "assistant", "content": "It is 21 degrees.", "reasoning_content": "look it up"},
      {"role": "user", "content": [{"type": "text", "text": "thanks"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "add_generation_prompt": true,
    "enable_thinking": false,
    "bos_token": "<s>",
    "eos_token": "</s>"
  })");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flashlm::chat::ChatTemplateOptions opts;
  opts.limits.max_steps = 200'000;
  opts.limits.max_output_bytes = size_t{1} << 20;
  opts.limits.now = 1700000000;  // strftime_now must not depend on the clock
  std::string source(reinterpret_cast<const char*>(data), size);
  flashlm::Result<flashlm::chat::ChatTemplate> t = flashlm::chat::ChatTemplate::parse(std::move(source), opts);
  if (!t) return 0;
  flashlm::Result<std::string> out = t->render_ordered(context());
  if (out) (void)out->size();
  return 0;
}
