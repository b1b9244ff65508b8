// Real chat templates (tests/golden/chat/templates/) rendered against goldens produced
// by Python jinja2 in Hugging Face's configuration (scripts/reference/make_chat_golden.py).
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace flashlm::chat {
namespace {

std::string golden_dir() { return std::string(FLASHLM_SOURCE_DIR) + "/tests/golden/chat/"; }

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

class ChatGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(ChatGolden, MatchesJinja2) {
  const std::string name = GetParam();
  std::string text;
  ASSERT_TRUE(read_file(golden_dir() + name + ".json", &text)) << "missing golden " << name;
  // ordered_json keeps the key order json.load saw, which tojson output depends on.
  nlohmann::ordered_json golden = nlohmann::ordered_json::parse(text);
  std::string source;
  ASSERT_TRUE(read_file(golden_dir() + golden["template"].get<std::string>(), &source));
  Result<ChatTemplate> tmpl = ChatTemplate::parse(source);
  ASSERT_TRUE(tmpl.is_ok()) << tmpl.message();
  int n_cases = 0;
  for (const auto& c : golden["cases"]) {
    SCOPED_TRACE(name + "/" + c["name"].get<std::string>());
    Result<std::string> out = tmpl->render_ordered(c["context"]);
    if (c.contains("expected")) {
      ASSERT_TRUE(out.is_ok()) << out.message();
      EXPECT_EQ(out.value(), c["expected"].get<std::string>());
    } else {
      ASSERT_FALSE(out.is_ok()) << "expected error: " << c["error"] << "\ngot output:\n" << out.value();
      // raise_exception messages must come through verbatim.
      if (c["error_type"] == "TemplateError") {
        EXPECT_NE(out.message().find(c["error"].get<std::string>()), std::string::npos) << out.message();
      }
    }
    ++n_cases;
  }
  EXPECT_GE(n_cases, 6);
}

INSTANTIATE_TEST_SUITE_P(RealTemplates, ChatGolden,
                         ::testing::Values("smollm2", "qwen2_5", "qwen3", "llama3", "mistral_nemo", "gemma3"));

TEST(ChatGolden, SmolLM2TemplateFromGgufMatchesStoredCopy) {
  // The stored template must be what the model ships; the GGUF itself is optional here.
  const std::string model = std::string(FLASHLM_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string gguf, stored;
  if (!read_file(model, &gguf)) GTEST_SKIP() << "MODEL MISSING: " << model << " (run scripts/fetch_models.sh)";
  ASSERT_TRUE(read_file(golden_dir() + "templates/smollm2.jinja", &stored));
  EXPECT_NE(gguf.find(stored), std::string::npos) << "stored smollm2.jinja differs from the GGUF's template";
}

TEST(ChatGolden, RenderChatConvenience) {
  std::string source;
  ASSERT_TRUE(read_file(golden_dir() + "templates/smollm2.jinja", &source));
  nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", "Hi"}}});
  Result<std::string> out = render_chat(source, messages, true, "<s>", "</s>");
  ASSERT_TRUE(out.is_ok()) << out.message();
  EXPECT_EQ(out.value(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace flashlm::chat
