#include "train/train_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/xxhash64.h"

namespace flashlm::train {
namespace {

constexpr char kMagic[8] = {'F', 'L', 'M', 'T', 'R', 'A', 'I', 'N'};
constexpr uint32_t kVersion = 1;

class Out {
 public:
  explicit Out(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644)) {}
  ~Out() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0 && good_; }
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    while (good_ && n > 0) {
      const ssize_t w = ::write(fd_, b, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        good_ = false;
        break;
      }
      b += w;
      n -= static_cast<size_t>(w);
    }
  }
  bool finish() {
    good_ = good_ && ::fsync(fd_) == 0;
    const bool closed = ::close(fd_) == 0;
    fd_ = -1;
    return good_ && closed;
  }

 private:
  int fd_;
  bool good_ = true;
};

bool read_all(FILE* f, void* p, size_t n) { return std::fread(p, 1, n, f) == n; }

}  // namespace

Status save_checkpoint(const std::string& path, const TrainState& st, const std::vector<Param>& params,
                       AdamW& opt) {
  nlohmann::json h;
  h["base_fingerprint"] = st.base_fingerprint;
  h["step"] = st.step;
  h["cursor"] = st.cursor;
  h["options"] = st.options;
  h["last_loss"] = st.last_loss;
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t i = 0; i < params.size(); ++i) {
    if (opt.trainable()[i]) tensors.push_back({{"name", params[i].name}, {"n", params[i].size()}});
  }
  h["tensors"] = tensors;
  const std::string header = h.dump();
  const std::string tmp = path + ".tmp";
  Out out(tmp);
  if (!out.ok()) return Status::error("cannot write checkpoint '" + tmp + "': " + std::strerror(errno));
  const uint64_t hlen = header.size();
  out.put(kMagic, sizeof kMagic);
  out.put(&kVersion, sizeof kVersion);
  out.put(&hlen, sizeof hlen);
  out.put(header.data(), header.size());
  std::vector<uint64_t> sums{xxh64(header.data(), header.size())};
  for (size_t i = 0; i < params.size(); ++i) {
    if (!opt.trainable()[i]) continue;
    const std::vector<float>* arrays[] = {&params[i].w, &opt.m(i), &opt.v(i)};
    for (const std::vector<float>* a : arrays) {
      out.put(a->data(), a->size() * sizeof(float));
      sums.push_back(xxh64(a->data(), a->size() * sizeof(float)));
    }
  }
  out.put(sums.data(), sums.size() * sizeof(uint64_t));
  if (!out.finish()) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::error("cannot write checkpoint '" + tmp + "': " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::error("cannot rename checkpoint to '" + path + "': " + std::strerror(errno));
  }
  return Status::ok();
}

Status load_checkpoint(const std::string& path, TrainState* st, std::vector<Param>& params, AdamW& opt) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::error("cannot open checkpoint '" + path + "': " + std::strerror(errno));
  struct Closer {
    FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{f};
  auto bad = [&](const std::string& why) { return Status::error("checkpoint '" + path + "': " + why); };
  char magic[8];
  uint32_t version = 0;
  uint64_t hlen = 0;
  if (!read_all(f, magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof magic) != 0) {
    return bad("not a flashlm training checkpoint");
  }
  if (!read_all(f, &version, sizeof version) || version != kVersion) return bad("unsupported version");
  if (!read_all(f, &hlen, sizeof hlen) || hlen > (64u << 20)) return bad("bad header length");
  std::string header(hlen, '\0');
  if (!read_all(f, header.data(), hlen)) return bad("truncated header");
  nlohmann::json h = nlohmann::json::parse(header, nullptr, false);
  if (h.is_discarded() || !h.is_object() || !h.contains("tensors") || !h["tensors"].is_array()) {
    return bad("malformed header");
  }
  std::vector<size_t> order;
  try {
    st->base_fingerprint = h.at("base_fingerprint").get<uint64_t>();
    st->step = h.at("step").get<int64_t>();
    st->cursor = h.at("cursor").get<int64_t>();
    st->options = h.at("options").get<std::string>();
    st->last_loss = h.at("last_loss").get<double>();
    for (const auto& t : h["tensors"]) {
      const std::string name = t.at("name").get<std::string>();
      size_t i = 0;
      while (i < params.size() && params[i].name != name) ++i;
      if (i == params.size() || !opt.trainable()[i]) return bad("tensor '" + name + "' does not train in this run");
      if (params[i].size() != t.at("n").get<int64_t>()) return bad("tensor '" + name + "' has another size");
      order.push_back(i);
    }
  } catch (const nlohmann::json::exception&) {
    return bad("malformed header");
  }
  size_t n_trainable = 0;
  for (bool b : opt.trainable()) n_trainable += b ? 1 : 0;
  if (order.size() != n_trainable) return bad("it holds another set of trained tensors than this run's");
  // Read into copies first: a corrupt file must leave the model and optimizer untouched.
  std::vector<std::vector<float>> arrays;
  std::vector<uint64_t> sums{xxh64(header.data(), header.size())};
  for (size_t i : order) {
    for (int k = 0; k < 3; ++k) {
      arrays.emplace_back(static_cast<size_t>(params[i].size()));
      if (!read_all(f, arrays.back().data(), arrays.back().size() * sizeof(float))) return bad("truncated");
      sums.push_back(xxh64(arrays.back().data(), arrays.back().size() * sizeof(float)));
    }
  }
  std::vector<uint64_t> stored(sums.size());
  if (!read_all(f, stored.data(), stored.size() * sizeof(uint64_t))) return bad("truncated checksums");
  if (stored != sums) return bad("checksum mismatch (the file is damaged)");
  if (std::fgetc(f) != EOF) return bad("trailing bytes");
  size_t a = 0;
  for (size_t i : order) {
    params[i].w = std::move(arrays[a++]);
    opt.m(i) = std::move(arrays[a++]);
    opt.v(i) = std::move(arrays[a++]);
  }
  opt.set_t(st->step);
  return Status::ok();
}

}  // namespace flashlm::train
