#include "server/request_fields.h"

#include <limits>

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

std::optional<ApiError> parse_token_array(const json& arr, const std::string& param, std::vector<int32_t>* out) {
  out->reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& t = arr[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!t.is_number_integer()) return type_error(p, "an integer token id", t);
    if (t.is_number_unsigned() ? t.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
                               : (t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())) {
      return value_error(p, "token id " + t.dump() + " is out of range.");
    }
    out->push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return std::nullopt;
}

ApiError renamed_fields(ApiError e, NamePairs fields, NamePairs tool_keys) {
  for (const auto& [from_c, to] : fields) {
    const std::string from = from_c;
    if (e.param.rfind(from, 0) != 0) continue;
    for (size_t at = e.message.find("'" + from); at != std::string::npos; at = e.message.find("'" + from, at + 1)) {
      const size_t end = e.message.find('\'', at + 1);
      if (end == std::string::npos) break;
      e.message.replace(at + 1, end - at - 1, to);
    }
    e.param = to;
    break;
  }
  if (e.param.rfind("tools[", 0) == 0) {
    for (std::string* s : {&e.param, &e.message}) {
      for (const auto& [from_c, to] : tool_keys) {
        const std::string from = from_c;
        for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at)) s->replace(at, from.size(), to);
      }
    }
  }
  return e;
}

std::optional<ApiError> joined_text(const json& v, const std::string& param, std::initializer_list<const char*> types,
                                    std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return std::nullopt;
  }
  if (!v.is_array()) return type_error(param, "a string or an array of content parts", v);
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const json& part = v[i];
    if (!part.is_object()) return type_error(p, "an object", part);
    const json* type = field(part, "type");
    if (type == nullptr) return missing_error(p + ".type");
    if (!type->is_string()) return type_error(p + ".type", "a string", *type);
    bool known = false;
    for (const char* t : types) known = known || *type == t;
    if (!known) {
      return value_error(p + ".type", "only text content parts are supported, got '" + type->get<std::string>() + "'.");
    }
    const json* text = field(part, "text");
    if (text == nullptr) return missing_error(p + ".text");
    if (!text->is_string()) return type_error(p + ".text", "a string", *text);
    if (i > 0) out->push_back('\n');
    *out += text->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace flashlm::server
