#include "util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace flashlm {

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mmapped_ = std::exchange(o.mmapped_, false);
    owned_ = std::exchange(o.owned_, nullptr);
    path_ = std::move(o.path_);
  }
  return *this;
}

void MappedFile::release() {
  if (mmapped_ && data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
  delete[] owned_;
  data_ = nullptr;
  owned_ = nullptr;
  size_ = 0;
  mmapped_ = false;
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::error("cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error("'" + path + "' is not a regular file");
  }
  MappedFile f;
  f.path_ = path;
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::error("cannot map '" + path + "': " + std::strerror(e));
    }
    f.data_ = static_cast<const uint8_t*>(p);
    f.mmapped_ = true;
  }
  ::close(fd);
  return f;
}

MappedFile MappedFile::from_bytes(const uint8_t* data, size_t size) {
  MappedFile f;
  f.owned_ = new uint8_t[size > 0 ? size : 1];
  if (size > 0) std::memcpy(f.owned_, data, size);
  f.data_ = f.owned_;
  f.size_ = size;
  f.path_ = "<memory>";
  return f;
}

}  // namespace flashlm
