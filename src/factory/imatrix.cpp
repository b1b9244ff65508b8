#include "factory/imatrix.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "formats/gguf_writer.h"
#include "util/atomic_file.h"

namespace flashlm::factory {
namespace {

constexpr char kSums[] = ".in_sum2";
constexpr char kCounts[] = ".counts";

// Little-endian reads from a byte span, failing instead of running past its end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool i32(int32_t* v) { return bytes(v, sizeof *v); }
  bool bytes(void* dst, size_t n) {
    if (n > b_.size() - at_) return false;
    if (n > 0) std::memcpy(dst, b_.data() + at_, n);
    at_ += n;
    return true;
  }
  size_t left() const { return b_.size() - at_; }

 private:
  std::span<const uint8_t> b_;
  size_t at_ = 0;
};

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

Status write_legacy(const std::string& path, const Imatrix& m) {
  std::vector<uint8_t> out;
  auto put = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  auto put_i32 = [&put](int64_t v) {
    const auto x = static_cast<int32_t>(v);
    put(&x, sizeof x);
  };
  const int64_t chunk = std::max<int64_t>(1, m.chunk_size);
  put_i32(static_cast<int64_t>(m.entries.size()));
  for (const auto& [name, e] : m.entries) {
    put_i32(static_cast<int64_t>(name.size()));
    put(name.data(), name.size());
    // llama-imatrix's convention: values are mean squares times ncall, the chunks the
    // busiest matrix saw (rounded up so no entry gets 0).
    const float max_count = e.counts.empty() ? 0.0f : *std::max_element(e.counts.begin(), e.counts.end());
    const int64_t ncall = (static_cast<int64_t>(max_count) + chunk - 1) / chunk;
    put_i32(ncall);
    put_i32(static_cast<int64_t>(e.sums.size()));
    const size_t per = e.sums.size() / std::max<size_t>(1, e.counts.size());
    for (size_t i = 0; i < e.sums.size(); ++i) {
      float count = e.counts[i / per], value = e.sums[i];
      if (count == 0.0f) value = count = 1.0f;  // an expert without tokens: neutral weights
      const float v = value / count * static_cast<float>(ncall);
      put(&v, sizeof v);
    }
  }
  put_i32(m.chunk_count);
  const std::string dataset = m.datasets.empty() ? std::string() : m.datasets.back();
  put_i32(static_cast<int64_t>(dataset.size()));
  put(dataset.data(), dataset.size());

  return write_file_atomic(path, out);
}

}  // namespace

Result<std::vector<float>> Imatrix::importance(const std::string& name, int64_t n_cols, int64_t n_mat) const {
  const auto it = entries.find(name);
  if (it == entries.end()) return std::vector<float>();
  const ImatrixEntry& e = it->second;
  if (static_cast<int64_t>(e.sums.size()) != n_cols * n_mat) {
    return Status::error("imatrix entry '" + name + "' has " + std::to_string(e.sums.size()) + " values; the tensor has " +
                         std::to_string(n_cols * n_mat) + " columns (an imatrix made for another model?)");
  }
  std::vector<float> w(e.sums.size());
  if (legacy) {
    const float ncall = e.counts.empty() ? 0.0f : e.counts[0];
    for (size_t i = 0; i < w.size(); ++i) w[i] = ncall > 0 ? e.sums[i] / ncall : e.sums[i];
    return w;
  }
  const size_t per = w.size() / std::max<size_t>(1, e.counts.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const float count = e.counts[i / per];
    w[i] = count > 0 ? e.sums[i] / count : 1.0f;
  }
  return w;
}

Imatrix imatrix_from_stats(const ActivationStats& s, const std::string& dataset) {
  Imatrix m;
  m.chunk_count = static_cast<uint32_t>(s.n_chunks);
  m.chunk_size = static_cast<uint32_t>(s.n_ctx);
  if (!dataset.empty()) m.datasets.push_back(dataset);
  for (const auto& [name, a] : s.matrices) {
    ImatrixEntry& e = m.entries[name];
    e.sums.assign(a.sum_x2.begin(), a.sum_x2.end());
    e.counts.assign(a.count.begin(), a.count.end());
  }
  return m;
}

Status save_imatrix(const std::string& path, const Imatrix& m, bool legacy) {
  if (m.entries.empty()) return Status::error("the imatrix has no entries");
  if (legacy) return write_legacy(path, m);
  gguf::Writer w;
  w.set("general.type", gguf::make_string("imatrix"));
  w.set("imatrix.datasets", gguf::make_string_array(m.datasets));
  w.set("imatrix.chunk_count", gguf::make_u32(m.chunk_count));
  w.set("imatrix.chunk_size", gguf::make_u32(m.chunk_size));
  for (const auto& [name, e] : m.entries) {
    const auto n_mat = static_cast<int64_t>(e.counts.size());
    if (n_mat == 0 || e.sums.size() % e.counts.size() != 0) {
      return Status::error("imatrix entry '" + name + "': values and counts do not match");
    }
    const int64_t n_cols = static_cast<int64_t>(e.sums.size()) / n_mat;
    if (Status st = w.add_tensor(name + kSums, DType::F32, {n_cols, n_mat}, e.sums.data()); !st) return st;
    if (Status st = w.add_tensor(name + kCounts, DType::F32, {1, n_mat}, e.counts.data()); !st) return st;
  }
  return w.write(path);
}

Result<Imatrix> parse_imatrix_legacy(std::span<const uint8_t> bytes) {
  auto bad = [](const std::string& why) { return Status::error("is not an imatrix file: " + why); };
  Reader r(bytes);
  int32_t n_entries = 0;
  if (!r.i32(&n_entries) || n_entries < 1) return bad("no entries");
  // Each entry takes at least 16 bytes: a bound before anything is reserved.
  if (static_cast<uint64_t>(n_entries) > r.left() / 16) return bad("more entries than the file holds");
  Imatrix m;
  m.legacy = true;
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string at = "entry " + std::to_string(i + 1);
    int32_t len = 0, ncall = 0, nval = 0;
    if (!r.i32(&len) || len < 1 || static_cast<uint64_t>(len) > r.left()) return bad(at + ": bad name length");
    std::string name(static_cast<size_t>(len), '\0');
    r.bytes(name.data(), name.size());
    if (name.find('\0') != std::string::npos) return bad(at + ": name has a NUL byte");
    if (!r.i32(&ncall) || ncall < 0) return bad(at + " ('" + name + "'): bad call count");
    if (!r.i32(&nval) || nval < 1 || static_cast<uint64_t>(nval) > r.left() / sizeof(float)) {
      return bad(at + " ('" + name + "'): bad value count or truncated");
    }
    ImatrixEntry e;
    e.sums.resize(static_cast<size_t>(nval));
    r.bytes(e.sums.data(), e.sums.size() * sizeof(float));
    if (!all_finite(e.sums)) return bad(at + " ('" + name + "'): a value is not finite");
    e.counts = {static_cast<float>(ncall)};
    if (!m.entries.emplace(name, std::move(e)).second) return bad("entry '" + name + "' appears twice");
  }
  // The chunk count and dataset name are optional, as in llama.cpp's reader.
  int32_t chunks = 0, len = 0;
  if (r.left() > 0) {
    if (!r.i32(&chunks) || chunks < 0) return bad("truncated chunk count");
    m.chunk_count = static_cast<uint32_t>(chunks);
    if (r.left() > 0) {
      if (!r.i32(&len) || len < 0 || static_cast<uint64_t>(len) != r.left()) return bad("bad dataset name");
      std::string ds(static_cast<size_t>(len), '\0');
      r.bytes(ds.data(), ds.size());
      if (!ds.empty()) m.datasets.push_back(ds);
    }
  }
  return m;
}

Result<Imatrix> imatrix_from_gguf(const gguf::File& f) {
  Imatrix m;
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> pairs;
  for (const gguf::TensorInfo& t : f.tensors()) {
    std::string_view n = t.name;
    if (n.ends_with(kSums)) pairs[std::string(n.substr(0, n.size() - std::strlen(kSums)))].first = &t;
    else if (n.ends_with(kCounts)) pairs[std::string(n.substr(0, n.size() - std::strlen(kCounts)))].second = &t;
  }
  Result<std::string> type = f.get_string_or("general.type", "");
  if (pairs.empty()) {
    return Status::error("is a GGUF file but not an imatrix (general.type '" + (type ? *type : std::string()) +
                         "', no .in_sum2 tensors)");
  }
  for (const auto& [name, p] : pairs) {
    const gguf::TensorInfo* sums = p.first;
    const gguf::TensorInfo* counts = p.second;
    if (sums == nullptr || counts == nullptr) return Status::error("imatrix entry '" + name + "' lacks its sums or counts");
    if (sums->dtype != DType::F32 || counts->dtype != DType::F32) {
      return Status::error("imatrix entry '" + name + "' is not f32");
    }
    if (sums->nelements() == 0) return Status::error("imatrix entry '" + name + "' is empty");
    if (sums->n_dims > 2 || counts->nelements() != sums->ne[1] || counts->ne[0] != 1) {
      return Status::error("imatrix entry '" + name + "': the counts do not match the sums' shape");
    }
    ImatrixEntry e;
    const auto* s = reinterpret_cast<const float*>(sums->data);
    const auto* c = reinterpret_cast<const float*>(counts->data);
    e.sums.resize(static_cast<size_t>(sums->nelements()));
    e.counts.resize(static_cast<size_t>(counts->nelements()));
    std::memcpy(e.sums.data(), s, e.sums.size() * sizeof(float));
    std::memcpy(e.counts.data(), c, e.counts.size() * sizeof(float));
    if (!all_finite(e.sums) || !all_finite(e.counts)) return Status::error("imatrix entry '" + name + "' is not finite");
    if (std::any_of(e.counts.begin(), e.counts.end(), [](float x) { return x < 0; })) {
      return Status::error("imatrix entry '" + name + "' has a negative count");
    }
    m.entries.emplace(name, std::move(e));
  }
  if (const gguf::Value* ds = f.find("imatrix.datasets"); ds != nullptr) m.datasets = ds->strings;
  Result<int64_t> cc = f.get_int_or("imatrix.chunk_count", 0);
  Result<int64_t> cs = f.get_int_or("imatrix.chunk_size", 0);
  if (!cc || !cs) return Status::error(!cc ? cc.message() : cs.message());
  m.chunk_count = static_cast<uint32_t>(*cc);
  m.chunk_size = static_cast<uint32_t>(*cs);
  return m;
}

Result<Imatrix> load_imatrix(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot read imatrix '" + path + "'");
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) {
    in.close();
    Result<gguf::File> f = gguf::File::open(path);
    if (!f) return Status::error("imatrix '" + path + "': " + f.message());
    Result<Imatrix> m = imatrix_from_gguf(*f);
    if (!m) return Status::error("imatrix '" + path + "' " + m.message());
    return m;
  }
  in.clear();
  in.seekg(0);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Result<Imatrix> m = parse_imatrix_legacy(bytes);
  if (!m) return Status::error("'" + path + "' " + m.message());
  return m;
}

Status check_imatrix_fits(const Imatrix& m, const gguf::File& model) {
  for (const auto& [name, e] : m.entries) {
    const gguf::TensorInfo* t = model.find_tensor(name);
    if (t == nullptr) {
      return Status::error("imatrix entry '" + name + "' names no tensor of the model (an imatrix made for another model?)");
    }
    const int64_t cols = t->ne[0] * (t->n_dims >= 3 ? t->ne[2] : 1);
    if (static_cast<int64_t>(e.sums.size()) != cols) {
      return Status::error("imatrix entry '" + name + "' has " + std::to_string(e.sums.size()) + " values, the tensor " +
                           std::to_string(cols) + " columns (an imatrix made for another model?)");
    }
  }
  return Status::ok();
}

}  // namespace flashlm::factory
