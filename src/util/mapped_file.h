// Read-only memory map of a whole file. Weights stay mapped; nothing is copied at load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/status.h"

namespace flashlm {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;

  static Result<MappedFile> open(const std::string& path);
  // Maps a copy of an in-memory buffer (tests and fuzzing); owns the bytes.
  static MappedFile from_bytes(const uint8_t* data, size_t size);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mmapped_ = false;
  uint8_t* owned_ = nullptr;
  std::string path_;
};

}  // namespace flashlm
