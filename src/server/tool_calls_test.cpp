#include "server/tool_calls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "chat/chat_template.h"
#include "grammar/matcher.h"
#include "server/request.h"

namespace flashlm::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

const char* kWeather = R"({"type": "function", "function": {"name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}})";
const char* kTime = R"({"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
    "properties": {"zone": {"type": "string"}}, "required": ["zone"], "additionalProperties": false}}})";

CompletionRequest parse_ok(const std::string& body) {
  json j = json::parse(body);
  CompletionRequest r;
  std::optional<ApiError> e = parse_completion_request(j, Endpoint::kChat, &r, body);
  EXPECT_FALSE(e.has_value()) << (e ? e->message : "") << "\n" << body;
  return r;
}

ApiError parse_err(const std::string& body) {
  json j = json::parse(body);
  CompletionRequest r;
  std::optional<ApiError> e = parse_completion_request(j, Endpoint::kChat, &r, body);
  EXPECT_TRUE(e.has_value()) << "accepted: " << body;
  return e.value_or(ApiError{});
}

std::string with_tools(const std::string& extra = "") {
  return std::string(R"({"messages": [{"role": "user", "content": "weather in Paris?"}], "tools": [)") + kWeather +
         ", " + kTime + "]" + extra + "}";
}

bool grammar_matches(const std::string& gbnf, const std::string& text) {
  Result<grammar::Grammar> g = grammar::parse_gbnf(gbnf);
  EXPECT_TRUE(g.is_ok()) << g.message() << "\n" << gbnf;
  if (!g) return false;
  grammar::Matcher m(std::make_shared<const grammar::Grammar>(std::move(g.value())));
  return m.accept(text) && m.accepting();
}

TEST(ToolCalls, ParsesToolsAndChoice) {
  CompletionRequest r = parse_ok(with_tools(R"(, "tool_choice": {"type": "function", "function": {"name": "get_time"}},
                                              "parallel_tool_calls": false)"));
  ASSERT_EQ(r.tools.tools.size(), 2u);
  EXPECT_EQ(r.tools.choice, ToolChoice::kNamed);
  EXPECT_EQ(r.tools.named, "get_time");
  EXPECT_FALSE(r.tools.parallel);
  // The function object keeps the written key order (the template shows it to the model).
  EXPECT_EQ(r.tools.tools[0].function.begin().key(), "name");
  EXPECT_EQ(parse_ok(with_tools(R"(, "tool_choice": "required")")).tools.choice, ToolChoice::kRequired);
  EXPECT_FALSE(parse_ok(with_tools(R"(, "tool_choice": "none")")).tools.active());
}

TEST(ToolCalls, MalformedToolsAreNamed400s) {
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  EXPECT_EQ(parse_err("{" + m + R"(, "tools": "notalist"})").code, "invalid_type");
  EXPECT_EQ(parse_err("{" + m + R"(, "tools": [{"type": "retrieval"}]})").param, "tools[0].type");
  EXPECT_EQ(parse_err("{" + m + R"(, "tools": [{"type": "function"}]})").param, "tools[0].function");
  EXPECT_EQ(parse_err("{" + m + R"(, "tools": [{"type": "function", "function": {"name": "a b"}}]})").param,
            "tools[0].function.name");
  EXPECT_EQ(parse_err("{" + m + R"(, "tools": [{"type": "function", "function": {"name": "f"}},
                                                {"type": "function", "function": {"name": "f"}}]})")
                .param,
            "tools[1].function.name");
  EXPECT_EQ(parse_err("{" + m + R"(, "tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]})")
                .param,
            "tools[0].function.parameters");
  EXPECT_EQ(parse_err("{" + m + R"(, "tool_choice": "required"})").param, "tool_choice");
  EXPECT_EQ(parse_err("{" + m + R"(, "tool_choice": "sometimes"})").param, "tool_choice");
  EXPECT_EQ(parse_err(with_tools(R"(, "tool_choice": {"type": "function", "function": {"name": "nope"}})")).param,
            "tool_choice.function.name");
  EXPECT_EQ(parse_err(with_tools(R"(, "parallel_tool_calls": "yes")")).param, "parallel_tool_calls");
  EXPECT_EQ(parse_err(with_tools(R"(, "response_format": {"type": "json_object"})")).param, "response_format");
}

TEST(ToolCalls, StrictToolsRefuseWhatTheGrammarCannotEnforce) {
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  const std::string params = R"("parameters": {"type": "object", "properties": {"n": {"type": "integer",
                                "minimum": 1}}, "required": ["n"]})";
  // Not strict: the shape is enforced, the bound is the tool's to check.
  parse_ok("{" + m + R"(, "tools": [{"type": "function", "function": {"name": "f", )" + params + "}}]}");
  ApiError e = parse_err("{" + m + R"(, "tools": [{"type": "function", "function": {"name": "f", "strict": true, )" +
                         params + "}}]}");
  EXPECT_EQ(e.param, "tools[0].function.parameters");
  EXPECT_NE(e.message.find("minimum"), std::string::npos) << e.message;
}

TEST(ToolCalls, HistoryMessagesKeepCallsAndResults) {
  CompletionRequest r = parse_ok(R"({"messages": [{"role": "user", "content": "x"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]})");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1]["tool_calls"][0]["function"]["arguments"], "{\"city\": \"Paris\"}");
  EXPECT_EQ(r.messages[2]["tool_call_id"], "call_1");
  EXPECT_EQ(parse_err(R"({"messages": [{"role": "tool", "content": "x"}]})").param, "messages[0].tool_call_id");
  EXPECT_EQ(parse_err(R"({"messages": [{"role": "user", "content": "x", "tool_calls": [{"id": "a",
                          "function": {"name": "f"}}]}]})")
                .param,
            "messages[0].tool_calls");
  EXPECT_EQ(parse_err(R"({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name":
                          "f"}}]}]})")
                .param,
            "messages[0].tool_calls[0].id");
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A real template and the case tool_call_round_trip that Python jinja2 rendered from it
// (tests/golden/chat/<family>.json).
struct RoundTripGolden {
  std::string source;
  std::string expected;
  ojson tools;
};

RoundTripGolden round_trip_golden(const std::string& family) {
  const std::string dir = std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/chat/";
  const ojson golden = ojson::parse(read(dir + family + ".json"));
  RoundTripGolden g;
  g.source = read(dir + "templates/" + family + ".jinja");
  for (const ojson& c : golden["cases"]) {
    if (c["name"] == "tool_call_round_trip") {
      g.expected = c["expected"].get<std::string>();
      g.tools = c["context"]["tools"];
    }
  }
  EXPECT_FALSE(g.expected.empty()) << family << ": no tool_call_round_trip case";
  return g;
}

// An API request's conversation through the format's path and the template, as the
// server renders it.
Result<std::string> render_through(const std::string& source, const std::string& request, ToolFormat format) {
  const CompletionRequest r = parse_ok(request);
  const ChatInput in = tool_chat_input(r.messages, r.tools, format);
  Result<chat::ChatTemplate> t = chat::ChatTemplate::parse(source);
  if (!t) return t.status();
  return t->render_ordered({{"messages", in.messages}, {"add_generation_prompt", true}, {"bos_token", "<s>"},
                            {"eos_token", "</s>"}, {"tools", in.tools}});
}

// The API's tool round trip (OpenAI message shapes) through the Hermes path and Qwen 2.5's
// real template gives the text Python jinja2 rendered from the same conversation.
TEST(ToolCalls, HermesRoundTripMatchesTheReferenceRendering) {
  const RoundTripGolden ref = round_trip_golden("qwen2_5");
  ASSERT_EQ(tool_format_of(ref.source), ToolFormat::kHermes);
  Result<std::string> text = render_through(ref.source, std::string(R"({"messages": [
      {"role": "system", "content": "You are a terse assistant."},
      {"role": "user", "content": "What's the weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"}],
      "tools": )") + ref.tools.dump() + "}", ToolFormat::kHermes);
  ASSERT_TRUE(text.is_ok()) << text.message();
  EXPECT_EQ(*text, ref.expected);
}

// Llama 3.1's real template: the same round trip.
TEST(ToolCalls, Llama3RoundTripMatchesTheReferenceRendering) {
  const RoundTripGolden ref = round_trip_golden("llama3");
  ASSERT_EQ(tool_format_of(ref.source), ToolFormat::kLlama3);
  Result<std::string> text = render_through(ref.source, std::string(R"({"messages": [
      {"role": "user", "content": "What's the weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21}"}],
      "tools": )") + ref.tools.dump() + "}", ToolFormat::kLlama3);
  ASSERT_TRUE(text.is_ok()) << text.message();
  EXPECT_EQ(*text, ref.expected);
  // The reply format: one object with "parameters", grammar-enforced when required.
  Result<std::string> g = tool_call_gbnf(parse_ok(with_tools(R"(, "tool_choice": "required")")).tools,
                                         ToolFormat::kLlama3);
  ASSERT_TRUE(g.is_ok()) << g.message();
  EXPECT_TRUE(grammar_matches(*g, R"({"name": "get_time", "parameters": {"zone": "UTC"}})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"name": "get_time", "arguments": {"zone": "UTC"}})"));
  const ToolOutput o = parse_tool_output("<|python_tag|>{\"name\": \"get_time\", \"parameters\": {\"zone\": "
                                         "\"UTC\"}}",
                                         parse_ok(with_tools()).tools, ToolFormat::kLlama3);
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_FALSE(o.content.has_value());
}

// Mistral Nemo's real template: the same round trip; an OpenAI-style call id is mapped to
// the 9 alphanumerics the template demands.
TEST(ToolCalls, MistralRoundTripMatchesTheReferenceRendering) {
  const RoundTripGolden ref = round_trip_golden("mistral_nemo");
  ASSERT_EQ(tool_format_of(ref.source), ToolFormat::kMistral);
  auto request = [&](const std::string& id) {
    return std::string(R"({"messages": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": ")") + id + R"(", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": ")" + id + R"(", "content": "21 C"},
        {"role": "assistant", "content": "2+2 = 4."},
        {"role": "user", "content": "  And in French, s'il vous pla\u00eet? \"quotes\" & <tags>  "}],
        "tools": )" + ref.tools.dump() + "}";
  };
  Result<std::string> text = render_through(ref.source, request("abcDEF123"), ToolFormat::kMistral);
  ASSERT_TRUE(text.is_ok()) << text.message();
  EXPECT_EQ(*text, ref.expected);
  // The template refuses ids that are not 9 long.
  Result<std::string> mapped = render_through(ref.source, request("call_Xy7QpLmN0aBcDeFgHiJkLmNo"), ToolFormat::kMistral);
  ASSERT_TRUE(mapped.is_ok()) << mapped.message();
  // The reply format, grammar-enforced when required, and parsed with or without the marker.
  const ToolRequest t = parse_ok(with_tools(R"(, "tool_choice": "required")")).tools;
  Result<std::string> g = tool_call_gbnf(t, ToolFormat::kMistral);
  ASSERT_TRUE(g.is_ok()) << g.message();
  EXPECT_TRUE(grammar_matches(*g, R"([TOOL_CALLS][{"name": "get_time", "arguments": {"zone": "UTC"}}, )"
                                  R"({"name": "get_weather", "arguments": {"city": "Rome"}}])"));
  EXPECT_FALSE(grammar_matches(*g, R"([{"name": "get_time", "arguments": {}}])"));
  for (const char* reply : {R"([TOOL_CALLS][{"name": "get_time", "arguments": {"zone": "UTC"}}])",
                            R"([{"name": "get_time", "arguments": {"zone": "UTC"}, "id": "abcDEF123"}])"}) {
    const ToolOutput o = parse_tool_output(reply, t, ToolFormat::kMistral);
    ASSERT_EQ(o.calls.size(), 1u) << reply;
    EXPECT_EQ(o.calls[0].name, "get_time");
  }
}

TEST(ToolCalls, GenericFormatDescribesToolsAndRewritesHistory) {
  CompletionRequest r = parse_ok(std::string(R"({"messages": [{"role": "user", "content": "x"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "21"}, {"role": "tool", "tool_call_id": "c2", "content": "22"}],
      "tools": [)") + kWeather + "]}");
  const ChatInput in = tool_chat_input(r.messages, r.tools, ToolFormat::kGeneric);
  EXPECT_TRUE(in.tools.is_null());
  ASSERT_EQ(in.messages.size(), 4u);  // system prompt, user, assistant, one user turn of results
  EXPECT_EQ(in.messages[0]["role"], "system");
  EXPECT_NE(in.messages[0]["content"].get<std::string>().find("get_weather"), std::string::npos);
  EXPECT_EQ(json::parse(in.messages[2]["content"].get<std::string>()),
            json::parse(R"({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})"));
  EXPECT_EQ(in.messages[3]["role"], "user");
  EXPECT_NE(in.messages[3]["content"].get<std::string>().find("\"c2\""), std::string::npos);
}

TEST(ToolCalls, GenericGrammarAllowsOnlyValidReplies) {
  CompletionRequest r = parse_ok(with_tools());
  Result<std::string> g = tool_call_gbnf(r.tools, ToolFormat::kGeneric);
  ASSERT_TRUE(g.is_ok()) << g.message();
  EXPECT_TRUE(grammar_matches(*g, R"({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})"));
  EXPECT_TRUE(grammar_matches(*g, R"({"response": "It is sunny."})"));
  EXPECT_TRUE(grammar_matches(*g, R"({"tool_calls": [{"name": "get_time", "arguments": {"zone": "UTC"}}, )"
                                  R"({"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}]})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"tool_calls": [{"name": "get_weather", "arguments": {}}]})"));  // city
  EXPECT_FALSE(grammar_matches(*g, R"({"tool_calls": [{"name": "launch", "arguments": {}}]})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"tool_calls": []})"));
  // Named, no parallel calls: only one call of that function.
  r = parse_ok(with_tools(R"(, "tool_choice": {"type": "function", "function": {"name": "get_time"}},
                           "parallel_tool_calls": false)"));
  g = tool_call_gbnf(r.tools, ToolFormat::kGeneric);
  ASSERT_TRUE(g.is_ok()) << g.message();
  EXPECT_TRUE(grammar_matches(*g, R"({"tool_calls": [{"name": "get_time", "arguments": {"zone": "UTC"}}]})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"response": "hi"})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"tool_calls": [{"name": "get_weather", "arguments": {"city": "P"}}]})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"tool_calls": [{"name": "get_time", "arguments": {"zone": "UTC"}},
                                      {"name": "get_time", "arguments": {"zone": "CET"}}]})"));
}

TEST(ToolCalls, HermesGrammarWrapsCallsInTags) {
  CompletionRequest r = parse_ok(with_tools(R"(, "tool_choice": "required")"));
  Result<std::string> g = tool_call_gbnf(r.tools, ToolFormat::kHermes);
  ASSERT_TRUE(g.is_ok()) << g.message();
  EXPECT_TRUE(grammar_matches(*g, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}\n"
                                  "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                                  "{\"city\": \"Rome\"}}\n</tool_call>"));
  EXPECT_FALSE(grammar_matches(*g, "Sure! <tool_call>"));
  // auto leaves a Hermes model free: it writes its own tags.
  EXPECT_EQ(tool_call_gbnf(parse_ok(with_tools()).tools, ToolFormat::kHermes).value(), "");
}

TEST(ToolCalls, NestedDefinitionsOfSeveralToolsDoNotCollide) {
  const std::string body = R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required", "tools": [
    {"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {
      "p": {"$ref": "#/$defs/Item"}}, "required": ["p"], "$defs": {"Item": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "b", "parameters": {"type": "object", "properties": {
      "p": {"$ref": "#/$defs/Item"}}, "required": ["p"], "$defs": {"Item": {"type": "string"}}}}}]})";
  CompletionRequest r = parse_ok(body);
  Result<std::string> g = tool_call_gbnf(r.tools, ToolFormat::kGeneric);
  ASSERT_TRUE(g.is_ok()) << g.message();
  EXPECT_TRUE(grammar_matches(*g, R"({"tool_calls": [{"name": "a", "arguments": {"p": 3}}]})"));
  EXPECT_TRUE(grammar_matches(*g, R"({"tool_calls": [{"name": "b", "arguments": {"p": "x"}}]})"));
  EXPECT_FALSE(grammar_matches(*g, R"({"tool_calls": [{"name": "a", "arguments": {"p": "x"}}]})"));
}

TEST(ToolCalls, RepliesParseIntoContentAndCalls) {
  const ToolRequest t = parse_ok(with_tools()).tools;
  ToolOutput o = parse_tool_output(R"({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})", t,
                                   ToolFormat::kGeneric);
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_FALSE(o.content.has_value());
  EXPECT_EQ(json::parse(o.calls[0].arguments), json::parse(R"({"city": "Paris"})"));
  o = parse_tool_output(R"({"response": "Sunny."})", t, ToolFormat::kGeneric);
  EXPECT_TRUE(o.calls.empty());
  EXPECT_EQ(o.content.value_or("?"), "Sunny.");
  o = parse_tool_output(R"({"tool_calls": [{"name": "get_we)", t, ToolFormat::kGeneric);  // cut short
  EXPECT_TRUE(o.calls.empty());
  EXPECT_EQ(o.content.value_or("?"), R"({"tool_calls": [{"name": "get_we)");

  o = parse_tool_output("Let me check.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}\n"
                        "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": "
                        "\\\"Oslo\\\"}\"}\n</tool_call>",
                        t, ToolFormat::kHermes);
  ASSERT_EQ(o.calls.size(), 2u);
  EXPECT_EQ(o.content.value_or("?"), "Let me check.");
  EXPECT_EQ(o.calls[1].name, "get_weather");
  EXPECT_EQ(json::parse(o.calls[1].arguments), json::parse(R"({"city": "Oslo"})"));
  // A block naming no offered tool stays text.
  o = parse_tool_output("<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>", t, ToolFormat::kHermes);
  EXPECT_TRUE(o.calls.empty());
  EXPECT_EQ(o.content.value_or("?"), "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>");
  // Without parallel calls only the first is kept.
  ToolRequest single = t;
  single.parallel = false;
  o = parse_tool_output(R"({"tool_calls": [{"name": "get_time", "arguments": {"zone": "A"}},
                                           {"name": "get_time", "arguments": {"zone": "B"}}]})",
                        single, ToolFormat::kGeneric);
  EXPECT_EQ(o.calls.size(), 1u);
}

}  // namespace
}  // namespace flashlm::server
