#include "util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
    read_ = std::move(o.read_);
    path_ = std::move(o.path_);
  }
  return *this;
}

void MappedFile::release() {
  if (mmapped_ && data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
  delete[] owned_;
  read_ = HugePageBuffer();
  data_ = nullptr;
  owned_ = nullptr;
  size_ = 0;
  mmapped_ = false;
}

namespace {

// Reads the whole of fd into b; an error says what failed.
Status read_all(int fd, const std::string& path, HugePageBuffer& b) {
  const size_t size = b.size();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, b.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::error("cannot read '" + path + "': " + std::strerror(errno));
    if (n == 0) return Status::error("'" + path + "' shrank while it was read");
    done += static_cast<size_t>(n);
  }
  b.protect_read_only();
  return Status::ok();
}

}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path, FileBacking backing) {
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
  const bool chosen = backing == FileBacking::kAuto;
  if (chosen) {
    const uint64_t avail = available_memory_bytes();
    backing = avail > 0 && f.size_ <= avail / 2 ? FileBacking::kRead : FileBacking::kMap;
  }
  if (f.size_ > 0 && backing == FileBacking::kRead) {
    // No memory for the copy: an error when asked for, a map when kAuto chose it. A
    // failed read is an error either way.
    Result<HugePageBuffer> buf = HugePageBuffer::allocate(f.size_);
    if (buf) {
      if (Status rs = read_all(fd, path, *buf); !rs) {
        ::close(fd);
        return rs;
      }
      f.read_ = std::move(buf.value());
      f.data_ = f.read_.data();
    } else if (!chosen) {
      ::close(fd);
      return buf.status().with_context("'" + path + "'");
    }
  }
  if (f.size_ > 0 && f.data_ == nullptr) {
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

MappedFile MappedFile::adopt(HugePageBuffer buf, size_t size, std::string name) {
  MappedFile f;
  f.read_ = std::move(buf);
  f.data_ = f.read_.data();
  f.size_ = std::min(size, f.read_.size());
  f.path_ = std::move(name);
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
