#include "hf/hf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/gguf_writer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/vocab.h"

namespace flashlm::hf {
namespace {

namespace fs = std::filesystem;

Result<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::error("cannot read '" + p.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// chat_template.jinja first (transformers' current layout), else tokenizer_config.json's
// "chat_template" when it is one string; empty when neither has one.
Result<std::string> chat_template(const fs::path& dir) {
  if (fs::exists(dir / "chat_template.jinja")) return read_text(dir / "chat_template.jinja");
  if (!fs::exists(dir / "tokenizer_config.json")) return std::string();
  Result<std::string> text = read_text(dir / "tokenizer_config.json");
  if (!text) return text.status();
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::error("'" + (dir / "tokenizer_config.json").string() + "' is not a JSON object");
  if (!j.contains("chat_template") || j["chat_template"].is_null()) return std::string();
  if (!j["chat_template"].is_string()) {
    return Status::error("'" + (dir / "tokenizer_config.json").string() +
                         "': a list of named chat templates is not supported (one string expected)");
  }
  return j["chat_template"].get<std::string>();
}

}  // namespace

Result<std::vector<std::pair<std::string, gguf::Value>>> tokenizer_keys(const std::string& dir_path) {
  const fs::path dir(dir_path);
  Result<tok::Vocab> vr = tok::vocab_from_tokenizer_json_file((dir / "tokenizer.json").string());
  if (!vr) return vr.status();
  const tok::Vocab& v = *vr;
  // A SentencePiece-style BPE file ranks its merges; GGUF's "llama" tokenizer merges by
  // token score, which a tokenizer.json does not have, so writing zeros would tokenize
  // differently. Byte-level BPE's merges carry over as they are.
  if (v.kind != tok::VocabKind::kBpe) {
    return Status::error("'" + (dir / "tokenizer.json").string() +
                         "': only byte-level BPE tokenizers can be written as GGUF tokenizer keys yet "
                         "(SentencePiece-style merge ranks have no GGUF scores)");
  }
  std::vector<std::pair<std::string, gguf::Value>> keys;
  keys.emplace_back("tokenizer.ggml.model", gguf::make_string("gpt2"));
  keys.emplace_back("tokenizer.ggml.pre", gguf::make_string(v.pre_name));
  keys.emplace_back("tokenizer.ggml.tokens", gguf::make_string_array(v.tokens));
  std::vector<int64_t> types(v.types.size());
  for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int64_t>(v.types[i]);
  keys.emplace_back("tokenizer.ggml.token_type", gguf::make_i32_array(std::move(types)));
  if (!v.merges.empty()) keys.emplace_back("tokenizer.ggml.merges", gguf::make_string_array(v.merges));
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", v.bos},
                                                 {"tokenizer.ggml.eos_token_id", v.eos},
                                                 {"tokenizer.ggml.unknown_token_id", v.unk},
                                                 {"tokenizer.ggml.padding_token_id", v.pad}};
  for (const auto& [k, id] : ids) {
    if (id != tok::kNoToken) keys.emplace_back(k, gguf::make_u32(static_cast<uint32_t>(id)));
  }
  keys.emplace_back("tokenizer.ggml.add_bos_token", gguf::make_bool(v.add_bos));
  keys.emplace_back("tokenizer.ggml.add_eos_token", gguf::make_bool(v.add_eos));
  Result<std::string> tmpl = chat_template(dir);
  if (!tmpl) return tmpl.status();
  if (!tmpl->empty()) keys.emplace_back("tokenizer.chat_template", gguf::make_string(std::move(tmpl.value())));
  return keys;
}

}  // namespace flashlm::hf
