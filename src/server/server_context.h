// State shared by the connections and handlers of one server. Lives on the I/O thread;
// only `post` may be used from other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/backend.h"
#include "server/embeddings.h"
#include "server/metrics.h"
#include "server/responses_api.h"

namespace flashlm::server {

enum class ServerState { kLoading, kReady, kDraining };

struct ServerLimits {
  size_t max_body = 8u << 20;     // request body bytes (413 beyond)
  size_t max_header = 16u << 10;  // request head bytes (431 beyond)
  size_t max_pending = 4u << 20;  // unread response bytes per client before it is dropped
  double timeout_s = 600.0;       // idle read / stalled write limit
};

struct ServerContext {
  ServerState state = ServerState::kLoading;
  Backend* backend = nullptr;  // set when ready
  EmbeddingService* embeddings = nullptr;  // the --embedding-model, when there is one (set with backend)
  Metrics metrics;
  std::string api_key;  // "" : no authentication
  std::vector<std::string> cors_origins;  // empty: CORS off; "*": any origin (server/cors.h)
  int64_t created = 0;  // Unix seconds the model became ready (/v1/models)
  std::string fingerprint;  // system_fingerprint: this build and model
  // Conversations of recent /v1/responses replies, for previous_response_id.
  std::shared_ptr<ResponseStore> responses = std::make_shared<ResponseStore>();
  ServerLimits limits;
  int64_t connections = 0;  // open connections (sessions count themselves)
  // Runs fn on the I/O thread. Thread-safe; this is how scheduler events come back.
  std::function<void(std::function<void()>)> post;
  // Runs fn on the preparation thread: chat templates and tokenizing (an 8 MiB prompt
  // takes seconds) stay off the I/O thread so they never stall other streams.
  std::function<void(std::function<void()>)> offload;
};

}  // namespace flashlm::server
