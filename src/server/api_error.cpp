#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace flashlm::server {

ApiError ApiError::invalid(std::string message, std::string param, std::string code) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

ApiError ApiError::of(int status, std::string type, std::string message, std::string code) {
  ApiError e;
  e.status = status;
  e.type = std::move(type);
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

std::string error_body(const ApiError& e) {
  const auto str_or_null = [](const std::string& s) {
    return s.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(s);
  };
  nlohmann::ordered_json j = {
      {"error",
       {{"message", e.message}, {"type", e.type}, {"param", str_or_null(e.param)}, {"code", str_or_null(e.code)}}}};
  // Messages may quote request bytes; replace anything that is not UTF-8 instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace flashlm::server
