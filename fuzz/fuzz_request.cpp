// libFuzzer target: arbitrary bytes are an HTTP request body for every endpoint the
// server parses (chat, completions, tokenize, detokenize). Parsing must end in a request
// or an ApiError, never a crash or an exception; the error body and a response chunk
// carrying the raw bytes must always serialise.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/request.h"
#include "server/response.h"

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
    ChunkChoice c;
    c.text = body;  // any bytes, valid UTF-8 or not
    (void)chunk_json(ResponseMeta{ep, "id", 0, req.model}, c, req.include_usage);
  }
  TokenizeRequest t;
  if (auto e = parse_tokenize_request(j, &t)) (void)error_body(*e);
  DetokenizeRequest d;
  if (auto e = parse_detokenize_request(j, &d)) (void)error_body(*e);
  (void)is_valid_utf8(body);
  return 0;
}
