#include "kv/kv_budget.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <string>

namespace flashlm {

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<int64_t>(pages) * static_cast<int64_t>(page);
}

Result<int64_t> parse_kv_mem(std::string_view text, int64_t ram_bytes) {
  const std::string s(text);
  auto bad = [&s](const std::string& why) { return Status::error("invalid KV memory budget '" + s + "': " + why); };
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return bad("expected a number of bytes (e.g. 2G) or a share of RAM (e.g. 25%)");
  double v = 0.0;
  try {
    size_t used = 0;
    v = std::stod(s.substr(0, i), &used);
    if (used != i) return bad("not a number");
  } catch (...) {
    return bad("not a number");
  }
  std::string unit = s.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double bytes = 0.0;
  if (unit == "%") {
    if (!(v > 0.0 && v <= 100.0)) return bad("a share of RAM must be in (0, 100]");
    if (ram_bytes <= 0) return bad("the machine's memory size is unknown; give bytes");
    bytes = v / 100.0 * static_cast<double>(ram_bytes);
  } else {
    double mul = 1.0;
    if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "IB") unit.resize(unit.size() - 2);
    else if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (unit == "K") mul = 1024.0;
    else if (unit == "M") mul = 1024.0 * 1024.0;
    else if (unit == "G") mul = 1024.0 * 1024.0 * 1024.0;
    else if (unit == "T") mul = 1024.0 * 1024.0 * 1024.0 * 1024.0;
    else if (!unit.empty()) return bad("unknown unit (use K, M, G, T or %)");
    bytes = v * mul;
  }
  if (!(bytes >= 1.0) || bytes > 9.0e18) return bad("out of range");
  return static_cast<int64_t>(std::floor(bytes));
}

}  // namespace flashlm
