// OpenAI response bodies: chat.completion, text_completion, their streamed chunks, usage
// and logprobs. Pure formatting (JSON text out), keys in OpenAI's order.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "server/request.h"

namespace flashlm::server {

using ojson = nlohmann::ordered_json;
// Bytes of one token, for logprobs.
using PieceFn = std::function<std::string(int32_t)>;

struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChat;
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string fingerprint;  // system_fingerprint ("" : left out)
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose KV was reused
};

struct ChoiceResult {
  int index = 0;
  std::string text;
  std::string finish_reason;      // "stop", "length", ...
  std::vector<TokenInfo> tokens;  // for logprobs
  // Completions with echo and logprobs: the prompt's entries (echo_text_logprobs), which
  // the generated tokens' follow, their offsets from text_offset on. null otherwise.
  ojson prompt_logprobs;
  int64_t text_offset = 0;
  // Chat with tools: the calls parsed from the reply (null: none), and whether the message
  // has no content besides them (content null).
  ojson tool_calls;
  bool content_null = false;
};

// "stop" / "length" as OpenAI names them; other endings keep the scheduler's name.
std::string finish_reason_text(FinishReason r);

// `prefix` and 24 random alphanumerics.
std::string random_id(std::string prefix);
// A new id with the endpoint's prefix ("chatcmpl-", "cmpl-").
std::string make_response_id(Endpoint endpoint);
// message.tool_calls: [{"id": "call_...", "type": "function", "function": {"name", "arguments"}}].
ojson tool_calls_json(const std::vector<ParsedCall>& calls);

ojson usage_json(const Usage& u);

// Chat logprobs entries: [{"token", "logprob", "bytes", "top_logprobs": [...]}].
ojson chat_logprobs_content(const std::vector<TokenInfo>& tokens, const PieceFn& piece);
// Completions logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
// offsets start at text_offset.
ojson text_logprobs(const std::vector<TokenInfo>& tokens, const PieceFn& piece, int64_t text_offset);

// Completions logprobs of an echoed prompt: its first token (logprob and top_logprobs
// null: nothing precedes it), then the scored tokens after it; offsets are the pieces'
// running byte counts from 0.
ojson echo_text_logprobs(int32_t first, const std::vector<TokenInfo>& scored, const PieceFn& piece);
// Appends the entries of completions logprobs `more` to *to.
void append_text_logprobs(ojson* to, const ojson& more);

// The whole non-streamed response. with_logprobs: include logprobs (else null).
std::string completion_body(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices, const Usage& usage,
                            bool with_logprobs, const PieceFn& piece);

// One streamed chunk for one choice.
struct ChunkChoice {
  int index = 0;
  bool first = false;         // chat: delta carries role "assistant" and content ""
  std::string text;           // new text (chat: delta.content)
  std::string finish_reason;  // set on the choice's last chunk; "" otherwise (null)
  ojson logprobs;             // null, or chat {"content": [...]} / completions object
  ojson tool_calls;           // chat: delta.tool_calls instead of content (null: none)
};
// include_usage: every chunk carries "usage": null, as OpenAI sends with include_usage.
std::string chunk_json(const ResponseMeta& meta, const ChunkChoice& c, bool include_usage);
// The last chunk with include_usage: empty choices and the usage.
std::string usage_chunk_json(const ResponseMeta& meta, const Usage& usage);

// Response of GET /v1/models.
// GET /v1/models/{id}: the one model object.
std::string model_body(const std::string& model_id, int64_t created);
std::string models_body(const std::vector<std::string>& model_ids, int64_t created);

// JSON text that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const ojson& j);

}  // namespace flashlm::server
