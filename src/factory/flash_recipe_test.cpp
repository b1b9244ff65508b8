#include "factory/flash_recipe.h"

#include <gtest/gtest.h>

#include <string>

namespace flashlm::factory {
namespace {

std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

TEST(FlashRecipe, PresetsAndTestRecipesParse) {
  for (const std::string& name : flash_preset_names()) {
    Result<FlashRecipe> r = load_flash_recipe(name);
    ASSERT_TRUE(r.is_ok()) << name << ": " << r.message();
    EXPECT_EQ(r->name, name);
    EXPECT_FALSE(r->description.empty()) << name;
    EXPECT_EQ(r->steps.back().kind, FlashStepKind::kEvaluate) << name << ": a preset ends by measuring";
  }
  Result<FlashRecipe> tiny = load_flash_recipe(repo("tests/golden/flash/tiny.toml"));
  ASSERT_TRUE(tiny.is_ok()) << tiny.message();
  ASSERT_EQ(tiny->steps.size(), 5u);
  EXPECT_EQ(tiny->steps[0].kind, FlashStepKind::kPrune);
  using Flags = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(tiny->steps[0].flags, (Flags{{"--ffn", "96"}, {"-c", "32"}, {"--chunks", "4"}}));
  EXPECT_TRUE(tiny->steps[1].has_steps);
  EXPECT_EQ(tiny->steps[2].kind, FlashStepKind::kImatrix);
  EXPECT_TRUE(tiny->steps[3].use_imatrix);
  EXPECT_EQ(tiny->steps[3].flags, (Flags{{"--type", "Q8_0"}}));
  EXPECT_EQ(tiny->steps[4].task, "kjv-last-word");
  EXPECT_EQ(tiny->steps[4].task_limit, 8);
}

TEST(FlashRecipe, KeysBecomeFlagsWithTheirValues) {
  Result<FlashRecipe> r = parse_flash_recipe(R"(
[[steps]]
run = "distill"
share = 0.5
qat = "Q4_0"
lr = 2e-4
[[steps]]
run = "quantize"
pure = true
type = "Q4_K_M"
)", "inline");
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r->name, "inline");
  EXPECT_DOUBLE_EQ(r->steps[0].share, 0.5);
  ASSERT_EQ(r->steps[0].flags.size(), 2u);
  EXPECT_EQ(r->steps[0].flags[0].first, "--lr");
  EXPECT_DOUBLE_EQ(std::stod(r->steps[0].flags[0].second), 2e-4);
  EXPECT_EQ(r->steps[0].flags[1], (std::pair<std::string, std::string>{"--qat", "Q4_0"}));
  EXPECT_EQ(r->steps[1].flags.back(), (std::pair<std::string, std::string>{"--pure", ""}));
}

// Every refusal names the recipe, the step and the key.
TEST(FlashRecipe, BadRecipesAreRefusedWithTheirReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "no steps"},
      {"name = \"x\"\n", "no steps"},
      {"steps = 3\n", "no steps"},
      {"[[steps]]\nrun = \"distill\"\nlr = \n", "line 3"},
      {"colour = \"red\"\n[[steps]]\nrun = \"evaluate\"\n", "unknown key 'colour'"},
      {"[[steps]]\nfoo = 1\n", "step 1: no run"},
      {"[[steps]]\nrun = \"teleport\"\n", "unknown step 'teleport'"},
      {"[[steps]]\nrun = \"prune\"\nffn_kep = 0.5\n", "step 1 (prune): unknown key 'ffn_kep' (it takes ffn_keep"},
      {"[[steps]]\nrun = \"prune\"\nffn = \"wide\"\n", "'ffn' must be an integer"},
      {"[[steps]]\nrun = \"moefy\"\nexperts = 8\n", "'top_k' is required"},
      {"[[steps]]\nrun = \"quantize\"\n", "'type' is required"},
      {"[[steps]]\nrun = \"quantize\"\ntype = \"Q4_0\"\nimatrix = 1\n", "'imatrix' must be true or false"},
      {"[[steps]]\nrun = \"evaluate\"\n[[steps]]\nrun = \"distill\"\nshare = 1.5\n", "step 2 (distill): 'share'"},
      {"[[steps]]\nrun = \"distill\"\nshare = 0.5\nsteps = 10\n", "'steps' or 'share', not both"},
      {"name = 5\n[[steps]]\nrun = \"evaluate\"\n", "'name' must be a string"},
      {"[[steps]]\nrun \xc3\x80= \"evaluate\"\n", "line 2: a non-ASCII byte"},
      {"[[steps]]\nrun = \"evaluate\"\nlimit = 5\n", "'limit' counts task items: it needs 'task'"},
  };
  for (const auto& [text, want] : cases) {
    Result<FlashRecipe> r = parse_flash_recipe(text, "bad.toml");
    ASSERT_FALSE(r.is_ok()) << text;
    EXPECT_NE(r.message().find("recipe 'bad.toml'"), std::string::npos) << r.message();
    EXPECT_NE(r.message().find(want), std::string::npos) << "want '" << want << "' in: " << r.message();
  }
  Result<FlashRecipe> missing = load_flash_recipe("/nonexistent/recipe.toml");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.message().find("neither a preset (balanced, memory, speed, ptq)"), std::string::npos)
      << missing.message();
}

}  // namespace
}  // namespace flashlm::factory
