// Language features of the chat-template interpreter, one construct at a time:
// jinja2-rendered snippets (tests/golden/chat/features.json, made by
// scripts/reference/make_chat_golden.py) plus hand-worked expectations, error
// positions and resource limits.
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/lexer.h"

namespace flashlm::chat {
namespace {

Result<std::string> render(const std::string& src, const nlohmann::ordered_json& ctx = nlohmann::ordered_json::object(),
                           ChatTemplateOptions opt = {}) {
  Result<ChatTemplate> t = ChatTemplate::parse(src, opt);
  if (!t) return t.status();
  return t->render_ordered(ctx);
}

std::string ok(const std::string& src, const nlohmann::ordered_json& ctx = nlohmann::ordered_json::object()) {
  Result<std::string> r = render(src, ctx);
  EXPECT_TRUE(r.is_ok()) << src << "\n" << r.message();
  return r.is_ok() ? r.value() : "<error: " + r.message() + ">";
}

std::string err(const std::string& src, const nlohmann::ordered_json& ctx = nlohmann::ordered_json::object(),
                ChatTemplateOptions opt = {}) {
  Result<std::string> r = render(src, ctx, opt);
  EXPECT_FALSE(r.is_ok()) << src << " rendered: " << (r.is_ok() ? r.value() : "");
  return r.message();
}

TEST(ChatFeatures, MatchJinja2Goldens) {
  std::ifstream f(std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/chat/features.json");
  ASSERT_TRUE(f) << "missing tests/golden/chat/features.json";
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::ordered_json golden = nlohmann::ordered_json::parse(ss.str());
  int n = 0;
  for (const auto& c : golden["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>() + " (" + c["mode"].get<std::string>() + ")");
    ChatTemplateOptions opt;
    opt.trim_blocks = opt.lstrip_blocks = c["mode"] == "hf";
    Result<std::string> out = render(c["template"].get<std::string>(), c["context"], opt);
    if (c.contains("expected")) {
      ASSERT_TRUE(out.is_ok()) << out.message();
      EXPECT_EQ(out.value(), c["expected"].get<std::string>());
    } else {
      EXPECT_FALSE(out.is_ok()) << "jinja2 raised " << c["error"] << " but we rendered: " << out.value();
      if (c["error_type"] == "TemplateError") {
        EXPECT_NE(out.message().find(c["error"].get<std::string>()), std::string::npos) << out.message();
      }
    }
    ++n;
  }
  EXPECT_GT(n, 100);
}

TEST(ChatFeatures, WhitespaceDefaultsFollowTransformers) {
  const std::string src = "<ul>\n  {% for x in xs %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>";
  nlohmann::ordered_json ctx = {{"xs", {1, 2}}};
  EXPECT_EQ(ok(src, ctx), "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>");
  ChatTemplateOptions plain;
  plain.trim_blocks = plain.lstrip_blocks = false;
  Result<std::string> r = render(src, ctx, plain);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r.value(), "<ul>\n  \n  <li>1</li>\n  \n  <li>2</li>\n  \n</ul>");
  EXPECT_EQ(ok("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(ok("{% if true %}\nx{% endif %}\n"), "x");  // trailing newline of the source dropped
}

TEST(ChatFeatures, HandWorkedExpressions) {
  EXPECT_EQ(ok("{{ 7 // 2 }},{{ -7 // 2 }},{{ -7 % 3 }},{{ 7 / 2 }},{{ 2 ** 3 }}"), "3,-4,2,3.5,8");
  EXPECT_EQ(ok("{{ 'ab' ~ 1 ~ none }}"), "ab1None");
  EXPECT_EQ(ok("{{ 'abc'[::-1] }}{{ [1,2,3][1:] }}"), "cba[2, 3]");
  EXPECT_EQ(ok("{{ 'x' if 1 > 2 else 'y' }}"), "y");
  EXPECT_EQ(ok("{{ 1 in [1] and 2 not in [1] }}"), "True");
  EXPECT_EQ(ok("{{ {'a': 'b'}|tojson }}|{{ {'a': [1]}|tojson(indent=2) }}"), "{\"a\": \"b\"}|{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(ok("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.0 }} {{ 1e-5 }}"), "0.30000000000000004 1e+16 1.0 1e-05");
  EXPECT_EQ(ok("{{ [1, 'a', none]|string }}"), "[1, 'a', None]");
  EXPECT_EQ(ok("{{ \"it's\" }} {{ ['it\\'s'] }}"), "it's [\"it's\"]");
}

TEST(ChatFeatures, LoopAndNamespace) {
  EXPECT_EQ(ok("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}",
               {{"xs", {"a", "b", "c"}}}),
            "1a,2b,3c");
  EXPECT_EQ(ok("{% set ns = namespace(i=0) %}{% for x in range(4) %}{% set ns.i = ns.i + x %}{% endfor %}{{ ns.i }}"), "6");
  EXPECT_EQ(ok("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(ok("{% for m in ms[::-1] %}{{ m }}{% endfor %}", {{"ms", {1, 2, 3}}}), "321");
}

TEST(ChatFeatures, MacrosAndCalls) {
  EXPECT_EQ(ok("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}"),
            "Hi A! Hi B?");
  EXPECT_NE(err("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}").find("takes 1 arguments"), std::string::npos);
}

TEST(ChatFeatures, GenerationBlockRendersBody) {
  // transformers' {% generation %} marks assistant tokens; for rendering it is transparent.
  EXPECT_EQ(ok("a{% generation %}b{{ 1 }}{% endgeneration %}c"), "ab1c");
}

TEST(ChatFeatures, StrftimeNowUsesConfiguredClock) {
  ChatTemplateOptions opt;
  opt.limits.now = std::time_t{1727352000};  // 2024-09-26 12:00 UTC
  std::tm tm{};
  localtime_r(&*opt.limits.now, &tm);
  char expected[64];
  std::strftime(expected, sizeof expected, "%d %b %Y", &tm);
  Result<std::string> r = render("{{ strftime_now('%d %b %Y') }}", nlohmann::ordered_json::object(), opt);
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r.value(), expected);
}

TEST(ChatFeatures, UnorderedJsonContextWorks) {
  Result<ChatTemplate> t = ChatTemplate::parse("{{ messages[0].content }}|{{ extra }}");
  ASSERT_TRUE(t.is_ok());
  nlohmann::json ctx = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"extra", 3}};
  Result<std::string> r = t->render(ctx);
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r.value(), "hi|3");
  EXPECT_FALSE(t->render(nlohmann::json::array()).is_ok());  // context must be an object
}

TEST(ChatErrors, RaiseExceptionIsACleanStatus) {
  std::string m = err("line one\n{% if true %}{{ raise_exception('Roles must alternate') }}{% endif %}");
  EXPECT_EQ(m, "the model's chat template rejected the messages: Roles must alternate");
}

TEST(ChatErrors, SyntaxErrorsNameLineAndColumn) {
  EXPECT_NE(err("ok\n  {{ x ").find("line 2, column 3"), std::string::npos);
  EXPECT_NE(err("{% if x %}\nno end").find("endif"), std::string::npos);
  EXPECT_NE(err("{% for x in y %}").find("endfor"), std::string::npos);
  EXPECT_NE(err("{# open").find("comment"), std::string::npos);
  EXPECT_NE(err("{{ 'abc }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(err("a\n{% endif %}").find("line 2"), std::string::npos);
  EXPECT_NE(err("{% include 'x' %}").find("unsupported tag 'include'"), std::string::npos);
  EXPECT_NE(err("{{ 1 +* 2 }}").find("line 1, column 7"), std::string::npos);
  EXPECT_NE(err("{{ a ? b }}").find("unexpected character"), std::string::npos);
  EXPECT_NE(err("{% for x in xs recursive %}{% endfor %}").find("recursive"), std::string::npos);
}

TEST(ChatErrors, RuntimeErrorsNameLineAndColumn) {
  std::string m = err("a\nb {{ 1|nosuchfilter }}");
  EXPECT_NE(m.find("unknown filter 'nosuchfilter'"), std::string::npos) << m;
  EXPECT_NE(m.find("line 2"), std::string::npos) << m;
  EXPECT_NE(err("{{ x is nosuchtest }}").find("unknown test"), std::string::npos);
  EXPECT_NE(err("{{ missing.attr }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(err("{{ d.a.b }}", {{"d", nlohmann::ordered_json::object()}}).find("has no attribute 'a'"), std::string::npos);
  EXPECT_NE(err("{{ 'a' + 1 }}").find("unsupported operand"), std::string::npos);
  EXPECT_NE(err("{{ 1 % 0 }}").find("by zero"), std::string::npos);
  EXPECT_NE(err("{{ 9223372036854775807 + 1 }}").find("overflow"), std::string::npos);
  EXPECT_NE(err("{{ [1][0:1:0] }}").find("step cannot be zero"), std::string::npos);
  EXPECT_NE(err("{{ 'x'.append(1) }}").find("has no attribute"), std::string::npos);
}

TEST(ChatLimits, DeepMacroRecursionIsAnError) {
  std::string m = err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(m.find("recursion"), std::string::npos) << m;
}

TEST(ChatLimits, DeeplyNestedExpressionsAreRejectedAtParse) {
  std::string parens(5000, '(');
  EXPECT_NE(err("{{ " + parens + "1" + std::string(5000, ')') + " }}").find("nested too deeply"), std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_NE(err(chain + " }}").find("nested too deeply"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  EXPECT_NE(err(blocks).find("nested too deeply"), std::string::npos);
  std::string nots = "{{ ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_NE(err(nots + "1 }}").find("nested too deeply"), std::string::npos);
}

TEST(ChatLimits, OutputAndWorkAreBounded) {
  ChatTemplateOptions opt;
  opt.limits.max_output_bytes = 1 << 16;
  EXPECT_NE(err("{% for i in range(100) %}{% for j in range(100) %}xxxxxxxxxx{% endfor %}{% endfor %}", {}, opt).find("output exceeds"), std::string::npos);
  EXPECT_NE(err("{% set s = 'x' %}{% for i in range(64) %}{% set s = s ~ s %}{% endfor %}", {}, opt).find("limit"),
            std::string::npos);
  EXPECT_NE(err("{{ 'x' * 100000000000 }}", {}, opt).find("limit"), std::string::npos);
  EXPECT_NE(err("{{ range(100000000000)|length }}", {}, opt).find("too large"), std::string::npos);
  ChatTemplateOptions steps;
  steps.limits.max_steps = 10000;
  EXPECT_NE(err("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", {}, steps).find("step limit"),
            std::string::npos);
}

TEST(ChatLexer, TokenizesTagsAndStrings) {
  std::vector<Token> t = tokenize("a {{ x|f('}}') }} b", LexOptions{});
  ASSERT_EQ(t.size(), 11u);
  EXPECT_EQ(t[0].type, TokenType::kText);
  EXPECT_EQ(t[0].value, "a ");
  EXPECT_EQ(t[1].type, TokenType::kVarBegin);
  EXPECT_EQ(t[6].type, TokenType::kString);
  EXPECT_EQ(t[6].value, "}}");
  EXPECT_EQ(t[8].type, TokenType::kVarEnd);
  EXPECT_EQ(t[9].value, " b");
  EXPECT_EQ(t[10].type, TokenType::kEof);
  // A '}}' inside an open dict literal does not close the tag.
  EXPECT_EQ(ok("{{ {'a': {'b': 1}} }}"), "{'a': {'b': 1}}");
}

}  // namespace
}  // namespace flashlm::chat

namespace flashlm::chat {
namespace {

// Mutated real templates (byte flips, truncations, spliced tag fragments) must parse or
// fail cleanly and render or fail cleanly: never crash or hang. Meaningful under ASan.
TEST(ChatRobustness, MutatedTemplatesNeverCrash) {
  std::ifstream f(std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/chat/templates/qwen3.jinja");
  ASSERT_TRUE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string base = ss.str();
  nlohmann::ordered_json ctx = {
      {"messages", {{{"role", "system"}, {"content", "s"}}, {{"role", "user"}, {"content", "u"}},
                    {{"role", "assistant"}, {"content", "<think>r</think>a"}}}},
      {"tools", {{{"name", "t"}}}},
      {"add_generation_prompt", true}};
  const char* fragments[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "'", "(", ")", "[", "]", "|", ".", " if ", " for "};
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto rnd = [&](uint64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<size_t>(state % n);
  };
  int parsed = 0;
  ChatTemplateOptions opt;
  opt.limits.max_steps = 200000;
  for (int i = 0; i < 1500; ++i) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rnd(4));
    for (int k = 0; k < edits; ++k) {
      size_t pos = rnd(s.size());
      switch (rnd(3)) {
        case 0: s[pos] = static_cast<char>(rnd(256)); break;
        case 1: s.resize(pos); break;
        default: s.insert(pos, fragments[rnd(std::size(fragments))]); break;
      }
      if (s.empty()) s = "x";
    }
    Result<ChatTemplate> t = ChatTemplate::parse(s, opt);
    if (!t) {
      EXPECT_FALSE(t.message().empty());
      continue;
    }
    ++parsed;
    Result<std::string> r = t->render_ordered(ctx);
    if (!r) {
      EXPECT_FALSE(r.message().empty());
    }
  }
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace flashlm::chat
