// Unit tests over small hand-built vocabularies (no model files needed).
#include <gtest/gtest.h>

#include <set>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

std::string enc_byte(uint8_t b) {
  std::string s;
  append_utf8(gpt2_byte_to_cpt(b), &s);
  return s;
}

TEST(Unicode, Gpt2ByteMapIsABijectionOntoPrintableCodePoints) {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    uint32_t c = gpt2_byte_to_cpt(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second) << b;
    uint8_t back = 0;
    ASSERT_TRUE(gpt2_cpt_to_byte(c, &back));
    EXPECT_EQ(back, b);
  }
  EXPECT_EQ(gpt2_byte_to_cpt(' '), 0x120u);   // "Ġ"
  EXPECT_EQ(gpt2_byte_to_cpt('\n'), 0x10Au);  // "Ċ"
  EXPECT_EQ(gpt2_byte_to_cpt('a'), static_cast<uint32_t>('a'));
  uint8_t b = 0;
  EXPECT_FALSE(gpt2_cpt_to_byte(' ', &b));
  EXPECT_FALSE(gpt2_cpt_to_byte(0x4E2D, &b));
}

TEST(Unicode, Utf8ValidationIsStrict) {
  auto len = [](std::string_view s) { return utf8_valid_len(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  EXPECT_EQ(len("a"), 1);
  EXPECT_EQ(len("\xC3\xA9"), 2);
  EXPECT_EQ(len("\xE2\x82\xAC"), 3);
  EXPECT_EQ(len("\xF0\x9F\x98\x80"), 4);
  EXPECT_EQ(len("\xF0\x9F\x98"), -1);  // incomplete
  EXPECT_EQ(len("\xC0\xAF"), 0);       // overlong
  EXPECT_EQ(len("\xED\xA0\x80"), 0);   // surrogate
  EXPECT_EQ(len("\xF4\x90\x80\x80"), 0);  // above U+10FFFF
  EXPECT_EQ(len("\x80"), 0);
  EXPECT_EQ(sanitize_utf8("ok"), "ok");
  EXPECT_EQ(sanitize_utf8("a\xFF" "b\xC3"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

TEST(PreTokenizer, AllKindsCompileAndSplitSimpleText) {
  for (PreTokenizerKind k : {PreTokenizerKind::kDefault, PreTokenizerKind::kGpt2, PreTokenizerKind::kSmollm,
                             PreTokenizerKind::kLlama3, PreTokenizerKind::kQwen2}) {
    Result<PreTokenizer> p = PreTokenizer::create(k);
    ASSERT_TRUE(p.is_ok()) << p.message();
    std::vector<std::string_view> pieces;
    p->split("Hello world", &pieces);
    EXPECT_EQ(pieces, (std::vector<std::string_view>{"Hello", " world"}));
  }
  Result<PreTokenizer> llama3 = PreTokenizer::create(PreTokenizerKind::kLlama3);
  std::vector<std::string_view> pieces;
  llama3->split("I'M 12345  ok", &pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"I", "'M", " ", "123", "45", " ", " ok"}));
}

// Byte-level BPE vocabulary: all 256 byte symbols plus the merges given.
Vocab bpe_vocab(const std::vector<std::string>& merges) {
  Vocab v;
  v.kind = VocabKind::kBpe;
  v.pre = PreTokenizerKind::kGpt2;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(enc_byte(static_cast<uint8_t>(b)));
  for (const std::string& m : merges) {
    std::string t = m;
    t.erase(t.find(' '), 1);
    v.tokens.push_back(t);
  }
  v.tokens.push_back("<|end|>");
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types.back() = TokenType::kControl;
  v.merges = merges;
  v.eos = v.n_vocab() - 1;
  return v;
}

std::vector<std::string> texts(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.token_text(id));
  return out;
}

TEST(BpeTokenizer, MergesApplyInRankOrder) {
  // "l l" ranks before "e l": "ell" -> e + ll.
  Result<Tokenizer> a = Tokenizer::from_vocab(bpe_vocab({"h e", "l l", "e l", "he ll", "hell o"}));
  ASSERT_TRUE(a.is_ok()) << a.message();
  EXPECT_EQ(texts(*a, a->encode("ell", false, false)), (std::vector<std::string>{"e", "ll"}));
  EXPECT_EQ(texts(*a, a->encode("hello", false, false)), (std::vector<std::string>{"hello"}));
  // Reversed priority: "e l" first -> el + l.
  Result<Tokenizer> b = Tokenizer::from_vocab(bpe_vocab({"e l", "l l"}));
  ASSERT_TRUE(b.is_ok()) << b.message();
  EXPECT_EQ(texts(*b, b->encode("ell", false, false)), (std::vector<std::string>{"el", "l"}));
  // Equal-rank ties go leftmost: "lll" -> ll + l.
  EXPECT_EQ(texts(*a, a->encode("lll", false, false)), (std::vector<std::string>{"ll", "l"}));
}

TEST(BpeTokenizer, SpacesAreByteEncodedAndDecodeRoundTrips) {
  Result<Tokenizer> t = Tokenizer::from_vocab(bpe_vocab({"\xC4\xA0 w", "\xC4\xA0w o"}));
  ASSERT_TRUE(t.is_ok()) << t.message();
  std::vector<int32_t> ids = t->encode("a wo\n\xE4\xB8\xAD", false, false);
  EXPECT_EQ(texts(*t, ids), (std::vector<std::string>{"a", "\xC4\xA0wo", "\xC4\x8A", enc_byte(0xE4), enc_byte(0xB8),
                                                      enc_byte(0xAD)}));
  EXPECT_EQ(t->decode(ids), "a wo\n\xE4\xB8\xAD");
  // Invalid UTF-8 reaches BPE as U+FFFD, never as a failure.
  EXPECT_EQ(t->decode(t->encode("x\xFFy", false, false)), "x\xEF\xBF\xBDy");
}

TEST(BpeTokenizer, ControlTokensParseOnlyWhenAskedAndHideInDecode) {
  Result<Tokenizer> t = Tokenizer::from_vocab(bpe_vocab({"q q"}));
  ASSERT_TRUE(t.is_ok()) << t.message();
  const int32_t end = t->n_vocab() - 1;
  std::vector<int32_t> parsed = t->encode("a<|end|>", false, true);
  EXPECT_EQ(parsed, (std::vector<int32_t>{'a', end}));
  std::vector<int32_t> literal = t->encode("a<|end|>", false, false);
  EXPECT_GT(literal.size(), 2u);
  EXPECT_EQ(t->decode(parsed), "a");
  EXPECT_EQ(t->decode(parsed, true), "a<|end|>");
  EXPECT_TRUE(t->is_eog(end));  // by text, and as eos
  EXPECT_FALSE(t->is_eog('a'));
}

TEST(BpeTokenizer, CleanSpacesTightensPunctuationOnDecode) {
  Vocab v = bpe_vocab({"q q"});
  v.clean_spaces = true;
  Result<Tokenizer> t = Tokenizer::from_vocab(std::move(v));
  ASSERT_TRUE(t.is_ok()) << t.message();
  EXPECT_EQ(t->decode(t->encode("a , b . it 's ' q ' don 't", false, false)), "a, b. it's'q'don 't");
}

// SentencePiece-style vocabulary with byte fallback.
Vocab spm_vocab() {
  Vocab v;
  v.kind = VocabKind::kSpm;
  auto add = [&](std::string text, float score, TokenType type) {
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0, TokenType::kByte);
  add("\xE2\x96\x81", -1, TokenType::kNormal);          // ▁
  add("h", -2, TokenType::kNormal);
  add("i", -2, TokenType::kNormal);
  add("\xE2\x96\x81h", -3, TokenType::kNormal);         // ▁h
  add("hi", -1.5f, TokenType::kNormal);
  add("\xE2\x96\x81hi", -0.5f, TokenType::kNormal);     // ▁hi
  add("<turn>", 0, TokenType::kControl);
  add("\n", 0, TokenType::kUserDefined);
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

TEST(SpmTokenizer, ScoreMergesSpacePrefixAndByteFallback) {
  Result<Tokenizer> t = Tokenizer::from_vocab(spm_vocab());
  ASSERT_TRUE(t.is_ok()) << t.message();
  // "hi" merges first (score -1.5 beats "▁h" at -3), then "▁"+"hi" -> "▁hi".
  EXPECT_EQ(texts(*t, t->encode("hi", true, false)), (std::vector<std::string>{"<s>", "\xE2\x96\x81hi"}));
  // é is not a token: its two bytes fall back to <0xC3><0xA9>.
  EXPECT_EQ(texts(*t, t->encode("hi \xC3\xA9", false, false)),
            (std::vector<std::string>{"\xE2\x96\x81hi", "\xE2\x96\x81", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t->decode(t->encode("hi \xC3\xA9", false, false)), "hi \xC3\xA9");  // prefix space dropped again
  // As in llama.cpp, a leading (hidden) BOS consumes the strip, so the space stays.
  EXPECT_EQ(t->decode(t->encode("hi", true, false)), " hi");
  // A text fragment after a special gets its own space prefix; user-defined "\n" is
  // split out even without parse_special, control "<turn>" only with it.
  EXPECT_EQ(texts(*t, t->encode("<turn>hi\nhi", false, true)),
            (std::vector<std::string>{"<turn>", "\xE2\x96\x81hi", "\n", "\xE2\x96\x81hi"}));
  std::vector<int32_t> literal = t->encode("<turn>", false, false);
  EXPECT_EQ(t->token_text(literal[0]), "\xE2\x96\x81");
  EXPECT_EQ(t->token_text(literal[1]), "<0x3C>");
}

TEST(StreamDecoder, HoldsBackPartialSequencesAndReplacesInvalidBytes) {
  Result<Tokenizer> t = Tokenizer::from_vocab(spm_vocab());
  ASSERT_TRUE(t.is_ok()) << t.message();
  auto byte = [&](int b) { return static_cast<int32_t>(3 + b); };
  StreamDecoder sd(*t);
  EXPECT_EQ(sd.push(*t->find_token("\xE2\x96\x81hi")), "hi");  // leading space stripped once
  EXPECT_EQ(sd.push(byte(0xF0)), "");
  EXPECT_EQ(sd.push(byte(0x9F)), "");
  EXPECT_EQ(sd.push(byte(0x98)), "");
  EXPECT_EQ(sd.push(byte(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sd.push(byte(0xFF)), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.push(byte(0xC3)), "");
  EXPECT_EQ(sd.push(byte('x')), "\xEF\xBF\xBDx");  // broken sequence
  EXPECT_EQ(sd.push(1), "");                       // control token hidden
  EXPECT_EQ(sd.push(byte(0xE2)), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");           // incomplete at end
  EXPECT_EQ(sd.flush(), "");
}

TEST(Vocab, FinalizeRejectsInconsistentData) {
  Vocab v = spm_vocab();
  v.scores.pop_back();
  EXPECT_FALSE(vocab_finalize(v).is_ok());
  v = spm_vocab();
  v.bos = 100000;
  Status st = vocab_finalize(v);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("bos_token_id"), std::string::npos) << st.message();
  v = spm_vocab();
  v.tokens[3] = "<0xZZ>";
  EXPECT_FALSE(vocab_finalize(v).is_ok());
  Vocab empty;
  EXPECT_FALSE(Tokenizer::from_vocab(empty).is_ok());
  EXPECT_FALSE(pre_tokenizer_from_name("no-such-pre").is_ok());
}

TEST(Tokenizer, OutOfRangeIdsDecodeToNothing) {
  Result<Tokenizer> t = Tokenizer::from_vocab(spm_vocab());
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->token_to_piece(-5), "");
  EXPECT_EQ(t->token_to_piece(t->n_vocab()), "");
  EXPECT_EQ(t->decode({-1, 999999}), "");
  EXPECT_EQ(t->token_text(-1), "");
  EXPECT_FALSE(t->is_eog(-1));
}

}  // namespace
}  // namespace flashlm::tok
