// Errors as the OpenAI API reports them: an HTTP status and a body
// {"error": {"message", "type", "param", "code"}}. Handlers return these as values.
#pragma once

#include <string>

namespace flashlm::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field, "" when none
  std::string code;   // machine-readable reason, "" when none

  static ApiError invalid(std::string message, std::string param = "", std::string code = "");
  static ApiError of(int status, std::string type, std::string message, std::string code = "");
};

// {"error": {...}}; param and code are null when empty, as OpenAI sends them.
std::string error_body(const ApiError& e);

}  // namespace flashlm::server
