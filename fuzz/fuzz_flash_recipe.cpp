// libFuzzer target: arbitrary bytes are a Flash recipe (flashlm flash --recipe FILE). A
// recipe either parses into steps of known kinds, every flag named and every value
// present, or is refused with a message; never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "factory/flash_recipe.h"

using namespace flashlm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Result<factory::FlashRecipe> r = factory::parse_flash_recipe(text, "fuzz.toml");
  if (!r) {
    if (r.message().empty()) std::abort();  // a refusal always says why
    return 0;
  }
  if (r->steps.empty()) std::abort();  // an accepted recipe has steps
  for (const factory::FlashStep& s : r->steps) {
    if (std::string(factory::flash_step_name(s.kind)) == "?") std::abort();
    for (const auto& [flag, value] : s.flags) {
      if (flag.size() < 2 || flag[0] != '-') std::abort();
    }
  }
  return 0;
}
