// A whole file's bytes in memory, read-only: mapped (nothing copied at open) or read
// into huge-page memory (util/huge_pages.h), which decode streams faster.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/huge_pages.h"
#include "util/status.h"

namespace flashlm {

enum class FileBacking {
  kMap,   // a read-only map: nothing read at open, pages shared through the page cache
  kRead,  // read at open into huge-page memory: private to the process, faster to stream
  kAuto,  // kRead when the file takes at most half the available memory, else kMap
};

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;

  static Result<MappedFile> open(const std::string& path, FileBacking backing = FileBacking::kMap);
  // Takes over the first `size` bytes of a filled buffer; `name` stands for a path.
  static MappedFile adopt(HugePageBuffer buf, size_t size, std::string name);
  // Maps a copy of an in-memory buffer (tests and fuzzing); owns the bytes.
  static MappedFile from_bytes(const uint8_t* data, size_t size);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // kMap or kRead: how open() resolved its request.
  FileBacking backing() const { return read_.data() != nullptr ? FileBacking::kRead : FileBacking::kMap; }

 private:
  void release();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mmapped_ = false;
  uint8_t* owned_ = nullptr;
  HugePageBuffer read_;
  std::string path_;
};

}  // namespace flashlm
