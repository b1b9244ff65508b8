#include "formats/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "quant/quant.h"

namespace flashlm::gguf {
namespace {
constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
}  // namespace

// Little-endian output to a FILE, into a memory buffer, or nowhere (counting bytes only,
// to size a buffer); the first failure sticks.
class ByteOut : public TensorSink {
 public:
  explicit ByteOut(std::FILE* f) : f_(f) {}
  ByteOut(uint8_t* mem, uint64_t cap) : mem_(mem), cap_(cap) {}
  ByteOut() : count_only_(true) {}
  Status write(const void* data, size_t n) override {
    if (!ok_) return Status::error("write failed");
    if (count_only_) {
      // nothing to store
    } else if (mem_ != nullptr) {
      if (n > cap_ - pos_) {
        ok_ = false;
      } else if (n > 0) {
        std::memcpy(mem_ + pos_, data, n);
      }
    } else if (n > 0 && std::fwrite(data, 1, n, f_) != n) {
      ok_ = false;
    }
    pos_ += n;
    return ok_ ? Status::ok() : Status::error("write failed (disk full?)");
  }
  // Advances over n bytes of tensor data without producing them (count-only).
  void skip(uint64_t n) { pos_ += n; }
  bool count_only() const { return count_only_; }
  template <typename T>
  void put(T v) { (void)write(&v, sizeof v); }
  void str(std::string_view s) {
    put<uint64_t>(s.size());
    (void)write(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t zeros[64] = {};
    while (pos_ % alignment != 0) {
      const uint64_t n = std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros);
      (void)write(zeros, n);
    }
  }
  uint64_t pos() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  std::FILE* f_ = nullptr;
  uint8_t* mem_ = nullptr;
  uint64_t cap_ = 0;
  bool count_only_ = false;
  uint64_t pos_ = 0;
  bool ok_ = true;
};

namespace {

// Counts the bytes a producer emits into the file, so a short or long tensor is caught.
class CountingSink : public TensorSink {
 public:
  CountingSink(ByteOut& out, uint64_t expected) : out_(out), expected_(expected) {}
  Status write(const void* data, size_t n) override {
    if (n > expected_ - written_) return Status::error("producer wrote more bytes than the tensor holds");
    written_ += n;
    return out_.write(data, n);
  }
  uint64_t written() const { return written_; }

 private:
  ByteOut& out_;
  uint64_t expected_;
  uint64_t written_ = 0;
};

Status put_scalar(ByteOut& o, ValueType t, const Value& v) {
  switch (t) {
    case ValueType::kUint8: o.put(static_cast<uint8_t>(v.i)); break;
    case ValueType::kInt8: o.put(static_cast<int8_t>(v.i)); break;
    case ValueType::kUint16: o.put(static_cast<uint16_t>(v.i)); break;
    case ValueType::kInt16: o.put(static_cast<int16_t>(v.i)); break;
    case ValueType::kUint32: o.put(static_cast<uint32_t>(v.i)); break;
    case ValueType::kInt32: o.put(static_cast<int32_t>(v.i)); break;
    case ValueType::kUint64: o.put(static_cast<uint64_t>(v.i)); break;
    case ValueType::kInt64: o.put(static_cast<int64_t>(v.i)); break;
    case ValueType::kFloat32: o.put(static_cast<float>(v.f)); break;
    case ValueType::kFloat64: o.put(v.f); break;
    case ValueType::kBool: o.put(static_cast<uint8_t>(v.b ? 1 : 0)); break;
    case ValueType::kString: o.str(v.s); break;
    case ValueType::kArray: return Status::error("internal: put_scalar on array");
  }
  return Status::ok();
}

bool is_int_type(ValueType t) {
  return t != ValueType::kFloat32 && t != ValueType::kFloat64 && t != ValueType::kString && t != ValueType::kArray;
}

// Writes an array's element type, count and elements (the payload after the type id).
Status put_array(ByteOut& o, const Value& v) {
  const ValueType et = v.elem_type;
  o.put(static_cast<uint32_t>(et));
  size_t n = 0;
  if (et == ValueType::kString) n = v.strings.size();
  else if (et == ValueType::kArray) n = v.items.size();
  else if (et == ValueType::kFloat32 || et == ValueType::kFloat64) n = v.floats.size();
  else n = v.ints.size();
  if (v.count != n) return Status::error("array count " + std::to_string(v.count) + " but " + std::to_string(n) + " elements");
  o.put<uint64_t>(n);
  Value e;
  for (size_t k = 0; k < n; ++k) {
    if (et == ValueType::kArray) {
      if (v.items[k].type != ValueType::kArray) return Status::error("nested array item is not an array");
      Status st = put_array(o, v.items[k]);
      if (!st) return st;
      continue;
    }
    if (et == ValueType::kString) e.s = v.strings[k];
    else if (is_int_type(et)) { e.i = v.ints[k]; e.b = v.ints[k] != 0; }
    else e.f = v.floats[k];
    Status st = put_scalar(o, et, e);
    if (!st) return st;
  }
  return Status::ok();
}

Value scalar(ValueType t) {
  Value v;
  v.type = t;
  return v;
}

}  // namespace

Value make_u32(uint32_t x) { Value v = scalar(ValueType::kUint32); v.i = x; return v; }
Value make_i32(int32_t x) { Value v = scalar(ValueType::kInt32); v.i = x; return v; }
Value make_u64(uint64_t x) { Value v = scalar(ValueType::kUint64); v.i = static_cast<int64_t>(x); return v; }
Value make_f32(float x) { Value v = scalar(ValueType::kFloat32); v.f = x; return v; }
Value make_bool(bool x) { Value v = scalar(ValueType::kBool); v.b = x; v.i = x ? 1 : 0; return v; }
Value make_string(std::string x) { Value v = scalar(ValueType::kString); v.s = std::move(x); return v; }
namespace {
// An array value: `member` of the Value holds the elements, `elem` names their type.
template <typename T>
Value array_of(ValueType elem, std::vector<T> x, std::vector<T> Value::*member) {
  Value v = scalar(ValueType::kArray);
  v.elem_type = elem;
  v.count = x.size();
  v.*member = std::move(x);
  return v;
}
}  // namespace

Value make_string_array(std::vector<std::string> x) {
  return array_of(ValueType::kString, std::move(x), &Value::strings);
}
Value make_f32_array(std::vector<double> x) { return array_of(ValueType::kFloat32, std::move(x), &Value::floats); }
Value make_i32_array(std::vector<int64_t> x) { return array_of(ValueType::kInt32, std::move(x), &Value::ints); }

void Writer::set(std::string_view key, Value v) {
  for (auto& [k, val] : kv_) {
    if (k == key) {
      val = std::move(v);
      return;
    }
  }
  kv_.emplace_back(std::string(key), std::move(v));
}

bool Writer::remove(std::string_view key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it) {
    if (it->first == key) {
      kv_.erase(it);
      return true;
    }
  }
  return false;
}

const Value* Writer::find(std::string_view key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Writer::copy_metadata(const File& f) {
  for (const auto& [k, v] : f.metadata()) set(k, v);
}

uint64_t Writer::alignment() const {
  const Value* a = find("general.alignment");
  if (a == nullptr || !a->is_integer() || a->i <= 0 || (a->i & (a->i - 1)) != 0) return 32;
  return static_cast<uint64_t>(a->i);
}

Status Writer::declare(std::string name, DType type, std::vector<int64_t> ne, Pending* p) const {
  const std::string ctx = "tensor '" + name + "'";
  if (name.empty()) return Status::error("tensor with an empty name");
  if (ne.empty() || ne.size() > 4) return Status::error(ctx + ": " + std::to_string(ne.size()) + " dimensions");
  for (const Pending& t : tensors_) {
    if (t.name == name) return Status::error(ctx + ": declared twice");
  }
  const size_t row = row_size(type, ne[0]);
  if (row == 0) return Status::error(ctx + ": row length " + std::to_string(ne[0]) + " does not fit its type");
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) {
    if (ne[d] <= 0) return Status::error(ctx + ": dimension " + std::to_string(d) + " is " + std::to_string(ne[d]));
    rows *= static_cast<uint64_t>(ne[d]);
  }
  p->name = std::move(name);
  p->type = type;
  p->ne = std::move(ne);
  p->size_bytes = rows * row;
  return Status::ok();
}

Status Writer::add_tensor(std::string name, DType type, std::vector<int64_t> ne, const void* data) {
  Pending p;
  Status st = declare(std::move(name), type, std::move(ne), &p);
  if (!st) return st;
  if (data == nullptr) return Status::error("tensor '" + p.name + "': no data");
  p.data = data;
  tensors_.push_back(std::move(p));
  return Status::ok();
}

Status Writer::add_tensor(std::string name, DType type, std::vector<int64_t> ne, TensorProducer producer) {
  Pending p;
  Status st = declare(std::move(name), type, std::move(ne), &p);
  if (!st) return st;
  if (!producer) return Status::error("tensor '" + p.name + "': no producer");
  p.producer = std::move(producer);
  tensors_.push_back(std::move(p));
  return Status::ok();
}

Status Writer::emit(ByteOut& o) const {
  const uint64_t align = alignment();
  o.put(kMagic);
  o.put(kVersion);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    o.str(k);
    o.put(static_cast<uint32_t>(v.type));
    Status st = v.type == ValueType::kArray ? put_array(o, v) : put_scalar(o, v.type, v);
    if (!st) return st.with_context("key '" + k + "'");
  }
  uint64_t offset = 0;
  for (const Pending& t : tensors_) {
    o.str(t.name);
    o.put(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) o.put(static_cast<uint64_t>(d));
    o.put(static_cast<uint32_t>(t.type));
    o.put(offset);
    offset = (offset + t.size_bytes + align - 1) / align * align;
  }
  o.pad_to(align);
  for (const Pending& t : tensors_) {
    if (o.count_only()) {
      o.skip(t.size_bytes);
    } else if (t.data != nullptr) {
      Status st = o.write(t.data, t.size_bytes);
      if (!st) return st;
    } else {
      CountingSink sink(o, t.size_bytes);
      Status st = t.producer(sink);
      if (!st) return st.with_context("tensor '" + t.name + "'");
      if (sink.written() != t.size_bytes) {
        return Status::error("tensor '" + t.name + "': producer wrote " + std::to_string(sink.written()) + " of " +
                             std::to_string(t.size_bytes) + " bytes");
      }
    }
    o.pad_to(align);
  }
  if (!o.ok()) return Status::error("write failed (disk full?)");
  return Status::ok();
}

Status Writer::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!f) return Status::error("cannot create '" + tmp + "': " + std::strerror(errno));
  const auto fail = [&](const Status& st) {
    f.reset();
    std::remove(tmp.c_str());
    return st.with_context("writing '" + path + "'");
  };
  ByteOut o(f.get());
  if (Status st = emit(o); !st) return fail(st);
  if (std::fflush(f.get()) != 0) return fail(Status::error(std::string("flush: ") + std::strerror(errno)));
  f.reset();
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::error("cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
  return Status::ok();
}

uint64_t Writer::size_bytes() const {
  ByteOut counter;
  (void)emit(counter);  // counting runs no producer; a bad key surfaces when the file is written
  return counter.pos();
}

Result<MappedFile> Writer::write_to_memory(const std::string& name) const {
  ByteOut counter;
  if (Status st = emit(counter); !st) return st.with_context(name);
  Result<HugePageBuffer> buf = HugePageBuffer::allocate(static_cast<size_t>(counter.pos()));
  if (!buf) return buf.status().with_context(name);
  ByteOut mem(buf->data(), counter.pos());
  if (Status st = emit(mem); !st) return st.with_context(name);
  if (mem.pos() != counter.pos()) return Status::error(name + ": the file's size changed between passes");
  const size_t size = static_cast<size_t>(mem.pos());
  buf->protect_read_only();
  return MappedFile::adopt(std::move(buf.value()), size, name);
}

}  // namespace flashlm::gguf
