#include "factory/flash_recipe.h"

#include <toml++/toml.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace flashlm::factory {
namespace {

enum class KeyType { kInt, kFloat, kString, kBool };

// A recipe key: its name, the subcommand flag it becomes ("" for keys the pipeline
// itself reads), its type, and whether the step needs it.
struct KeySpec {
  const char* key;
  const char* flag;
  KeyType type;
  bool required;
};

struct StepSpec {
  FlashStepKind kind;
  const char* name;
  std::vector<KeySpec> keys;
};

const std::vector<StepSpec>& step_specs() {
  using K = KeyType;
  static const std::vector<StepSpec> specs = {
      {FlashStepKind::kImatrix, "imatrix", {{"ctx", "-c", K::kInt, false}, {"chunks", "--chunks", K::kInt, false}}},
      {FlashStepKind::kPrune,
       "prune",
       {{"ffn_keep", "--ffn-keep", K::kFloat, false},
        {"ffn", "--ffn", K::kInt, false},
        {"kv_groups", "--kv-groups", K::kInt, false},
        {"heads_per_group", "--heads-per-group", K::kInt, false},
        {"drop_layers", "--drop-layers", K::kInt, false},
        {"ctx", "-c", K::kInt, false},
        {"chunks", "--chunks", K::kInt, false}}},
      {FlashStepKind::kMoefy,
       "moefy",
       {{"experts", "--experts", K::kInt, true},
        {"top_k", "--top-k", K::kInt, true},
        {"shared_expert", "--shared-expert", K::kInt, false},
        {"calib_tokens", "--calib-tokens", K::kInt, false},
        {"calib_ctx", "--calib-ctx", K::kInt, false},
        {"seed", "--seed", K::kInt, false}}},
      {FlashStepKind::kDistill,
       "distill",
       {{"share", "", K::kFloat, false},
        {"steps", "--steps", K::kInt, false},
        {"lr", "--lr", K::kFloat, false},
        {"warmup", "--warmup", K::kInt, false},
        {"ctx", "--ctx", K::kInt, false},
        {"batch", "--batch", K::kInt, false},
        {"qat", "--qat", K::kString, false},
        {"out_type", "--out-type", K::kString, false},
        {"train", "--train", K::kString, false},
        {"temperature", "--temperature", K::kFloat, false},
        {"ce_weight", "--ce-weight", K::kFloat, false},
        {"kl_top", "--kl-top", K::kInt, false},
        {"matmul", "--matmul", K::kString, false},
        {"checkpointing", "--checkpointing", K::kString, false}}},
      {FlashStepKind::kQuantize,
       "quantize",
       {{"type", "--type", K::kString, true}, {"imatrix", "", K::kBool, false}, {"pure", "--pure", K::kBool, false}}},
      {FlashStepKind::kEvaluate,
       "evaluate",
       {{"chunks", "--chunks", K::kInt, false},
        {"ctx", "-c", K::kInt, false},
        {"task", "", K::kString, false},
        {"limit", "", K::kInt, false},
        {"decode", "", K::kInt, false}}},
  };
  return specs;
}

const char* type_name(KeyType t) {
  switch (t) {
    case KeyType::kInt: return "an integer";
    case KeyType::kFloat: return "a number";
    case KeyType::kString: return "a string";
    case KeyType::kBool: return "true or false";
  }
  return "?";
}

// The value as the flag's text, or an error naming what the key needs.
Result<std::string> value_text(const toml::node& v, KeyType t) {
  char buf[64];
  switch (t) {
    case KeyType::kInt:
      if (const auto* i = v.as_integer()) return std::to_string(i->get());
      break;
    case KeyType::kFloat:
      if (const auto* f = v.as_floating_point()) {
        std::snprintf(buf, sizeof buf, "%.17g", f->get());
        return std::string(buf);
      }
      if (const auto* i = v.as_integer()) return std::to_string(i->get());
      break;
    case KeyType::kString:
      if (const auto* s = v.as_string()) return s->get();
      break;
    case KeyType::kBool:
      if (const auto* b = v.as_boolean()) return std::string(b->get() ? "true" : "false");
      break;
  }
  return Status::error(std::string("must be ") + type_name(t));
}

// Presets, set from the measured frontiers of docs/TRAINING.md and docs/PRUNING.md (not
// yet run end to end as recipes; docs/FLASH.md): a head (name, description, what comes
// before training), then the shared tail.
std::string distill_qat(const char* type) {
  return std::string("[[steps]]\nrun = \"distill\"\nqat = \"") + type +
         "\"\nlr = 1e-4\nctx = 256\nbatch = 2\nwarmup = 10\n\n";
}
const char* const kEvaluate =
    "[[steps]]\nrun = \"evaluate\"\nchunks = 16\ntask = \"kjv-last-word\"\nlimit = 200\ndecode = 64\n";

struct Preset {
  const char* name;
  std::string text;
};
const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {"balanced",
       std::string("name = \"balanced\"\ndescription = \"4-bit K-quants learnt by distillation from the base (QAT "
                   "Q4_K_M): the base's shape, a third of its F16 bytes\"\n\n") +
           distill_qat("Q4_K_M") + kEvaluate},
      {"memory",
       std::string("name = \"memory\"\ndescription = \"a quarter of the FFN neurons pruned, then distilled from the "
                   "base as Q4_0 (QAT)\"\n\n[[steps]]\nrun = \"prune\"\nffn_keep = 0.75\nchunks = 20\n\n") +
           distill_qat("Q4_0") + kEvaluate},
      {"speed",
       std::string("name = \"speed\"\ndescription = \"FFN pruned to 5/8 and the 4 least influential layers dropped, "
                   "then distilled from the base as Q4_0 (QAT)\"\n\n[[steps]]\nrun = \"prune\"\nffn_keep = "
                   "0.625\ndrop_layers = 4\nchunks = 20\n\n") +
           distill_qat("Q4_0") + kEvaluate},
      {"ptq",
       std::string("name = \"ptq\"\ndescription = \"post-training quantization only: an importance matrix, then "
                   "Q4_K_M weighted by it (no training; what llama.cpp's tools do)\"\n\n[[steps]]\nrun = "
                   "\"imatrix\"\nchunks = 32\n\n[[steps]]\nrun = \"quantize\"\ntype = \"Q4_K_M\"\nimatrix = "
                   "true\n\n") +
           kEvaluate},
  };
  return p;
}

}  // namespace

const char* flash_step_name(FlashStepKind k) {
  for (const StepSpec& s : step_specs()) {
    if (s.kind == k) return s.name;
  }
  return "?";
}

std::vector<std::string> flash_preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : presets()) names.emplace_back(p.name);
  return names;
}

Result<FlashRecipe> parse_flash_recipe(const std::string& toml_text, const std::string& origin) {
  // Recipes are ASCII. toml++ 3.3 (Debian 12's) reaches __builtin_unreachable() on some
  // non-ASCII code points (is_non_ascii_horizontal_whitespace; found by fuzz_flash_recipe),
  // so no such byte reaches it.
  for (size_t i = 0, line = 1; i < toml_text.size(); ++i) {
    const auto c = static_cast<unsigned char>(toml_text[i]);
    if (c == '\n') ++line;
    if (c >= 0x80) {
      return Status::error("recipe '" + origin + "' line " + std::to_string(line) +
                           ": a non-ASCII byte (recipes are ASCII text)");
    }
  }
  toml::table tbl;
  try {
    tbl = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "recipe '" << origin << "' line " << e.source().begin.line << ": " << e.description();
    return Status::error(msg.str());
  }
  const std::string where = "recipe '" + origin + "'";
  FlashRecipe r;
  r.origin = origin;
  r.text = toml_text;
  for (const auto& [k, v] : tbl) {
    const std::string key(k.str());
    if (key == "name" || key == "description") {
      const auto* s = v.as_string();
      if (s == nullptr) return Status::error(where + ": '" + key + "' must be a string");
      (key == "name" ? r.name : r.description) = s->get();
    } else if (key != "steps") {
      return Status::error(where + ": unknown key '" + key + "' (a recipe has name, description and [[steps]])");
    }
  }
  const toml::array* steps = tbl["steps"].as_array();
  if (steps == nullptr || steps->empty()) {
    return Status::error(where + ": no steps (each is a [[steps]] table with run = \"imatrix\", \"prune\", "
                                 "\"moefy\", \"distill\", \"quantize\" or \"evaluate\")");
  }
  for (size_t i = 0; i < steps->size(); ++i) {
    const std::string at = where + " step " + std::to_string(i + 1);
    const toml::table* st = (*steps)[i].as_table();
    if (st == nullptr) return Status::error(at + ": a step is a [[steps]] table");
    const auto* run = (*st)["run"].as_string();
    if (run == nullptr) return Status::error(at + ": no run = \"KIND\"");
    const StepSpec* spec = nullptr;
    for (const StepSpec& s : step_specs()) {
      if (run->get() == s.name) spec = &s;
    }
    if (spec == nullptr) {
      return Status::error(at + ": unknown step '" + run->get() +
                           "' (imatrix, prune, moefy, distill, quantize, evaluate)");
    }
    FlashStep step;
    step.kind = spec->kind;
    for (const auto& [k, v] : *st) {  // every key is one the step knows
      const std::string key(k.str());
      bool known = key == "run";
      for (const KeySpec& c : spec->keys) known = known || key == c.key;
      if (!known) {
        std::string names;
        for (const KeySpec& c : spec->keys) names += (names.empty() ? "" : ", ") + std::string(c.key);
        return Status::error(at + " (" + spec->name + "): unknown key '" + key + "' (it takes " + names + ")");
      }
    }
    for (const KeySpec& ks : spec->keys) {  // flags in the step's own key order
      const toml::node* v = st->get(ks.key);
      if (v == nullptr) continue;
      const std::string key = ks.key;
      Result<std::string> text = value_text(*v, ks.type);
      if (!text) return Status::error(at + " (" + spec->name + "): '" + key + "' " + text.message());
      if (key == "share") {
        step.share = v->value<double>().value_or(-1.0);
        if (!(step.share > 0.0 && step.share <= 1.0)) {
          return Status::error(at + " (distill): 'share' is a fraction of --budget-minutes in (0, 1]");
        }
      } else if (key == "imatrix") {
        step.use_imatrix = *text == "true";
      } else if (key == "task") {
        step.task = *text;
      } else if (key == "limit") {
        step.task_limit = v->value<int64_t>().value_or(0);
      } else if (key == "decode") {
        step.decode_tokens = v->value<int64_t>().value_or(0);
        if (step.decode_tokens < 0 || step.decode_tokens > 4096) {
          return Status::error(at + " (evaluate): 'decode' is the tokens to time, 0..4096");
        }
      } else if (ks.type == KeyType::kBool) {
        if (*text == "true") step.flags.emplace_back(ks.flag, "");
      } else {
        if (key == "steps") step.has_steps = true;
        step.flags.emplace_back(ks.flag, *text);
      }
    }
    for (const KeySpec& c : spec->keys) {
      if (c.required && !st->contains(c.key)) {
        return Status::error(at + " (" + spec->name + "): '" + c.key + "' is required");
      }
    }
    if (step.kind == FlashStepKind::kEvaluate && st->contains("limit") && step.task.empty()) {
      return Status::error(at + " (evaluate): 'limit' counts task items: it needs 'task'");
    }
    if (step.kind == FlashStepKind::kDistill && step.has_steps && step.share > 0.0) {
      return Status::error(at + " (distill): give 'steps' or 'share', not both");
    }
    r.steps.push_back(std::move(step));
  }
  if (r.name.empty()) r.name = origin;
  return r;
}

Result<FlashRecipe> load_flash_recipe(const std::string& name_or_path) {
  for (const Preset& p : presets()) {
    if (name_or_path == p.name) return parse_flash_recipe(p.text, p.name);
  }
  std::ifstream in(name_or_path);
  if (!in) {
    std::string names;
    for (const Preset& p : presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
    return Status::error("--recipe '" + name_or_path + "' is neither a preset (" + names + ") nor a readable file");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_flash_recipe(ss.str(), name_or_path);
}

}  // namespace flashlm::factory
