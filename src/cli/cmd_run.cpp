// flashlm run: one prompt in, generated text streamed to stdout, timings on stderr. The
// prompt is one request to the engine (a batch of one sequence).
#include <cstdio>

#include "cli/common.h"

namespace flashlm::cli {
namespace {

struct RunArgs {
  CommonArgs common;
  RequestOptions gen;
  std::string prompt;
  bool chat = false;
  std::string system;
};

// Tokenizes a prompt with special-token texts parsed (as llama.cpp's tools do), adding
// BOS only if a chat template did not already write it.
std::vector<int32_t> tokenize_prompt(const Tokenizer& tok, const std::string& text, bool from_template) {
  bool add_special = true;
  if (from_template && tok.bos() >= 0) {
    const std::string& bos = tok.token_text(tok.bos());
    if (!bos.empty() && text.compare(0, bos.size(), bos) == 0) add_special = false;
  }
  return tok.encode(text, add_special, /*parse_special=*/true);
}

int run(const RunArgs& a) {
  std::unique_ptr<Loaded> l = load(a.common, LoadFor::kEngine);
  if (!l) return 1;
  std::string text = a.prompt;
  if (a.chat) {
    nlohmann::json messages = nlohmann::json::array();
    if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
    messages.push_back({{"role", "user"}, {"content", a.prompt}});
    if (!render_chat(*l, messages, true, &text)) return 1;
  }
  RequestOptions req = a.gen;
  req.prompt = tokenize_prompt(*l->tok, text, a.chat);
  if (req.prompt.empty()) {
    print_error("the prompt is empty");
    return 1;
  }
  GenerateStats stats;
  Status st = generate_to_stdout(*l, std::move(req), &stats);
  if (!st) {
    print_error(st.message());
    return 1;
  }
  print_timings(*l, stats);
  return 0;
}

}  // namespace

std::vector<int32_t> tokenize_for_model(const Tokenizer& tok, const std::string& text, bool from_template) {
  return tokenize_prompt(tok, text, from_template);
}

void add_run(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  args->gen.max_tokens = 128;
  CLI::App* sub = app.add_subcommand("run", "generate text from a prompt");
  add_common_flags(sub, &args->common);
  add_sampling_flags(sub, &args->gen);
  sub->add_option("-p,--prompt", args->prompt, "prompt text")->required();
  sub->add_flag("--chat", args->chat, "treat the prompt as a user message and apply the chat template");
  sub->add_option("--system", args->system, "system message (with --chat)");
  sub->final_callback([args, exit_code] { *exit_code = run(*args); });
}

}  // namespace flashlm::cli
