#include "tokenizer/tokenizer_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

using nlohmann::json;

constexpr const char kSpmSpace[] = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
constexpr size_t kMaxEntries = size_t{1} << 24;     // vocab and merges (ranks stay exact in a float)

Status bad(const std::string& origin, const std::string& what) {
  return Status::error(origin + ": " + what);
}

// A member by reference (null when absent or `obj` is no object): value() would copy,
// and the vocab and merges of a large model are hundreds of thousands of nodes.
const json& field(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
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

// Text -> id over the model's own vocabulary (ids below n_model), which is what merges
// and the model's unk_token may name; views into Vocab::tokens.
using TokenIndex = std::unordered_map<std::string_view, int32_t>;

TokenIndex index_tokens(const Vocab& v, int32_t n_model) {
  TokenIndex index;
  index.reserve(static_cast<size_t>(n_model));
  for (int32_t i = 0; i < n_model; ++i) index.emplace(v.tokens[static_cast<size_t>(i)], i);
  return index;
}

// model.vocab: token -> id, the ids 0..n-1 each once.
Status read_vocab(const json& model, Vocab& v, const std::string& origin) {
  const json& vocab = field(model, "vocab");
  if (!vocab.is_object() || vocab.empty()) return bad(origin, "model.vocab must be a non-empty object");
  if (vocab.size() > kMaxEntries) return bad(origin, "model.vocab has more than 16M entries");
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
  v.scores.assign(v.tokens.size(), 0.0f);
  return Status::ok();
}

// added_tokens: each is either the model's own entry (same id, same text) or extends the
// vocabulary past it, with the next id in list order (as tokenizers numbers them). Special
// ones become control tokens, the others user-defined; the model's unknown token keeps
// its type.
Status read_added_tokens(const json& j, Vocab& v, const TokenIndex& index, const std::string& origin) {
  v.hf_rules = true;
  const json& added = field(j, "added_tokens");
  if (added.is_null()) return Status::ok();
  if (!added.is_array()) return bad(origin, "added_tokens must be an array");
  const int64_t n_model = v.n_vocab();
  std::vector<std::pair<int64_t, std::string>> extra;
  std::unordered_set<std::string> seen;
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string()) {
      return bad(origin, "an added_tokens entry needs an integer 'id' and a string 'content'");
    }
    const int64_t id = a["id"].get<int64_t>();
    const std::string content = a["content"].get<std::string>();
    if (content.empty()) return bad(origin, "added token " + std::to_string(id) + " has empty content");
    if (!seen.insert(content).second) return bad(origin, "added token '" + content + "' is listed twice");
    for (const char* k : {"single_word", "lstrip", "rstrip", "normalized"}) {
      if (a.value(k, false)) {
        return bad(origin, "added token '" + content + "' sets '" + k + "', which is not supported");
      }
    }
    if (id < 0) return bad(origin, "added token '" + content + "' has the negative id " + std::to_string(id));
    if (id >= n_model) {
      if (auto it = index.find(content); it != index.end()) {
        return bad(origin, "added token '" + content + "' (id " + std::to_string(id) + ") repeats vocab entry " +
                               std::to_string(it->second));
      }
      // tokenizers numbers these itself, in list order after the model's ids, whatever
      // the file says: ids that differ would not be the ones it uses.
      const int64_t expect = n_model + static_cast<int64_t>(extra.size());
      if (id != expect) {
        return bad(origin, "added token '" + content + "' (id " + std::to_string(id) +
                               ") is out of range: past the model's vocabulary tokenizers numbers added tokens " +
                               std::to_string(n_model) + ", " + std::to_string(n_model + 1) +
                               ", ... in their order, which makes it " + std::to_string(expect));
      }
      extra.emplace_back(id, content);
    } else if (v.tokens[static_cast<size_t>(id)] != content) {
      return bad(origin, "added token '" + content + "' (id " + std::to_string(id) + ") is not that vocab entry");
    }
  }
  if (!extra.empty()) v.n_model = static_cast<int32_t>(n_model);
  for (size_t i = 0; i < extra.size(); ++i) {
    v.tokens.push_back(extra[i].second);
    v.types.push_back(TokenType::kNormal);
    v.scores.push_back(0.0f);
  }
  for (const json& a : added) {
    const int32_t id = static_cast<int32_t>(a["id"].get<int64_t>());
    const bool special = a.value("special", false);
    v.added.push_back({id, special});
    if (id == v.unk) continue;
    v.types[static_cast<size_t>(id)] = special ? TokenType::kControl : TokenType::kUserDefined;
  }
  return Status::ok();
}

// The special tokens a post-processor puts around a single sequence. ByteLevel and the
// type ids only shape offsets and pairs, which flashlm does not produce.
Status read_post_processor(const json& p, std::vector<int32_t>& before, std::vector<int32_t>& after,
                           const Vocab& v, const std::string& origin) {
  if (p.is_null()) return Status::ok();
  const std::string type = type_of(p);
  auto token_id = [&](const json& pair, const char* what) -> Result<int32_t> {
    if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer() || pair[1].get<int64_t>() < 0 ||
        pair[1].get<int64_t>() >= v.n_vocab()) {
      return bad(origin, std::string("post_processor '") + what + "' must be [text, id] with an id in the vocab");
    }
    return static_cast<int32_t>(pair[1].get<int64_t>());
  };
  if (type == "ByteLevel") return Status::ok();
  if (type == "Sequence") {
    const json list = p.value("processors", json());
    if (!list.is_array()) return bad(origin, "post_processor Sequence needs a 'processors' array");
    for (const json& q : list) {
      if (type_of(q) == "Sequence") return bad(origin, "post_processor Sequence inside a Sequence is not supported");
      if (Status st = read_post_processor(q, before, after, v, origin); !st) return st;
    }
    return Status::ok();
  }
  if (!before.empty() || !after.empty()) return bad(origin, "post_processor adds special tokens twice");
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    Result<int32_t> cls = token_id(p.value("cls", json()), "cls");
    Result<int32_t> sep = token_id(p.value("sep", json()), "sep");
    if (!cls) return cls.status();
    if (!sep) return sep.status();
    before.push_back(*cls);
    after.push_back(*sep);
    return Status::ok();
  }
  if (type != "TemplateProcessing") {
    return bad(origin, "post_processor '" + type +
                           "' is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, "
                           "ByteLevel, a Sequence of them, none)");
  }
  const json single = p.value("single", json());
  const json specials = p.value("special_tokens", json());
  if (!single.is_array() || !specials.is_object()) {
    return bad(origin, "TemplateProcessing needs 'single' (array) and 'special_tokens' (object)");
  }
  // [Special X]? Sequence A [Special Y]?: anything else (two tokens on one side, type
  // ids other than 0 mattering) is refused.
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
    return bad(origin, "TemplateProcessing 'single' must be [special]? $A [special]? (one token at most on each side)");
  }
  return Status::ok();
}

Status apply_post_processor(const json& p, Vocab& v, const std::string& origin) {
  std::vector<int32_t> before, after;
  if (Status st = read_post_processor(p, before, after, v, origin); !st) return st;
  if (!before.empty()) v.bos = before[0];
  if (!after.empty()) v.eos = after[0];
  v.add_bos = !before.empty();
  v.add_eos = !after.empty();
  return Status::ok();
}

// ---- WordPiece ----------------------------------------------------------------------

Status read_wpm_normalizer(const json& n, Vocab& v, const std::string& origin) {
  if (n.is_null()) {
    v.wpm.clean_text = v.wpm.chinese_chars = v.wpm.strip_accents = v.wpm.lowercase = false;
    return Status::ok();
  }
  if (type_of(n) != "BertNormalizer") {
    return bad(origin, "normalizer '" + type_of(n) + "' is not supported with WordPiece (supported: BertNormalizer, none)");
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

// The WordPiece model's fields (the vocabulary is read), before the added tokens.
Status read_wordpiece_model(const json& model, Vocab& v, const TokenIndex& index, const std::string& origin) {
  v.kind = VocabKind::kWpm;
  v.pre_name = "bert";
  size_t longest = 1;
  for (const std::string& t : v.tokens) longest = std::max(longest, t.size());
  v.wpm.max_token_bytes = static_cast<int32_t>(std::min<size_t>(longest, 1u << 30));
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
  auto it = index.find(unk.get<std::string>());
  if (it == index.end()) return bad(origin, "model.unk_token '" + unk.get<std::string>() + "' is not in the vocab");
  v.unk = it->second;
  v.types[static_cast<size_t>(v.unk)] = TokenType::kUnknown;
  return Status::ok();
}

Status read_wordpiece_components(const json& j, Vocab& v, const std::string& origin) {
  if (Status st = read_wpm_normalizer(j.value("normalizer", json()), v, origin); !st) return st;
  const json pre = j.value("pre_tokenizer", json());
  if (type_of(pre) != "BertPreTokenizer") {
    return bad(origin, "pre_tokenizer '" + type_of(pre) + "' is not supported with WordPiece (supported: BertPreTokenizer)");
  }
  // Pieces decode with a leading space; the first one's is dropped, as SPM's prefix is.
  v.add_space_prefix = true;
  return Status::ok();
}

// ---- BPE ----------------------------------------------------------------------------

// The BPE model's options and merges (the vocabulary is read, the added tokens not yet).
Status read_bpe_model(const json& model, Vocab& v, const TokenIndex& index, bool* byte_fallback,
                      const std::string& origin) {
  const json dropout = model.value("dropout", json());
  if (!dropout.is_null() && !(dropout.is_number() && dropout.get<double>() == 0.0)) {
    return bad(origin, "model.dropout is not supported (BPE dropout samples merges; flashlm tokenizes exactly)");
  }
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json s = model.value(k, json());
    if (!s.is_null() && !(s.is_string() && s.get<std::string>().empty())) {
      return bad(origin, std::string("model.") + k + " is not supported (only null or \"\")");
    }
  }
  Result<bool> fallback = flag(model, "byte_fallback", false, false, origin);
  Result<bool> ignore = flag(model, "ignore_merges", false, false, origin);
  // fuse_unk joins runs of the unknown token, which BPE here never produces: the readers
  // below demand every byte (or byte token) where there is an unknown token.
  Result<bool> fuse = flag(model, "fuse_unk", false, false, origin);
  if (!fallback) return fallback.status();
  if (!ignore) return ignore.status();
  if (!fuse) return fuse.status();
  *byte_fallback = *fallback;
  v.ignore_merges = *ignore;

  const json unk = model.value("unk_token", json());
  if (!unk.is_null()) {
    if (!unk.is_string()) return bad(origin, "model.unk_token must be a string or null");
    auto it = index.find(unk.get<std::string>());
    if (it == index.end()) return bad(origin, "model.unk_token '" + unk.get<std::string>() + "' is not in the vocab");
    v.unk = it->second;
    v.types[static_cast<size_t>(v.unk)] = TokenType::kUnknown;
  }

  const json& merges = field(model, "merges");
  if (merges.is_null()) return Status::ok();
  if (!merges.is_array()) return bad(origin, "model.merges must be an array");
  if (merges.size() > kMaxEntries) return bad(origin, "model.merges has more than 16M entries");
  v.merges.reserve(merges.size());
  std::unordered_set<uint64_t> pairs;
  pairs.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    std::string left, right;
    if (m.is_string()) {  // "left right": exactly one space, as tokenizers reads them
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return bad(origin, where + " '" + s + "' must be two tokens separated by one space");
      }
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return bad(origin, where + " must be \"left right\" or [left, right]");
    }
    auto l = index.find(left), r = index.find(right), lr = index.find(left + right);
    if (l == index.end() || r == index.end() || lr == index.end()) {
      const std::string& missing = l == index.end() ? left : r == index.end() ? right : left + right;
      return bad(origin, where + " names '" + missing + "', which is not in the vocab");
    }
    // Vocab::merges holds "left right" split at the first space after the first byte.
    if (left.find(' ', 1) != std::string::npos) {
      return bad(origin, where + ": a left token with a space inside is not supported");
    }
    if (!pairs.insert((static_cast<uint64_t>(l->second) << 32) | static_cast<uint32_t>(r->second)).second) {
      return bad(origin, where + " repeats the merge '" + left + " " + right + "'");
    }
    v.merges.push_back(left + " " + right);
  }
  return Status::ok();
}

// Byte-level BPE (GPT-2 / SmolLM2 / Llama 3 / Qwen 2): no normalizer, the text split by
// one of the regex sets PreTokenizer knows and mapped to GPT-2's byte alphabet.

// Hugging Face's spellings of the regexes PreTokenizerKind names; flashlm's patterns
// spell \s as the Unicode White_Space set, as tokenizers' regex engine reads it.
struct SplitRegex {
  const char* pattern;
  PreTokenizerKind kind;
  const char* name;
};
constexpr SplitRegex kSplitRegexes[] = {
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", PreTokenizerKind::kGpt2,
     "gpt-2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     PreTokenizerKind::kLlama3, "llama-bpe"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     PreTokenizerKind::kQwen2, "qwen2"},
};

// A ByteLevel pre-tokenizer; *use_regex says whether it splits by GPT-2's regex.
Status read_byte_level_pre(const json& p, bool* use_regex, const std::string& origin) {
  Result<bool> prefix = flag(p, "add_prefix_space", true, false, origin);
  Result<bool> regex = flag(p, "use_regex", true, true, origin);
  if (!prefix) return prefix.status();
  if (!regex) return regex.status();
  if (*prefix) return bad(origin, "pre_tokenizer ByteLevel with add_prefix_space is not supported");
  *use_regex = *regex;  // trim_offsets shapes offsets only
  return Status::ok();
}

Status read_byte_level_pre_tokenizer(const json& p, Vocab& v, const std::string& origin) {
  const std::string supported =
      " (supported: ByteLevel; Sequence [Split(regex of gpt-2, llama-bpe or qwen2), ByteLevel without regex]; "
      "Sequence [Digits(individual), ByteLevel])";
  bool use_regex = false;
  if (type_of(p) == "ByteLevel") {
    if (Status st = read_byte_level_pre(p, &use_regex, origin); !st) return st;
    if (!use_regex) return bad(origin, "pre_tokenizer ByteLevel without use_regex is not supported alone" + supported);
    v.pre = PreTokenizerKind::kGpt2;
    v.pre_name = "gpt-2";
    return Status::ok();
  }
  if (type_of(p) != "Sequence") return bad(origin, "pre_tokenizer '" + type_of(p) + "' is not supported" + supported);
  const json list = p.value("pretokenizers", json());
  if (!list.is_array() || list.size() != 2 || type_of(list[1]) != "ByteLevel") {
    return bad(origin, "pre_tokenizer Sequence must be two pre-tokenizers, the second ByteLevel" + supported);
  }
  if (Status st = read_byte_level_pre(list[1], &use_regex, origin); !st) return st;
  const json& first = list[0];
  if (type_of(first) == "Digits") {
    Result<bool> individual = flag(first, "individual_digits", false, false, origin);
    if (!individual) return individual.status();
    if (!*individual || !use_regex) {
      return bad(origin, "pre_tokenizer Digits must have individual_digits and be followed by ByteLevel with its regex");
    }
    v.pre = PreTokenizerKind::kSmollm;  // \p{N} one by one, then GPT-2's regex
    v.pre_name = "smollm";
    return Status::ok();
  }
  if (type_of(first) != "Split") {
    return bad(origin, "pre_tokenizer '" + type_of(first) + "' inside a Sequence is not supported" + supported);
  }
  const json pattern = first.value("pattern", json());
  if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string()) {
    return bad(origin, "pre_tokenizer Split must have a Regex pattern with byte-level BPE");
  }
  const std::string regex = pattern["Regex"].get<std::string>();
  Result<bool> invert = flag(first, "invert", false, false, origin);
  if (!invert) return invert.status();
  if (first.value("behavior", json()) != json("Isolated") || *invert || use_regex) {
    return bad(origin, "pre_tokenizer Split must be Isolated, not inverted, and its ByteLevel without use_regex");
  }
  for (const SplitRegex& r : kSplitRegexes) {
    if (regex == r.pattern) {
      v.pre = r.kind;
      v.pre_name = r.name;
      return Status::ok();
    }
  }
  return bad(origin, "pre_tokenizer Split regex '" + regex + "' is not one flashlm knows" + supported);
}

Status read_byte_level(const json& j, Vocab& v, const TokenIndex& index, bool byte_fallback,
                       const std::string& origin) {
  v.kind = VocabKind::kBpe;
  if (byte_fallback) return bad(origin, "model.byte_fallback with the ByteLevel decoder is not supported");
  const json n = j.value("normalizer", json());
  if (!n.is_null()) {
    return bad(origin, "normalizer '" + type_of(n) + "' is not supported with byte-level BPE (supported: none)");
  }
  if (Status st = read_byte_level_pre_tokenizer(j.value("pre_tokenizer", json()), v, origin); !st) return st;
  // A byte whose character is not a token becomes the unknown token in tokenizers, or
  // is dropped without one; flashlm does the latter (Tokenizer::init), so with an
  // unknown token every byte's character must be a token.
  if (v.unk == kNoToken) return Status::ok();
  std::string ch;
  for (int b = 0; b < 256; ++b) {
    ch.clear();
    append_utf8(gpt2_byte_to_cpt(static_cast<uint8_t>(b)), &ch);
    if (index.find(ch) == index.end()) {
      return bad(origin, "byte-level vocab with an unk_token lacks the token for byte " + std::to_string(b) + " ('" +
                             ch + "'), which tokenizers would make the unknown token: not supported");
    }
  }
  return Status::ok();
}

// SentencePiece-style BPE (Gemma, Llama 2): spaces become U+2581 (and the text may get a
// leading one), the whole text is one word, unknown characters fall back to <0xXX>.

bool is_replace(const json& r, const std::string& from, const std::string& to) {
  if (type_of(r) != "Replace") return false;
  const json pattern = r.value("pattern", json());
  return pattern.is_object() && pattern.size() == 1 && pattern.value("String", json()) == json(from) &&
         r.value("content", json()) == json(to);
}

Status read_spm_normalizer(const json& n, bool* prepend, const std::string& origin) {
  const std::string supported =
      " (supported with SentencePiece-style BPE: Replace ' ' -> U+2581, alone or in a Sequence with Prepend U+2581)";
  std::vector<json> parts;
  if (type_of(n) == "Sequence") {
    const json list = n.value("normalizers", json());
    if (!list.is_array()) return bad(origin, "normalizer Sequence needs a 'normalizers' array");
    parts.assign(list.begin(), list.end());
  } else {
    parts.push_back(n);
  }
  bool replace = false;
  *prepend = false;
  for (const json& p : parts) {
    if (is_replace(p, " ", kSpmSpace) && !replace) {
      replace = true;
    } else if (type_of(p) == "Prepend" && p.value("prepend", json()) == json(kSpmSpace) && !*prepend) {
      *prepend = true;
    } else {
      return bad(origin, "normalizer '" + type_of(p) + "' is not supported here" + supported);
    }
  }
  if (!replace) return bad(origin, "normalizer without Replace ' ' -> U+2581 is not supported" + supported);
  return Status::ok();
}

Status read_spm_decoder(const json& d, bool* strip, const std::string& origin) {
  const std::string want =
      "decoder must be Sequence [Replace U+2581 -> ' ', ByteFallback, Fuse] or the same followed by "
      "Strip(' ', 1, 0) for SentencePiece-style BPE";
  const json list = d.value("decoders", json());
  if (type_of(d) != "Sequence" || !list.is_array() || (list.size() != 3 && list.size() != 4)) {
    return bad(origin, "decoder '" + type_of(d) + "' is not supported: " + want);
  }
  if (!is_replace(list[0], kSpmSpace, " ") || type_of(list[1]) != "ByteFallback" || type_of(list[2]) != "Fuse") {
    return bad(origin, "decoder Sequence [" + type_of(list[0]) + ", " + type_of(list[1]) + ", " +
                           type_of(list[2]) + ", ...] is not supported: " + want);
  }
  *strip = list.size() == 4;
  if (*strip && !(type_of(list[3]) == "Strip" && list[3].value("content", json()) == json(" ") &&
                  list[3].value("start", json()) == json(1) && list[3].value("stop", json()) == json(0))) {
    return bad(origin, "decoder '" + type_of(list[3]) + "' at the end is not supported: " + want);
  }
  return Status::ok();
}

Status read_spm_style(const json& j, Vocab& v, const TokenIndex& index, bool byte_fallback,
                      const std::string& origin) {
  v.kind = VocabKind::kSpm;
  v.spm_ranked_merges = true;
  if (!byte_fallback) {
    return bad(origin, "a BPE model needs the ByteLevel decoder (byte-level BPE) or byte_fallback "
                       "(SentencePiece-style BPE); this one has neither");
  }
  bool prepend = false, strip = false;
  if (Status st = read_spm_normalizer(j.value("normalizer", json()), &prepend, origin); !st) return st;
  // After the normalizer no space is left, so a Split on " " never splits.
  const json pre = j.value("pre_tokenizer", json());
  if (!pre.is_null()) {
    const json pattern = pre.value("pattern", json());
    const json behavior = pre.value("behavior", json());
    Result<bool> invert = flag(pre, "invert", false, false, origin);
    if (!invert) return invert.status();
    const bool known_behavior = behavior == json("Removed") || behavior == json("Isolated") ||
                                behavior == json("MergedWithPrevious") || behavior == json("MergedWithNext") ||
                                behavior == json("Contiguous");
    if (type_of(pre) != "Split" || !pattern.is_object() || pattern.size() != 1 ||
        pattern.value("String", json()) != json(" ") || !known_behavior || *invert) {
      return bad(origin, "pre_tokenizer '" + type_of(pre) +
                             "' is not supported with SentencePiece-style BPE (supported: none, Split on ' ')");
    }
  }
  if (Status st = read_spm_decoder(j.value("decoder", json()), &strip, origin); !st) return st;
  if (prepend != strip) {
    return bad(origin, prepend ? "normalizer Prepend U+2581 without the decoder's Strip is not supported"
                               : "decoder Strip without the normalizer's Prepend U+2581 is not supported");
  }
  v.add_space_prefix = prepend;
  // Unknown characters become byte tokens, so all 256 must be there.
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char text[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    auto it = index.find(std::string_view(text, 6));
    if (it == index.end()) {
      return bad(origin, "byte_fallback needs every byte token; '" + std::string(text, 6) + "' is not in the vocab");
    }
    v.types[static_cast<size_t>(it->second)] = TokenType::kByte;
  }
  return Status::ok();
}

// ---- tokenizer_config.json ----------------------------------------------------------

// Its special-token names fill the ids the tokenizer.json leaves unset (an unknown token
// named only here is never produced: BPE here always has every byte); where both say,
// they must agree, as must add_bos_token / add_eos_token with the post-processor.
Status apply_tokenizer_config(const json& c, Vocab& v, const std::string& origin) {
  if (!c.is_object()) return bad(origin, "not a JSON object");
  struct Named {
    const char* key;
    int32_t* id;
  };
  for (const Named& s : {Named{"bos_token", &v.bos}, Named{"eos_token", &v.eos}, Named{"pad_token", &v.pad},
                         Named{"unk_token", &v.unk}}) {
    auto it = c.find(s.key);
    if (it == c.end() || it->is_null()) continue;
    const json text = it->is_object() ? it->value("content", json()) : *it;
    if (!text.is_string()) return bad(origin, std::string("'") + s.key + "' must be a string, {\"content\": ...} or null");
    auto tok = std::find(v.tokens.begin(), v.tokens.end(), text.get<std::string>());
    if (tok == v.tokens.end()) {
      return bad(origin, std::string("'") + s.key + "' '" + text.get<std::string>() + "' is not in the vocab");
    }
    const int32_t id = static_cast<int32_t>(tok - v.tokens.begin());
    if (*s.id != kNoToken && *s.id != id) {
      return bad(origin, std::string("'") + s.key + "' '" + text.get<std::string>() + "' (id " + std::to_string(id) +
                             ") disagrees with tokenizer.json's (id " + std::to_string(*s.id) + ")");
    }
    *s.id = id;
  }
  for (const auto& [key, on] : {std::pair<const char*, bool>{"add_bos_token", v.add_bos}, {"add_eos_token", v.add_eos}}) {
    Result<bool> b = flag(c, key, on, on, origin);
    if (!b) return b.status();
    if (*b != on) {
      return bad(origin, std::string("'") + key + "' = " + (*b ? "true" : "false") +
                             " disagrees with tokenizer.json's post_processor, which " + (on ? "adds" : "does not add") +
                             " it");
    }
  }
  Result<bool> clean = flag(c, "clean_up_tokenization_spaces", false, false, origin);
  if (!clean) return clean.status();
  if (*clean) return bad(origin, "'clean_up_tokenization_spaces' = true is not supported");
  return Status::ok();
}

// The reader proper; its caller turns nlohmann exceptions into errors.
Result<Vocab> read_tokenizer_json(std::string_view json_text, const std::string& origin, const json* config,
                                  const std::string& config_origin) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad(origin, "not a JSON object");
  const json& model = field(j, "model");
  const std::string model_type = type_of(model);
  if (model_type == "Unigram") {
    return bad(origin, "tokenizer model 'Unigram' is not supported (supported: BPE, WordPiece)");
  }
  if (model_type != "WordPiece" && model_type != "BPE") {
    return bad(origin, "tokenizer model '" + model_type + "' is not supported (supported: BPE, WordPiece)");
  }
  Vocab v;
  if (Status st = read_vocab(model, v, origin); !st) return st;
  // The model's own vocabulary: what merges, unk_token and the byte checks may name.
  // Views into v.tokens, which added tokens may grow: not used past read_added_tokens.
  const TokenIndex index = index_tokens(v, v.n_vocab());
  bool byte_fallback = false;
  if (model_type == "WordPiece") {
    if (Status st = read_wordpiece_model(model, v, index, origin); !st) return st;
  } else {
    if (Status st = read_bpe_model(model, v, index, &byte_fallback, origin); !st) return st;
  }
  // Byte tokens and the byte alphabet are checked before added tokens extend the vocab.
  if (model_type == "WordPiece") {
    if (Status st = read_wordpiece_components(j, v, origin); !st) return st;
  } else if (type_of(j.value("decoder", json())) == "ByteLevel") {
    if (Status st = read_byte_level(j, v, index, byte_fallback, origin); !st) return st;
  } else {
    if (Status st = read_spm_style(j, v, index, byte_fallback, origin); !st) return st;
  }
  if (Status st = read_added_tokens(j, v, index, origin); !st) return st;
  if (Status st = apply_post_processor(j.value("post_processor", json()), v, origin); !st) return st;
  if (config) {
    if (Status st = apply_tokenizer_config(*config, v, config_origin); !st) return st;
  }
  if (Status st = vocab_finalize(v); !st) return bad(origin, st.message());
  return v;
}

Result<Vocab> read_guarded(std::string_view json_text, const std::string& origin, std::string_view config_text,
                           const std::string& config_origin) {
  // nlohmann's value(key, default) throws when the key holds another type: that, like
  // every other malformed field, is an error, never an exception out of the reader.
  try {
    json config;
    if (!config_text.empty()) {
      config = json::parse(config_text, nullptr, /*allow_exceptions=*/false);
      if (config.is_discarded() || !config.is_object()) return bad(config_origin, "not a JSON object");
    }
    return read_tokenizer_json(json_text, origin, config_text.empty() ? nullptr : &config, config_origin);
  } catch (const nlohmann::json::exception& e) {
    return bad(origin, std::string("malformed: ") + e.what());
  }
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in.good() && !in.eof()) return Status::error("cannot read " + path);
  return buf.str();
}

}  // namespace

Result<Vocab> vocab_from_tokenizer_json(std::string_view json_text, const std::string& origin,
                                        std::string_view config_text) {
  return read_guarded(json_text, origin, config_text, "tokenizer_config.json");
}

Result<Vocab> vocab_from_tokenizer_json_file(const std::string& path) {
  Result<std::string> text = read_text(path);
  if (!text) return text.status();
  const std::filesystem::path config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  std::string config_text;
  if (std::filesystem::exists(config_path, ec)) {
    Result<std::string> c = read_text(config_path.string());
    if (!c) return c.status();
    config_text = std::move(c).value();
    if (config_text.empty()) return Status::error(config_path.string() + ": empty file");
  }
  return read_guarded(*text, path, config_text, config_path.string());
}

}  // namespace flashlm::tok
