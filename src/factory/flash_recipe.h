// Flash recipes: the declarative list of steps `flashlm flash` runs to turn a base model
// into its Flash form (imatrix, prune, moefy, distill, quantize, evaluate), read from a
// small TOML file or one of the named presets. Parsing checks every step's kind, every
// key's name and type, and the values the steps cannot run without, so a recipe that
// parses is one the pipeline can plan; what a key does is the flag of the step's
// subcommand it becomes (docs/FLASH.md lists them).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace flashlm::factory {

enum class FlashStepKind { kImatrix, kPrune, kMoefy, kDistill, kQuantize, kEvaluate };
const char* flash_step_name(FlashStepKind k);

struct FlashStep {
  FlashStepKind kind = FlashStepKind::kImatrix;
  // The step's subcommand flags from its keys, in the step kind's own key order, e.g.
  // {"--ffn-keep", "0.75"}; a true boolean key is a flag without a value.
  std::vector<std::pair<std::string, std::string>> flags;
  // distill: its share of --budget-minutes when `steps` is not given (default: what the
  // other distill steps leave, split evenly).
  double share = -1.0;
  bool has_steps = false;   // distill: `steps` given, so no budget is needed
  bool use_imatrix = false;  // quantize: weighted by the latest imatrix step's file
  std::string task;          // evaluate: an eval task, "" for none
  int64_t task_limit = 0;    // evaluate: items of the task (0: all)
  int64_t decode_tokens = 0;  // evaluate: tokens of the decode timing (flashlm bench), 0: none
};

struct FlashRecipe {
  std::string name, description;
  std::string origin;  // the preset's name or the file's path
  std::string text;    // the TOML as read
  std::vector<FlashStep> steps;
};

// Parses a recipe (ASCII text); errors name the origin, the step (1-based) and the key.
Result<FlashRecipe> parse_flash_recipe(const std::string& toml_text, const std::string& origin);
// A preset by name (speed, memory, balanced) or, when the name is not one, a TOML file.
Result<FlashRecipe> load_flash_recipe(const std::string& name_or_path);
std::vector<std::string> flash_preset_names();

}  // namespace flashlm::factory
