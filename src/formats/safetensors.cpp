#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/fp16.h"

namespace flashlm::safetensors {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The official implementation's limit on the header (and so on what JSON we parse).
constexpr uint64_t kMaxHeader = 100'000'000;

struct DTypeSpec {
  const char* name;
  uint64_t bytes;
  bool supported;
  DType type;
};

const DTypeSpec kDTypes[] = {
    {"F32", 4, true, DType::F32},    {"F16", 2, true, DType::F16},      {"BF16", 2, true, DType::BF16},
    {"F64", 8, false, DType::F64},   {"I64", 8, false, DType::I64},     {"U64", 8, false, DType::I64},
    {"I32", 4, false, DType::I32},   {"U32", 4, false, DType::I32},     {"I16", 2, false, DType::I16},
    {"U16", 2, false, DType::I16},   {"I8", 1, false, DType::I8},       {"U8", 1, false, DType::I8},
    {"BOOL", 1, false, DType::I8},   {"F8_E4M3", 1, false, DType::I8}, {"F8_E5M2", 1, false, DType::I8},
};

const DTypeSpec* dtype_spec(const std::string& name) {
  for (const DTypeSpec& d : kDTypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// One tensor's header entry: {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}.
Result<TensorInfo> parse_entry(const std::string& name, const json& e, uint64_t data_size) {
  const std::string at = "tensor " + in_quotes(name);
  if (!e.is_object()) return Status::error(at + ": its header entry is not an object");
  for (const auto& [k, v] : e.items()) {
    if (k != "dtype" && k != "shape" && k != "data_offsets") {
      return Status::error(at + ": unknown field " + in_quotes(k) + " (dtype, shape, data_offsets)");
    }
  }
  TensorInfo t;
  t.name = name;
  const auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) return Status::error(at + ": no dtype string");
  t.dtype = dt->get<std::string>();
  const DTypeSpec* spec = dtype_spec(t.dtype);
  if (spec == nullptr) return Status::error(at + ": unknown dtype " + in_quotes(t.dtype));
  t.supported = spec->supported;
  t.type = spec->type;
  const auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) return Status::error(at + ": no shape array");
  if (sh->size() > 16) return Status::error(at + ": " + std::to_string(sh->size()) + " dimensions (at most 16)");
  uint64_t n = 1;
  for (const json& d : *sh) {
    if (!d.is_number_unsigned()) return Status::error(at + ": a shape entry is not a non-negative integer");
    const uint64_t v = d.get<uint64_t>();
    if (v != 0 && n > (uint64_t{1} << 62) / spec->bytes / v) return Status::error(at + ": its shape is too large");
    n *= v;
    t.shape.push_back(static_cast<int64_t>(v));
  }
  const auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned()) {
    return Status::error(at + ": data_offsets is not [begin, end] of non-negative integers");
  }
  t.begin = (*off)[0].get<uint64_t>();
  t.end = (*off)[1].get<uint64_t>();
  if (t.end < t.begin || t.end > data_size) {
    return Status::error(at + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                         ") are not inside the " + std::to_string(data_size) + " bytes of data");
  }
  if (t.end - t.begin != n * spec->bytes) {
    return Status::error(at + ": " + std::to_string(t.end - t.begin) + " bytes for " + std::to_string(n) + " " +
                         t.dtype + " values (" + std::to_string(n * spec->bytes) + " bytes)");
  }
  return t;
}

}  // namespace

int64_t TensorInfo::nelements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<File> File::open(const std::string& path) {
  Result<MappedFile> m = MappedFile::open(path);
  if (!m) return m.status();
  Result<File> f = parse(std::move(*m));
  if (!f) return Status::error("'" + path + "': " + f.message());
  return f;
}

Result<File> File::parse(MappedFile map) {
  File f;
  f.map_ = std::make_shared<MappedFile>(std::move(map));
  const uint8_t* p = f.map_->data();
  const uint64_t size = f.map_->size();
  if (size < 8) return Status::error("not a safetensors file: " + std::to_string(size) + " bytes, no header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];  // little-endian
  if (n > kMaxHeader) return Status::error("header length " + std::to_string(n) + " is over the 100 MB limit");
  if (n > size - 8) {
    return Status::error("header length " + std::to_string(n) + " runs past the end of the file (" +
                         std::to_string(size) + " bytes)");
  }
  const char* h = reinterpret_cast<const char*>(p + 8);
  if (n == 0 || h[0] != '{') return Status::error("the header does not start with '{'");
  const json header = json::parse(h, h + n, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return Status::error("the header is not a JSON object");
  const uint64_t data_size = size - 8 - n;
  const uint8_t* data = p + 8 + n;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) return Status::error("__metadata__ is not an object");
      for (const auto& [k, v] : e.items()) {
        if (!v.is_string()) return Status::error("__metadata__ " + in_quotes(k) + " is not a string");
        f.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    Result<TensorInfo> t = parse_entry(name, e, data_size);
    if (!t) return t.status();
    t->data = data + t->begin;
    f.tensors_.push_back(std::move(*t));
  }
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Every data byte belongs to exactly one tensor.
  uint64_t covered = 0;
  for (const TensorInfo& t : f.tensors_) {
    if (t.begin < covered) return Status::error("tensor " + in_quotes(t.name) + " overlaps the tensor before it");
    if (t.begin > covered) {
      return Status::error("bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
                           ") of the data belong to no tensor");
    }
    covered = t.end;
  }
  if (covered != data_size) {
    return Status::error("bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
                         ") of the data belong to no tensor");
  }
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}

const TensorInfo* File::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::vector<float>> File::to_f32(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) return Status::error("no tensor " + in_quotes(name));
  if (!t->supported) {
    return Status::error("tensor " + in_quotes(name) + " is " + t->dtype + ": flashlm computes with F32, F16 and BF16");
  }
  const auto n = static_cast<size_t>(t->nelements());
  std::vector<float> out(n);
  if (t->type == DType::F32) {
    if (n > 0) std::memcpy(out.data(), t->data, n * sizeof(float));  // memcpy of nothing may not take null
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, t->data + 2 * i, 2);
    out[i] = t->type == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
  }
  return out;
}

Result<Shards> Shards::open(const std::string& path) {
  fs::path index;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "model.safetensors.index.json")) {
      index = dir / "model.safetensors.index.json";
    } else if (fs::exists(dir / "model.safetensors")) {
      return open((dir / "model.safetensors").string());
    } else {
      return Status::error("'" + path + "' holds neither model.safetensors nor model.safetensors.index.json");
    }
  } else if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    index = path;
  }
  Shards s;
  if (index.empty()) {  // one file
    Result<File> f = File::open(path);
    if (!f) return f.status();
    for (const TensorInfo& t : f->tensors()) s.where_[t.name] = 0;
    s.files_.push_back(std::move(*f));
    return s;
  }
  Result<MappedFile> m = MappedFile::open(index.string());
  if (!m) return m.status();
  const char* b = reinterpret_cast<const char*>(m->data());
  const json j = json::parse(b, b + m->size(), nullptr, false);
  const std::string at = "'" + index.string() + "'";
  if (j.is_discarded() || !j.is_object()) return Status::error(at + " is not a JSON object");
  const auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) return Status::error(at + " has no weight_map object");
  std::map<std::string, size_t> shard_index;
  std::vector<std::pair<std::string, std::string>> wanted;  // tensor, shard
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string()) return Status::error(at + ": the shard of tensor " + in_quotes(tensor) + " is not a string");
    const std::string name = shard.get<std::string>();
    if (name.empty() || name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos) {
      return Status::error(at + ": shard " + in_quotes(name) + " is not a file name beside the index");
    }
    if (!shard_index.count(name)) {
      if (shard_index.size() >= 10000) return Status::error(at + ": more than 10000 shards");
      Result<File> f = File::open((index.parent_path() / name).string());
      if (!f) return f.status();
      shard_index[name] = s.files_.size();
      s.files_.push_back(std::move(*f));
    }
    wanted.emplace_back(tensor, name);
  }
  for (size_t i = 0; i < s.files_.size(); ++i) {
    for (const TensorInfo& t : s.files_[i].tensors()) {
      if (!s.where_.emplace(t.name, i).second) {
        return Status::error(at + ": tensor " + in_quotes(t.name) + " is in two shards");
      }
    }
  }
  for (const auto& [tensor, shard] : wanted) {
    if (s.files_[shard_index[shard]].find(tensor) == nullptr) {
      return Status::error(at + ": tensor " + in_quotes(tensor) + " is not in its shard " + in_quotes(shard));
    }
  }
  return s;
}

const TensorInfo* Shards::find(const std::string& name) const {
  const File* f = file_of(name);
  return f == nullptr ? nullptr : f->find(name);
}

const File* Shards::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  return it == where_.end() ? nullptr : &files_[it->second];
}

std::vector<std::string> Shards::names() const {
  std::vector<std::string> out;
  for (const auto& [n, i] : where_) out.push_back(n);
  return out;
}

}  // namespace flashlm::safetensors
