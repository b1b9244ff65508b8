// Writing a whole file so that readers never see it half-written: the bytes go to a
// temporary file beside it (same directory, so the rename cannot cross filesystems),
// which is renamed over the path only when everything was written. A full disk or an
// unwritable directory leaves the old file (or none) and the error says which step failed.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "util/status.h"

namespace flashlm {

Status write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace flashlm
