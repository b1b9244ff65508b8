#include "tokenizer/vocab.h"

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "formats/gguf.h"

namespace flashlm::tok {
namespace {

// Pre-tokenizer names llama.cpp knows, with the flags it sets alongside them.
struct PreInfo {
  std::string_view name;
  PreTokenizerKind kind;
  bool clean_spaces;
  bool ignore_merges;
  bool add_bos;
};
constexpr PreInfo kPreTable[] = {
    {"default", PreTokenizerKind::kDefault, true, false, false},
    {"gpt-2", PreTokenizerKind::kGpt2, true, false, false},
    {"phi-2", PreTokenizerKind::kGpt2, true, false, false},
    {"mpt", PreTokenizerKind::kGpt2, true, false, false},
    {"olmo", PreTokenizerKind::kGpt2, true, false, false},
    {"smollm", PreTokenizerKind::kSmollm, false, false, false},
    {"starcoder", PreTokenizerKind::kSmollm, true, false, false},
    {"refact", PreTokenizerKind::kSmollm, true, false, false},
    {"codeshell", PreTokenizerKind::kSmollm, true, false, false},
    {"command-r", PreTokenizerKind::kSmollm, false, false, false},
    {"llama3", PreTokenizerKind::kLlama3, true, true, true},
    {"llama-v3", PreTokenizerKind::kLlama3, true, true, true},
    {"llama-bpe", PreTokenizerKind::kLlama3, true, true, true},
    {"falcon3", PreTokenizerKind::kLlama3, true, true, true},
    {"pixtral", PreTokenizerKind::kLlama3, true, true, true},
    {"qwen2", PreTokenizerKind::kQwen2, false, false, false},
    {"deepseek-r1-qwen", PreTokenizerKind::kQwen2, false, false, false},
    {"stablelm2", PreTokenizerKind::kQwen2, true, false, false},
};

const PreInfo* find_pre(std::string_view name) {
  for (const PreInfo& p : kPreTable) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool is_byte_token_text(const std::string& s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

uint32_t attr_from_type(TokenType t) {
  switch (t) {
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kByte: return kAttrByte;
    case TokenType::kUndefined: return kAttrUndefined;
  }
  return kAttrUndefined;
}

// Token texts llama.cpp recognises when the GGUF does not name the ids; a match also
// marks the token as control, so it is hidden in output and parsed only as special.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>"};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
    "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSufTexts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
    "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMidTexts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
    "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~["};

template <size_t N>
bool in_list(const std::string_view (&list)[N], const std::string& s) {
  return std::find(std::begin(list), std::end(list), std::string_view(s)) != std::end(list);
}

// Where the GGUF leaves an id unset, the first listed text found in the vocabulary wins
// (list order is the preference), and that token becomes control.
template <size_t N>
void detect_by_text(Vocab& v, const std::unordered_map<std::string_view, int32_t>& by_text,
                    const std::string_view (&list)[N], int32_t* id) {
  if (*id != kNoToken) return;
  for (std::string_view text : list) {
    auto it = by_text.find(text);
    if (it == by_text.end()) continue;
    *id = it->second;
    v.attrs[it->second] |= kAttrControl;
    return;
  }
}

Status check_id(const Vocab& v, int32_t id, const char* name) {
  if (id == kNoToken || (id >= 0 && id < v.n_vocab())) return Status::ok();
  return Status::error(std::string("tokenizer.ggml.") + name + " = " + std::to_string(id) +
                       " is out of range for a vocabulary of " + std::to_string(v.n_vocab()) + " tokens");
}

Result<int32_t> read_id(const gguf::File& f, const char* key, int32_t def) {
  Result<int64_t> r = f.get_int_or(key, def);
  if (!r) return r.status();
  if (*r < std::numeric_limits<int32_t>::min() || *r > std::numeric_limits<int32_t>::max()) {
    return Status::error(std::string(key) + " = " + std::to_string(*r) + " does not fit a token id");
  }
  return static_cast<int32_t>(*r);
}

}  // namespace

Result<PreTokenizerKind> pre_tokenizer_from_name(const std::string& name) {
  if (const PreInfo* p = find_pre(name.empty() ? "default" : name)) return p->kind;
  return Status::error("unsupported pre-tokenizer '" + name + "'");
}

Status vocab_finalize(Vocab& v) {
  const size_t n = v.tokens.size();
  if (n == 0) return Status::error("tokenizer vocabulary is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return Status::error("tokenizer vocabulary too large");
  if (v.scores.empty()) v.scores.assign(n, 0.0f);
  if (v.types.empty()) v.types.assign(n, TokenType::kNormal);
  if (v.scores.size() != n) {
    return Status::error("tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries, tokens has " + std::to_string(n));
  }
  if (v.types.size() != n) {
    return Status::error("tokenizer.ggml.token_type has " + std::to_string(v.types.size()) + " entries, tokens has " + std::to_string(n));
  }
  for (size_t i = 0; i < n; ++i) {
    if (v.types[i] == TokenType::kByte && !is_byte_token_text(v.tokens[i])) {
      return Status::error("byte token " + std::to_string(i) + " has text '" + v.tokens[i] + "', expected <0xXX>");
    }
  }
  if (v.n_model < 0 || v.n_model > v.n_vocab()) return Status::error("n_model is out of range");
  if (v.pad != kNoToken && (v.pad < 0 || v.pad >= v.n_vocab())) v.pad = kNoToken;  // common in the wild; unused here
  const std::pair<int32_t, const char*> ids[] = {
      {v.bos, "bos_token_id"}, {v.eos, "eos_token_id"}, {v.eot, "eot_token_id"}, {v.eom, "eom_token_id"},
      {v.unk, "unknown_token_id"}, {v.sep, "seperator_token_id"}, {v.fim_pad, "fim_pad_token_id"},
      {v.fim_rep, "fim_rep_token_id"}, {v.fim_sep, "fim_sep_token_id"}};
  for (const auto& [id, name] : ids) {
    if (Status st = check_id(v, id, name); !st) return st;
  }

  if (v.attrs.empty()) {
    v.attrs.resize(n);
    for (size_t i = 0; i < n; ++i) v.attrs[i] = attr_from_type(v.types[i]);

    // Later duplicates win, as in llama.cpp's text -> id map.
    std::unordered_map<std::string_view, int32_t> by_text;
    by_text.reserve(n);
    for (size_t i = 0; i < n; ++i) by_text[v.tokens[i]] = static_cast<int32_t>(i);

    int32_t fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken;
    detect_by_text(v, by_text, kEotTexts, &v.eot);
    detect_by_text(v, by_text, kEomTexts, &v.eom);
    detect_by_text(v, by_text, kFimPreTexts, &fim_pre);
    detect_by_text(v, by_text, kFimSufTexts, &fim_suf);
    detect_by_text(v, by_text, kFimMidTexts, &fim_mid);
    detect_by_text(v, by_text, kFimPadTexts, &v.fim_pad);
    detect_by_text(v, by_text, kFimRepTexts, &v.fim_rep);
    detect_by_text(v, by_text, kFimSepTexts, &v.fim_sep);

    for (size_t i = 0; i < n; ++i) {
      if ((v.attrs[i] & kAttrControl) && v.tokens[i].find("unused") != std::string::npos) v.attrs[i] |= kAttrUnused;
    }
    // gpt-oss channel markers are always rendered.
    for (std::string_view t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
      if (auto it = by_text.find(t); it != by_text.end()) v.attrs[it->second] = kAttrUserDefined;
    }

    std::vector<int32_t> eog;
    for (int32_t id : {v.fim_pad, v.fim_rep, v.fim_sep}) {
      if (id != kNoToken) eog.push_back(id);
    }
    for (std::string_view text : kEogTexts) {
      if (auto it = by_text.find(text); it != by_text.end()) {
        eog.push_back(it->second);
        v.attrs[it->second] |= kAttrControl;
      }
    }
    for (int32_t id : {v.eos, v.eot, v.eom}) {
      if (id != kNoToken) eog.push_back(id);
    }
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());

    // Harmony-style vocabularies end turns with <|return|>/<|call|>; there <|end|> is not EOG.
    auto has = [&](std::string_view t) {
      auto it = by_text.find(t);
      return it != by_text.end() && std::binary_search(eog.begin(), eog.end(), it->second);
    };
    auto drop = [&](std::string_view t, uint32_t attr) {
      int32_t id = by_text.at(t);
      eog.erase(std::remove(eog.begin(), eog.end(), id), eog.end());
      v.attrs[id] = attr;
    };
    if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))) {
      drop("<|end|>", kAttrUserDefined);
    }
    if (has("</s>") && (has("<|tool_response>") || has("<|plamo:eos|>"))) drop("</s>", kAttrNormal);
    v.eog_ids = std::move(eog);
    // A tokenizer.json says which tokens are special itself: the ids found by text above
    // stay, the control bits they set go (so a non-special </s> still decodes).
    if (v.hf_rules) {
      for (size_t i = 0; i < n; ++i) v.attrs[i] = attr_from_type(v.types[i]) | (v.attrs[i] & kAttrUnused);
    }
  }
  return Status::ok();
}

Result<Vocab> vocab_from_gguf(const gguf::File& f) {
  Vocab v;
  Result<std::string> model = f.get_string("tokenizer.ggml.model");
  if (!model) return model.status();
  Result<std::string> pre = f.get_string_or("tokenizer.ggml.pre", "");
  if (!pre) return pre.status();
  v.pre_name = *pre;

  int32_t def_bos = kNoToken, def_eos = kNoToken, def_unk = kNoToken;
  if (*model == "gpt2") {
    v.kind = VocabKind::kBpe;
    def_bos = 11;
    def_eos = 11;
    const PreInfo* p = find_pre(v.pre_name.empty() ? "default" : v.pre_name);
    if (!p) return Status::error("unsupported pre-tokenizer tokenizer.ggml.pre = '" + v.pre_name + "'");
    v.pre = p->kind;
    v.clean_spaces = p->clean_spaces;
    v.ignore_merges = p->ignore_merges;
    v.add_bos = p->add_bos;
  } else if (*model == "llama") {
    v.kind = VocabKind::kSpm;
    def_bos = 1;
    def_eos = 2;
    def_unk = 0;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else {
    return Status::error("unsupported tokenizer model tokenizer.ggml.model = '" + *model + "'");
  }

  Result<const gguf::Value*> toks = f.get_array("tokenizer.ggml.tokens", gguf::ValueType::kString);
  if (!toks) return toks.status();
  v.tokens = (*toks)->strings;
  if (f.find("tokenizer.ggml.scores")) {
    Result<const gguf::Value*> s = f.get_array("tokenizer.ggml.scores", gguf::ValueType::kFloat32);
    if (!s) return s.status();
    v.scores.assign((*s)->floats.begin(), (*s)->floats.end());
  }
  if (f.find("tokenizer.ggml.token_type")) {
    Result<const gguf::Value*> t = f.get_array("tokenizer.ggml.token_type", gguf::ValueType::kInt32);
    if (!t) return t.status();
    v.types.reserve((*t)->ints.size());
    for (size_t i = 0; i < (*t)->ints.size(); ++i) {
      int64_t x = (*t)->ints[i];
      if (x < 0 || x > 6) {
        return Status::error("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(x) + " is not a token type");
      }
      v.types.push_back(static_cast<TokenType>(x));
    }
  }
  if (v.kind == VocabKind::kBpe) {
    Result<const gguf::Value*> m = f.get_array("tokenizer.ggml.merges", gguf::ValueType::kString);
    if (!m) return m.status();
    v.merges = (*m)->strings;
  }

  struct IdKey { const char* key; int32_t def; int32_t* out; };
  const IdKey keys[] = {
      {"tokenizer.ggml.bos_token_id", def_bos, &v.bos}, {"tokenizer.ggml.eos_token_id", def_eos, &v.eos},
      {"tokenizer.ggml.eot_token_id", kNoToken, &v.eot}, {"tokenizer.ggml.eom_token_id", kNoToken, &v.eom},
      {"tokenizer.ggml.unknown_token_id", def_unk, &v.unk}, {"tokenizer.ggml.seperator_token_id", kNoToken, &v.sep},
      {"tokenizer.ggml.padding_token_id", kNoToken, &v.pad}, {"tokenizer.ggml.fim_pad_token_id", kNoToken, &v.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", kNoToken, &v.fim_rep}, {"tokenizer.ggml.fim_sep_token_id", kNoToken, &v.fim_sep},
  };
  const int64_t n = static_cast<int64_t>(v.tokens.size());
  for (const IdKey& k : keys) {
    // A default outside the vocabulary is disabled rather than an error (llama.cpp does the same).
    *k.out = (k.def >= n) ? kNoToken : k.def;
    if (!f.find(k.key)) continue;
    Result<int32_t> id = read_id(f, k.key, k.def);
    if (!id) return id.status();
    *k.out = *id;
  }

  const std::pair<const char*, bool*> flags[] = {
      {"tokenizer.ggml.add_bos_token", &v.add_bos},
      {"tokenizer.ggml.add_eos_token", &v.add_eos},
      {"tokenizer.ggml.add_space_prefix", &v.add_space_prefix},
  };
  for (const auto& [key, out] : flags) {
    Result<bool> b = f.get_bool_or(key, *out);
    if (!b) return b.status();
    *out = *b;
  }

  if (Status st = vocab_finalize(v); !st) return st.with_context("tokenizer");
  return v;
}

}  // namespace flashlm::tok
