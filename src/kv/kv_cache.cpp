#include "kv/kv_cache.h"

#include <cassert>
#include <string>

namespace flashlm {

namespace {

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
  const size_t n = layer_stride() * static_cast<size_t>(cfg_.n_layer);
  k_.assign(n, 0);
  v_.assign(n, 0);
  free_.reserve(static_cast<size_t>(cfg_.n_blocks));
  for (int64_t b = cfg_.n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
  tables_.resize(static_cast<size_t>(cfg_.max_seqs));
  in_use_.assign(static_cast<size_t>(cfg_.max_seqs), 0);
}

int KvCache::seq_new() {
  for (int s = 0; s < cfg_.max_seqs; ++s) {
    if (!in_use_[static_cast<size_t>(s)]) {
      in_use_[static_cast<size_t>(s)] = 1;
      tables_[static_cast<size_t>(s)].clear();
      return s;
    }
  }
  return -1;
}

bool KvCache::seq_valid(int seq) const {
  return seq >= 0 && seq < cfg_.max_seqs && in_use_[static_cast<size_t>(seq)];
}

void KvCache::seq_free(int seq) {
  if (!seq_valid(seq)) return;
  auto& table = tables_[static_cast<size_t>(seq)];
  for (auto it = table.rbegin(); it != table.rend(); ++it) free_.push_back(*it);
  table.clear();
  in_use_[static_cast<size_t>(seq)] = 0;
}

int64_t KvCache::seq_capacity(int seq) const {
  return static_cast<int64_t>(tables_[static_cast<size_t>(seq)].size()) * cfg_.block_size;
}

Status KvCache::seq_reserve(int seq, int64_t n_pos) {
  if (!seq_valid(seq)) return Status::error("invalid KV sequence id " + std::to_string(seq));
  auto& table = tables_[static_cast<size_t>(seq)];
  const int64_t need = (n_pos + cfg_.block_size - 1) / cfg_.block_size;
  const int64_t more = need - static_cast<int64_t>(table.size());
  if (more <= 0) return Status::ok();
  if (more > free_blocks()) {
    return Status::error("KV cache full: need " + std::to_string(more) + " more blocks of " +
                         std::to_string(cfg_.block_size) + " tokens, " + std::to_string(free_blocks()) + " free");
  }
  for (int64_t i = 0; i < more; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return Status::ok();
}

size_t KvCache::slot_offset(int seq, int64_t pos) const {
  const auto& table = tables_[static_cast<size_t>(seq)];
  assert(pos >= 0 && pos < static_cast<int64_t>(table.size()) * cfg_.block_size);
  const int64_t block = table[static_cast<size_t>(pos / cfg_.block_size)];
  return (static_cast<size_t>(block) * cfg_.block_size + static_cast<size_t>(pos % cfg_.block_size)) * row_bytes_;
}

uint8_t* KvCache::k_slot(int layer, int seq, int64_t pos) {
  return k_.data() + layer_stride() * static_cast<size_t>(layer) + slot_offset(seq, pos);
}

uint8_t* KvCache::v_slot(int layer, int seq, int64_t pos) {
  return v_.data() + layer_stride() * static_cast<size_t>(layer) + slot_offset(seq, pos);
}

}  // namespace flashlm
