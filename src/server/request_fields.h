// Reading fields of a request body and the 400s that name them, in OpenAI's wording:
// shared by every request parser (request.cpp, tool_calls.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <cstdint>

#include "server/api_error.h"

namespace flashlm::server {

// The field's value, or null when it is absent or JSON null.
const nlohmann::json* field(const nlohmann::json& obj, const char* name);

// "an integer", "a string", ... for error messages.
std::string describe(const nlohmann::json& v);

ApiError type_error(const std::string& param, const char* expected, const nlohmann::json& got);
ApiError value_error(const std::string& param, const std::string& why);
ApiError missing_error(const std::string& param);
ApiError unsupported(const std::string& param, const std::string& why);

// Token ids (integers in [0, INT32_MAX]); errors name param[i]. Ids are checked against
// the vocabulary by whoever uses them.
std::optional<ApiError> parse_token_array(const nlohmann::json& arr, const std::string& param,
                                          std::vector<int32_t>* out);

// An error from the chat parser, for an API that rewrote its request into a chat request:
// a param starting with a `fields` key is named by its value (the whole field: indices of
// the chat form are not the caller's), in the message too; inside tools[i], each `tool_keys`
// key is replaced by its value.
using NamePairs = std::initializer_list<std::pair<const char*, const char*>>;
ApiError renamed_fields(ApiError e, NamePairs fields, NamePairs tool_keys);

// Message text: a string, or an array of {"type": one of `types`, "text": "..."} parts
// joined by newlines (images and other parts are a 400 naming the part).
std::optional<ApiError> joined_text(const nlohmann::json& v, const std::string& param,
                                    std::initializer_list<const char*> types, std::string* out);

}  // namespace flashlm::server
