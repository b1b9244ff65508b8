#include "tokenizer/tokenizer_json.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace flashlm::tok {
namespace {

using nlohmann::json;

Status bad(const std::string& origin, const std::string& what) {
  return Status::error(origin + ": " + what);
}

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "?";
}

// A boolean field that may be absent (def) or null (null_value).
Result<bool> flag(const json& obj, const char* key, bool def, bool null_value, const std::string& origin) {
  auto it = obj.find(key);
  if (it == obj.end()) return def;
  if (it->is_null()) return null_value;
  if (!it->is_boolean()) return bad(origin, std::string("'") + key + "' must be true, false or null");
  return it->get<bool>();
}

Status read_normalizer(const json& n, Vocab& v, const std::string& origin) {
  if (n.is_null()) {
    v.wpm.clean_text = v.wpm.chinese_chars = v.wpm.strip_accents = v.wpm.lowercase = false;
    return Status::ok();
  }
  if (type_of(n) != "BertNormalizer") {
    return bad(origin, "normalizer '" + type_of(n) + "' is not supported (supported: BertNormalizer, none)");
  }
  Result<bool> clean = flag(n, "clean_text", true, true, origin);
  Result<bool> cjk = flag(n, "handle_chinese_chars", true, true, origin);
  Result<bool> lower = flag(n, "lowercase", true, true, origin);
  if (!clean) return clean.status();
  if (!cjk) return cjk.status();
  if (!lower) return lower.status();
  // strip_accents: null means "as lowercase", as in tokenizers.
  Result<bool> strip = flag(n, "strip_accents", *lower, *lower, origin);
  if (!strip) return strip.status();
  v.wpm.clean_text = *clean;
  v.wpm.chinese_chars = *cjk;
  v.wpm.lowercase = *lower;
  v.wpm.strip_accents = *strip;
  return Status::ok();
}

// The special token ids the post-processor puts around a single sequence.
Status read_post_processor(const json& p, Vocab& v, const std::string& origin) {
  if (p.is_null()) return Status::ok();
  const std::string type = type_of(p);
  auto token_id = [&](const json& pair, const char* what) -> Result<int32_t> {
    if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer() || pair[1].get<int64_t>() < 0 ||
        pair[1].get<int64_t>() >= v.n_vocab()) {
      return bad(origin, std::string("post_processor '") + what + "' must be [text, id] with an id in the vocab");
    }
    return static_cast<int32_t>(pair[1].get<int64_t>());
  };
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    Result<int32_t> cls = token_id(p.value("cls", json()), "cls");
    Result<int32_t> sep = token_id(p.value("sep", json()), "sep");
    if (!cls) return cls.status();
    if (!sep) return sep.status();
    v.bos = *cls;
    v.eos = *sep;
  } else if (type == "TemplateProcessing") {
    const json single = p.value("single", json());
    const json specials = p.value("special_tokens", json());
    if (!single.is_array() || !specials.is_object()) {
      return bad(origin, "TemplateProcessing needs 'single' (array) and 'special_tokens' (object)");
    }
    // [Special X]? Sequence A [Special Y]?: anything else (two tokens on one side, type
    // ids other than 0 mattering) is refused.
    std::vector<int32_t> before, after;
    bool seen_sequence = false;
    for (const json& piece : single) {
      if (piece.contains("Sequence")) {
        if (seen_sequence) return bad(origin, "TemplateProcessing 'single' names the sequence twice");
        seen_sequence = true;
        continue;
      }
      if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id") ||
          !piece["SpecialToken"]["id"].is_string()) {
        return bad(origin, "TemplateProcessing 'single' holds an entry that is neither Sequence nor SpecialToken");
      }
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      auto it = specials.find(name);
      if (it == specials.end() || !it->is_object() || !it->contains("ids") || !(*it)["ids"].is_array() ||
          (*it)["ids"].size() != 1 || !(*it)["ids"][0].is_number_integer() || (*it)["ids"][0].get<int64_t>() < 0 ||
          (*it)["ids"][0].get<int64_t>() >= v.n_vocab()) {
        return bad(origin, "TemplateProcessing special token '" + name + "' must map to exactly one id in the vocab");
      }
      (seen_sequence ? after : before).push_back(static_cast<int32_t>((*it)["ids"][0].get<int64_t>()));
    }
    if (!seen_sequence || before.size() > 1 || after.size() > 1) {
      return bad(origin,
                 "TemplateProcessing 'single' must be [special]? $A [special]? (one token at most on each side)");
    }
    if (!before.empty()) v.bos = before[0];
    if (!after.empty()) v.eos = after[0];
  } else {
    return bad(origin, "post_processor '" + type +
                           "' is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, none)");
  }
  v.add_bos = v.bos != kNoToken;
  v.add_eos = v.eos != kNoToken;
  return Status::ok();
}

}  // namespace

// The reader proper; its caller turns nlohmann exceptions into errors.
static Result<Vocab> read_tokenizer_json(std::string_view json_text, const std::string& origin) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad(origin, "not a JSON object");
  const json model = j.value("model", json());
  const std::string model_type = type_of(model);
  if (model_type != "WordPiece") {
    return bad(origin, "tokenizer model '" + model_type + "' is not supported yet (supported: WordPiece)");
  }
  Vocab v;
  v.kind = VocabKind::kWpm;
  v.pre_name = "bert";
  const json vocab = model.value("vocab", json());
  if (!vocab.is_object() || vocab.empty()) return bad(origin, "model.vocab must be a non-empty object");
  if (vocab.size() > (1u << 24)) return bad(origin, "model.vocab has more than 16M entries");
  v.tokens.assign(vocab.size(), std::string());
  std::vector<bool> filled(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) return bad(origin, "model.vocab['" + it.key() + "'] is not an integer id");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || filled[static_cast<size_t>(id)]) {
      return bad(origin, "model.vocab ids must be 0..n-1, each once (bad id " + std::to_string(id) + ")");
    }
    v.tokens[static_cast<size_t>(id)] = it.key();
    filled[static_cast<size_t>(id)] = true;
  }
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  size_t longest = 1;
  for (const std::string& t : v.tokens) longest = std::max(longest, t.size());
  v.wpm.max_token_bytes = static_cast<int32_t>(std::min<size_t>(longest, 1u << 30));
  v.scores.assign(v.tokens.size(), 0.0f);

  const json prefix = model.value("continuing_subword_prefix", json("##"));
  const json max_chars = model.value("max_input_chars_per_word", json(100));
  if (!prefix.is_string() || !max_chars.is_number_integer() || max_chars.get<int64_t>() < 1 ||
      max_chars.get<int64_t>() > (1 << 20)) {
    return bad(origin, "model.continuing_subword_prefix must be a string and max_input_chars_per_word a positive integer");
  }
  v.wpm.prefix = prefix.get<std::string>();
  v.wpm.max_chars_per_word = static_cast<int32_t>(max_chars.get<int64_t>());
  const json unk = model.value("unk_token", json());
  if (!unk.is_string()) return bad(origin, "model.unk_token must be a string");
  auto unk_it = vocab.find(unk.get<std::string>());
  if (unk_it == vocab.end()) return bad(origin, "model.unk_token '" + unk.get<std::string>() + "' is not in the vocab");
  v.unk = unk_it->get<int32_t>();
  v.types[static_cast<size_t>(v.unk)] = TokenType::kUnknown;

  const json added = j.value("added_tokens", json::array());
  if (!added.is_array()) return bad(origin, "added_tokens must be an array");
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string()) {
      return bad(origin, "an added_tokens entry needs an integer 'id' and a string 'content'");
    }
    const int64_t id = a["id"].get<int64_t>();
    const std::string content = a["content"].get<std::string>();
    if (id < 0 || id >= v.n_vocab() || v.tokens[static_cast<size_t>(id)] != content) {
      return bad(origin, "added token '" + content + "' (id " + std::to_string(id) + ") is not that vocab entry");
    }
    for (const char* k : {"single_word", "lstrip", "rstrip", "normalized"}) {
      if (a.value(k, false)) {
        return bad(origin, "added token '" + content + "' sets '" + k + "', which is not supported");
      }
    }
    if (id == v.unk) continue;
    v.types[static_cast<size_t>(id)] = a.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
  }

  if (Status st = read_normalizer(j.value("normalizer", json()), v, origin); !st) return st;
  const json pre = j.value("pre_tokenizer", json());
  if (type_of(pre) != "BertPreTokenizer") {
    return bad(origin, "pre_tokenizer '" + type_of(pre) + "' is not supported with WordPiece (supported: BertPreTokenizer)");
  }
  if (Status st = read_post_processor(j.value("post_processor", json()), v, origin); !st) return st;
  // Pieces decode with a leading space; the first one's is dropped, as SPM's prefix is.
  v.add_space_prefix = true;
  if (Status st = vocab_finalize(v); !st) return bad(origin, st.message());
  return v;
}

Result<Vocab> vocab_from_tokenizer_json(std::string_view json_text, const std::string& origin) {
  // nlohmann's value(key, default) throws when the key holds another type: that, like
  // every other malformed field, is an error, never an exception out of the reader.
  try {
    return read_tokenizer_json(json_text, origin);
  } catch (const nlohmann::json::exception& e) {
    return bad(origin, std::string("malformed: ") + e.what());
  }
}

Result<Vocab> vocab_from_tokenizer_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in.good() && !in.eof()) return Status::error("cannot read " + path);
  return vocab_from_tokenizer_json(buf.str(), path);
}

}  // namespace flashlm::tok
