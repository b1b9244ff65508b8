#include "util/mapped_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/huge_pages.h"

namespace flashlm {
namespace {

std::string temp_file(const std::vector<uint8_t>& bytes) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("flashlm_mapped_" + std::to_string(getpid()) + "_" + std::to_string(bytes.size())))
                               .string();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 131) ^ (i >> 9));
  return b;
}

TEST(MappedFile, EveryBackingHoldsTheFilesBytes) {
  // Larger than one 2 MiB page and not a multiple of it, so the tail page is partial.
  const std::vector<uint8_t> want = pattern((size_t{5} << 20) + 12345);
  const std::string path = temp_file(want);
  for (FileBacking b : {FileBacking::kMap, FileBacking::kRead, FileBacking::kAuto}) {
    Result<MappedFile> f = MappedFile::open(path, b);
    ASSERT_TRUE(f) << f.message();
    ASSERT_EQ(f->size(), want.size());
    EXPECT_EQ(std::memcmp(f->data(), want.data(), want.size()), 0);
    if (b != FileBacking::kAuto) {
      EXPECT_EQ(f->backing(), b);
    }
  }
  // Moving keeps the bytes alive and valid.
  Result<MappedFile> f = MappedFile::open(path, FileBacking::kRead);
  ASSERT_TRUE(f);
  MappedFile moved = std::move(f.value());
  EXPECT_EQ(moved.backing(), FileBacking::kRead);
  EXPECT_EQ(std::memcmp(moved.data(), want.data(), want.size()), 0);
  std::filesystem::remove(path);
}

TEST(MappedFile, EmptyAndMissingFiles) {
  const std::string empty = temp_file({});
  for (FileBacking b : {FileBacking::kMap, FileBacking::kRead, FileBacking::kAuto}) {
    Result<MappedFile> f = MappedFile::open(empty, b);
    ASSERT_TRUE(f) << f.message();
    EXPECT_EQ(f->size(), 0u);
  }
  std::filesystem::remove(empty);
  Result<MappedFile> missing = MappedFile::open("/nonexistent/flashlm/model.gguf", FileBacking::kRead);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("cannot open"), std::string::npos);
  Result<MappedFile> dir = MappedFile::open(std::filesystem::temp_directory_path().string(), FileBacking::kRead);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.message().find("not a regular file"), std::string::npos);
}

TEST(HugePageBuffer, AlignedWritableAndSized) {
  Result<HugePageBuffer> b = HugePageBuffer::allocate(3 * 1000 * 1000);
  ASSERT_TRUE(b) << b.message();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % (uintptr_t{2} << 20), 0u);
  EXPECT_EQ(b->size(), 3u * 1000 * 1000);
  std::memset(b->data(), 7, b->size());
  EXPECT_EQ(b->data()[b->size() - 1], 7);
  EXPECT_FALSE(HugePageBuffer::allocate(0));
  EXPECT_FALSE(HugePageBuffer::allocate(SIZE_MAX - 10));
}

TEST(HugePageBuffer, AvailableMemoryIsRead) { EXPECT_GT(available_memory_bytes(), 0u); }

}  // namespace
}  // namespace flashlm
