// libFuzzer target: the structured-output parsers. The input's first byte picks what the
// rest is up to a NUL (GBNF, a JSON schema, or a regular expression); after the NUL, at
// most 256 bytes of text are fed to a matcher of the compiled grammar in uneven chunks,
// with a token mask over a small fixed vocabulary at each step. Every path must end in a
// grammar or an error, and matching must stay within its bounds: no crash, no hang.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/token_trie.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flashlm::grammar;
  if (size < 1) return 0;
  const std::string all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = all.find('\0');
  const std::string spec = all.substr(0, nul);
  const std::string text = nul == std::string::npos ? std::string() : all.substr(nul + 1, 256);

  std::string gbnf;
  switch (data[0] % 3) {
    case 0:
      gbnf = spec;
      break;
    case 1: {
      auto schema = nlohmann::ordered_json::parse(spec, nullptr, false);
      if (schema.is_discarded()) return 0;
      auto r = json_schema_to_gbnf(schema);
      if (!r) return 0;
      gbnf = *r;
      break;
    }
    default: {
      auto r = regex_to_gbnf(spec);
      if (!r) return 0;
      gbnf = *r;
      break;
    }
  }
  auto g = parse_gbnf(gbnf);
  if (!g) return 0;
  static const TokenTrie trie(std::vector<std::string>{"", "{", "}", "\"", "a", "ab", "\"a\": ", "1", "-", " ", "\n",
                                                       "\xC3", "\xA9", "\xE2\x82\xAC", "true", ",", "[", "]", "\\"});
  Matcher m(std::make_shared<const Grammar>(std::move(g.value())));
  std::vector<uint8_t> mask;
  size_t i = 0, chunk = 1;
  while (i < text.size() && !m.failed()) {
    const std::string piece = text.substr(i, chunk);
    const bool could = m.can_accept(piece);
    if (m.accept(piece) != could) __builtin_trap();  // the check and the step must agree
    m.fill_mask(trie, &mask);
    (void)m.accepting();
    (void)m.can_continue();
    i += chunk;
    chunk = chunk % 4 + 1;
  }
  return 0;
}
