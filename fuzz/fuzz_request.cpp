// libFuzzer target: arbitrary bytes are an HTTP request body for every endpoint the
// server parses (chat, completions, embeddings, tokenize, detokenize). Parsing must end in a request
// or an ApiError, never a crash or an exception; the error body and a response chunk
// carrying the raw bytes must always serialise; the same for /v1/responses and
// /v1/messages bodies. A chat request's tools also go through
// both call formats: the template input, the call grammar, and the input's bytes parsed
// as a model reply.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/embeddings.h"
#include "server/request.h"
#include "grammar/grammar.h"
#include "server/messages_api.h"
#include "server/response.h"
#include "server/responses_api.h"
#include "server/tool_calls.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flashlm::server;
  const std::string body(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  if (auto e = parse_json(body, &j)) {
    (void)error_body(*e);
    return 0;
  }
  for (Endpoint ep : {Endpoint::kChat, Endpoint::kCompletion}) {
    CompletionRequest req;
    if (auto e = parse_completion_request(j, ep, &req)) {
      (void)error_body(*e);
      continue;
    }
    if (ep == Endpoint::kChat) {
      for (ToolFormat f : {ToolFormat::kHermes, ToolFormat::kLlama3, ToolFormat::kMistral, ToolFormat::kGeneric}) {
        (void)tool_chat_input(req.messages, req.tools, f);
        if (auto g = tool_call_gbnf(req.tools, f); g && !g->empty()) (void)flashlm::grammar::parse_gbnf(*g);
        (void)tool_calls_json(parse_tool_output(body, req.tools, f).calls);
      }
    }
    ChunkChoice c;
    c.text = body;  // any bytes, valid UTF-8 or not
    (void)chunk_json(ResponseMeta{ep, "id", 0, req.model, ""}, c, req.include_usage);
  }
  // The Responses and Messages APIs, which rewrite the body into a chat request.
  {
    CompletionRequest req;
    ResponsesRequest meta;
    if (auto e = parse_responses_request(j, body, nlohmann::json(), &req, &meta)) (void)error_body(*e);
    CompletionRequest mreq;
    if (auto e = parse_messages_request(j, body, &mreq)) (void)anthropic_error_reply(*e);
  }
  EmbeddingRequest er;
  if (auto e = parse_embedding_request(j, &er)) {
    (void)error_body(*e);
  } else {
    EmbeddingReply rep;
    rep.vectors.assign(er.n_inputs() > 4 ? 4 : er.n_inputs(), std::vector<float>(3, 0.5f));
    (void)embeddings_body(er.base64, rep, "m");
  }
  TokenizeRequest t;
  if (auto e = parse_tokenize_request(j, &t)) (void)error_body(*e);
  DetokenizeRequest d;
  if (auto e = parse_detokenize_request(j, &d)) (void)error_body(*e);
  (void)is_valid_utf8(body);
  return 0;
}
