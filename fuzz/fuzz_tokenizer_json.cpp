// libFuzzer target: arbitrary bytes as a Hugging Face tokenizer.json (WordPiece, byte-level
// or SentencePiece-style BPE read into a vocabulary, or refused with an error), and as
// text through WordPiece (BERT's normalizer, splitter and greedy matcher) over a fixed
// small vocabulary and, when the bytes are a valid tokenizer.json, through its own
// tokenizer (encode, decode). Never a crash, a hang or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"

namespace {

const flashlm::tok::Tokenizer& fixed() {
  static const flashlm::tok::Tokenizer t = [] {
    const std::string json =
        R"({"added_tokens":[{"id":0,"content":"[CLS]","special":true},{"id":1,"content":"[SEP]","special":true},)"
        R"({"id":2,"content":"[UNK]","special":true}],"normalizer":{"type":"BertNormalizer"},)"
        R"("pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",1],)"
        R"("cls":["[CLS]",0]},"model":{"type":"WordPiece","unk_token":"[UNK]","max_input_chars_per_word":12,)"
        R"("vocab":{"[CLS]":0,"[SEP]":1,"[UNK]":2,"a":3,"##a":4,"b":5,"##b":6,"ab":7,"##ab":8,"\u00e9":9,"\u4e2d":10,",":11}}})";
    auto v = flashlm::tok::vocab_from_tokenizer_json(json, "fixed");
    return std::move(flashlm::tok::Tokenizer::from_vocab(std::move(v).value())).value();
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)fixed().encode(bytes, true, true);
  auto v = flashlm::tok::vocab_from_tokenizer_json(bytes, "fuzz");
  if (!v) return 0;
  auto t = flashlm::tok::Tokenizer::from_vocab(std::move(v).value());
  if (!t) return 0;
  const std::vector<int32_t> ids = t->encode(bytes, true, true);
  (void)t->decode(ids, true);
  return 0;
}
