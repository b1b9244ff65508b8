#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/token_trie.h"

namespace flashlm::grammar {
namespace {

using json = nlohmann::ordered_json;

std::shared_ptr<const Grammar> compile(const std::string& gbnf) {
  Result<Grammar> g = parse_gbnf(gbnf);
  EXPECT_TRUE(g.is_ok()) << g.message() << "\n" << gbnf;
  if (!g) return nullptr;
  return std::make_shared<const Grammar>(std::move(g.value()));
}

// True when the whole text is a complete match, fed in chunks of `chunk` bytes (splitting
// multi-byte characters across chunks on purpose).
bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text, size_t chunk = 1) {
  Matcher m(g);
  for (size_t i = 0; i < text.size(); i += chunk) {
    if (!m.accept(std::string_view(text).substr(i, chunk))) return false;
  }
  return m.accepting();
}

// Grammars in the shape of those llama.cpp ships (grammars/arithmetic, list, json, c).
const char* kArithmetic = R"~(
root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
)~";
const char* kList = R"~(
root ::= item+
# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
)~";
const char* kCLike = R"~(
root ::= (declaration)*
declaration ::= dataType identifier "(" parameter? ")" "{" statement* "}"
dataType  ::= "int" ws | "float" ws | "char" ws
identifier ::= [a-zA-Z_] [a-zA-Z_0-9]*
parameter ::= dataType identifier
statement ::=
    ( dataType identifier ws "=" ws expression ";" ) |
    ( identifier ws "=" ws expression ";" ) |
    ( identifier ws "(" argList? ")" ";" ) |
    ( "return" ws expression ";" ) |
    ( "while" "(" condition ")" "{" statement* "}" ) |
    ( "for" "(" forInit ";" ws condition ";" ws forUpdate ")" "{" statement* "}" ) |
    ( "if" "(" condition ")" "{" statement* "}" ("else" "{" statement* "}")? ) |
    ( singleLineComment ) |
    ( multiLineComment )
forInit ::= dataType identifier ws "=" ws expression | identifier ws "=" ws expression
forUpdate ::= identifier ws "=" ws expression
condition ::= expression relationOperator expression
relationOperator ::= ("<=" | "<" | "==" | "!=" | ">=" | ">")
expression ::= term (("+" | "-") term)*
term ::= factor(("*" | "/") factor)*
factor ::= identifier | number | unaryTerm | funcCall | parenExpression
unaryTerm ::= "-" factor
funcCall ::= identifier "(" argList? ")"
parenExpression ::= "(" ws expression ws ")"
argList ::= expression ("," ws expression)*
number ::= [0-9]+
singleLineComment ::= "//" [^\n]* "\n"
multiLineComment ::= "/*" ( [^*] | ("*" [^/]) )* "*/"
ws ::= ([ \t\n]+)
)~";

TEST(GrammarTest, ShippedStyleGrammarsParseAndMatch) {
  auto arith = compile(kArithmetic);
  ASSERT_NE(arith, nullptr);
  EXPECT_TRUE(matches(arith, "1+2*(y-3) = x\n"));
  EXPECT_TRUE(matches(arith, "a=b\n(c) = 4\n"));
  EXPECT_FALSE(matches(arith, "x = +\n"));
  EXPECT_FALSE(matches(arith, "x = 1+2\n"));  // one term after =
  EXPECT_FALSE(matches(arith, "x = 1"));  // missing newline: not complete
  auto list = compile(kList);
  ASSERT_NE(list, nullptr);
  EXPECT_TRUE(matches(list, "- milk\n- 2 eggs\n"));
  EXPECT_FALSE(matches(list, "- \n"));
  EXPECT_FALSE(matches(list, "* milk\n"));
  auto c = compile(kCLike);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(matches(c, "int main(){return 0;}"));
  EXPECT_TRUE(matches(c, "int f(int x){while(x<10){x = x+1;}return x;}"));
  EXPECT_FALSE(matches(c, "int main(){return 0}"));
  auto js = compile(json_object_gbnf());
  ASSERT_NE(js, nullptr);
  EXPECT_TRUE(matches(js, R"~({"a": [1, 2.5, -3e2, true, null, {"b": "c\"\u00e9"}]})~"));
  EXPECT_FALSE(matches(js, R"~({"a": [1, 2,]})~"));
  EXPECT_FALSE(matches(js, R"~({"a" 1})~"));
}

TEST(GrammarTest, RepetitionCounts) {
  auto g = compile(R"~(root ::= "a"{2,4} "b"{3} "c"{1,} "d"?)~");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(matches(g, "aabbbc"));
  EXPECT_TRUE(matches(g, "aaaabbbcccd"));
  EXPECT_FALSE(matches(g, "abbbc"));
  EXPECT_FALSE(matches(g, "aaaaabbbc"));
  EXPECT_FALSE(matches(g, "aabbc"));
  EXPECT_FALSE(matches(g, "aabbb"));
}

TEST(GrammarTest, Utf8SplitAcrossTokens) {
  auto g = compile(R"~(root ::= "é" [α-ω]+ "😀")~");
  ASSERT_NE(g, nullptr);
  const std::string text = "éαβγ😀";
  for (size_t chunk : {1, 2, 3, 5, 100}) EXPECT_TRUE(matches(g, text, chunk)) << chunk;
  EXPECT_FALSE(matches(g, "éab😀"));
  Matcher m(g);
  EXPECT_FALSE(m.accept("\xC3\xA8"));  // è is not é
  EXPECT_TRUE(m.accept("\xC3"));        // could still become é
  EXPECT_FALSE(m.accepting());          // not inside a character
  EXPECT_FALSE(m.accept("\x41"));       // not a continuation byte
  // A lone lead byte is offered only if some character it can start fits: E0 starts at
  // U+0800 (shorter forms are overlong), so it cannot begin an ASCII 'k'.
  Matcher k(compile(R"~(root ::= "k" | [\u0700-\u0900])~"));
  EXPECT_TRUE(k.can_accept("\xE0"));
  Matcher k2(compile(R"~(root ::= "k" | [\u0100-\u07FF])~"));
  EXPECT_FALSE(k2.can_accept("\xE0"));
  EXPECT_FALSE(k2.can_accept("\xC0"));  // overlong lead, never valid
  EXPECT_TRUE(k2.can_accept("\xC4"));
}

TEST(GrammarTest, ErrorsNameTheProblem) {
  auto err = [](const std::string& text) { return parse_gbnf(text).message(); };
  EXPECT_NE(err("root ::= foo").find("'foo' is used but never defined"), std::string::npos);
  EXPECT_NE(err("root ::= root \"a\"").find("left-recursive"), std::string::npos);
  EXPECT_NE(err("root ::= a\na ::= \"x\"? b\nb ::= a \"x\"").find("left-recursive"), std::string::npos);
  EXPECT_NE(err("root ::= \"a\"{5000}").find("above"), std::string::npos);
  EXPECT_NE(err("root ::= [b-a]").find("reversed"), std::string::npos);
  EXPECT_NE(err("root ::= \"abc").find("unterminated"), std::string::npos);
  EXPECT_NE(err("root ::= (\"a\"").find("')'"), std::string::npos);
  EXPECT_NE(err("x ::= \"a\"").find("no rule named 'root'"), std::string::npos);
  EXPECT_NE(err("root ::= \"a\"\nroot ::= \"b\"").find("defined twice"), std::string::npos);
  EXPECT_NE(err("root ::= *").find("nothing before"), std::string::npos);
  EXPECT_NE(err("root ::= \"" + std::string(1100, 'a') + "\"{1000}").find("too large"), std::string::npos);
  // Right recursion is fine.
  EXPECT_TRUE(parse_gbnf("root ::= \"a\" root | \"b\"").is_ok());
}

TEST(GrammarTest, FinishedGrammarOnlyAllowsTheEnd) {
  auto g = compile(R"~(root ::= "yes" | "no")~");
  Matcher m(g);
  EXPECT_TRUE(m.can_continue());
  EXPECT_FALSE(m.accepting());
  ASSERT_TRUE(m.accept("ye"));
  ASSERT_TRUE(m.accept("s"));
  EXPECT_TRUE(m.accepting());
  EXPECT_FALSE(m.can_continue());
  EXPECT_FALSE(m.can_accept("s"));
}

// The trie walk must agree with checking every token on its own.
TEST(GrammarTest, MaskEqualsPerTokenCheck) {
  std::vector<std::string> pieces = {"", "{", "\"", "\"a", "\"ab", "}", " ", "  ", "\n", "a", "\": ", "1", "12",
                                     "-", "true", "tr", "null", ",", "[", "]", "\xC3", "\xA9", "\xC3\xA9", "\"\xC3",
                                     "\xE2\x82", "\xAC\"", "e", "E+", ".5", "\xFF", "\\", "\\n", "\\u00", "e9"};
  std::mt19937 rng(7);
  TokenTrie trie(pieces);
  auto g = compile(json_object_gbnf());
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  std::vector<uint8_t> mask;
  for (int step = 0; step < 60; ++step) {
    m.fill_mask(trie, &mask);
    std::vector<int32_t> allowed;
    for (size_t id = 0; id < pieces.size(); ++id) {
      const bool ok = !pieces[id].empty() && m.can_accept(pieces[id]);
      EXPECT_EQ(mask[id] != 0, ok) << "token '" << pieces[id] << "' at step " << step;
      if (ok) allowed.push_back(static_cast<int32_t>(id));
    }
    if (allowed.empty()) break;
    ASSERT_TRUE(m.accept(pieces[allowed[rng() % allowed.size()]]));
  }
}

TEST(GrammarTest, StackBoundStopsExplosions) {
  // Every prefix of a's parses many ways; dedup keeps it small, and the bounds hold anyway.
  auto g = compile(R"~(root ::= ("a" | "a" "a" | "a" "a" "a")* "b")~");
  Matcher m(g);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(m.accept("a"));
  EXPECT_TRUE(m.accept("b"));
  EXPECT_TRUE(m.accepting());
}

std::shared_ptr<const Grammar> from_schema(const json& schema) {
  Result<std::string> text = json_schema_to_gbnf(schema);
  EXPECT_TRUE(text.is_ok()) << text.message();
  if (!text) return nullptr;
  return compile(*text);
}

TEST(JsonSchemaTest, ObjectsWithRequiredAndOptional) {
  auto g = from_schema(json::parse(R"~({
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array",
      "items": {"type": "string"}, "minItems": 1, "maxItems": 2}},
    "required": ["name", "tags"], "additionalProperties": false})~"));
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(matches(g, R"~({"name": "Ann", "age": 31, "tags": ["x"]})~"));
  EXPECT_TRUE(matches(g, R"~({"name": "Ann", "tags": ["x", "y"]})~"));
  EXPECT_FALSE(matches(g, R"~({"name": "Ann", "tags": []})~"));
  EXPECT_FALSE(matches(g, R"~({"name": "Ann", "tags": ["x", "y", "z"]})~"));
  EXPECT_FALSE(matches(g, R"~({"age": 31, "tags": ["x"]})~"));
  EXPECT_FALSE(matches(g, R"~({"name": "Ann", "age": 3.5, "tags": ["x"]})~"));
  auto none_required = from_schema(json::parse(R"~({"type": "object", "properties": {"a": {"type": "boolean"},
    "b": {"type": "null"}}})~"));
  ASSERT_NE(none_required, nullptr);
  for (const char* ok : {"{}", R"~({"a": true})~", R"~({"b": null})~", R"~({"a": false, "b": null})~"}) {
    EXPECT_TRUE(matches(none_required, ok)) << ok;
  }
  EXPECT_FALSE(matches(none_required, R"~({"b": null, "a": true})~"));  // order is the schema's
}

TEST(JsonSchemaTest, EnumsConstRefsAndAnyOf) {
  auto g = from_schema(json::parse(R"~({
    "$defs": {"node": {"type": "object", "properties": {"v": {"enum": ["red", 2, null]},
      "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v", "kids"]}},
    "anyOf": [{"$ref": "#/$defs/node"}, {"const": "leaf"}]})~"));
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(matches(g, R"~({"v": "red", "kids": [{"v": 2, "kids": []}, {"v": null, "kids": []}]})~"));
  EXPECT_TRUE(matches(g, R"~("leaf")~"));
  EXPECT_FALSE(matches(g, R"~({"v": "blue", "kids": []})~"));
  EXPECT_FALSE(matches(g, R"~("tree")~"));
}

TEST(JsonSchemaTest, StringPatternsAndLengths) {
  auto g = from_schema(json::parse(R"~({"type": "object", "properties": {
    "zip": {"type": "string", "pattern": "^[0-9]{5}(-[0-9]{4})?$"},
    "code": {"type": "string", "minLength": 2, "maxLength": 3},
    "q": {"type": "string", "pattern": "^a\"b\\\\c$"}}, "required": ["zip", "code", "q"]})~"));
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(matches(g, R"~({"zip": "12345-6789", "code": "ab", "q": "a\"b\\c"})~"));
  EXPECT_TRUE(matches(g, R"~({"zip": "12345", "code": "abc", "q": "a\"b\\c"})~"));
  EXPECT_FALSE(matches(g, R"~({"zip": "1234", "code": "ab", "q": "a\"b\\c"})~"));
  EXPECT_FALSE(matches(g, R"~({"zip": "12345", "code": "a", "q": "a\"b\\c"})~"));
  EXPECT_FALSE(matches(g, R"~({"zip": "12345", "code": "abcd", "q": "a\"b\\c"})~"));
}

TEST(JsonSchemaTest, UnsupportedAndInvalidSchemasSayWhy) {
  auto err = [](const char* s) { return json_schema_to_gbnf(json::parse(s)).message(); };
  EXPECT_NE(err(R"~({"type": "integer", "minimum": 3})~").find("'minimum' is not supported"), std::string::npos);
  EXPECT_NE(err(R"~({"type": "object", "properties": {}, "required": ["x"]})~").find("'x' is not in"),
            std::string::npos);
  EXPECT_NE(err(R"~({"$ref": "#/$defs/missing"})~").find("does not name"), std::string::npos);
  EXPECT_NE(err(R"~({"type": "strin"})~").find("unknown type 'strin'"), std::string::npos);
  EXPECT_NE(err(R"~({"type": "string", "pattern": "(?=x)"})~").find("lookaround"), std::string::npos);
  EXPECT_NE(err(R"~({"enum": []})~").find("empty"), std::string::npos);
}

TEST(RegexTest, AnchoredAndUnanchored) {
  auto g = compile(*regex_to_gbnf(R"~(^\d{3}-[a-z]+(x|yz)*$)~"));
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(matches(g, "123-abcxyzx"));
  EXPECT_FALSE(matches(g, "12-abc"));
  EXPECT_FALSE(matches(g, "123-ABC"));
  auto loose = compile(*regex_to_gbnf("cat"));
  ASSERT_NE(loose, nullptr);
  EXPECT_TRUE(matches(loose, "a cat sat"));
  EXPECT_FALSE(matches(loose, "a dog sat"));
}

}  // namespace
}  // namespace flashlm::grammar
