// The chat page served at GET /: one HTML file with inline CSS and JS (no build step)
// that talks to /v1/chat/completions with streaming and shows tokens per second.
#pragma once

#include <string_view>

namespace flashlm::server {

std::string_view chat_page_html();

}  // namespace flashlm::server
