#include "embed/sentence_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace flashlm::embed {
namespace {

using nlohmann::json;

// A JSON file whose top level is an object (or an array, when `array`).
Result<json> read_json(const std::filesystem::path& path, bool array = false) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot open " + path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  json j = json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || (array ? !j.is_array() : !j.is_object())) {
    return Status::error(path.string() + (array ? ": not a JSON array" : ": not a JSON object"));
  }
  return j;
}

// The Pooling module's config.json: exactly one mode on.
Result<Pooling> read_pooling(const std::filesystem::path& path) {
  Result<json> j = read_json(path);
  if (!j) return j.status();
  const std::pair<const char*, Pooling> modes[] = {{"pooling_mode_cls_token", Pooling::kCls},
                                                   {"pooling_mode_mean_tokens", Pooling::kMean},
                                                   {"pooling_mode_max_tokens", Pooling::kMax},
                                                   {"pooling_mode_mean_sqrt_len_tokens", Pooling::kMeanSqrtLen},
                                                   {"pooling_mode_lasttoken", Pooling::kLastToken}};
  int on = 0;
  Pooling p = Pooling::kMean;
  for (const auto& [key, mode] : modes) {
    if (j->value(key, false)) {
      ++on;
      p = mode;
    }
  }
  for (const char* key : {"pooling_mode_weightedmean_tokens"}) {
    if (j->value(key, false)) return Status::error(path.string() + ": '" + key + "' is not supported");
  }
  if (on != 1) {
    return Status::error(path.string() + ": " + std::to_string(on) +
                         " pooling modes are on; exactly one is supported (their concatenation is not)");
  }
  return p;
}

Result<int64_t> positive(const json& j, const char* key, const std::string& origin, int64_t limit) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return Status::error(origin + ": '" + key + "' must be an integer");
  const int64_t v = it->get<int64_t>();
  if (v < 1 || v > limit) {
    return Status::error(origin + ": '" + key + "' = " + std::to_string(v) + " is out of range [1, " +
                         std::to_string(limit) + "]");
  }
  return v;
}

}  // namespace

static Result<BertConfig> bert_config_impl(const std::string& dir) {
  const std::filesystem::path path = std::filesystem::path(dir) / "config.json";
  Result<json> j = read_json(path);
  if (!j) return j.status();
  const std::string origin = path.string();
  const std::string type = j->value("model_type", std::string());
  if (type != "bert") {
    return Status::error(origin + ": model_type '" + type +
                         "' is not supported for embeddings (supported: bert, the family of all-MiniLM, bge, e5)");
  }
  const std::string act = j->value("hidden_act", std::string("gelu"));
  if (act != "gelu") return Status::error(origin + ": hidden_act '" + act + "' is not supported (supported: gelu)");
  const std::string pos = j->value("position_embedding_type", std::string("absolute"));
  if (pos != "absolute") {
    return Status::error(origin + ": position_embedding_type '" + pos + "' is not supported (supported: absolute)");
  }
  BertConfig c;
  constexpr int64_t kBig = int64_t{1} << 24;
  const std::pair<const char*, int64_t*> fields[] = {
      {"vocab_size", &c.vocab_size},       {"hidden_size", &c.hidden},          {"num_hidden_layers", &c.n_layers},
      {"num_attention_heads", &c.n_heads}, {"intermediate_size", &c.ffn},        {"max_position_embeddings", &c.max_positions}};
  for (const auto& [key, dst] : fields) {
    Result<int64_t> v = positive(*j, key, origin, kBig);
    if (!v) return v.status();
    *dst = *v;
  }
  c.type_vocab = j->value("type_vocab_size", int64_t{2});
  if (c.type_vocab < 1 || c.type_vocab > kBig) return Status::error(origin + ": 'type_vocab_size' is out of range");
  if (c.hidden % c.n_heads != 0) {
    return Status::error(origin + ": hidden_size " + std::to_string(c.hidden) + " is not a multiple of " +
                         std::to_string(c.n_heads) + " heads");
  }
  auto eps = j->find("layer_norm_eps");
  if (eps != j->end()) {
    if (!eps->is_number() || !(eps->get<double>() > 0.0) || eps->get<double>() > 1.0) {
      return Status::error(origin + ": 'layer_norm_eps' must be a number in (0, 1]");
    }
    c.ln_eps = static_cast<float>(eps->get<double>());
  }
  return c;
}

static Result<SentenceConfig> sentence_config_impl(const std::string& dir, const BertConfig& model, bool lowercases) {
  namespace fs = std::filesystem;
  SentenceConfig s;
  s.max_tokens = model.max_positions;
  const fs::path root(dir);
  std::error_code ec;
  // Without sentence_bert_config.json's max_seq_length, sentence-transformers takes the
  // tokenizer's model_max_length when it is below the position limit.
  const fs::path tcfg = root / "tokenizer_config.json";
  if (fs::exists(tcfg, ec)) {
    Result<json> j = read_json(tcfg);
    if (!j) return j.status();
    if (const auto it = j->find("model_max_length"); it != j->end() && it->is_number_integer() &&
                                                        it->get<int64_t>() >= 1) {
      s.max_tokens = std::min(it->get<int64_t>(), model.max_positions);
    }
  }
  const fs::path sbert = root / "sentence_bert_config.json";
  if (fs::exists(sbert, ec)) {
    Result<json> j = read_json(sbert);
    if (!j) return j.status();
    if (j->contains("max_seq_length") && !(*j)["max_seq_length"].is_null()) {
      Result<int64_t> v = positive(*j, "max_seq_length", sbert.string(), int64_t{1} << 24);
      if (!v) return v.status();
      s.max_tokens = std::min(*v, model.max_positions);
    }
    // do_lower_case lowercases the text before the tokenizer: the same when the
    // tokenizer lowercases anyway, otherwise not implemented.
    if (const auto it = j->find("do_lower_case"); it != j->end() && it->is_boolean() && it->get<bool>() && !lowercases) {
      return Status::error(sbert.string() + ": do_lower_case with a tokenizer that keeps case is not supported");
    }
  }
  const fs::path modules = root / "modules.json";
  if (!fs::exists(modules, ec)) return s;
  Result<json> mods = read_json(modules, /*array=*/true);
  if (!mods) return mods.status();
  // Transformer, then Pooling, then optionally Normalize: any other module (Dense
  // projections, for one) would change the vector, so it is refused by name.
  for (const json& m : *mods) {
    const std::string type = m.is_object() ? m.value("type", std::string()) : std::string();
    const std::string sub = m.is_object() ? m.value("path", std::string()) : std::string();
    const std::string kPrefix = "sentence_transformers.models.";
    const std::string name = type.rfind(kPrefix, 0) == 0 ? type.substr(kPrefix.size()) : type;
    if (name == "Transformer") continue;
    if (name == "Normalize") {
      s.normalize = true;
      continue;
    }
    if (name == "Pooling") {
      if (sub.find("..") != std::string::npos) return Status::error(modules.string() + ": bad module path '" + sub + "'");
      Result<Pooling> p = read_pooling(root / sub / "config.json");
      if (!p) return p.status();
      s.pooling = *p;
      continue;
    }
    return Status::error(modules.string() + ": module '" + type +
                         "' is not supported (supported: Transformer, Pooling, Normalize)");
  }
  return s;
}

// nlohmann's value(key, default) throws when the key holds another type: that is an
// error naming the file, never an exception out of the loader.
Result<BertConfig> read_bert_config(const std::string& dir) {
  try {
    return bert_config_impl(dir);
  } catch (const nlohmann::json::exception& e) {
    return Status::error(dir + "/config.json: malformed: " + e.what());
  }
}

Result<SentenceConfig> read_sentence_config(const std::string& dir, const BertConfig& model, bool lowercases) {
  try {
    return sentence_config_impl(dir, model, lowercases);
  } catch (const nlohmann::json::exception& e) {
    return Status::error(dir + ": a sentence-transformers file is malformed: " + e.what());
  }
}

}  // namespace flashlm::embed
