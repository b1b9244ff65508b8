// WordPiece (tokenizer_json.h, wordpiece.h): the normalizer, splitter and greedy matcher
// on hand-made inputs and vocabularies, tokenizer.json errors, and the golden ids of
// Hugging Face tokenizers for all-MiniLM-L6-v2's tokenizer.json (tests/golden/embeddings/,
// made by scripts/reference/make_embedding_golden.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/wordpiece.h"

namespace flashlm::tok {
namespace {

const std::string kRoot = FLASHLM_SOURCE_DIR;
const std::string kMiniLm = kRoot + "/models/all-MiniLM-L6-v2/tokenizer.json";

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<int32_t> parse_ids(const std::string& line) {
  std::istringstream in(line);
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

const std::string kSmallAdded =
    R"([{"id":0,"content":"[CLS]","special":true},{"id":1,"content":"[SEP]","special":true},)"
    R"({"id":2,"content":"[UNK]","special":true}])";

std::string small_json(const std::string& model, const std::string& normalizer = R"({"type":"BertNormalizer"})",
                       const std::string& added = kSmallAdded) {
  return R"({"added_tokens":)" + added + R"(,"normalizer":)" + normalizer +
         R"(,"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",1],"cls":["[CLS]",0]},"model":)" +
         model + "}";
}

const std::string kSmallModel =
    R"({"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":10,)"
    R"("vocab":{"[CLS]":0,"[SEP]":1,"[UNK]":2,"un":3,"##aff":4,"##able":5,"hello":6,",":7,"!":8,"cafe":9}})";

TEST(WordPiece, NormalizerCleansSplitsStripsAndLowers) {
  const WpmOptions opt;
  // Controls and U+FFFD vanish, tab/newline/NBSP become spaces, accents go, case folds,
  // CJK ideographs get spaces around them.
  EXPECT_EQ(bert_normalize("A\x01" "b\tC\xC2\xA0" "Caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87", opt), "ab c cafe  \xE4\xB8\xAD  \xE6\x96\x87 ");
  EXPECT_EQ(bert_normalize("e\xCC\x81", opt), "e");                 // e + combining acute
  EXPECT_EQ(bert_normalize("\xC4\xB0", opt), "i");                  // I with dot above
  EXPECT_EQ(bert_normalize("zero\xE2\x80\x8Bwidth", opt), "zerowidth");  // U+200B is format, removed
  // Private use goes too; unassigned code points stay (tokenizers keeps them: [UNK]).
  EXPECT_EQ(bert_normalize("a\xEE\x80\x80" "b", opt), "ab");
  EXPECT_EQ(bert_normalize("a\xCD\xB8" "b", opt), "a\xCD\xB8" "b");
  WpmOptions cased;
  cased.lowercase = false;
  cased.strip_accents = false;
  EXPECT_EQ(bert_normalize("Caf\xC3\xA9", cased), "Caf\xC3\xA9");
}

TEST(WordPiece, PreTokenizerIsolatesPunctuation) {
  std::vector<std::string_view> words;
  const std::string text = "hello,world!!  a$b \xE2\x80\x94x";  // $ is ASCII punctuation; an em dash is Pd
  bert_pre_split(text, &words);
  const std::vector<std::string> want = {"hello", ",", "world", "!", "!", "a", "$", "b", "\xE2\x80\x94", "x"};
  ASSERT_EQ(words.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(std::string(words[i]), want[i]) << i;
}

TEST(WordPiece, GreedyLongestMatchAndUnknownWords) {
  Result<Vocab> v = vocab_from_tokenizer_json(small_json(kSmallModel), "small");
  ASSERT_TRUE(v) << v.status().message();
  Result<Tokenizer> t = Tokenizer::from_vocab(std::move(v).value());
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(t->encode("unaffable", true, true), (std::vector<int32_t>{0, 3, 4, 5, 1}));
  EXPECT_EQ(t->encode("Hello, Café!", true, true), (std::vector<int32_t>{0, 6, 7, 9, 8, 1}));
  // A part that matches nothing makes the whole word unknown; so does a word over 10 chars.
  EXPECT_EQ(t->encode("unaffx hello", false, true), (std::vector<int32_t>{2, 6}));
  EXPECT_EQ(t->encode("unaffableable", false, true), (std::vector<int32_t>{2}));
  // Special tokens written in the text are those tokens.
  EXPECT_EQ(t->encode("[CLS]hello", false, true), (std::vector<int32_t>{0, 6}));
  EXPECT_EQ(t->encode("", true, true), (std::vector<int32_t>{0, 1}));
  // Invalid UTF-8 never fails: its bytes become U+FFFD, which the normalizer drops.
  EXPECT_EQ(t->encode("hel\xFFlo", false, true), (std::vector<int32_t>{6}));
  EXPECT_EQ(t->decode({0, 3, 4, 5, 6, 1}, false), "unaffable hello");
  // A long word costs length x longest token, not length^2 lookups: 100k chars that only
  // match one by one ("a" then "##a" ...) under a limit that lets them through.
  std::string big = kSmallModel;
  auto sub = [&big](const std::string& from, const std::string& to) { big.replace(big.find(from), from.size(), to); };
  sub("\"max_input_chars_per_word\":10", "\"max_input_chars_per_word\":200000");
  sub("\"un\":3", "\"a\":3");
  sub("\"##aff\":4", "\"##a\":4");
  Result<Vocab> bv = vocab_from_tokenizer_json(small_json(big), "big");
  ASSERT_TRUE(bv) << bv.status().message();
  Result<Tokenizer> bt = Tokenizer::from_vocab(std::move(bv).value());
  ASSERT_TRUE(bt);
  const std::vector<int32_t> ids = bt->encode(std::string(100000, 'a'), false, true);
  ASSERT_EQ(ids.size(), 100000u);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(ids[99999], 4);
}

TEST(WordPiece, TokenizerJsonErrorsNameTheProblem) {
  auto err = [](const std::string& json) {
    Result<Vocab> v = vocab_from_tokenizer_json(json, "t.json");
    return v ? std::string("(accepted)") : v.status().message();
  };
  EXPECT_NE(err("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(err("{").find("not a JSON object"), std::string::npos);
  EXPECT_NE(err(R"({"model":{"type":"BPE","vocab":{},"merges":[]}})").find("model.vocab must be a non-empty object"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":{"type":"Unigram","vocab":[]}})").find("'Unigram' is not supported"), std::string::npos);
  EXPECT_NE(err(small_json(kSmallModel, R"({"type":"NFKC"})")).find("normalizer 'NFKC'"), std::string::npos);
  EXPECT_NE(err(small_json(R"({"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":5}})"))
                .find("ids must be 0..n-1"),
            std::string::npos);
  EXPECT_NE(err(small_json(R"({"type":"WordPiece","unk_token":"<unk>","vocab":{"[UNK]":0}})")).find("'<unk>'"),
            std::string::npos);
  EXPECT_NE(err(small_json(kSmallModel, R"({"type":"BertNormalizer"})",
                           R"([{"id":6,"content":"hello","normalized":true,"special":false}])"))
                .find("'normalized'"),
            std::string::npos);
  EXPECT_NE(err(small_json(kSmallModel, R"({"type":"BertNormalizer"})", R"([{"id":6,"content":"bye"}])"))
                .find("is not that vocab entry"),
            std::string::npos);
  // Fields of the wrong type are errors, not exceptions.
  EXPECT_NE(err(small_json(kSmallModel, R"({"type":"BertNormalizer"})",
                           R"([{"id":6,"content":"hello","lstrip":null}])"))
                .find("malformed"),
            std::string::npos);
  EXPECT_NE(err(small_json(kSmallModel, R"({"type":"BertNormalizer","lowercase":"yes"})")).find("'lowercase'"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0},"max_input_chars_per_word":"x"}})")
                .find("max_input_chars_per_word"),
            std::string::npos);
  EXPECT_NE(err(R"({"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0}},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",4294967297],"cls":["[CLS]",0]}})")
                .find("with an id in the vocab"),
            std::string::npos);
}

// Hugging Face tokenizers on all-MiniLM-L6-v2's tokenizer.json: hard cases (controls,
// zero-width and combining characters, CJK, Thai, Hangul, specials in the text, long
// words) and the 200 golden sentences, whose two long lines sentence-transformers cuts to
// 256 ids (the first 255 compared here; the cut itself is embed's Encoder::tokenize).
TEST(WordPiece, MatchesHuggingFaceTokenizers) {
  if (!std::filesystem::exists(kMiniLm)) {
    GTEST_SKIP() << "MODEL FILE MISSING, golden test skipped (scripts/fetch_models.sh installs it): " << kMiniLm;
  }
  Result<Vocab> v = vocab_from_tokenizer_json_file(kMiniLm);
  ASSERT_TRUE(v) << v.status().message();
  Result<Tokenizer> t = Tokenizer::from_vocab(std::move(v).value());
  ASSERT_TRUE(t) << t.status().message();
  const std::string dir = kRoot + "/tests/golden/embeddings/";
  struct Set {
    std::string texts, ids;
  };
  int compared = 0;
  for (const Set& s : {Set{"tokenizer_cases.txt", "tokenizer_cases.ids"}, Set{"sentences.txt", "tokens.txt"}}) {
    const std::vector<std::string> texts = read_lines(dir + s.texts);
    const std::vector<std::string> ids = read_lines(dir + s.ids);
    ASSERT_EQ(texts.size(), ids.size()) << s.texts;
    ASSERT_GE(texts.size(), 40u) << s.texts;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::vector<int32_t> want = parse_ids(ids[i]);
      std::vector<int32_t> got = t->encode(texts[i], /*add_special=*/true, /*parse_special=*/true);
      if (want.size() == 256 && got.size() > 256) got.resize(255);
      const std::vector<int32_t> want_cmp = want.size() == 256 && got.size() == 255
                                                ? std::vector<int32_t>(want.begin(), want.begin() + 255)
                                                : want;
      EXPECT_EQ(got, want_cmp) << s.texts << " line " << i + 1 << ": " << texts[i];
      ++compared;
    }
  }
  EXPECT_GE(compared, 240);
}

}  // namespace
}  // namespace flashlm::tok
