// BPE from a Hugging Face tokenizer.json (tokenizer_json.h): the real models' files as
// transformers converts them from our GGUFs (models/hf/, made by setup with
// scripts/hf_tokenizer_from_gguf.py) against Hugging Face tokenizers' ids
// (tests/golden/tokenizer/hf_*.json, scripts/reference/make_hf_tokenizer_golden.py), and
// small hand-made files for each rule and each refusal.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "tokenizer/golden_test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

using nlohmann::json;

const std::string kRoot = FLASHLM_SOURCE_DIR;
const std::string kSpace = "\xE2\x96\x81";  // U+2581

using testing_util::bytes_of;
using testing_util::printable;

// ---- the real models --------------------------------------------------------------

struct HfCase {
  const char* dir;     // under models/hf/
  const char* golden;  // under tests/golden/tokenizer/
};

class HfTokenizerGolden : public ::testing::TestWithParam<HfCase> {
 protected:
  void SetUp() override {
    const std::string path = kRoot + "/models/hf/" + GetParam().dir + "/tokenizer.json";
    if (!std::filesystem::exists(path)) {
      GTEST_SKIP() << "MODEL DIRECTORY MISSING, Hugging Face tokenizer golden test SKIPPED: " << path
                   << " (scripts/setup.sh makes it with scripts/hf_tokenizer_from_gguf.py)";
    }
    std::ifstream f(kRoot + "/tests/golden/tokenizer/" + GetParam().golden);
    golden_ = json::parse(f, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(golden_.is_object()) << "cannot read golden " << GetParam().golden;
    // Loaded once per model for the whole binary (the 262k-token file is slow to read
    // under sanitizers).
    static std::map<std::string, std::shared_ptr<Tokenizer>> loaded;
    std::shared_ptr<Tokenizer>& slot = loaded[path];
    if (!slot) {
      Result<Vocab> v = vocab_from_tokenizer_json_file(path);
      ASSERT_TRUE(v) << v.status().message();
      Result<Tokenizer> t = Tokenizer::from_vocab(std::move(v).value());
      ASSERT_TRUE(t) << t.status().message();
      slot = std::make_shared<Tokenizer>(std::move(t).value());
    }
    tok_ = slot;
  }
  json golden_;
  std::shared_ptr<Tokenizer> tok_;
};

TEST_P(HfTokenizerGolden, EncodeMatchesTokenizers) {
  const char* keys[4] = {"ids_noadd_noparse", "ids_noadd_parse", "ids_add_noparse", "ids_add_parse"};
  int checked = 0, failed = 0;
  for (const json& c : golden_["cases"]) {
    const std::string text = bytes_of(c["text"]);
    for (int k = 0; k < 4; ++k) {
      const bool add = k >= 2, parse = (k % 2) == 1;
      const std::vector<int32_t> want = c[keys[k]].get<std::vector<int32_t>>();
      const std::vector<int32_t> got = tok_->encode(text, add, parse);
      EXPECT_EQ(got, want) << "text: \"" << printable(text) << "\" " << keys[k];
      failed += got != want;
      ++checked;
    }
  }
  EXPECT_GE(checked, 600);
  std::printf("%s: %d encodings compared, %d differ\n", GetParam().golden, checked, failed);
}

TEST_P(HfTokenizerGolden, DecodeMatchesTokenizers) {
  int compared = 0;
  for (const json& c : golden_["cases"]) {
    const std::string text = bytes_of(c["text"]);
    const std::vector<int32_t> ids = c["ids_add_parse"].get<std::vector<int32_t>>();
    for (const auto& [key, render] : {std::pair<const char*, bool>{"detok_hidden", false}, {"detok_rendered", true}}) {
      const std::string want = bytes_of(c[key]);
      // tokenizers turns invalid UTF-8 into U+FFFD; flashlm's decode gives the raw bytes.
      if (want.find("\xEF\xBF\xBD") != std::string::npos && text.find("\xEF\xBF\xBD") == std::string::npos) continue;
      EXPECT_EQ(tok_->decode(ids, render), want) << key << " of \"" << printable(text) << "\"";
      ++compared;
    }
  }
  EXPECT_GE(compared, 300);
}

TEST_P(HfTokenizerGolden, SpecialIdsMatchTransformers) {
  EXPECT_EQ(tok_->n_vocab(), golden_["n_vocab"].get<int>());
  const json& ids = golden_["special_ids"];
  auto id_or_none = [](const json& j) { return j.is_null() ? kNoToken : j.get<int32_t>(); };
  EXPECT_EQ(tok_->vocab().bos, id_or_none(ids["bos"]));
  EXPECT_EQ(tok_->vocab().eos, id_or_none(ids["eos"]));
  EXPECT_EQ(tok_->vocab().pad, id_or_none(ids["pad"]));
  EXPECT_EQ(tok_->vocab().unk, id_or_none(ids["unk"]));
  EXPECT_TRUE(tok_->is_eog(tok_->eos()));
}

INSTANTIATE_TEST_SUITE_P(Models, HfTokenizerGolden,
                         ::testing::Values(HfCase{"SmolLM2-135M-Instruct", "hf_smollm2.json"},
                                           HfCase{"gemma-3-270m", "hf_gemma3.json"}),
                         [](const ::testing::TestParamInfo<HfCase>& i) {
                           return std::string(i.param.golden).substr(3, std::string(i.param.golden).size() - 8);
                         });

// ---- hand-made byte-level BPE -------------------------------------------------------

std::string byte_char(uint8_t b) {
  std::string s;
  append_utf8(gpt2_byte_to_cpt(b), &s);
  return s;
}

// Ids 0..255: each byte's character (so id == byte); then he, ll, hell, hello, Ġw, <|end|>.
json byte_level_json() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(static_cast<uint8_t>(b))] = b;
  const std::string sp = byte_char(' ');
  const std::vector<std::string> extra = {"he", "ll", "hell", "hello", sp + "w", "<|end|>"};
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + static_cast<int>(i);
  return {
      {"model", {{"type", "BPE"}, {"vocab", vocab},
                 {"merges", json::array({json::array({"h", "e"}), json::array({"l", "l"}), json::array({"he", "ll"}),
                                         json::array({"hell", "o"}), json::array({sp, "w"})})}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"post_processor", nullptr},
      {"added_tokens", {{{"id", 261}, {"content", "<|end|>"}, {"special", true}}}},
  };
}

// ---- hand-made SentencePiece-style BPE ----------------------------------------------

// <unk> <s> </s>, the 256 byte tokens (ids 3..258), then ▁ a b c ab bc ▁a.
json spm_json(bool prepend) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    vocab[buf] = 3 + b;
  }
  const std::vector<std::string> extra = {kSpace, "a", "b", "c", "ab", "bc", kSpace + "a"};
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 259 + static_cast<int>(i);
  json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
  json normalizer = prepend ? json{{"type", "Sequence"},
                                   {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpace}}, replace}}}
                            : replace;
  json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}};
  if (prepend) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"unk_token", "<unk>"}, {"byte_fallback", true},
                 {"fuse_unk", true}, {"merges", {"b c", "a b", kSpace + " a"}}}},
      {"normalizer", normalizer},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"},
                         {"invert", false}}},
      {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
      {"post_processor", {{"type", "TemplateProcessing"},
                          {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                          {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"added_tokens", {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                        {{"id", 1}, {"content", "<s>"}, {"special", true}},
                        {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
  };
}

Result<Tokenizer> load(const json& j, const std::string& config = {}) {
  Result<Vocab> v = vocab_from_tokenizer_json(j.dump(), "t.json", config);
  if (!v) return v.status();
  return Tokenizer::from_vocab(std::move(v).value());
}

std::string error_of(const json& j, const std::string& config = {}) {
  Result<Vocab> v = vocab_from_tokenizer_json(j.dump(), "t.json", config);
  return v ? std::string("(accepted)") : v.status().message();
}

TEST(TokenizerJsonBpe, ByteLevelMergesByRankInEitherMergeFormat) {
  json j = byte_level_json();
  for (int format = 0; format < 2; ++format) {
    if (format == 1) {  // the same merges as "left right" strings
      json strings = json::array();
      for (const json& m : j["model"]["merges"]) strings.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      j["model"]["merges"] = strings;
    }
    Result<Tokenizer> t = load(j);
    ASSERT_TRUE(t) << t.status().message();
    EXPECT_EQ(t->vocab().kind, VocabKind::kBpe);
    EXPECT_EQ(t->vocab().pre, PreTokenizerKind::kGpt2);
    EXPECT_EQ(t->encode("hello world", true, true), (std::vector<int32_t>{259, 260, 'o', 'r', 'l', 'd'}));
    EXPECT_EQ(t->encode("hello<|end|>", true, true), (std::vector<int32_t>{259, 261}));
    EXPECT_EQ(t->encode("hello<|end|>", true, false).size(), 8u);  // the special stays text
    EXPECT_EQ(t->decode({259, 260, 'o', 261}, false), "hello wo");
    EXPECT_EQ(t->decode({259, 260, 'o', 261}, true), "hello wo<|end|>");
    EXPECT_FALSE(t->add_bos());
  }
  // ignore_merges: a word that is a token is taken whole (here the merges never make it).
  j = byte_level_json();
  j["model"]["merges"] = json::array();
  EXPECT_EQ(load(j)->encode("hello", false, false), (std::vector<int32_t>{'h', 'e', 'l', 'l', 'o'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(j)->encode("hello", false, false), (std::vector<int32_t>{259}));
  // Without an unknown token, a byte whose character is not a token is dropped, and its
  // neighbours merge across it (as tokenizers does; SmolLM2 lacks 21 of the 256).
  j = byte_level_json();
  j["model"]["vocab"].erase(byte_char(4));
  j["model"]["vocab"]["x4"] = 4;
  j["model"]["vocab"]["!!"] = 262;
  j["model"]["merges"].push_back(json::array({"!", "!"}));
  Result<Tokenizer> t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->encode("he\x04llo", false, false), (std::vector<int32_t>{256, 257, 'o'}));
  EXPECT_EQ(t->encode("!\x04!", false, false), (std::vector<int32_t>{262}));  // one pre-token: ! ! merge
}

TEST(TokenizerJsonBpe, ByteLevelPreTokenizersMapToKnownRegexSets) {
  json j = byte_level_json();
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"},
                           {"pattern", {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                                                  "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                           {"behavior", "Isolated"},
                           {"invert", false}},
                          byte_level}}};
  Result<Tokenizer> t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->vocab().pre, PreTokenizerKind::kLlama3);
  EXPECT_EQ(t->pre_split("12345"), (std::vector<std::string>{"123", "45"}));
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Digits"}, {"individual_digits", true}};
  j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true;
  t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->vocab().pre, PreTokenizerKind::kSmollm);
  EXPECT_EQ(t->pre_split("a 12"), (std::vector<std::string>{"a", " ", "1", "2"}));
  // Sequence post-processor (Llama 3's): ByteLevel, then a template adding a BOS.
  j = byte_level_json();
  j["post_processor"] = {
      {"type", "Sequence"},
      {"processors",
       {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}},
        {{"type", "TemplateProcessing"},
         {"single", {{{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
         {"special_tokens", {{"<|end|>", {{"id", "<|end|>"}, {"ids", {261}}, {"tokens", {"<|end|>"}}}}}}}}}};
  t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->encode("he", true, true), (std::vector<int32_t>{261, 256}));
}

TEST(TokenizerJsonBpe, SentencePieceStyleMergesByRankAndFallsBackToBytes) {
  Result<Tokenizer> t = load(spm_json(/*prepend=*/false));
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->vocab().kind, VocabKind::kSpm);
  // "b c" ranks before "a b": abc -> a + bc (by score, any pair whose join is a token
  // would merge, leftmost first: ab + c).
  EXPECT_EQ(t->encode("abc", false, true), (std::vector<int32_t>{260, 264}));
  EXPECT_EQ(t->encode("abc", true, true), (std::vector<int32_t>{1, 260, 264}));
  // Spaces become ▁ (no prefix without Prepend); é is not a token: its two bytes.
  EXPECT_EQ(t->encode(" a\xC3\xA9", false, true), (std::vector<int32_t>{265, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t->decode({1, 265, 3 + 0xC3, 3 + 0xA9}, false), " a\xC3\xA9");
  EXPECT_EQ(t->vocab().types[3 + 0x41], TokenType::kByte);
  EXPECT_EQ(t->vocab().unk, 0);

  // Prepend U+2581 with the decoder's Strip: every text fragment gets a leading ▁, and
  // decoding drops the text's first space, after a hidden <s> too (tokenizers' Strip).
  t = load(spm_json(/*prepend=*/true));
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->encode("a", true, true), (std::vector<int32_t>{1, 265}));
  EXPECT_EQ(t->encode("a</s>a", false, true), (std::vector<int32_t>{265, 2, 265}));
  EXPECT_EQ(t->decode({1, 265, 261}, false), "ab");
  EXPECT_EQ(t->decode({1, 265, 261}, true), "<s> ab");

  // ignore_merges: the whole (normalized) text, when a token, is taken whole.
  json j = spm_json(false);
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(j)->encode("bc", false, true), (std::vector<int32_t>{264}));
  j["model"]["merges"] = json::array();
  EXPECT_EQ(load(j)->encode("bc", false, true), (std::vector<int32_t>{264}));
  j["model"]["ignore_merges"] = false;
  EXPECT_EQ(load(j)->encode("bc", false, true), (std::vector<int32_t>{261, 262}));
}

TEST(TokenizerJsonBpe, AddedTokensSplitLeftmostLongestAndMayExtendTheVocab) {
  // "bcd" and "ab" past the model's 262 ids (tokenizers numbers them in list order):
  // tokenizers takes the first that starts (ab), llama.cpp's rule the longest anywhere
  // (bcd). Checked with tokenizers 0.23.3.
  json j = byte_level_json();
  j["added_tokens"].push_back({{"id", 262}, {"content", "bcd"}, {"special", false}});
  j["added_tokens"].push_back({{"id", 263}, {"content", "ab"}, {"special", false}});
  Result<Tokenizer> t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->n_vocab(), 264);
  EXPECT_EQ(t->encode("abcd", false, true), (std::vector<int32_t>{263, 'c', 'd'}));
  EXPECT_EQ(t->encode("xbcd", false, true), (std::vector<int32_t>{'x', 262}));
  // A special token not parsed still covers its text: bcd inside it is not found.
  j["added_tokens"][2]["special"] = true;
  t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->encode("abcd", false, false), (std::vector<int32_t>{'a', 'b', 'c', 'd'}));
  EXPECT_EQ(t->encode("abcd", false, true), (std::vector<int32_t>{263, 'c', 'd'}));
  EXPECT_TRUE(t->is_control(263));
  EXPECT_FALSE(t->is_control(262));
  // Ids out of that order are not the ones tokenizers would use: refused.
  std::swap(j["added_tokens"][1]["id"], j["added_tokens"][2]["id"]);
  EXPECT_NE(error_of(j).find("added token 'bcd' (id 263) is out of range"), std::string::npos) << error_of(j);

  // An added token past the model's vocabulary is never the model's: an unparsed special
  // "q" is text, and the model has no "q", so its byte (tokenizers gives 116 too).
  j = spm_json(false);
  j["model"]["ignore_merges"] = true;
  j["added_tokens"].push_back({{"id", 266}, {"content", "q"}, {"special", true}});
  t = load(j);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->encode("aqb", false, true), (std::vector<int32_t>{260, 266, 261}));
  EXPECT_EQ(t->encode("aqb", false, false), (std::vector<int32_t>{260, 3 + 'q', 261}));
  EXPECT_EQ(t->encode("q", false, false), (std::vector<int32_t>{3 + 'q'}));
  EXPECT_EQ(t->find_token("q"), 266);
}

TEST(TokenizerJsonBpe, TokenizerConfigNamesSpecialTokens) {
  Result<Tokenizer> t = load(byte_level_json(), R"({"bos_token":"<|end|>","eos_token":{"content":"<|end|>"},"pad_token":null})");
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->bos(), 261);
  EXPECT_EQ(t->eos(), 261);
  EXPECT_FALSE(t->add_bos());  // naming a BOS does not add one: the post-processor says that
  EXPECT_TRUE(t->is_eog(261));
  EXPECT_NE(error_of(byte_level_json(), R"({"eos_token":"<nope>"})").find("'eos_token' '<nope>' is not in the vocab"),
            std::string::npos);
  EXPECT_NE(error_of(byte_level_json(), R"({"add_bos_token":true})").find("'add_bos_token' = true disagrees"),
            std::string::npos);
  EXPECT_NE(error_of(spm_json(false), R"({"bos_token":"</s>"})").find("disagrees with tokenizer.json's (id 1)"),
            std::string::npos);
  EXPECT_NE(error_of(byte_level_json(), R"({"clean_up_tokenization_spaces":true})").find("clean_up_tokenization_spaces"),
            std::string::npos);
  EXPECT_NE(error_of(byte_level_json(), "[1]").find("tokenizer_config.json: not a JSON object"), std::string::npos);
}

// Every refusal is an error that names what is not supported, never a crash.
TEST(TokenizerJsonBpe, RefusalsNameTheComponent) {
  struct Case {
    const char* what;
    json file;
    const char* expect;
  };
  std::vector<Case> cases;
  auto bl = [](auto&& edit) {
    json j = byte_level_json();
    edit(j);
    return j;
  };
  auto sp = [](auto&& edit) {
    json j = spm_json(false);
    edit(j);
    return j;
  };
  cases.push_back({"Unigram", bl([](json& j) { j["model"]["type"] = "Unigram"; }), "model 'Unigram' is not supported"});
  cases.push_back({"WordLevel", bl([](json& j) { j["model"]["type"] = "WordLevel"; }), "'WordLevel' is not supported"});
  cases.push_back({"normalizer", bl([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }), "normalizer 'NFC'"});
  cases.push_back({"spm normalizer", sp([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }),
                   "normalizer 'Lowercase'"});
  cases.push_back({"spm no normalizer", sp([](json& j) { j["normalizer"] = nullptr; }), "normalizer '?'"});
  cases.push_back({"pre-tokenizer", sp([](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }),
                   "pre_tokenizer 'Metaspace'"});
  cases.push_back({"bl pre-tokenizer", bl([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }),
                   "pre_tokenizer 'Whitespace'"});
  cases.push_back({"unknown regex", bl([](json& j) {
                     j["pre_tokenizer"] = {{"type", "Sequence"},
                                           {"pretokenizers",
                                            {{{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}},
                                              {"behavior", "Isolated"}, {"invert", false}},
                                             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
                   }),
                   "Split regex '\\w+' is not one flashlm knows"});
  cases.push_back({"add_prefix_space", bl([](json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }),
                   "add_prefix_space"});
  cases.push_back({"decoder", sp([](json& j) { j["decoder"] = {{"type", "CTC"}}; }), "decoder 'CTC'"});
  cases.push_back({"decoder step", sp([](json& j) { j["decoder"]["decoders"][1] = {{"type", "Metaspace"}}; }),
                   "decoder Sequence [Replace, Metaspace, Fuse"});
  cases.push_back({"no decoder", bl([](json& j) { j["decoder"] = nullptr; j["model"]["byte_fallback"] = false; }),
                   "needs the ByteLevel decoder"});
  cases.push_back({"prepend without strip", sp([](json& j) { j["normalizer"] = spm_json(true)["normalizer"]; }),
                   "Prepend U+2581 without the decoder's Strip"});
  cases.push_back({"post-processor", bl([](json& j) { j["post_processor"] = {{"type", "Foo"}}; }),
                   "post_processor 'Foo'"});
  cases.push_back({"dropout", bl([](json& j) { j["model"]["dropout"] = 0.1; }), "model.dropout"});
  cases.push_back({"suffix", bl([](json& j) { j["model"]["end_of_word_suffix"] = "</w>"; }), "end_of_word_suffix"});
  cases.push_back({"byte_fallback with ByteLevel", bl([](json& j) { j["model"]["byte_fallback"] = true; }),
                   "byte_fallback with the ByteLevel decoder"});
  cases.push_back({"merge of three", bl([](json& j) { j["model"]["merges"] = {"h e l"}; }),
                   "model.merges[0] 'h e l' must be two tokens"});
  cases.push_back({"merge not a pair", bl([](json& j) { j["model"]["merges"] = json::array({json::array({1, 2})}); }),
                   "model.merges[0] must be"});
  cases.push_back({"merge names a missing token", bl([](json& j) { j["model"]["merges"] = json::array({json::array({"h", "\xE2\x82\xAC"})}); }),
                   "names '\xE2\x82\xAC', which is not in the vocab"});
  cases.push_back({"merge makes a missing token", bl([](json& j) { j["model"]["merges"] = {"e h"}; }),
                   "names 'eh', which is not in the vocab"});
  cases.push_back({"repeated merge", bl([](json& j) { j["model"]["merges"] = {"h e", "h e"}; }),
                   "model.merges[1] repeats"});
  cases.push_back({"merges not an array", bl([](json& j) { j["model"]["merges"] = 7; }), "model.merges must be an array"});
  cases.push_back({"vocab id out of range", bl([](json& j) { j["model"]["vocab"]["he"] = 100000; }),
                   "ids must be 0..n-1"});
  cases.push_back({"added id out of range", bl([](json& j) {
                     j["added_tokens"].push_back({{"id", 5000}, {"content", "<x>"}, {"special", true}});
                   }),
                   "added token '<x>' (id 5000) is out of range: past the model's vocabulary tokenizers numbers "
                   "added tokens 262, 263, ... in their order, which makes it 262"});
  cases.push_back({"negative added id", bl([](json& j) { j["added_tokens"][0]["id"] = -3; }), "negative id"});
  cases.push_back({"added text mismatch", bl([](json& j) { j["added_tokens"][0]["id"] = 256; }),
                   "is not that vocab entry"});
  cases.push_back({"added twice", bl([](json& j) { j["added_tokens"].push_back(j["added_tokens"][0]); }),
                   "listed twice"});
  cases.push_back({"missing byte with unk", bl([](json& j) {
                     j["model"]["vocab"].erase(byte_char('z'));
                     j["model"]["vocab"]["zz"] = 'z';
                     j["model"]["unk_token"] = "<|end|>";
                   }),
                   "lacks the token for byte 122"});
  cases.push_back({"missing byte token", sp([](json& j) {
                     j["model"]["vocab"].erase("<0x41>");
                     j["model"]["vocab"]["<0x41x"] = 3 + 0x41;
                   }),
                   "'<0x41>' is not in the vocab"});
  cases.push_back({"no byte_fallback", sp([](json& j) { j["model"]["byte_fallback"] = false; }), "has neither"});
  cases.push_back({"template id out of range", sp([](json& j) {
                     j["post_processor"]["special_tokens"]["<s>"]["ids"] = {99999};
                   }),
                   "must map to exactly one id in the vocab"});
  cases.push_back({"wrong type", bl([](json& j) { j["model"]["ignore_merges"] = "yes"; }), "'ignore_merges'"});
  cases.push_back({"wrong type deep", sp([](json& j) { j["model"]["unk_token"] = 5; }), "unk_token must be"});
  for (const Case& c : cases) {
    const std::string err = error_of(c.file);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": got \"" << err << "\"";
    EXPECT_EQ(err.rfind("t.json: ", 0), 0u) << c.what << ": " << err;
  }
}

}  // namespace
}  // namespace flashlm::tok
