// flashlm chat: interactive multi-turn chat on the terminal with the model's template.
// Each turn re-renders the conversation and submits it to the engine as one request; the
// prefix cache finds the KV of the earlier turns (the blocks the previous request
// published), so only the tokens after it are computed.
#include <cstdio>
#include <iostream>

#include "cli/common.h"

namespace flashlm::cli {
namespace {

struct ChatArgs {
  CommonArgs common;
  RequestOptions gen;
  std::string system;
};

int chat(const ChatArgs& a) {
  std::unique_ptr<Loaded> l = load(a.common, LoadFor::kEngine);
  if (!l) return 1;
  nlohmann::json messages = nlohmann::json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  std::fprintf(stderr, "flashlm chat: %s — type a message, empty line or Ctrl-D to quit\n",
               l->model->config().name.c_str());
  std::string line;
  for (;;) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({{"role", "user"}, {"content", line}});
    std::string text;
    if (!render_chat(*l, messages, true, &text)) {
      messages.erase(messages.end() - 1);
      continue;
    }
    RequestOptions req = a.gen;
    req.prompt = tokenize_for_model(*l->tok, text, true);
    if (req.prompt.empty()) {
      print_error("the chat template rendered an empty prompt");
      messages.erase(messages.end() - 1);
      continue;
    }
    std::string reply;
    GenerateStats stats;
    Status st = generate_to_stdout(*l, std::move(req), &stats, &reply);
    if (!st) {
      print_error(st.message());
      messages.erase(messages.end() - 1);
      continue;
    }
    messages.push_back({{"role", "assistant"}, {"content", reply}});
    print_timings(*l, stats);
  }
  return 0;
}

}  // namespace

void add_chat(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* sub = app.add_subcommand("chat", "interactive multi-turn chat");
  add_common_flags(sub, &args->common);
  add_sampling_flags(sub, &args->gen);
  sub->add_option("--system", args->system, "system message");
  sub->final_callback([args, exit_code] { *exit_code = chat(*args); });
}

}  // namespace flashlm::cli
