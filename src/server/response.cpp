#include "server/response.h"

#include <random>

namespace flashlm::server {
namespace {

ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

ojson nullable(const std::string& s) { return s.empty() ? ojson() : ojson(s); }

const char* object_name(Endpoint e, bool chunk) {
  if (e == Endpoint::kCompletion) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

ojson head(const ResponseMeta& meta, bool chunk) {
  ojson h{{"id", meta.id}, {"object", object_name(meta.endpoint, chunk)}, {"created", meta.created}, {"model", meta.model}};
  if (!meta.fingerprint.empty()) h["system_fingerprint"] = meta.fingerprint;
  return h;
}

}  // namespace

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string finish_reason_text(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kNone:
      return "";
    default:
      return finish_reason_name(r);
  }
}

std::string random_id(std::string prefix) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  for (int i = 0; i < 24; ++i) prefix.push_back(kAlphabet[pick(rng)]);
  return prefix;
}

std::string make_response_id(Endpoint endpoint) { return random_id(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-"); }

ojson tool_calls_json(const std::vector<ParsedCall>& calls) {
  ojson arr = ojson::array();
  for (const ParsedCall& c : calls) {
    arr.push_back({{"id", random_id("call_")},
                   {"type", "function"},
                   {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return arr;
}

ojson usage_json(const Usage& u) {
  return ojson{{"prompt_tokens", u.prompt_tokens},
               {"completion_tokens", u.completion_tokens},
               {"total_tokens", u.prompt_tokens + u.completion_tokens},
               {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

ojson chat_logprobs_content(const std::vector<TokenInfo>& tokens, const PieceFn& piece) {
  ojson content = ojson::array();
  for (const TokenInfo& t : tokens) {
    const std::string text = piece(t.token);
    ojson top = ojson::array();
    for (const TokenLogprob& alt : t.logprobs.top) {
      const std::string alt_text = piece(alt.token);
      top.push_back({{"token", alt_text}, {"logprob", alt.logprob}, {"bytes", bytes_of(alt_text)}});
    }
    content.push_back(
        {{"token", text}, {"logprob", t.logprobs.chosen}, {"bytes", bytes_of(text)}, {"top_logprobs", std::move(top)}});
  }
  return content;
}

ojson text_logprobs(const std::vector<TokenInfo>& tokens, const PieceFn& piece, int64_t text_offset) {
  ojson toks = ojson::array(), lps = ojson::array(), tops = ojson::array(), offs = ojson::array();
  for (const TokenInfo& t : tokens) {
    const std::string text = piece(t.token);
    toks.push_back(text);
    lps.push_back(t.logprobs.chosen);
    ojson top = ojson::object();
    for (const TokenLogprob& alt : t.logprobs.top) top[piece(alt.token)] = alt.logprob;
    tops.push_back(std::move(top));
    offs.push_back(text_offset);
    text_offset += static_cast<int64_t>(text.size());
  }
  return ojson{{"tokens", std::move(toks)},
               {"token_logprobs", std::move(lps)},
               {"top_logprobs", std::move(tops)},
               {"text_offset", std::move(offs)}};
}

ojson echo_text_logprobs(int32_t first, const std::vector<TokenInfo>& scored, const PieceFn& piece) {
  const std::string first_text = piece(first);
  ojson lp = text_logprobs(scored, piece, static_cast<int64_t>(first_text.size()));
  lp["tokens"].insert(lp["tokens"].begin(), first_text);
  lp["token_logprobs"].insert(lp["token_logprobs"].begin(), nullptr);
  lp["top_logprobs"].insert(lp["top_logprobs"].begin(), nullptr);
  lp["text_offset"].insert(lp["text_offset"].begin(), 0);
  return lp;
}

void append_text_logprobs(ojson* to, const ojson& more) {
  for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
    ojson& arr = (*to)[key];
    for (const ojson& v : more[key]) arr.push_back(v);
  }
}

std::string completion_body(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices, const Usage& usage,
                            bool with_logprobs, const PieceFn& piece) {
  ojson j = head(meta, false);
  ojson arr = ojson::array();
  for (const ChoiceResult& c : choices) {
    if (meta.endpoint == Endpoint::kChat) {
      ojson lp;
      if (with_logprobs) lp = {{"content", chat_logprobs_content(c.tokens, piece)}, {"refusal", nullptr}};
      ojson message = {{"role", "assistant"}, {"content", c.content_null ? ojson() : ojson(c.text)}, {"refusal", nullptr}};
      if (!c.tool_calls.is_null()) message["tool_calls"] = c.tool_calls;
      arr.push_back({{"index", c.index},
                     {"message", std::move(message)},
                     {"logprobs", std::move(lp)},
                     {"finish_reason", nullable(c.finish_reason)}});
    } else {
      ojson lp;
      if (with_logprobs) {
        lp = text_logprobs(c.tokens, piece, c.text_offset);
        if (!c.prompt_logprobs.is_null()) {
          ojson all = c.prompt_logprobs;
          append_text_logprobs(&all, lp);
          lp = std::move(all);
        }
      }
      arr.push_back({{"text", c.text},
                     {"index", c.index},
                     {"logprobs", std::move(lp)},
                     {"finish_reason", nullable(c.finish_reason)}});
    }
  }
  j["choices"] = std::move(arr);
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string chunk_json(const ResponseMeta& meta, const ChunkChoice& c, bool include_usage) {
  ojson j = head(meta, true);
  ojson choice;
  if (meta.endpoint == Endpoint::kChat) {
    ojson delta = ojson::object();
    if (c.first) {
      delta["role"] = "assistant";
      delta["content"] = c.text;
      delta["refusal"] = nullptr;
    } else if (!c.tool_calls.is_null()) {
      delta["tool_calls"] = c.tool_calls;
    } else if (!c.text.empty() || c.finish_reason.empty()) {
      delta["content"] = c.text;
    }
    choice = {{"index", c.index},
              {"delta", std::move(delta)},
              {"logprobs", c.logprobs},
              {"finish_reason", nullable(c.finish_reason)}};
  } else {
    choice = {
        {"text", c.text}, {"index", c.index}, {"logprobs", c.logprobs}, {"finish_reason", nullable(c.finish_reason)}};
  }
  j["choices"] = ojson::array({std::move(choice)});
  if (include_usage) j["usage"] = nullptr;
  return dump(j);
}

std::string usage_chunk_json(const ResponseMeta& meta, const Usage& usage) {
  ojson j = head(meta, true);
  j["choices"] = ojson::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string model_body(const std::string& model_id, int64_t created) {
  return dump(ojson{{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "flashlm"}});
}

std::string models_body(const std::vector<std::string>& model_ids, int64_t created) {
  ojson data = ojson::array();
  for (const std::string& id : model_ids) data.push_back(ojson::parse(model_body(id, created)));
  ojson j = {{"object", "list"}, {"data", std::move(data)}};
  return dump(j);
}

}  // namespace flashlm::server
