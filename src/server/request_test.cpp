// Request parsing and validation: every field's happy path, defaults, and the errors a
// hostile or sloppy client can cause (types, ranges, JSON, UTF-8, nesting).
#include "server/request.h"

#include <gtest/gtest.h>

#include <string>

namespace flashlm::server {
namespace {

using nlohmann::json;

std::optional<ApiError> parse_text(const std::string& text, Endpoint ep, CompletionRequest* out) {
  json body;
  if (auto e = parse_json(text, &body)) return e;
  return parse_completion_request(body, ep, out, text);
}

CompletionRequest chat_ok(const std::string& text) {
  CompletionRequest r;
  auto e = parse_text(text, Endpoint::kChat, &r);
  EXPECT_FALSE(e.has_value()) << (e ? e->message : "");
  return r;
}

ApiError chat_err(const std::string& text) {
  CompletionRequest r;
  auto e = parse_text(text, Endpoint::kChat, &r);
  EXPECT_TRUE(e.has_value()) << "accepted: " << text;
  return e.value_or(ApiError{});
}

ApiError completion_err(const std::string& text) {
  CompletionRequest r;
  auto e = parse_text(text, Endpoint::kCompletion, &r);
  EXPECT_TRUE(e.has_value()) << "accepted: " << text;
  return e.value_or(ApiError{});
}

constexpr const char* kMsgs = R"("messages": [{"role": "user", "content": "hi"}])";

std::string with(const std::string& extra) {
  return std::string("{") + kMsgs + (extra.empty() ? "" : ", " + extra) + "}";
}

TEST(RequestTest, MinimalChatHasDefaults) {
  CompletionRequest r = chat_ok(with(""));
  EXPECT_EQ(r.endpoint, Endpoint::kChat);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["role"], "user");
  EXPECT_EQ(r.messages[0]["content"], "hi");
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_EQ(r.top_logprobs, -1);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.seed_given);
  const SamplingParams defaults;
  EXPECT_EQ(r.sampling.temperature, defaults.temperature);
  EXPECT_EQ(r.sampling.top_p, defaults.top_p);
}

TEST(RequestTest, AllChatFieldsParse) {
  CompletionRequest r = chat_ok(with(
      R"("model": "x", "max_tokens": 7, "temperature": 0, "top_p": 0.5, "seed": 42, "stop": ["a", "b"], "n": 3,
         "presence_penalty": -1.5, "frequency_penalty": 2, "logprobs": true, "top_logprobs": 4, "stream": true,
         "stream_options": {"include_usage": true}, "user": "someone", "top_k": 5, "min_p": 0.1,
         "ignore_eos": true, "unknown_field": {"deep": [1, 2, 3]}, "tools": null)"));
  EXPECT_EQ(r.model, "x");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.sampling.presence_penalty, -1.5f);
  EXPECT_EQ(r.sampling.frequency_penalty, 2.0f);
  EXPECT_EQ(r.top_logprobs, 4);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.sampling.top_k, 5);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
}

TEST(RequestTest, MaxCompletionTokensAndStopString) {
  CompletionRequest r = chat_ok(with(R"("max_completion_tokens": 9, "stop": "END")"));
  EXPECT_EQ(r.max_tokens, 9);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  // A huge max_tokens is accepted here; the handler clamps it to the context.
  EXPECT_EQ(chat_ok(with(R"("max_tokens": 9000000000000000000)")).max_tokens, 9000000000000000000LL);
}

TEST(RequestTest, LogprobsWithoutTopLogprobs) {
  EXPECT_EQ(chat_ok(with(R"("logprobs": true)")).top_logprobs, 0);
  EXPECT_EQ(chat_ok(with(R"("logprobs": false)")).top_logprobs, -1);
}

TEST(RequestTest, NullMeansAbsent) {
  CompletionRequest r = chat_ok(with(R"("max_tokens": null, "temperature": null, "stop": null, "n": null)"));
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_EQ(r.n, 1);
}

TEST(RequestTest, MessageContentForms) {
  CompletionRequest r = chat_ok(
      R"({"messages": [{"role": "developer", "content": "be brief"},
                       {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                       {"role": "assistant", "content": null, "name": "bot"},
                       {"role": "tool", "content": "42", "tool_call_id": "call_1"}]})");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_EQ(r.messages[2]["content"], "");
  EXPECT_EQ(r.messages[2]["name"], "bot");
  EXPECT_EQ(r.messages[3]["role"], "tool");
}

TEST(RequestTest, BadJson) {
  for (const char* text : {"", "{", "not json", "{\"messages\": [}", "[1,]", "{\"a\": 01}", "{'a': 1}"}) {
    ApiError e = chat_err(text);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "invalid_json") << text;
  }
}

TEST(RequestTest, InvalidUtf8InStringsIsRejected) {
  for (std::string bad : {std::string("\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),  // surrogate
                          std::string("\xc0\xaf"), std::string("\xf4\x90\x80\x80")}) {
    ApiError e = chat_err(R"({"messages": [{"role": "user", "content": ")" + bad + R"("}]})");
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "invalid_json");
    EXPECT_NE(e.message.find("UTF-8"), std::string::npos) << e.message;
  }
  // A lone surrogate escape is not a character either.
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "\ud800"}]})").code, "invalid_json");
}

TEST(RequestTest, BodyMustBeObject) {
  EXPECT_EQ(chat_err("[]").code, "invalid_type");
  EXPECT_EQ(chat_err("42").code, "invalid_type");
  EXPECT_EQ(chat_err("null").code, "invalid_type");
}

TEST(RequestTest, MessagesErrors) {
  EXPECT_EQ(chat_err("{}").param, "messages");
  EXPECT_EQ(chat_err(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_err(R"({"messages": "hi"})").code, "invalid_type");
  EXPECT_EQ(chat_err(R"({"messages": [1]})").param, "messages[0]");
  EXPECT_EQ(chat_err(R"({"messages": [{"content": "x"}]})").param, "messages[0].role");
  ApiError role = chat_err(R"({"messages": [{"role": "wizard", "content": "x"}]})");
  EXPECT_EQ(role.param, "messages[0].role");
  EXPECT_NE(role.message.find("wizard"), std::string::npos);
  EXPECT_EQ(chat_err(R"({"messages": [{"role": 5, "content": "x"}]})").code, "invalid_type");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": 5}]})").param, "messages[0].content");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param,
            "messages[0].content[0].type");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})").param,
            "messages[0].content[0].text");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x", "name": 3}]})").param, "messages[0].name");
}

TEST(RequestTest, RangeErrorsNameTheField) {
  struct Case {
    const char* extra;
    const char* param;
  };
  for (const Case& c : {Case{R"("max_tokens": -1)", "max_tokens"}, Case{R"("max_tokens": 0)", "max_tokens"},
                        Case{R"("max_completion_tokens": -5)", "max_completion_tokens"},
                        Case{R"("temperature": 2.5)", "temperature"}, Case{R"("temperature": -0.1)", "temperature"},
                        Case{R"("top_p": 1.01)", "top_p"}, Case{R"("top_p": -1)", "top_p"}, Case{R"("n": 0)", "n"},
                        Case{R"("n": 9)", "n"}, Case{R"("presence_penalty": 3)", "presence_penalty"},
                        Case{R"("frequency_penalty": -2.01)", "frequency_penalty"},
                        Case{R"("top_logprobs": 21, "logprobs": true)", "top_logprobs"},
                        Case{R"("top_logprobs": 2)", "top_logprobs"},  // needs logprobs: true
                        Case{R"("max_tokens": 18446744073709551615)", "max_tokens"}}) {
    ApiError e = chat_err(with(c.extra));
    EXPECT_EQ(e.status, 400) << c.extra;
    EXPECT_EQ(e.param, c.param) << c.extra;
    EXPECT_EQ(e.type, "invalid_request_error");
  }
}

TEST(RequestTest, TypeErrorsNameTheField) {
  struct Case {
    const char* extra;
    const char* param;
  };
  for (const Case& c :
       {Case{R"("max_tokens": "10")", "max_tokens"}, Case{R"("max_tokens": 1.5)", "max_tokens"},
        Case{R"("temperature": "hot")", "temperature"}, Case{R"("top_p": true)", "top_p"}, Case{R"("n": [2])", "n"},
        Case{R"("stream": "yes")", "stream"}, Case{R"("stop": 5)", "stop"}, Case{R"("stop": ["a", 1])", "stop[1]"},
        Case{R"("seed": "x")", "seed"}, Case{R"("seed": 1.5)", "seed"}, Case{R"("logprobs": 1)", "logprobs"},
        Case{R"("model": 7)", "model"}, Case{R"("user": {})", "user"},
        Case{R"("stream": true, "stream_options": {"include_usage": 1})", "stream_options.include_usage"},
        Case{R"("stream": true, "stream_options": 3)", "stream_options"}}) {
    ApiError e = chat_err(with(c.extra));
    EXPECT_EQ(e.status, 400) << c.extra;
    EXPECT_EQ(e.param, c.param) << c.extra;
    EXPECT_EQ(e.code, "invalid_type") << c.extra;
  }
}

TEST(RequestTest, StreamOptionsNeedStream) {
  EXPECT_EQ(chat_err(with(R"("stream_options": {"include_usage": true})")).param, "stream_options");
}

TEST(RequestTest, TooManyStops) {
  std::string stops = "[";
  for (int i = 0; i <= kMaxStops; ++i) stops += std::string(i ? "," : "") + "\"s" + std::to_string(i) + "\"";
  EXPECT_EQ(chat_err(with("\"stop\": " + stops + "]")).param, "stop");
}

TEST(RequestTest, NegativeSeedMeansRandom) {
  CompletionRequest r = chat_ok(with(R"("seed": -1)"));
  EXPECT_FALSE(r.seed_given);
  EXPECT_TRUE(is_random_seed(r.sampling.seed));
}

TEST(RequestTest, CompletionPromptForms) {
  CompletionRequest r;
  ASSERT_FALSE(parse_text(R"({"prompt": "Once upon"})", Endpoint::kCompletion, &r));
  EXPECT_EQ(r.prompt_text, "Once upon");
  EXPECT_FALSE(r.prompt_is_tokens);
  ASSERT_FALSE(parse_text(R"({"prompt": [1, 2, 3], "logprobs": 2})", Endpoint::kCompletion, &r));
  EXPECT_TRUE(r.prompt_is_tokens);
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.top_logprobs, 2);
  ASSERT_FALSE(parse_text(R"({"prompt": ["only one"]})", Endpoint::kCompletion, &r));
  EXPECT_EQ(r.prompt_text, "only one");
  ASSERT_FALSE(
      parse_text(R"({"prompt": [[5, 6]], "echo": false, "suffix": null, "best_of": 1})", Endpoint::kCompletion, &r));
  EXPECT_EQ(r.prompt_tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_FALSE(r.echo);
}

// echo as lm-evaluation-harness sends it (score the prompt: max_tokens 0 or 1, logprobs),
// streamed too; max_tokens 0 is a completions-with-echo value only.
TEST(RequestTest, CompletionEcho) {
  CompletionRequest r;
  ASSERT_FALSE(parse_text(R"({"prompt": [1, 2, 3], "echo": true, "max_tokens": 1, "logprobs": 1, "temperature": 0})",
                          Endpoint::kCompletion, &r));
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.max_tokens, 1);
  EXPECT_EQ(r.top_logprobs, 1);
  ASSERT_FALSE(parse_text(R"({"prompt": "x", "echo": true, "max_tokens": 0, "stream": true})", Endpoint::kCompletion, &r));
  EXPECT_EQ(r.max_tokens, 0);
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.top_logprobs, -1);
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})").param, "max_tokens");
}

TEST(RequestTest, CompletionErrors) {
  EXPECT_EQ(completion_err("{}").param, "prompt");
  EXPECT_EQ(completion_err(R"({"prompt": 5})").code, "invalid_type");
  EXPECT_EQ(completion_err(R"({"prompt": []})").param, "prompt");
  EXPECT_EQ(completion_err(R"({"prompt": ["a", "b"]})").param, "prompt");
  EXPECT_EQ(completion_err(R"({"prompt": [1, -2]})").param, "prompt[1]");
  EXPECT_EQ(completion_err(R"({"prompt": [1, 4294967296]})").param, "prompt[1]");
  EXPECT_EQ(completion_err(R"({"prompt": [1, "a"]})").param, "prompt[1]");
  EXPECT_EQ(completion_err(R"({"prompt": "x", "logprobs": 6})").param, "logprobs");
  EXPECT_EQ(completion_err(R"({"prompt": "x", "logprobs": true})").param, "logprobs");
  EXPECT_EQ(completion_err(R"({"prompt": "x", "echo": 1})").code, "invalid_type");
  EXPECT_EQ(completion_err(R"({"prompt": "x", "max_tokens": 0})").param, "max_tokens");  // 0 only with echo
  EXPECT_EQ(completion_err(R"({"prompt": "x", "echo": true, "max_tokens": -1})").param, "max_tokens");
  EXPECT_EQ(completion_err(R"({"prompt": "x", "suffix": "y"})").param, "suffix");
  EXPECT_EQ(completion_err(R"({"prompt": "x", "best_of": 2})").param, "best_of");
  // Chat-only fields do not apply to completions, and vice versa.
  CompletionRequest r;
  EXPECT_FALSE(
      parse_text(R"({"prompt": "x", "messages": 5, "max_completion_tokens": "q"})", Endpoint::kCompletion, &r));
}

TEST(RequestTest, TokenizeAndDetokenize) {
  TokenizeRequest t;
  ASSERT_FALSE(parse_tokenize_request(json::parse(R"({"content": "hi", "add_special": true})"), &t));
  EXPECT_EQ(t.content, "hi");
  EXPECT_TRUE(t.add_special);
  EXPECT_TRUE(t.parse_special);
  EXPECT_EQ(parse_tokenize_request(json::parse(R"({})"), &t)->param, "content");
  EXPECT_EQ(parse_tokenize_request(json::parse(R"({"content": 1})"), &t)->code, "invalid_type");
  EXPECT_EQ(parse_tokenize_request(json::parse(R"({"content": "", "add_special": "no"})"), &t)->param, "add_special");
  // vLLM's names, which lm-evaluation-harness's remote tokenizer sends.
  ASSERT_FALSE(parse_tokenize_request(json::parse(R"({"prompt": "yo", "add_special_tokens": true})"), &t));
  EXPECT_EQ(t.content, "yo");
  EXPECT_TRUE(t.add_special);
  EXPECT_EQ(parse_tokenize_request(json::parse(R"({"prompt": 3})"), &t)->param, "prompt");
  DetokenizeRequest d;
  ASSERT_FALSE(parse_detokenize_request(json::parse(R"({"tokens": [1, 2]})"), &d));
  EXPECT_EQ(d.tokens, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(parse_detokenize_request(json::parse(R"({"tokens": "1"})"), &d)->param, "tokens");
  EXPECT_EQ(parse_detokenize_request(json::parse(R"({"tokens": [0.5]})"), &d)->param, "tokens[0]");
  EXPECT_EQ(parse_detokenize_request(json::parse(R"([1])"), &d)->code, "invalid_type");
}

TEST(RequestTest, DeepNestingIsHandledWithoutRecursion) {
  // 100k levels: the parser and the value's destructor are iterative in nlohmann::json.
  std::string deep = R"({"messages": [{"role": "user", "content": "x"}], "extra": )";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  CompletionRequest r = chat_ok(deep);
  EXPECT_EQ(r.messages.size(), 1u);
  // Unbalanced: an error, not a crash.
  EXPECT_EQ(chat_err(std::string(100000, '[')).code, "invalid_json");
}

TEST(RequestTest, Utf8Validator) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xb0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xfe"));
}

TEST(RequestTest, ErrorBodyShape) {
  ApiError e = ApiError::invalid("bad \xff value", "top_p", "invalid_value");
  json j = json::parse(error_body(e));
  EXPECT_EQ(j["error"]["message"], "bad \xef\xbf\xbd value");  // U+FFFD, never a throw
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "top_p");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  json k = json::parse(error_body(ApiError::of(500, "server_error", "boom")));
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

TEST(RequestTest, LogitBiasParsedSortedAndChecked) {
  CompletionRequest r = chat_ok(R"({"messages": [{"role": "user", "content": "x"}],
                                    "logit_bias": {"50": -100, "7": 2.5, "1000": 100}})");
  ASSERT_EQ(r.sampling.logit_bias.size(), 3u);
  EXPECT_EQ(r.sampling.logit_bias[0], (std::pair<int32_t, float>{7, 2.5f}));
  EXPECT_EQ(r.sampling.logit_bias[2].first, 1000);
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"a": 1}})").param,
            "logit_bias");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"3": 101}})").param,
            "logit_bias.3");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": [1]})").param, "logit_bias");
}

TEST(RequestTest, StructuredOutputCompiledAtParseTime) {
  EXPECT_EQ(chat_ok(R"({"messages": [{"role": "user", "content": "x"}]})").grammar, nullptr);
  EXPECT_EQ(chat_ok(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "text"}})").grammar,
            nullptr);
  EXPECT_NE(chat_ok(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})")
                .grammar,
            nullptr);
  EXPECT_NE(chat_ok(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema",
                        "json_schema": {"name": "a", "strict": true, "schema": {"type": "object",
                        "properties": {"z": {"type": "string"}, "a": {"type": "integer"}}, "required": ["z", "a"]}}}})")
                .grammar,
            nullptr);
  EXPECT_NE(chat_ok(R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= [0-9]+"})").grammar, nullptr);
  EXPECT_NE(chat_ok(R"({"messages": [{"role": "user", "content": "x"}], "structured_outputs": {"regex": "a+"}})").grammar,
            nullptr);
  auto e = chat_err(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema",
                        "json_schema": {"name": "a", "schema": {"type": "number", "multipleOf": 3}}}})");
  EXPECT_EQ(e.param, "response_format.json_schema.schema");
  EXPECT_NE(e.message.find("multipleOf"), std::string::npos) << e.message;
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= x"})").param, "grammar");
  EXPECT_EQ(chat_err(R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= \"a\"",
                         "response_format": {"type": "json_object"}})").param,
            "grammar");
}

TEST(RequestTest, UnimplementedOpenAiFieldsAreRefusedByName) {
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  EXPECT_EQ(chat_err("{" + m + R"(, "tools": "notalist"})").code, "invalid_type");
  EXPECT_EQ(chat_err("{" + m + R"(, "modalities": ["text", "audio"]})").param, "modalities");
  EXPECT_EQ(chat_err("{" + m + R"(, "store": true})").param, "store");
  EXPECT_EQ(chat_err("{" + m + R"(, "reasoning_effort": "low"})").param, "reasoning_effort");
  // Defaults and empty values pass; unknown extension fields are ignored.
  chat_ok("{" + m + R"(, "tools": [], "tool_choice": "none", "modalities": ["text"], "store": false,
                      "parallel_tool_calls": true, "some_extension": 1})");
}

}  // namespace
}  // namespace flashlm::server
