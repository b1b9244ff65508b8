// A tiny in-test GGUF byte builder. It writes exactly what the format says (little-endian
// header, metadata, tensor infos, padding, data) and, on purpose, lets a test break any
// part of it: counts, magic, version, type ids, offsets and raw value bytes can all be
// overridden so hostile files are easy to make. Test-only; header-only.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashlm::gguf::testing {

// GGUF value type ids (gguf_type), spelled out here so the builder does not depend on
// the reader it is used to test.
enum TypeId : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// Little-endian byte sink (x86-64 and aarch64 are little-endian, as GGUF is).
class ByteWriter {
 public:
  template <typename T>
  ByteWriter& put(T v) {
    append(&v, sizeof(T));
    return *this;
  }
  ByteWriter& u8(uint8_t v) { return put(v); }
  ByteWriter& u32(uint32_t v) { return put(v); }
  ByteWriter& u64(uint64_t v) { return put(v); }
  // GGUF string: u64 length, then the bytes (no terminator).
  ByteWriter& str(std::string_view s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
    return *this;
  }
  ByteWriter& raw(const std::vector<uint8_t>& b) {
    append(b.data(), b.size());
    return *this;
  }
  ByteWriter& pad_to(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> take() { return std::move(bytes_); }
  size_t size() const { return bytes_.size(); }

 private:
  // resize + memcpy rather than vector::insert: GCC 12 at -O3 reports a false -Wnonnull
  // inside insert's memmove for byte ranges.
  void append(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = bytes_.size();
    bytes_.resize(at + n);
    std::memcpy(bytes_.data() + at, p, n);
  }

  std::vector<uint8_t> bytes_;
};

// Array payloads (element type, count, elements): usable as a top-level value or nested.
inline std::vector<uint8_t> array_of_strings(const std::vector<std::string>& v) {
  ByteWriter w;
  w.u32(kString).u64(v.size());
  for (const std::string& s : v) w.str(s);
  return w.take();
}
template <typename T>
std::vector<uint8_t> array_of(uint32_t elem_type, const std::vector<T>& v) {
  ByteWriter w;
  w.u32(elem_type).u64(v.size());
  for (const T& x : v) w.put<T>(x);
  return w.take();
}
// An array of arrays; each item is itself an array payload.
inline std::vector<uint8_t> array_of_arrays(const std::vector<std::vector<uint8_t>>& items) {
  ByteWriter w;
  w.u32(kArray).u64(items.size());
  for (const auto& it : items) w.raw(it);
  return w.take();
}

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;     // ne[0] first (row length)
    uint32_t type_id = 0;           // ggml type id (0 = f32)
    std::vector<uint8_t> data;      // exactly the bytes written to the data section
    std::optional<uint64_t> offset; // overrides the computed offset (and writes no data)
  };

  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  // Header overrides for hostile files.
  GgufBuilder& magic(uint32_t m) { magic_ = m; return *this; }
  GgufBuilder& version(uint32_t v) { version_ = v; return *this; }
  GgufBuilder& n_tensors_override(uint64_t n) { n_tensors_ = n; return *this; }
  GgufBuilder& n_kv_override(uint64_t n) { n_kv_ = n; return *this; }
  // Alignment used to lay out the data (the file's general.alignment is a separate kv).
  GgufBuilder& layout_alignment(uint64_t a) { align_ = a; return *this; }

  // A key with a raw type id and pre-encoded value bytes (anything goes).
  GgufBuilder& kv_raw(std::string_view key, uint32_t type, std::vector<uint8_t> value) {
    ByteWriter w;
    w.str(key).u32(type).raw(value);
    kv_.push_back(w.take());
    return *this;
  }
  template <typename T>
  GgufBuilder& kv_scalar(std::string_view key, uint32_t type, T v) {
    ByteWriter w;
    w.put<T>(v);
    return kv_raw(key, type, w.take());
  }
  GgufBuilder& kv_u8(std::string_view k, uint8_t v) { return kv_scalar(k, kU8, v); }
  GgufBuilder& kv_i8(std::string_view k, int8_t v) { return kv_scalar(k, kI8, v); }
  GgufBuilder& kv_u16(std::string_view k, uint16_t v) { return kv_scalar(k, kU16, v); }
  GgufBuilder& kv_i16(std::string_view k, int16_t v) { return kv_scalar(k, kI16, v); }
  GgufBuilder& kv_u32(std::string_view k, uint32_t v) { return kv_scalar(k, kU32, v); }
  GgufBuilder& kv_i32(std::string_view k, int32_t v) { return kv_scalar(k, kI32, v); }
  GgufBuilder& kv_u64(std::string_view k, uint64_t v) { return kv_scalar(k, kU64, v); }
  GgufBuilder& kv_i64(std::string_view k, int64_t v) { return kv_scalar(k, kI64, v); }
  GgufBuilder& kv_f32(std::string_view k, float v) { return kv_scalar(k, kF32, v); }
  GgufBuilder& kv_f64(std::string_view k, double v) { return kv_scalar(k, kF64, v); }
  GgufBuilder& kv_bool(std::string_view k, uint8_t raw) { return kv_scalar(k, kBool, raw); }
  GgufBuilder& kv_string(std::string_view k, std::string_view v) {
    ByteWriter w;
    w.str(v);
    return kv_raw(k, kString, w.take());
  }
  GgufBuilder& kv_array(std::string_view k, std::vector<uint8_t> payload) {
    return kv_raw(k, kArray, std::move(payload));
  }

  // A tensor whose data is `data`; the offset is computed (aligned) unless overridden.
  GgufBuilder& tensor(Tensor t) {
    tensors_.push_back(std::move(t));
    return *this;
  }
  // An f32 tensor filled with `fill` (shape ne[0] first).
  GgufBuilder& tensor_f32(std::string_view name, std::vector<uint64_t> dims, float fill = 0.0f) {
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    ByteWriter w;
    for (uint64_t k = 0; k < n; ++k) w.put<float>(fill);
    return tensor(Tensor{std::string(name), std::move(dims), 0, w.take(), std::nullopt});
  }

  // The whole file. Tensor data is laid out in order, each at an aligned offset.
  std::vector<uint8_t> build() const {
    ByteWriter w;
    w.u32(magic_).u32(version_);
    w.u64(n_tensors_ ? *n_tensors_ : tensors_.size());
    w.u64(n_kv_ ? *n_kv_ : kv_.size());
    for (const auto& kv : kv_) w.raw(kv);
    uint64_t next = 0;
    std::vector<uint64_t> offsets;
    for (const Tensor& t : tensors_) {
      w.str(t.name).u32(static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) w.u64(d);
      w.u32(t.type_id);
      const uint64_t off = t.offset ? *t.offset : next;
      offsets.push_back(off);
      w.u64(off);
      next = (off + t.data.size() + align_ - 1) / align_ * align_;
    }
    if (tensors_.empty()) return w.take();
    w.pad_to(align_);
    std::vector<uint8_t> out = w.take();
    const size_t data_start = out.size();
    for (size_t k = 0; k < tensors_.size(); ++k) {
      // A tensor with an overridden offset gets no data: the test decides what is there.
      const std::vector<uint8_t>& d = tensors_[k].data;
      if (d.empty() || tensors_[k].offset) continue;
      const size_t at = data_start + offsets[k];
      if (out.size() < at + d.size()) out.resize(at + d.size(), 0);
      std::memcpy(out.data() + at, d.data(), d.size());
    }
    out.resize((out.size() + align_ - 1) / align_ * align_, 0);
    return out;
  }

  // Offset of the end of the fixed header (magic, version, two counts).
  static constexpr size_t kHeaderSize = 4 + 4 + 8 + 8;

 private:
  uint32_t magic_ = 0x46554747;  // "GGUF"
  uint32_t version_;
  std::optional<uint64_t> n_tensors_, n_kv_;
  uint64_t align_ = 32;
  std::vector<std::vector<uint8_t>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace flashlm::gguf::testing
