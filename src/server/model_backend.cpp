// The real Backend: a GGUF model, its tokenizer and chat template, and a Scheduler.
#include <filesystem>

#include "chat/builtin_templates.h"
#include "chat/chat_template.h"
#include "server/backend.h"
#include "tokenizer/tokenizer.h"

namespace flashlm::server {
namespace {

class ModelBackend final : public Backend {
 public:
  ModelBackend(std::unique_ptr<Model> model, std::unique_ptr<tok::Tokenizer> tok, Result<chat::ChatTemplate> tmpl,
               std::string id)
      : model_(std::move(model)), tok_(std::move(tok)), tmpl_(std::move(tmpl)), id_(std::move(id)) {
    bos_ = tok_->bos() >= 0 ? tok_->token_text(tok_->bos()) : "";
    tool_format_ = tmpl_ ? tool_format_of(tmpl_->source()) : ToolFormat::kGeneric;
    eos_ = tok_->eos() >= 0 ? tok_->token_text(tok_->eos()) : "";
  }
  ~ModelBackend() override {
    if (sched_) sched_->stop(false);
  }

  Status start(const SchedulerOptions& opts) {
    Result<std::unique_ptr<Scheduler>> s = Scheduler::create(*model_, *tok_, opts);
    if (!s) return s.status();
    sched_ = std::move(s.value());
    return Status::ok();
  }

  const std::string& model_id() const override { return id_; }
  int64_t n_ctx() const override { return sched_->n_ctx(); }
  int32_t n_vocab() const override { return tok_->n_vocab(); }

  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    return tok_->encode(text, add_special, parse_special);
  }

  Result<std::vector<int32_t>> chat_tokens(const nlohmann::ordered_json& messages,
                                           const nlohmann::ordered_json& tools) const override {
    nlohmann::ordered_json context = {{"messages", messages},
                                      {"add_generation_prompt", true},
                                      {"bos_token", bos_},
                                      {"eos_token", eos_}};
    if (!tools.is_null()) context["tools"] = tools;
    if (!tmpl_) return tmpl_.status();
    Result<std::string> text = tmpl_->render_ordered(context);
    if (!text) return text.status();  // already says "chat template"
    // The template's text has its special tokens parsed; BOS is added only if the
    // template did not write it (as `flashlm run --chat` does).
    const bool add_special = bos_.empty() || text->compare(0, bos_.size(), bos_) != 0;
    return tok_->encode(*text, add_special, /*parse_special=*/true);
  }

  ToolFormat tool_format() const override { return tool_format_; }

  std::string detokenize(const std::vector<int32_t>& tokens) const override { return tok_->decode(tokens); }
  std::string token_piece(int32_t token) const override { return tok_->token_to_piece(token); }
  std::string eos_text() const override { return eos_; }
  std::string bos_text() const override { return bos_; }

  SubmitResult submit(RequestOptions req, EventFn on_event) override {
    return sched_->submit(std::move(req), std::move(on_event));
  }
  void cancel(uint64_t id) override { sched_->cancel(id); }
  void stop(bool drain) override { sched_->stop(drain); }
  SchedulerStats stats() const override { return sched_->stats(); }
  SubmitResult warm(std::vector<int32_t> tokens, EventFn on_done) override {
    return sched_->warm(std::move(tokens), std::move(on_done));
  }
  void unpin(std::vector<int32_t> tokens) override { sched_->unpin(std::move(tokens)); }
  CacheStats cache_stats() const override { return sched_->cache_stats(); }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<tok::Tokenizer> tok_;
  Result<chat::ChatTemplate> tmpl_;  // an error here only fails chat requests
  std::string id_, bos_, eos_;
  ToolFormat tool_format_ = ToolFormat::kGeneric;  // read from the template once
  std::unique_ptr<Scheduler> sched_;  // last: stopped before the model goes away
};

// The file's template, else the family's built-in one. A model without either still
// serves /v1/completions.
Result<chat::ChatTemplate> load_template(const Model& model) {
  Result<std::string> file_tmpl = model.file().get_string_or("tokenizer.chat_template", "");
  std::string source;
  if (file_tmpl && !file_tmpl->empty()) {
    source = *file_tmpl;
  } else if (const char* builtin = chat::builtin_template(model.config().arch)) {
    source = builtin;
  } else {
    return Status::error("the model has no chat template (tokenizer.chat_template) and no built-in one exists for '" +
                         model.config().arch + "'");
  }
  Result<chat::ChatTemplate> tmpl = chat::ChatTemplate::parse(source);
  if (!tmpl) return tmpl.status().with_context("chat template");
  return tmpl;
}

}  // namespace

Result<std::unique_ptr<Backend>> load_model_backend(const std::string& path, const SchedulerOptions& opts,
                                                    BackendKind compute, const std::vector<LoraSpec>& loras,
                                                    FileBacking weights) {
  Result<std::unique_ptr<Model>> m = Model::load(path, compute, loras, weights);
  if (!m) return m.status();
  std::unique_ptr<Model> model = std::move(m.value());
  Result<tok::Tokenizer> t = tok::Tokenizer::from_gguf(model->file());
  if (!t) return t.status().with_context("'" + path + "'");
  auto tok = std::make_unique<tok::Tokenizer>(std::move(t.value()));

  Result<chat::ChatTemplate> tmpl = load_template(*model);
  const std::string id = std::filesystem::path(path).stem().string();
  auto backend = std::make_unique<ModelBackend>(std::move(model), std::move(tok), std::move(tmpl), id);
  if (Status st = backend->start(opts); !st) return st;
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace flashlm::server
