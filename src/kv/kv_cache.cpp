#include "kv/kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

namespace flashlm {
namespace {

// splitmix64's finaliser: every input bit affects every output bit.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t nonzero(uint64_t h) { return h == 0 ? 1 : h; }  // 0 means "no hash" in BlockPool

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct KvTypeInfo {
  DType type;
  const char* name;
  int64_t block;       // values per block
  size_t block_bytes;  // bytes per block (ggml's layouts: quant/blocks.h)
};

// The types a cache stores; q8_0 is ggml's Q8_0 block.
constexpr KvTypeInfo kKvTypes[] = {
    {DType::F32, "f32", 1, 4},
    {DType::F16, "f16", 1, 2},
    {DType::Q8_0, "q8_0", 32, 34},
};

const KvTypeInfo* find_type(DType t) {
  for (const KvTypeInfo& k : kKvTypes) {
    if (k.type == t) return &k;
  }
  return nullptr;
}

}  // namespace

Result<DType> kv_type_from_name(std::string_view name) {
  for (const KvTypeInfo& k : kKvTypes) {
    if (name == k.name) return k.type;
  }
  return Status::error("unknown KV cache type '" + std::string(name) + "' (expected f32, f16 or q8_0)");
}

const char* kv_type_name(DType type) {
  const KvTypeInfo* k = find_type(type);
  return k != nullptr ? k->name : "?";
}

size_t kv_row_bytes(DType type, int64_t n) {
  const KvTypeInfo* k = find_type(type);
  if (k == nullptr || n < 0 || n % k->block != 0) return 0;
  return static_cast<size_t>(n / k->block) * k->block_bytes;
}

KvCache::KvCache(const KvConfig& cfg) : cfg_(cfg), row_bytes_(kv_row_bytes(cfg.type, cfg.kv_dim)) {
  // Callers check the type against the model first (attention_kv_type_check).
  assert(row_bytes_ > 0 || cfg_.kv_dim == 0);
  const int bs = cfg_.block_size;
  const int64_t n_local = cfg_.n_blocks_local > 0 ? cfg_.n_blocks_local : cfg_.n_blocks;
  auto window_of = [&](int l) { return cfg_.layer_window.empty() ? 0 : std::max(0, cfg_.layer_window[static_cast<size_t>(l)]); };
  // Global layers first, then one group per distinct window, smallest first.
  std::vector<int> windows;
  for (int l = 0; l < cfg_.n_layer; ++l) windows.push_back(window_of(l));
  std::sort(windows.begin(), windows.end());
  windows.erase(std::unique(windows.begin(), windows.end()), windows.end());
  for (int w : windows) groups_.emplace_back(w, w == 0 ? cfg_.n_blocks : n_local, bs);
  layer_group_.resize(static_cast<size_t>(cfg_.n_layer));
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const auto g = static_cast<int>(std::find(windows.begin(), windows.end(), window_of(l)) - windows.begin());
    layer_group_[static_cast<size_t>(l)] = g;
    groups_[static_cast<size_t>(g)].layers.push_back(l);
  }
  // The element type is part of the layout: blocks of f16 and q8_0 caches differ.
  root_ = mix(cfg_.model_id ^ mix(static_cast<uint64_t>(bs) * 1000003ULL + static_cast<uint64_t>(cfg_.kv_dim)) ^
              mix(static_cast<uint64_t>(cfg_.type) + 0x7f4a7c15ULL));
  for (Group& g : groups_) {
    uint64_t s = mix(static_cast<uint64_t>(g.window) + 0x51ed27ULL);
    for (int l : g.layers) s = mix(s + static_cast<uint64_t>(l));
    g.salt = s;
    g.tables.resize(static_cast<size_t>(cfg_.max_seqs));
  }
  size_t off = 0;
  for (int l = 0; l < cfg_.n_layer; ++l) {
    layer_offset_.push_back(off);
    off += static_cast<size_t>(groups_[static_cast<size_t>(layer_group_[static_cast<size_t>(l)])].pool.n_blocks()) *
           static_cast<size_t>(bs) * row_bytes_;
  }
  k_.assign(off, 0);
  v_.assign(off, 0);
  in_use_.assign(static_cast<size_t>(cfg_.max_seqs), 0);
  chains_.resize(static_cast<size_t>(cfg_.max_seqs));
}

int64_t KvCache::bytes_for(const KvConfig& cfg) {
  const int64_t n_local = cfg.n_blocks_local > 0 ? cfg.n_blocks_local : cfg.n_blocks;
  int64_t blocks = 0;
  for (int l = 0; l < cfg.n_layer; ++l) {
    const bool local = !cfg.layer_window.empty() && cfg.layer_window[static_cast<size_t>(l)] > 0;
    blocks += local ? n_local : cfg.n_blocks;
  }
  return blocks * 2 * cfg.block_size * static_cast<int64_t>(kv_row_bytes(cfg.type, cfg.kv_dim));
}

KvGroupStats KvCache::group_stats(int gi) const {
  const Group& g = groups_[static_cast<size_t>(gi)];
  KvGroupStats s;
  s.window = g.window;
  s.n_layers = static_cast<int>(g.layers.size());
  s.n_blocks = g.pool.n_blocks();
  s.used = g.pool.n_used();
  s.cached = g.pool.n_cached();
  s.free = g.pool.n_free();
  s.block_bytes = s.n_layers * 2 * static_cast<int64_t>(cfg_.block_size) * static_cast<int64_t>(row_bytes_);
  return s;
}

int64_t KvCache::free_blocks() const {
  int64_t n = 0;
  for (const Group& g : groups_) n += g.pool.available();
  return n;
}

int64_t KvCache::used_blocks() const {
  int64_t n = 0;
  for (const Group& g : groups_) n += g.pool.n_used();
  return n;
}

int KvCache::seq_new() {
  for (int s = 0; s < cfg_.max_seqs; ++s) {
    if (!in_use_[static_cast<size_t>(s)]) {
      in_use_[static_cast<size_t>(s)] = 1;
      for (Group& g : groups_) g.tables[static_cast<size_t>(s)].clear();
      chains_[static_cast<size_t>(s)].clear();
      return s;
    }
  }
  return -1;
}

void KvCache::drop_blocks(int seq) {
  for (Group& g : groups_) {
    auto& t = g.tables[static_cast<size_t>(seq)];
    // Back to front: a sequence's later blocks are evicted before its earlier ones, which
    // a prefix needs longer.
    for (auto it = t.rbegin(); it != t.rend(); ++it) {
      if (*it >= 0) g.pool.release(*it);
    }
    t.clear();
  }
  chains_[static_cast<size_t>(seq)].clear();
}

void KvCache::seq_free(int seq) {
  if (!seq_valid(seq)) return;
  drop_blocks(seq);
  in_use_[static_cast<size_t>(seq)] = 0;
}

void KvCache::chain(std::span<const int32_t> tokens, int64_t n_blocks, std::vector<uint64_t>* out) const {
  const int bs = cfg_.block_size;
  uint64_t h = out->empty() ? root_ : out->back();
  for (auto i = static_cast<int64_t>(out->size()); i < n_blocks; ++i) {
    for (int j = 0; j < bs; ++j) {
      h = mix(h + 0x9e3779b97f4a7c15ULL + static_cast<uint32_t>(tokens[static_cast<size_t>(i * bs + j)]));
    }
    h = nonzero(h);
    out->push_back(h);
  }
}

uint64_t KvCache::key(const Group& g, uint64_t chain_hash) const { return nonzero(mix(chain_hash ^ g.salt)); }

int64_t KvCache::first_block(const Group& g, int64_t p) const {
  if (g.window <= 0) return 0;
  return std::max<int64_t>(0, p - g.window + 1) / cfg_.block_size;
}

int32_t KvCache::find(const Group& g, const std::vector<uint64_t>& ch, std::span<const int32_t> tokens, int64_t i) const {
  const int bs = cfg_.block_size;
  const uint64_t parent = i > 0 ? key(g, ch[static_cast<size_t>(i - 1)]) : 0;
  return g.pool.lookup(key(g, ch[static_cast<size_t>(i)]), parent, tokens.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs)));
}

int64_t KvCache::match(std::span<const int32_t> tokens) const {
  const int64_t k_max = (static_cast<int64_t>(tokens.size()) - 1) / cfg_.block_size;
  if (k_max <= 0) return 0;
  std::vector<uint64_t> ch;
  chain(tokens, k_max, &ch);
  auto cached = [&](int g, int64_t i) { return find(groups_[static_cast<size_t>(g)], ch, tokens, i) >= 0; };
  return reusable_blocks(k_max, cached) * cfg_.block_size;
}

int64_t KvCache::reusable_blocks(int64_t k_max, const std::function<bool(int g, int64_t i)>& has) const {
  // Global groups need every block before P: the longest run from the start.
  int64_t k = k_max;
  for (int g = 0; g < n_groups(); ++g) {
    if (group_window(g) > 0) continue;
    int64_t run = 0;
    while (run < k && has(g, run)) ++run;
    k = run;
  }
  // Local groups need the blocks the query at P reads: [P - window + 1, P).
  for (; k > 0; --k) {
    bool ok = true;
    for (int g = 0; g < n_groups() && ok; ++g) {
      if (group_window(g) <= 0) continue;
      for (int64_t i = first_block(g, k * cfg_.block_size); i < k && ok; ++i) ok = has(g, i);
    }
    if (ok) return k;
  }
  return 0;
}

int64_t KvCache::seq_reuse(int seq, std::span<const int32_t> tokens) {
  if (!seq_valid(seq)) return 0;
  const int64_t p = match(tokens);
  const int64_t k = p / cfg_.block_size;
  drop_blocks(seq);
  if (k == 0) return 0;
  auto& ch = chains_[static_cast<size_t>(seq)];
  chain(tokens, k, &ch);
  for (Group& g : groups_) {
    auto& t = g.tables[static_cast<size_t>(seq)];
    t.assign(static_cast<size_t>(k), -1);
    for (int64_t i = first_block(g, p); i < k; ++i) {
      const int32_t b = find(g, ch, tokens, i);
      assert(b >= 0);  // match() found it and nothing ran in between
      g.pool.retain(b);
      t[static_cast<size_t>(i)] = b;
    }
  }
  return p;
}

int64_t KvCache::blocks_needed(int gi, int seq, int64_t begin, int64_t end) const {
  const Group& g = groups_[static_cast<size_t>(gi)];
  const auto& t = g.tables[static_cast<size_t>(seq)];
  int64_t n = 0;
  for (int64_t i = first_block(g, begin); i < ceil_div(end, cfg_.block_size); ++i) {
    if (i >= static_cast<int64_t>(t.size()) || t[static_cast<size_t>(i)] < 0) ++n;
  }
  return n;
}

Status KvCache::seq_prepare(int seq, int64_t begin, int64_t end) {
  if (!seq_valid(seq)) return Status::error("invalid KV sequence id " + std::to_string(seq));
  if (begin < 0 || end < begin) return Status::error("invalid KV position range");
  // Release what no query from `begin` on reads: keys before begin - window + 1.
  for (Group& g : groups_) {
    if (g.window <= 0) continue;
    auto& t = g.tables[static_cast<size_t>(seq)];
    const int64_t lo = std::min<int64_t>(first_block(g, begin), static_cast<int64_t>(t.size()));
    for (int64_t i = 0; i < lo; ++i) {
      int32_t& b = t[static_cast<size_t>(i)];
      if (b >= 0) g.pool.release(b);
      b = -1;
    }
  }
  for (int gi = 0; gi < n_groups(); ++gi) {
    const int64_t need = blocks_needed(gi, seq, begin, end);
    if (need > available(gi)) {
      return Status::error("KV cache full: need " + std::to_string(need) + " more blocks of " +
                           std::to_string(cfg_.block_size) + " tokens, " + std::to_string(available(gi)) + " available");
    }
  }
  const int64_t n_end = ceil_div(end, cfg_.block_size);
  for (Group& g : groups_) {
    auto& t = g.tables[static_cast<size_t>(seq)];
    if (static_cast<int64_t>(t.size()) < n_end) t.resize(static_cast<size_t>(n_end), -1);
    for (int64_t i = first_block(g, begin); i < n_end; ++i) {
      int32_t& b = t[static_cast<size_t>(i)];
      if (b < 0) b = g.pool.allocate();
      assert(b >= 0);  // counted above
    }
  }
  return Status::ok();
}

void KvCache::seq_publish(int seq, std::span<const int32_t> tokens, int64_t n_done) {
  if (!seq_valid(seq)) return;
  const int bs = cfg_.block_size;
  const int64_t n_full = std::min<int64_t>(n_done, static_cast<int64_t>(tokens.size())) / bs;
  auto& ch = chains_[static_cast<size_t>(seq)];
  const auto first = static_cast<int64_t>(ch.size());
  if (first >= n_full) return;
  chain(tokens, n_full, &ch);
  for (Group& g : groups_) {
    const auto& t = g.tables[static_cast<size_t>(seq)];
    for (int64_t i = first; i < n_full && i < static_cast<int64_t>(t.size()); ++i) {
      const int32_t b = t[static_cast<size_t>(i)];
      if (b < 0 || g.pool.hash(b) != 0) continue;
      const uint64_t parent = i > 0 ? key(g, ch[static_cast<size_t>(i - 1)]) : 0;
      g.pool.publish(b, key(g, ch[static_cast<size_t>(i)]), parent, tokens.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs)));
    }
  }
}

int64_t KvCache::seq_truncate(int seq, int64_t n) {
  if (!seq_valid(seq)) return 0;
  const int bs = cfg_.block_size;
  n = std::max<int64_t>(0, n);
  // A shared block is never written again: cut back to its start instead.
  if (n % bs != 0) {
    for (const Group& g : groups_) {
      const auto& t = g.tables[static_cast<size_t>(seq)];
      const auto i = static_cast<size_t>(n / bs);
      if (i < t.size() && t[i] >= 0 && g.pool.hash(t[i]) != 0) n = n / bs * bs;
    }
  }
  // The query at n must find its window.
  for (const Group& g : groups_) {
    const auto& t = g.tables[static_cast<size_t>(seq)];
    for (int64_t i = first_block(g, n); i < ceil_div(n, bs) && n > 0; ++i) {
      if (i >= static_cast<int64_t>(t.size()) || t[static_cast<size_t>(i)] < 0) n = 0;
    }
  }
  const int64_t keep = ceil_div(n, bs);
  for (Group& g : groups_) {
    auto& t = g.tables[static_cast<size_t>(seq)];
    for (auto i = static_cast<size_t>(keep); i < t.size(); ++i) {
      if (t[i] >= 0) g.pool.release(t[i]);
    }
    if (static_cast<int64_t>(t.size()) > keep) t.resize(static_cast<size_t>(keep));
  }
  auto& ch = chains_[static_cast<size_t>(seq)];
  if (static_cast<int64_t>(ch.size()) > n / bs) ch.resize(static_cast<size_t>(n / bs));
  return n;
}

bool KvCache::seq_covers(int seq, int64_t begin, int64_t end) const {
  if (!seq_valid(seq) || begin < 0 || end <= begin) return false;
  for (const Group& g : groups_) {
    const auto& t = g.tables[static_cast<size_t>(seq)];
    const int64_t last = (end - 1) / cfg_.block_size;
    if (last >= static_cast<int64_t>(t.size())) return false;
    for (int64_t i = first_block(g, begin); i <= last; ++i) {
      if (t[static_cast<size_t>(i)] < 0) return false;
    }
  }
  return true;
}

int64_t KvCache::pin(std::span<const int32_t> tokens) {
  const int bs = cfg_.block_size;
  const int64_t k = static_cast<int64_t>(tokens.size()) / bs;
  if (k == 0) return 0;
  std::vector<uint64_t> ch;
  chain(tokens, k, &ch);
  unpin(tokens);
  std::vector<PinRef> refs;
  int64_t pinned = k;
  for (int gi = 0; gi < n_groups(); ++gi) {
    Group& g = groups_[static_cast<size_t>(gi)];
    // Local groups: what a hit at the last or second-to-last block boundary reads.
    const int64_t lo = first_block(g, (k - 1) * bs);
    int64_t i = lo;
    for (; i < k; ++i) {
      const int32_t b = find(g, ch, tokens, i);
      if (b < 0) break;
      g.pool.retain(b);
      refs.push_back({gi, b});
    }
    if (g.window <= 0) pinned = std::min(pinned, i);
  }
  if (refs.empty()) return 0;
  pins_[ch.back()] = std::move(refs);
  return pinned * bs;
}

bool KvCache::unpin(std::span<const int32_t> tokens) {
  const int64_t k = static_cast<int64_t>(tokens.size()) / cfg_.block_size;
  if (k == 0) return false;
  std::vector<uint64_t> ch;
  chain(tokens, k, &ch);
  auto it = pins_.find(ch.back());
  if (it == pins_.end()) return false;
  for (const PinRef& r : it->second) groups_[static_cast<size_t>(r.group)].pool.release(r.block);
  pins_.erase(it);
  return true;
}

int64_t KvCache::pinned_blocks() const {
  int64_t n = 0;
  for (const auto& [h, refs] : pins_) n += static_cast<int64_t>(refs.size());
  return n;
}

std::vector<uint64_t> KvCache::block_hashes(int gi, std::span<const int32_t> tokens) const {
  std::vector<uint64_t> ch;
  chain(tokens, static_cast<int64_t>(tokens.size()) / cfg_.block_size, &ch);
  for (uint64_t& h : ch) h = key(groups_[static_cast<size_t>(gi)], h);
  return ch;
}

std::vector<uint8_t> KvCache::export_block(int gi, int32_t block) const {
  const Group& g = groups_[static_cast<size_t>(gi)];
  const size_t slab = static_cast<size_t>(cfg_.block_size) * row_bytes_;  // bytes
  std::vector<uint8_t> out(g.layers.size() * 2 * slab);
  uint8_t* o = out.data();
  for (int l : g.layers) {
    const size_t at = static_cast<size_t>(block) * slab;
    std::memcpy(o, k_layer(l) + at, slab);
    o += slab;
    std::memcpy(o, v_layer(l) + at, slab);
    o += slab;
  }
  return out;
}

Status KvCache::import_block(int gi, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens,
                             std::span<const uint8_t> bytes) {
  if (gi < 0 || gi >= n_groups()) return Status::error("no KV group " + std::to_string(gi));
  Group& g = groups_[static_cast<size_t>(gi)];
  const size_t slab = static_cast<size_t>(cfg_.block_size) * row_bytes_;  // bytes
  if (bytes.size() != g.layers.size() * 2 * slab) return Status::error("KV block payload has the wrong size");
  if (static_cast<int>(tokens.size()) != cfg_.block_size || hash == 0) return Status::error("KV block has the wrong token count or no hash");
  if (g.pool.lookup(hash, parent, tokens) >= 0) return Status::ok();  // already cached
  const int32_t b = g.pool.allocate();
  if (b < 0) return Status::error("KV cache full: no block to import into");
  const uint8_t* in = bytes.data();
  for (int l : g.layers) {
    const size_t at = layer_offset_[static_cast<size_t>(l)] + static_cast<size_t>(b) * slab;
    std::memcpy(k_.data() + at, in, slab);
    in += slab;
    std::memcpy(v_.data() + at, in, slab);
    in += slab;
  }
  const bool ok = g.pool.publish(b, hash, parent, tokens);
  g.pool.release(b);  // cached when published, free otherwise
  return ok ? Status::ok() : Status::error("another KV block already has this hash");
}

size_t KvCache::slot_offset(int layer, int seq, int64_t pos) const {
  const auto& t = block_table(layer, seq);
  assert(pos >= 0 && pos < static_cast<int64_t>(t.size()) * cfg_.block_size);
  const int64_t block = t[static_cast<size_t>(pos / cfg_.block_size)];
  assert(block >= 0);
  return layer_offset_[static_cast<size_t>(layer)] +
         (static_cast<size_t>(block) * cfg_.block_size + static_cast<size_t>(pos % cfg_.block_size)) * row_bytes_;
}

}  // namespace flashlm
