#include "server/embeddings.h"

#include <algorithm>
#include <cstring>

#include "server/request_fields.h"
#include "server/response.h"

namespace flashlm::server {
namespace {

using json = nlohmann::json;
using Err = std::optional<ApiError>;

// Tokens per encoder pass: big enough that the matmuls run at full speed, small enough
// that activations stay in tens of MB (8192 x 1536 floats for MiniLM's FFN: 50 MB).
constexpr int64_t kPassTokens = 8192;
// Requests taken into one batch: up to this many inputs, however many requests.
constexpr size_t kBatchInputs = 256;

std::string base64_encode(const void* data, size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < n) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Err parse_input(const json& body, EmbeddingRequest* out) {
  const json* in = field(body, "input");
  if (in == nullptr) return ApiError::invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter");
  if (in->is_string()) {
    out->texts.push_back(in->get<std::string>());
    return std::nullopt;
  }
  if (!in->is_array()) return type_error("input", "a string, an array of strings or an array of token ids", *in);
  if (in->empty()) return value_error("input", "empty array. Expected at least one input.");
  const json& first = (*in)[0];
  if (first.is_number_integer()) {  // one input of token ids
    out->token_inputs.emplace_back();
    return parse_token_array(*in, "input", &out->token_inputs.back());
  }
  if (in->size() > kMaxEmbeddingInputs) {
    return value_error("input", "at most " + std::to_string(kMaxEmbeddingInputs) + " inputs per request, got " +
                                    std::to_string(in->size()) + ".");
  }
  out->listed = true;
  for (size_t i = 0; i < in->size(); ++i) {
    const json& v = (*in)[i];
    const std::string p = "input[" + std::to_string(i) + "]";
    if (first.is_string()) {
      if (!v.is_string()) return type_error(p, "a string (as input[0])", v);
      out->texts.push_back(v.get<std::string>());
    } else if (first.is_array()) {
      if (!v.is_array()) return type_error(p, "an array of token ids (as input[0])", v);
      out->token_inputs.emplace_back();
      if (Err e = parse_token_array(v, p, &out->token_inputs.back())) return e;
    } else {
      return type_error(p, "a string, an array of token ids or a token id", v);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_embedding_request(const json& body, EmbeddingRequest* out) {
  if (!body.is_object()) return ApiError::invalid("The request body must be a JSON object.");
  if (Err e = parse_input(body, out)) return e;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) return type_error("model", "a string", *m);
    out->model = m->get<std::string>();
  }
  if (const json* u = field(body, "user"); u != nullptr && !u->is_string()) return type_error("user", "a string", *u);
  if (const json* f = field(body, "encoding_format")) {
    if (!f->is_string()) return type_error("encoding_format", "a string", *f);
    const std::string fmt = f->get<std::string>();
    if (fmt != "float" && fmt != "base64") {
      return value_error("encoding_format", "'" + fmt + "' is not one of 'float' and 'base64'.");
    }
    out->base64 = fmt == "base64";
  }
  if (const json* d = field(body, "dimensions")) {
    if (!d->is_number_integer()) return type_error("dimensions", "an integer", *d);
    if (d->get<int64_t>() < 1) return value_error("dimensions", "must be at least 1.");
    out->dimensions = d->get<int64_t>();
  }
  if (const json* t = field(body, "truncate")) {
    if (!t->is_boolean()) return type_error("truncate", "a boolean", *t);
    out->truncate = t->get<bool>();
  }
  return std::nullopt;
}

std::string embeddings_body(bool base64, const EmbeddingReply& reply, const std::string& model_id) {
  ojson data = ojson::array();
  for (size_t i = 0; i < reply.vectors.size(); ++i) {
    const std::vector<float>& v = reply.vectors[i];
    ojson item = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      item["embedding"] = base64_encode(v.data(), v.size() * sizeof(float));  // little-endian hosts only (x86, ARM)
    } else {
      item["embedding"] = v;
    }
    data.push_back(std::move(item));
  }
  return dump(ojson{{"object", "list"},
                    {"data", std::move(data)},
                    {"model", model_id},
                    {"usage", {{"prompt_tokens", reply.prompt_tokens}, {"total_tokens", reply.prompt_tokens}}}});
}

EmbeddingService::EmbeddingService(embed::Encoder encoder, int n_threads, size_t max_queue)
    : encoder_(std::move(encoder)), pool_(n_threads), max_queue_(max_queue), thread_([this] { loop(); }) {}

EmbeddingService::~EmbeddingService() { stop(false); }

void EmbeddingService::submit(EmbeddingRequest req, Done done) {
  EmbeddingReply r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && queue_.size() < max_queue_) {
      queue_.push_back({std::move(req), std::move(done)});
      cv_.notify_one();
      return;
    }
    r.error = stopping_ ? ApiError::of(503, "server_error", "The server is shutting down.", "shutting_down")
                        : ApiError::of(429, "rate_limit_error",
                                       "Too many embedding requests are waiting (" + std::to_string(max_queue_) +
                                           "); retry shortly.",
                                       "queue_full");
  }
  done(std::move(r));
}

void EmbeddingService::stop(bool drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) drain_ = drain;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void EmbeddingService::loop() {
  for (;;) {
    std::vector<Job> jobs;
    bool refuse = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      refuse = stopping_ && !drain_;
      size_t inputs = 0;
      while (!queue_.empty() && (jobs.empty() || refuse || inputs + queue_.front().req.n_inputs() <= kBatchInputs)) {
        inputs += queue_.front().req.n_inputs();
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (refuse) {
      for (Job& j : jobs) {
        EmbeddingReply r;
        r.error = ApiError::of(503, "server_error", "The server is shutting down.", "shutting_down");
        j.done(std::move(r));
      }
      continue;
    }
    run_batch(jobs);
  }
}

void EmbeddingService::run_batch(std::vector<Job>& jobs) {
  const embed::Encoder& enc = encoder_;
  const int64_t max = enc.max_tokens();
  const int64_t vocab = enc.config().vocab_size;
  std::vector<EmbeddingReply> replies(jobs.size());
  // Every input of every request without an error, in order: (job, input) -> tokens.
  struct Item {
    size_t job, input;
  };
  std::vector<Item> items;
  std::vector<std::vector<int32_t>> seqs;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const EmbeddingRequest& req = jobs[j].req;
    EmbeddingReply& rep = replies[j];
    if (req.dimensions != 0 && req.dimensions != enc.dim()) {
      rep.error = ApiError::invalid("Invalid 'dimensions': model '" + model_id() + "' gives " +
                                        std::to_string(enc.dim()) + " dimensions and cannot shorten them.",
                                    "dimensions", "unsupported_value");
      continue;
    }
    const size_t first_item = items.size();
    for (size_t i = 0; i < req.n_inputs() && !rep.error; ++i) {
      const std::string param = req.listed ? "input[" + std::to_string(i) + "]" : "input";
      std::vector<int32_t> ids;
      if (!req.texts.empty()) {
        ids = enc.tokenize(req.texts[i], /*truncate=*/false);
      } else {
        ids = req.token_inputs[i];
        if (ids.empty()) {
          rep.error = ApiError::invalid("Invalid '" + param + "': empty array of token ids.", param, "invalid_value");
          break;
        }
        for (int32_t id : ids) {
          if (id >= vocab) {
            rep.error = ApiError::invalid("Invalid '" + param + "': token id " + std::to_string(id) +
                                              " is not below the vocabulary size " + std::to_string(vocab) + ".",
                                          param, "invalid_value");
            break;
          }
        }
        if (rep.error) break;
      }
      if (ids.empty()) {  // a tokenizer without special tokens, on text it drops entirely
        rep.error = ApiError::invalid("Invalid '" + param + "': the text has no tokens.", param, "invalid_value");
        break;
      }
      if (static_cast<int64_t>(ids.size()) > max) {
        if (!req.truncate) {
          rep.error = ApiError::invalid("Invalid '" + param + "': " + std::to_string(ids.size()) +
                                            " tokens, more than the " + std::to_string(max) + " model '" + model_id() +
                                            "' takes (send \"truncate\": true to cut it).",
                                        param, "context_length_exceeded");
          break;
        }
        ids = enc.cut(std::move(ids));
      }
      rep.prompt_tokens += static_cast<int64_t>(ids.size());
      items.push_back({j, i});
      seqs.push_back(std::move(ids));
    }
    if (rep.error) {  // the request's earlier inputs are not run
      items.resize(first_item);
      seqs.resize(first_item);
    } else {
      rep.vectors.resize(req.n_inputs());
    }
  }
  // Passes of at most kPassTokens tokens (one input may be a pass alone).
  for (size_t b = 0; b < seqs.size();) {
    size_t e = b;
    int64_t tokens = 0;
    while (e < seqs.size() && (e == b || tokens + static_cast<int64_t>(seqs[e].size()) <= kPassTokens)) {
      tokens += static_cast<int64_t>(seqs[e].size());
      ++e;
    }
    const std::vector<std::vector<int32_t>> part(std::make_move_iterator(seqs.begin() + static_cast<std::ptrdiff_t>(b)),
                                                 std::make_move_iterator(seqs.begin() + static_cast<std::ptrdiff_t>(e)));
    Result<std::vector<std::vector<float>>> out = enc.embed(part, pool_);
    for (size_t k = b; k < e; ++k) {
      EmbeddingReply& rep = replies[items[k].job];
      if (!out) {
        if (!rep.error) rep.error = ApiError::of(500, "server_error", "Embedding failed: " + out.status().message());
        continue;
      }
      rep.vectors[items[k].input] = std::move((*out)[k - b]);
    }
    b = e;
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (replies[j].error) replies[j].vectors.clear();
    jobs[j].done(std::move(replies[j]));
  }
}

}  // namespace flashlm::server
