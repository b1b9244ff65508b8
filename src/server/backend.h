// What the HTTP layer needs from a loaded model: text <-> tokens, the chat template and
// the continuous-batching scheduler. ModelBackend is the real one; tests plug in fakes,
// so the server is tested without a model.
//
// Thread safety: every method may be called from the server's I/O thread while the
// scheduler thread runs; submit()'s callback runs on the scheduler thread.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/scheduler.h"
#include "models/lora.h"
#include "server/tool_calls.h"
#include "util/status.h"

namespace flashlm::server {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const std::string& model_id() const = 0;
  virtual int64_t n_ctx() const = 0;
  virtual int32_t n_vocab() const = 0;

  // Raw text, as llama.cpp tokenizes a completion prompt.
  virtual std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const = 0;
  // Messages ([{"role", "content", ...}], as tool_chat_input writes them) through the chat
  // template, with `tools` as its tools variable unless null, then tokens.
  virtual Result<std::vector<int32_t>> chat_tokens(const nlohmann::ordered_json& messages,
                                                   const nlohmann::ordered_json& tools) const = 0;
  // How this model's template writes tool calls (server/tool_calls.h).
  virtual ToolFormat tool_format() const { return ToolFormat::kGeneric; }
  // Bytes of the tokens (not necessarily valid UTF-8), and of one token.
  virtual std::string detokenize(const std::vector<int32_t>& tokens) const = 0;
  virtual std::string token_piece(int32_t token) const = 0;
  // Text of the end-of-sequence and beginning-of-sequence tokens; "" when there is none.
  virtual std::string eos_text() const { return ""; }
  virtual std::string bos_text() const { return ""; }

  virtual SubmitResult submit(RequestOptions req, EventFn on_event) = 0;
  virtual void cancel(uint64_t id) = 0;
  // Blocks until the scheduler has stopped (drained, or with everything cancelled).
  virtual void stop(bool drain) = 0;
  virtual SchedulerStats stats() const = 0;

  // The prefix cache (Scheduler::warm / unpin / cache_stats). A backend without one
  // refuses warm() and reports zeros.
  virtual SubmitResult warm(std::vector<int32_t> tokens, EventFn on_done) {
    (void)tokens;
    (void)on_done;
    return SubmitResult{0, SubmitError::kInvalid, "this backend has no prefix cache"};
  }
  virtual void unpin(std::vector<int32_t> tokens) { (void)tokens; }
  virtual CacheStats cache_stats() const { return {}; }
};

// Loads the GGUF model on the compute backend `compute` with its LoRA adapters, its
// tokenizer and chat template, and starts a Scheduler; `weights` as Model::load.
Result<std::unique_ptr<Backend>> load_model_backend(const std::string& path, const SchedulerOptions& opts,
                                                    BackendKind compute = BackendKind::kCpu,
                                                    const std::vector<LoraSpec>& loras = {},
                                                    FileBacking weights = FileBacking::kAuto);

}  // namespace flashlm::server
