// flashlm tokenize: token ids of a text as a JSON array on one line (the tokenizer of a
// GGUF file, or a Hugging Face directory's tokenizer.json).
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "tokenizer/tokenizer_json.h"

namespace flashlm::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string prompt;
  bool no_special = false;
  bool no_parse_special = false;
};

int tokenize(const TokenizeArgs& a) {
  // A Hugging Face model directory: its tokenizer.json.
  std::error_code ec;
  if (std::filesystem::is_directory(a.model, ec)) {
    const std::filesystem::path tj = std::filesystem::path(a.model) / "tokenizer.json";
    if (!std::filesystem::exists(tj, ec)) {
      print_error(a.model + " is a directory that holds no tokenizer.json (give a GGUF file or a Hugging Face model directory)");
      return 1;
    }
    Result<tok::Vocab> v = tok::vocab_from_tokenizer_json_file(tj.string());
    Result<tok::Tokenizer> t = v ? tok::Tokenizer::from_vocab(std::move(v).value()) : Result<tok::Tokenizer>(v.status());
    if (!t) {
      print_error(t.status().message());
      return 1;
    }
    std::printf("%s\n", nlohmann::json(t->encode(a.prompt, !a.no_special, !a.no_parse_special)).dump().c_str());
    return 0;
  }
  CommonArgs c;
  c.model = a.model;
  std::unique_ptr<Loaded> l = load(c, LoadFor::kTokenizer);
  if (!l) return 1;
  const std::vector<int32_t> ids = l->tok->encode(a.prompt, !a.no_special, !a.no_parse_special);
  std::printf("%s\n", nlohmann::json(ids).dump().c_str());
  return 0;
}

}  // namespace

void add_tokenize(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("tokenize", "print token ids as a JSON array");
  sub->add_option("-m,--model", args->model, "GGUF model file, or a Hugging Face directory with a tokenizer.json")
      ->required();
  sub->add_option("-p,--prompt", args->prompt, "text to tokenize")->required();
  sub->add_flag("--no-bos", args->no_special, "do not add BOS/EOS even if the model asks for them");
  sub->add_flag("--no-parse-special", args->no_parse_special, "treat special-token texts as plain text");
  sub->final_callback([args, exit_code] { *exit_code = tokenize(*args); });
}

}  // namespace flashlm::cli
