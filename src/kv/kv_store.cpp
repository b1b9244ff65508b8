#include "kv/kv_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "kv/kv_store_record.h"
#include "util/xxhash64.h"

namespace flashlm {
namespace fs = std::filesystem;
namespace {

constexpr const char* kExt = ".kvb";
constexpr const char* kTmpExt = ".tmp";
// Temporary files older than this are left over from a crash and are removed at open;
// younger ones may belong to another process writing right now.
constexpr auto kStaleTmpAge = std::chrono::minutes(10);

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// "<16 lowercase hex digits>.kvb" -> the block hash.
bool parse_block_name(const std::string& name, uint64_t* hash) {
  if (name.size() != 16 + std::strlen(kExt) || !name.ends_with(kExt)) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 16; ++i) {
    const char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  *hash = v;
  return true;
}

std::string errno_text(int e) { return std::strerror(e); }

// Reads a whole regular file of at most `limit` bytes. Errors are about the file, and
// `vanished` tells a file that is simply gone (deleted or evicted meanwhile).
Result<std::vector<uint8_t>> read_file(const std::string& path, uint64_t limit, bool* vanished) {
  *vanished = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *vanished = errno == ENOENT;
    return Status::error("cannot open: " + errno_text(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Status::error("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limit) {
    return Status::error("file too large (" + std::to_string(st.st_size) + " bytes)");
  }
  std::vector<uint8_t> buf(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t r = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::error("read failed: " + errno_text(errno));
    if (r == 0) return Status::error("file shrank while reading");
    got += static_cast<size_t>(r);
  }
  return buf;
}

}  // namespace

std::string kv_layout_description(const KvConfig& cfg, std::string_view elem_type) {
  std::string d = "n_layer=" + std::to_string(cfg.n_layer) + " kv_dim=" + std::to_string(cfg.kv_dim) +
                  " block_size=" + std::to_string(cfg.block_size) + " elem=" + std::string(elem_type);
  // Windows decide the layer groups, hence which layers a block holds.
  bool any_window = false;
  for (int w : cfg.layer_window) any_window = any_window || w > 0;
  if (any_window) {
    d += " windows=";
    for (size_t l = 0; l < cfg.layer_window.size(); ++l) d += (l ? "," : "") + std::to_string(cfg.layer_window[l]);
  }
  return d;
}

uint64_t kv_store_namespace(uint64_t model_fingerprint, std::string_view kv_layout) {
  const std::string id = "flashlm-kv-store record v" + std::to_string(kKvRecordVersion) +
                         " model " + hex16(model_fingerprint) + " layout " + std::string(kv_layout);
  return xxh64(id.data(), id.size());
}

KvStore::KvStore(std::string dir, uint64_t ns, uint64_t max_bytes, KvStoreOptions opts)
    : dir_(std::move(dir)), ns_(ns), max_bytes_(max_bytes), opts_(std::move(opts)) {}

Result<std::unique_ptr<KvStore>> KvStore::open(const std::string& dir, uint64_t namespace_id,
                                               uint64_t max_bytes, KvStoreOptions opts) {
  const std::string ns_dir = (fs::path(dir) / hex16(namespace_id)).string();
  std::error_code ec;
  fs::create_directories(ns_dir, ec);
  if (ec) return Status::error("kv store: cannot create '" + ns_dir + "': " + ec.message());
  if (!fs::is_directory(ns_dir, ec)) return Status::error("kv store: '" + ns_dir + "' is not a directory");
  std::unique_ptr<KvStore> s(new KvStore(ns_dir, namespace_id, max_bytes, std::move(opts)));
  if (Status st = s->scan(); !st) return st.with_context("kv store");
  s->writer_ = std::thread([p = s.get()] { p->writer_loop(); });
  return s;
}

KvStore::~KvStore() {
  flush();
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void KvStore::warn(const std::string& msg) const {
  if (opts_.warn) opts_.warn(msg);
  else std::fprintf(stderr, "warning: kv-store: %s\n", msg.c_str());
}

std::string KvStore::block_path(uint64_t hash) const { return dir_ + "/" + hex16(hash) + kExt; }

// --- index (callers hold mu_) -------------------------------------------------------

void KvStore::index_insert(uint64_t hash, uint64_t bytes) {
  index_erase(hash);
  lru_.push_front(hash);
  index_.emplace(hash, Entry{bytes, lru_.begin()});
  disk_bytes_ += bytes;
}

void KvStore::index_erase(uint64_t hash) {
  auto it = index_.find(hash);
  if (it == index_.end()) return;
  disk_bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  index_.erase(it);
}

void KvStore::touch(uint64_t hash) {
  auto it = index_.find(hash);
  if (it != index_.end()) lru_.splice(lru_.begin(), lru_, it->second.lru);
}

std::vector<uint64_t> KvStore::evict_over_bound() {
  std::vector<uint64_t> victims;
  while (disk_bytes_ > max_bytes_ && !lru_.empty()) {
    const uint64_t h = lru_.back();
    index_erase(h);
    victims.push_back(h);
    ++stats_.evicted;
  }
  return victims;
}

// --- open ---------------------------------------------------------------------------

Status KvStore::scan() {
  struct Found {
    fs::file_time_type mtime;
    uint64_t hash;
    uint64_t bytes;
  };
  std::vector<Found> found;
  std::vector<std::string> stray, corrupt;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  fs::directory_iterator it(dir_, ec);
  if (ec) return Status::error("cannot list '" + dir_ + "': " + ec.message());
  for (const fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    const std::string name = e.path().filename().string();
    std::error_code ec2;
    if (name.size() > 1 && name[0] == '.' && name.ends_with(kTmpExt)) {
      const auto mtime = e.last_write_time(ec2);
      if (!ec2 && now - mtime > kStaleTmpAge) fs::remove(e.path(), ec2);
      continue;
    }
    uint64_t hash = 0;
    const fs::file_status st = e.symlink_status(ec2);
    if (!parse_block_name(name, &hash) || ec2 || !fs::is_regular_file(st)) {
      stray.push_back(name);
      continue;
    }
    const uint64_t bytes = e.file_size(ec2);
    const auto mtime = e.last_write_time(ec2);
    if (ec2 || bytes < kv_record_size(0, 0) || bytes > kKvRecordMaxBytes) {
      corrupt.push_back(name);
      fs::remove(e.path(), ec2);
      continue;
    }
    found.push_back({mtime, hash, bytes});
  }
  if (ec) warn("listing '" + dir_ + "' stopped early: " + ec.message());
  if (!stray.empty())
    warn("ignoring " + std::to_string(stray.size()) + " entr" + (stray.size() == 1 ? "y" : "ies") + " in '" +
         dir_ + "' that are not block files (first: '" + stray[0] + "')");
  if (!corrupt.empty())
    warn("removed " + std::to_string(corrupt.size()) + " block file(s) of impossible size in '" + dir_ +
         "' (first: '" + corrupt[0] + "')");
  // Oldest first, so the newest end up at the front of the LRU list.
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  std::vector<uint64_t> victims;
  {
    std::lock_guard lk(mu_);
    for (const Found& f : found) index_insert(f.hash, f.bytes);
    stats_.skipped += static_cast<int64_t>(stray.size());
    stats_.corrupt += static_cast<int64_t>(corrupt.size());
    victims = evict_over_bound();
  }
  for (uint64_t h : victims) ::unlink(block_path(h).c_str());
  return Status::ok();
}

// --- writes -------------------------------------------------------------------------

bool KvStore::put(uint64_t block_hash, uint64_t parent_hash, std::span<const int32_t> tokens,
                  std::span<const uint8_t> payload) {
  const uint64_t size = kv_record_size(tokens.size(), payload.size());
  {
    std::lock_guard lk(mu_);
    if (index_.count(block_hash) != 0) {
      touch(block_hash);
      return true;
    }
    if (pending_.count(block_hash) != 0) return true;
    if (tokens.size() > kKvRecordMaxTokens || payload.size() > kKvRecordMaxBytes || size > max_bytes_ ||
        pending_.size() >= opts_.max_queue_blocks || queue_bytes_ + size > opts_.max_queue_bytes) {
      ++stats_.dropped;
      return false;
    }
    // Reserve the slot; get() and flush() see it as pending from now on.
    pending_.emplace(block_hash, nullptr);
    queue_bytes_ += size;
  }
  const KvRecordHeader h{.namespace_id = ns_, .block_hash = block_hash, .parent_hash = parent_hash,
                         .n_tokens = static_cast<uint32_t>(tokens.size()), .payload_bytes = payload.size()};
  // The checksum is left to the writer thread: the caller pays for one copy only.
  auto enc = std::make_shared<const std::vector<uint8_t>>(encode_kv_record(h, tokens, payload, false));
  {
    std::lock_guard lk(mu_);
    pending_[block_hash] = std::move(enc);
    queue_.push_back(block_hash);
  }
  work_cv_.notify_one();
  return true;
}

Status KvStore::write_file(uint64_t hash, const std::vector<uint8_t>& bytes) {
  const std::string tmp =
      dir_ + "/." + hex16(hash) + "." + std::to_string(::getpid()) + "." + std::to_string(tmp_seq_++) + kTmpExt;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error("cannot create '" + tmp + "': " + errno_text(errno));
  auto fail = [&](const char* what, int e) {  // e: the errno of the failed call
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return Status::error(std::string(what) + " '" + tmp + "': " + errno_text(e));
  };
  // The buffer is shared with get() and stays unchanged: the checksum is written from
  // a separate 8 bytes in place of the zero trailer.
  const uint64_t sum = kv_record_checksum(bytes);
  uint8_t trailer[kKvRecordTrailerBytes];
  std::memcpy(trailer, &sum, sizeof trailer);
  const std::span<const uint8_t> parts[2] = {
      std::span<const uint8_t>(bytes).first(bytes.size() - kKvRecordTrailerBytes), std::span<const uint8_t>(trailer)};
  for (std::span<const uint8_t> part : parts) {
    size_t done = 0;
    while (done < part.size()) {
      const size_t chunk = std::min<size_t>(part.size() - done, size_t{1} << 30);
      const ssize_t w = ::write(fd, part.data() + done, chunk);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return fail("cannot write", w < 0 ? errno : ENOSPC);
      done += static_cast<size_t>(w);
    }
  }
  // fsync before rename: after a crash the name points at whole contents or nothing.
  // The directory itself is not synced: losing a rename only loses a cache entry.
  if (::fsync(fd) != 0) return fail("cannot sync", errno);
  const int closed = ::close(std::exchange(fd, -1));
  if (closed != 0) return fail("cannot close", errno);
  if (::rename(tmp.c_str(), block_path(hash).c_str()) != 0) return fail("cannot rename", errno);
  return Status::ok();
}

void KvStore::writer_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return !queue_.empty() || stop_; });
    if (queue_.empty()) return;  // stopping, nothing left
    const uint64_t hash = queue_.front();
    queue_.pop_front();
    const Encoded enc = pending_[hash];
    writing_ = true;
    lk.unlock();

    const Status st = write_file(hash, *enc);

    lk.lock();
    std::vector<uint64_t> victims;
    bool warn_now = false;
    int64_t n_errors = 0;
    if (st) {
      index_insert(hash, enc->size());
      ++stats_.writes;
      victims = evict_over_bound();
    } else {
      // The first failure and then every 1000th: a full disk must not flood the log.
      n_errors = ++stats_.write_errors;
      warn_now = n_errors % 1000 == 1;
    }
    lk.unlock();
    if (warn_now) warn("write failed (" + std::to_string(n_errors) + " so far): " + st.message());
    for (uint64_t h : victims) ::unlink(block_path(h).c_str());
    // Only now idle: flush() returns with evicted files gone too.
    lk.lock();
    pending_.erase(hash);
    queue_bytes_ -= enc->size();
    writing_ = false;
    if (pending_.empty()) idle_cv_.notify_all();
  }
}

void KvStore::flush() {
  std::unique_lock lk(mu_);
  idle_cv_.wait(lk, [&] { return pending_.empty() && !writing_; });
}

// --- reads --------------------------------------------------------------------------

void KvStore::discard_corrupt(uint64_t hash, const std::string& why) {
  const std::string path = block_path(hash);
  warn("skipping '" + path + "': " + why + " (removed)");
  {
    std::lock_guard lk(mu_);
    index_erase(hash);
    ++stats_.corrupt;
    ++stats_.misses;
  }
  ::unlink(path.c_str());
}

std::optional<KvStoreBlock> KvStore::get(uint64_t block_hash) {
  Encoded queued;
  {
    std::lock_guard lk(mu_);
    auto p = pending_.find(block_hash);
    if (p != pending_.end() && p->second) {
      queued = p->second;
    } else if (index_.count(block_hash) != 0) {
      touch(block_hash);
    } else {
      ++stats_.misses;
      return std::nullopt;
    }
  }
  std::vector<uint8_t> bytes;
  const std::string path = block_path(block_hash);
  if (queued) {
    bytes = *queued;
  } else {
    bool vanished = false;
    Result<std::vector<uint8_t>> r = read_file(path, kKvRecordMaxBytes, &vanished);
    if (!r && vanished) {  // deleted behind our back: a plain miss
      std::lock_guard lk(mu_);
      index_erase(block_hash);
      ++stats_.misses;
      return std::nullopt;
    }
    if (!r) {
      discard_corrupt(block_hash, r.message());
      return std::nullopt;
    }
    bytes = std::move(r).value();
  }
  // A queued record is our own encoding, not yet checksummed (the writer does that).
  Result<KvRecordView> v = parse_kv_record(bytes, /*verify_checksum=*/!queued);
  if (v && v->header.namespace_id != ns_) v = Status::error("record of another namespace");
  if (v && v->header.block_hash != block_hash) v = Status::error("record of another block");
  if (!v) {
    discard_corrupt(block_hash, v.message());
    return std::nullopt;
  }
  std::vector<int32_t> tokens = kv_record_tokens(*v);
  // Slide the payload to the front of the buffer instead of copying it out.
  const size_t n = v->payload.size();
  bytes.erase(bytes.begin(), bytes.begin() + (v->payload.data() - bytes.data()));
  bytes.resize(n);
  {
    std::lock_guard lk(mu_);
    ++stats_.hits;
  }
  // Recency on disk, so the LRU order survives a restart. Best effort.
  if (!queued) ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  return KvStoreBlock{.block_hash = block_hash, .parent_hash = v->header.parent_hash, .tokens = std::move(tokens),
                      .payload = std::move(bytes)};
}

bool KvStore::contains(uint64_t block_hash) const {
  std::lock_guard lk(mu_);
  return index_.count(block_hash) != 0 || pending_.count(block_hash) != 0;
}

KvStoreStats KvStore::stats() const {
  std::lock_guard lk(mu_);
  KvStoreStats s = stats_;
  s.blocks = static_cast<int64_t>(index_.size());
  s.bytes = static_cast<int64_t>(disk_bytes_);
  s.pending = static_cast<int64_t>(pending_.size());
  return s;
}

}  // namespace flashlm
