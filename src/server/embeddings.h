// POST /v1/embeddings: OpenAI's request (input as a string, strings, token ids or lists
// of token ids; encoding_format float or base64; dimensions; user) parsed and checked,
// and the EmbeddingService that computes them on an encoder model (embed/encoder.h) on a
// thread of its own. The service batches: every request waiting when it starts a pass is
// tokenized and run through the encoder together (many inputs per forward pass, no
// padding), a bounded number of tokens at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "embed/encoder.h"
#include "server/api_error.h"

namespace flashlm::server {

struct EmbeddingRequest {
  std::vector<std::string> texts;                  // input as text, or
  std::vector<std::vector<int32_t>> token_inputs;  // input as token ids
  bool base64 = false;    // encoding_format "base64": little-endian float32 bytes
  int64_t dimensions = 0;  // 0: the model's own
  bool truncate = false;  // flashlm's extension: cut long inputs as sentence-transformers does
  bool listed = false;    // input was a list of inputs (errors name input[i], not input)
  std::string model;      // as sent ("" when absent); any name but the chat model's is the embedding model
  size_t n_inputs() const { return texts.empty() ? token_inputs.size() : texts.size(); }
};

// At most this many inputs per request (OpenAI's limit).
constexpr size_t kMaxEmbeddingInputs = 2048;

std::optional<ApiError> parse_embedding_request(const nlohmann::json& body, EmbeddingRequest* out);

struct EmbeddingReply {
  std::optional<ApiError> error;  // set: nothing else is
  std::vector<std::vector<float>> vectors;
  int64_t prompt_tokens = 0;
};

// The response body: {"object":"list","data":[{"object":"embedding","index":i,
// "embedding":[...] or "base64"}],"model":...,"usage":{...}}.
std::string embeddings_body(bool base64, const EmbeddingReply& reply, const std::string& model_id);

class EmbeddingService {
 public:
  using Done = std::function<void(EmbeddingReply)>;

  // Starts the service's thread; `n_threads` for its own thread pool; at most `max_queue`
  // requests wait (more get a 429).
  EmbeddingService(embed::Encoder encoder, int n_threads, size_t max_queue);
  ~EmbeddingService();  // stop(false)
  EmbeddingService(const EmbeddingService&) = delete;
  EmbeddingService& operator=(const EmbeddingService&) = delete;

  const std::string& model_id() const { return encoder_.name(); }
  const embed::Encoder& encoder() const { return encoder_; }

  // Thread-safe. `done` runs exactly once: on the service's thread, or at once on the
  // caller's with a 503 when the service is stopping or a 429 when the queue is full.
  void submit(EmbeddingRequest req, Done done);
  // Blocks until the thread has ended: with drain, after the queued requests are
  // answered; without, they are answered with a 503.
  void stop(bool drain);

 private:
  struct Job {
    EmbeddingRequest req;
    Done done;
  };
  void loop();
  void run_batch(std::vector<Job>& jobs);

  embed::Encoder encoder_;
  ThreadPool pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t max_queue_;
  bool stopping_ = false;
  bool drain_ = true;
  std::thread thread_;
};

}  // namespace flashlm::server
