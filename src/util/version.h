// The release this build is, for --version and the server's system_fingerprint.
#pragma once

namespace flashlm {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace flashlm
