#include "server/request_fields.h"

namespace flashlm::server {

using json = nlohmann::json;

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a decimal";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "null";
  }
}

ApiError type_error(const std::string& param, const char* expected, const json& got) {
  return ApiError::invalid(
      "Invalid type for '" + param + "': expected " + expected + ", but got " + describe(got) + " instead.", param,
      "invalid_type");
}

ApiError value_error(const std::string& param, const std::string& why) {
  return ApiError::invalid("Invalid '" + param + "': " + why, param, "invalid_value");
}

ApiError missing_error(const std::string& param) {
  return ApiError::invalid("Missing required parameter: '" + param + "'.", param, "missing_required_parameter");
}

ApiError unsupported(const std::string& param, const std::string& why) {
  return ApiError::invalid("'" + param + "' is not supported" + (why.empty() ? "." : ": " + why), param,
                           "unsupported_parameter");
}

}  // namespace flashlm::server
