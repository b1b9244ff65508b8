// Helpers the tokenizer golden tests share: golden strings are stored as byte arrays
// (they may hold invalid UTF-8), and failures print them with escapes.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace flashlm::tok::testing_util {

// A JSON array of byte values as a string.
inline std::string bytes_of(const nlohmann::json& j) {
  std::string s;
  for (const auto& b : j) s.push_back(static_cast<char>(b.get<int>()));
  return s;
}

// Printable ASCII as it is, every other byte as \xHH.
inline std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace flashlm::tok::testing_util
