// The KV memory budget flag: "--kv-mem 2G", "--kv-mem 1500000000", "--kv-mem 25%".
#pragma once

#include <cstdint>
#include <string_view>

#include "util/status.h"

namespace flashlm {

// Bytes from a count with an optional K/M/G/T suffix (powers of 1024, an optional
// trailing 'B' or 'iB'), or a share of physical memory with '%' (0 < share <= 100).
// ram_bytes is the physical memory the share is taken of (physical_memory_bytes()).
Result<int64_t> parse_kv_mem(std::string_view text, int64_t ram_bytes);
int64_t physical_memory_bytes();  // 0 when unknown

}  // namespace flashlm
