// Persistent KV block store (--kv-store DIR): full prefix blocks written to disk in the
// background and found again after a restart.
//
// Layout: DIR/<namespace hex>/<block hash hex>.kvb, one record per block
// (kv_store_record.h). The namespace id hashes the model fingerprint and the KV layout,
// so another model or layout uses another subdirectory and never sees these blocks.
//
// - open() lists file names, sizes and mtimes only; a block is read and verified on its
//   first get() (lazy).
// - put() copies the block into a bounded queue drained by one writer thread, which
//   writes a temporary file in the same directory, fsyncs it and renames it into place,
//   so a reader sees a whole record or none. A full queue drops the block (counted).
// - A file whose header, size or checksum is wrong, or which names another namespace or
//   block, is skipped with one warning and removed; get() returns nothing. Stray files
//   and directories in the namespace directory are skipped (warned once, left alone).
// - The bytes on disk are bounded by max_bytes: least recently used blocks (by the last
//   get/put in this process, seeded from file mtimes at open; a hit also touches the
//   mtime so recency survives restarts) are deleted first.
//
// Thread-safe: any thread may call put/get/contains/stats/flush. Several processes
// sharing one directory stay safe (atomic renames, verified reads), but each accounts
// its own bytes only.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kv/kv_cache.h"
#include "util/status.h"

namespace flashlm {

// The KV layout as text: everything that changes a block's bytes besides the model
// (layers, per-token K/V width, block size, element type, sliding windows).
std::string kv_layout_description(const KvConfig& cfg, std::string_view elem_type);
// Namespace id: the model fingerprint (formats/gguf_fingerprint.h) combined with the
// layout description and the record format version.
uint64_t kv_store_namespace(uint64_t model_fingerprint, std::string_view kv_layout);

struct KvStoreOptions {
  size_t max_queue_bytes = size_t{256} << 20;     // pending writes (memory) bound
  size_t max_queue_blocks = 256;
  // Receives warnings; stderr ("warning: kv-store: ...") when empty.
  std::function<void(const std::string&)> warn;
};

struct KvStoreStats {
  int64_t blocks = 0;         // on disk (in the index)
  int64_t bytes = 0;          // on disk
  int64_t pending = 0;        // queued, not yet written
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t writes = 0;         // records written
  int64_t dropped = 0;        // put() refused: queue full or block too large
  int64_t corrupt = 0;        // bad records found (open or get) and removed
  int64_t skipped = 0;        // stray files and directories ignored at open
  int64_t write_errors = 0;   // failed writes (disk full, unwritable directory, ...)
  int64_t evicted = 0;        // removed by the size bound
};

struct KvStoreBlock {
  uint64_t block_hash = 0;
  uint64_t parent_hash = 0;
  std::vector<int32_t> tokens;
  std::vector<uint8_t> payload;
};

class KvStore {
 public:
  // Creates DIR/<namespace hex>/ if needed and indexes it, keeping at most max_bytes
  // of block files there (evicting at once if it holds more). Errors only when that
  // directory cannot be created or listed.
  static Result<std::unique_ptr<KvStore>> open(const std::string& dir, uint64_t namespace_id, uint64_t max_bytes,
                                               KvStoreOptions opts = {});
  ~KvStore();  // flushes, then stops the writer
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // Queues the block for writing; returns false when it was dropped. A block already on
  // disk or queued is not written again (its recency is refreshed). Costs one copy and
  // the checksum of the payload in the caller's thread; never waits for the disk.
  bool put(uint64_t block_hash, uint64_t parent_hash, std::span<const int32_t> tokens,
           std::span<const uint8_t> payload);
  // Reads and verifies the block (or takes it from the write queue). The caller still
  // checks the tokens against its own: the store trusts its hash, the cache must not.
  std::optional<KvStoreBlock> get(uint64_t block_hash);
  bool contains(uint64_t block_hash) const;
  KvStoreStats stats() const;
  // Waits until every queued write has finished (written or failed).
  void flush();

 private:
  struct Entry {
    uint64_t bytes = 0;
    std::list<uint64_t>::iterator lru;  // position in lru_ (front = most recent)
  };
  using Encoded = std::shared_ptr<const std::vector<uint8_t>>;

  KvStore(std::string dir, uint64_t ns, uint64_t max_bytes, KvStoreOptions opts);
  Status scan();  // open: fills the index from the directory listing
  void writer_loop();
  Status write_file(uint64_t hash, const std::vector<uint8_t>& bytes);
  std::string block_path(uint64_t hash) const;
  void warn(const std::string& msg) const;
  // Callers hold mu_.
  void index_insert(uint64_t hash, uint64_t bytes);
  void index_erase(uint64_t hash);
  void touch(uint64_t hash);
  std::vector<uint64_t> evict_over_bound();
  // A bad record: warn, drop from the index, delete the file.
  void discard_corrupt(uint64_t hash, const std::string& why);

  const std::string dir_;  // DIR/<namespace hex>
  const uint64_t ns_;
  const uint64_t max_bytes_;
  const KvStoreOptions opts_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // writer: queue not empty or stopping
  std::condition_variable idle_cv_;   // flush: queue empty and writer idle
  std::unordered_map<uint64_t, Entry> index_;
  std::list<uint64_t> lru_;
  uint64_t disk_bytes_ = 0;
  std::unordered_map<uint64_t, Encoded> pending_;  // null while put() is still encoding
  std::deque<uint64_t> queue_;
  size_t queue_bytes_ = 0;
  bool writing_ = false;
  bool stop_ = false;
  uint64_t tmp_seq_ = 0;
  KvStoreStats stats_;
  std::thread writer_;
};

}  // namespace flashlm
