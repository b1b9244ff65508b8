#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

// \s spelled out as the Unicode White_Space property, which is what llama.cpp and the
// Hugging Face reference use; PCRE2's own \s under UCP omits U+0085.
#define FLASHLM_WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
constexpr const char* kSpace = "[" FLASHLM_WS "]";
constexpr const char* kNotSpace = "[^" FLASHLM_WS "]";
constexpr const char* kNotSpaceLetterNumber = "[^" FLASHLM_WS "\\p{L}\\p{N}]";
#undef FLASHLM_WS

std::string s(const char* a) { return a; }

std::string gpt2_pattern() {
  return s("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?") + kNotSpaceLetterNumber + "+|" + kSpace + "+(?!" +
         kNotSpace + ")";
}

// Llama 3 and Qwen 2 differ only in how many digits form one piece.
std::string llama3_like_pattern(const char* digits) {
  return s("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|") + digits +
         "| ?" + kNotSpaceLetterNumber + "+[\\r\\n]*|" + kSpace + "*[\\r\\n]+|" + kSpace + "+(?!" + kNotSpace + ")|" +
         kSpace + "+";
}

std::vector<std::string> patterns_for(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::kGpt2: return {gpt2_pattern()};
    case PreTokenizerKind::kSmollm: return {"\\p{N}", gpt2_pattern()};
    case PreTokenizerKind::kLlama3: return {llama3_like_pattern("\\p{N}{1,3}")};
    case PreTokenizerKind::kQwen2: return {llama3_like_pattern("\\p{N}")};
    case PreTokenizerKind::kDefault: break;
  }
  return {"[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2_pattern(), "\\p{N}+", "[0-9][0-9][0-9]"};
}

}  // namespace

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

Result<PreTokenizer> PreTokenizer::create(PreTokenizerKind kind) {
  PreTokenizer p;
  p.patterns_ = patterns_for(kind);
  for (const std::string& pat : p.patterns_) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto c = std::make_unique<Compiled>();
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(), PCRE2_UTF | PCRE2_UCP, &err,
                            &err_off, nullptr);
    if (!c->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      return Status::error("pre-tokenizer regex rejected at offset " + std::to_string(err_off) + ": " +
                           reinterpret_cast<const char*>(msg) + " in " + pat);
    }
    // JIT is an optimisation only; without it pcre2_match interprets.
    (void)pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);
    p.compiled_.push_back(std::move(c));
  }
  return p;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>* pieces) const {
  if (text.empty()) return;
  std::vector<std::string_view> cur{text};
  std::vector<std::string_view> next;
  for (const auto& c : compiled_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(c->code, nullptr);
    if (!md) continue;  // out of memory: leave the pieces unsplit rather than fail
    next.clear();
    for (std::string_view piece : cur) {
      auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t emitted = 0;  // end of the last piece pushed
      size_t pos = 0;      // where the next search starts
      while (pos < piece.size()) {
        int rc = pcre2_match(c->code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;  // no match (or a resource limit): the rest is one gap piece
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (e == b) {  // our patterns never match empty; step over a character to be safe
          pos = b + utf8_seq_len(static_cast<uint8_t>(piece[b]));
          continue;
        }
        if (b > emitted) next.push_back(piece.substr(emitted, b - emitted));
        next.push_back(piece.substr(b, e - b));
        emitted = pos = e;
      }
      if (emitted < piece.size()) next.push_back(piece.substr(emitted));
    }
    pcre2_match_data_free(md);
    cur.swap(next);
  }
  pieces->insert(pieces->end(), cur.begin(), cur.end());
}

}  // namespace flashlm::tok
