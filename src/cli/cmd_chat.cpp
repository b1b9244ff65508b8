// flashlm chat: interactive multi-turn chat on the terminal with the model's template.
// Each turn re-renders the conversation and evaluates only the tokens after the prefix
// shared with what the KV cache already holds.
#include <cstdio>
#include <iostream>

#include "cli/common.h"

namespace flashlm::cli {
namespace {

struct ChatArgs {
  CommonArgs common;
  GenerateOptions gen;
  std::string system;
};

int chat(const ChatArgs& a) {
  std::unique_ptr<Loaded> l = load(a.common);
  if (!l) return 1;
  Runner& runner = *l->runner;
  const int seq = runner.seq_new();
  nlohmann::json messages = nlohmann::json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  std::vector<int32_t> cached;  // tokens whose KV the sequence holds
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
    std::vector<int32_t> tokens = tokenize_for_model(*l->tok, text, true);
    if (tokens.empty()) {
      print_error("the chat template rendered an empty prompt");
      messages.erase(messages.end() - 1);
      continue;
    }
    size_t common = 0;
    while (common < tokens.size() && common < cached.size() && tokens[common] == cached[common]) ++common;
    if (common == tokens.size()) --common;  // always evaluate at least one token
    common = static_cast<size_t>(runner.seq_truncate(seq, static_cast<int64_t>(common)));
    std::string reply;
    GenerateStats stats;
    std::vector<int32_t> fresh(tokens.begin() + static_cast<std::ptrdiff_t>(common), tokens.end());
    Status st = generate_to_stdout(*l, seq, fresh, a.gen, &stats, &reply);
    if (!st) {
      print_error(st.message());
      messages.erase(messages.end() - 1);
      runner.seq_truncate(seq, 0);
      cached.clear();
      continue;
    }
    cached = tokens;
    cached.insert(cached.end(), stats.generated.begin(), stats.generated.end());
    // The last sampled token was never evaluated, so the KV holds one fewer.
    cached.resize(static_cast<size_t>(runner.seq_len(seq)));
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
