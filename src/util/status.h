// Errors as values at module boundaries: Status for operations, Result<T> for producers.
// Input-dependent failures (files, flags, requests) travel as Status; asserts guard only
// our own invariants.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace flashlm {

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  static Status ok() { return Status(); }
  static Status error(std::string msg) { return Status(std::move(msg), true); }

  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return msg_; }

  // Adds context in front of the message: "loading model: tensor x: bad offset".
  Status with_context(const std::string& ctx) const {
    return failed_ ? Status(ctx + ": " + msg_, true) : *this;
  }

 private:
  Status(std::string msg, bool failed) : msg_(std::move(msg)), failed_(failed) {}
  std::string msg_;
  bool failed_ = false;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                   // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {}             // NOLINT: must be an error
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  Status status() const { return is_ok() ? Status::ok() : std::get<1>(v_); }
  const std::string& message() const {
    static const std::string empty;
    return is_ok() ? empty : std::get<1>(v_).message();
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace flashlm
