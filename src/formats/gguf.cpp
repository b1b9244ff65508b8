#include "formats/gguf.h"

#include <cstring>
#include <limits>

#include "quant/quant.h"

namespace flashlm::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxNameLen = 1 << 16;
constexpr int kMaxArrayDepth = 4;

// A bounds-checked cursor over the mapped bytes. Every read checks the remaining length
// first, so no read can run past the end of the file.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return truncated(what);
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }

  Status read_string(std::string* out, const char* what, uint64_t max_len) {
    uint64_t len = 0;
    Status st = read(&len, what);
    if (!st) return st;
    if (len > remaining()) return truncated(what);
    if (len > max_len) {
      return Status::error(std::string(what) + ": string length " + std::to_string(len) +
                           " exceeds limit " + std::to_string(max_len));
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::ok();
  }

  Status skip(uint64_t n, const char* what) {
    if (n > remaining()) return truncated(what);
    pos_ += static_cast<size_t>(n);
    return Status::ok();
  }

  Status truncated(const char* what) const {
    return Status::error(std::string("file truncated while reading ") + what + " at byte " +
                         std::to_string(pos_));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Smallest number of bytes one element of a type occupies in the file; used to reject
// element counts that could not possibly fit before anything is allocated.
uint64_t min_elem_bytes(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    case ValueType::kString: return 8;   // length prefix
    case ValueType::kArray: return 12;   // type + count
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

Status read_scalar(Cursor& c, ValueType t, Value* v) {
  v->type = t;
  switch (t) {
    case ValueType::kUint8: { uint8_t x{}; Status s = c.read(&x, "u8"); v->i = x; return s; }
    case ValueType::kInt8: { int8_t x{}; Status s = c.read(&x, "i8"); v->i = x; return s; }
    case ValueType::kUint16: { uint16_t x{}; Status s = c.read(&x, "u16"); v->i = x; return s; }
    case ValueType::kInt16: { int16_t x{}; Status s = c.read(&x, "i16"); v->i = x; return s; }
    case ValueType::kUint32: { uint32_t x{}; Status s = c.read(&x, "u32"); v->i = x; return s; }
    case ValueType::kInt32: { int32_t x{}; Status s = c.read(&x, "i32"); v->i = x; return s; }
    case ValueType::kInt64: { int64_t x{}; Status s = c.read(&x, "i64"); v->i = x; return s; }
    case ValueType::kUint64: {
      uint64_t x = 0;
      Status s = c.read(&x, "u64");
      if (!s) return s;
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Status::error("u64 value " + std::to_string(x) + " out of supported range");
      }
      v->i = static_cast<int64_t>(x);
      return s;
    }
    case ValueType::kFloat32: { float x{}; Status s = c.read(&x, "f32"); v->f = x; return s; }
    case ValueType::kFloat64: { double x{}; Status s = c.read(&x, "f64"); v->f = x; return s; }
    case ValueType::kBool: {
      uint8_t x = 0;
      Status s = c.read(&x, "bool");
      if (!s) return s;
      if (x > 1) return Status::error("bool value " + std::to_string(x) + " is not 0 or 1");
      v->b = x != 0;
      v->i = x;
      return s;
    }
    case ValueType::kString: return c.read_string(&v->s, "string value", c.remaining());
    case ValueType::kArray: break;
  }
  return Status::error("internal: read_scalar on array");
}

Status read_value(Cursor& c, ValueType t, Value* v, int depth);

Status read_array(Cursor& c, Value* v, int depth) {
  if (depth >= kMaxArrayDepth) return Status::error("arrays nested too deeply");
  uint32_t et = 0;
  uint64_t n = 0;
  Status st = c.read(&et, "array element type");
  if (!st) return st;
  if (!valid_value_type(et)) return Status::error("unknown array element type " + std::to_string(et));
  st = c.read(&n, "array length");
  if (!st) return st;
  v->type = ValueType::kArray;
  v->elem_type = static_cast<ValueType>(et);
  v->count = n;
  // Reject counts that cannot fit in what is left of the file before reserving memory.
  if (n > c.remaining() / min_elem_bytes(v->elem_type)) {
    return Status::error("array of " + std::to_string(n) + " elements does not fit in the file");
  }
  Value tmp;
  switch (v->elem_type) {
    case ValueType::kString:
      v->strings.reserve(n);
      for (uint64_t k = 0; k < n; ++k) {
        std::string s;
        st = c.read_string(&s, "array string", c.remaining());
        if (!st) return st;
        v->strings.push_back(std::move(s));
      }
      return st;
    case ValueType::kFloat32:
    case ValueType::kFloat64:
      v->floats.reserve(n);
      for (uint64_t k = 0; k < n; ++k) {
        st = read_scalar(c, v->elem_type, &tmp);
        if (!st) return st;
        v->floats.push_back(tmp.f);
      }
      return st;
    case ValueType::kArray:
      v->items.reserve(n);
      for (uint64_t k = 0; k < n; ++k) {
        Value item;
        st = read_array(c, &item, depth + 1);
        if (!st) return st;
        v->items.push_back(std::move(item));
      }
      return st;
    default:
      v->ints.reserve(n);
      for (uint64_t k = 0; k < n; ++k) {
        st = read_scalar(c, v->elem_type, &tmp);
        if (!st) return st;
        v->ints.push_back(tmp.i);
      }
      return st;
  }
}

Status read_value(Cursor& c, ValueType t, Value* v, int depth) {
  if (t == ValueType::kArray) return read_array(c, v, depth);
  return read_scalar(c, t, v);
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

}  // namespace

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
  }
  return "?";
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16:
    case ValueType::kInt16: case ValueType::kUint32: case ValueType::kInt32:
    case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

std::string Value::to_string(size_t max_items) const {
  if (is_integer()) return std::to_string(i);
  if (is_float()) return std::to_string(f);
  if (type == ValueType::kBool) return b ? "true" : "false";
  if (type == ValueType::kString) {
    if (s.size() > 80) return "\"" + s.substr(0, 77) + "...\" (" + std::to_string(s.size()) + " bytes)";
    return "\"" + s + "\"";
  }
  if (count > max_items) {
    return "[" + std::to_string(count) + " " + value_type_name(elem_type) + "]";
  }
  std::string out = "[";
  for (uint64_t k = 0; k < count; ++k) {
    if (k) out += ", ";
    if (elem_type == ValueType::kString) out += "\"" + strings[k] + "\"";
    else if (elem_type == ValueType::kFloat32 || elem_type == ValueType::kFloat64) out += std::to_string(floats[k]);
    else if (elem_type == ValueType::kArray) out += items[k].to_string(max_items);
    else out += std::to_string(ints[k]);
  }
  return out + "]";
}

TensorView TensorInfo::view() const {
  TensorView v;
  v.dtype = dtype;
  v.n_dims = n_dims;
  const TypeTraits& tt = type_traits(dtype);
  for (int d = 0; d < 4; ++d) v.ne[d] = ne[d];
  v.nb[0] = tt.type_size;
  v.nb[1] = row_size(dtype, ne[0]);
  for (int d = 2; d < 4; ++d) v.nb[d] = v.nb[d - 1] * static_cast<size_t>(ne[d - 1]);
  v.data = const_cast<uint8_t*>(data);  // weights are read-only; the view type is shared
  return v;
}

Result<File> File::open(const std::string& path, FileBacking backing) {
  Result<MappedFile> map = MappedFile::open(path, backing);
  if (!map) return map.status();
  Result<File> f = parse(std::move(map.value()));
  if (!f) return f.status().with_context("'" + path + "'");
  return f;
}

Result<File> File::parse(MappedFile map) {
  File f;
  f.map_ = std::make_unique<MappedFile>(std::move(map));
  Cursor c(f.map_->data(), f.map_->size());

  uint32_t magic = 0;
  Status st = c.read(&magic, "magic");
  if (!st) return Status::error("not a GGUF file (too short)");
  if (magic != kMagic) return Status::error("not a GGUF file (bad magic)");
  st = c.read(&f.version_, "version");
  if (!st) return st;
  if (f.version_ != 2 && f.version_ != 3) {
    return Status::error("unsupported GGUF version " + std::to_string(f.version_) + " (supported: 2, 3)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (!(st = c.read(&n_tensors, "tensor count"))) return st;
  if (!(st = c.read(&n_kv, "metadata count"))) return st;
  // Each metadata entry takes at least a key length, a key byte and a type: 13 bytes;
  // each tensor entry at least 8 + 1 + 4 + 8 + 4 + 8 bytes.
  if (n_kv > c.remaining() / 13) return Status::error("metadata count " + std::to_string(n_kv) + " does not fit in the file");
  if (n_tensors > c.remaining() / 33) return Status::error("tensor count " + std::to_string(n_tensors) + " does not fit in the file");

  f.kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    st = c.read_string(&key, "metadata key", kMaxNameLen);
    if (!st) return st.with_context("metadata entry " + std::to_string(k));
    uint32_t t = 0;
    if (!(st = c.read(&t, "metadata type"))) return st.with_context("key '" + key + "'");
    if (!valid_value_type(t)) return Status::error("key '" + key + "': unknown value type " + std::to_string(t));
    Value v;
    st = read_value(c, static_cast<ValueType>(t), &v, 0);
    if (!st) return st.with_context("key '" + key + "'");
    if (f.kv_index_.count(key)) return Status::error("duplicate metadata key '" + key + "'");
    f.kv_index_.emplace(key, f.kv_.size());
    f.kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = f.find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || (a->i & (a->i - 1)) != 0 || a->i > (1 << 20)) {
      return Status::error("general.alignment must be a power of two up to 1 MiB, got " + a->to_string());
    }
    f.alignment_ = static_cast<uint64_t>(a->i);
  }

  f.tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    st = c.read_string(&ti.name, "tensor name", kMaxNameLen);
    if (!st) return st.with_context("tensor " + std::to_string(k));
    const std::string ctx = "tensor '" + ti.name + "'";
    uint32_t n_dims = 0;
    if (!(st = c.read(&n_dims, "tensor dims"))) return st.with_context(ctx);
    if (n_dims == 0 || n_dims > 4) return Status::error(ctx + ": " + std::to_string(n_dims) + " dimensions (1 to 4 supported)");
    ti.n_dims = static_cast<int>(n_dims);
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      if (!(st = c.read(&ne, "tensor shape"))) return st.with_context(ctx);
      if (ne == 0 || ne > (uint64_t{1} << 40)) return Status::error(ctx + ": bad dimension " + std::to_string(ne));
      if (!checked_mul(nelem, ne, &nelem) || nelem > (uint64_t{1} << 42)) return Status::error(ctx + ": too many elements");
      ti.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t type_id = 0;
    if (!(st = c.read(&type_id, "tensor type"))) return st.with_context(ctx);
    const TypeTraits& tt = type_traits(type_id);
    if (tt.name == nullptr) return Status::error(ctx + ": unsupported tensor type id " + std::to_string(type_id));
    ti.dtype = static_cast<DType>(type_id);
    if (ti.ne[0] % tt.block_size != 0) {
      return Status::error(ctx + ": row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " +
                           tt.name + " block size " + std::to_string(tt.block_size));
    }
    if (!(st = c.read(&ti.offset, "tensor offset"))) return st.with_context(ctx);
    if (ti.offset % f.alignment_ != 0) return Status::error(ctx + ": offset " + std::to_string(ti.offset) + " is not aligned");
    ti.size_bytes = (nelem / static_cast<uint64_t>(tt.block_size)) * tt.type_size;
    if (f.tensor_index_.count(ti.name)) return Status::error("duplicate tensor name '" + ti.name + "'");
    f.tensor_index_.emplace(ti.name, f.tensors_.size());
    f.tensors_.push_back(std::move(ti));
  }

  const uint64_t header_end = c.pos();
  f.data_offset_ = (header_end + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  const uint64_t file_size = f.map_->size();
  if (n_tensors > 0 && f.data_offset_ > file_size) return Status::error("file truncated before the tensor data");
  for (TensorInfo& ti : f.tensors_) {
    const uint64_t avail = file_size - std::min(file_size, f.data_offset_);
    if (ti.offset > avail || ti.size_bytes > avail - ti.offset) {
      return Status::error("tensor '" + ti.name + "': data [" + std::to_string(ti.offset) + ", +" +
                           std::to_string(ti.size_bytes) + ") extends past the end of the file (truncated?)");
    }
    ti.data = f.map_->data() + f.data_offset_ + ti.offset;
  }
  return f;
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Status missing(std::string_view key) { return Status::error("metadata key '" + std::string(key) + "' is missing"); }
int storage_class(ValueType t) {
  switch (t) {
    case ValueType::kString: return 1;
    case ValueType::kFloat32: case ValueType::kFloat64: return 2;
    case ValueType::kArray: return 3;
    default: return 0;  // integers and bools
  }
}
Status wrong_type(std::string_view key, const Value& v, const char* want) {
  return Status::error("metadata key '" + std::string(key) + "' has type " + value_type_name(v.type) + ", expected " + want);
}
}  // namespace

Result<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing(key);
  if (!v->is_integer()) return wrong_type(key, *v, "an integer");
  return v->i;
}

Result<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing(key);
  if (v->is_float()) return v->f;
  if (v->is_integer()) return static_cast<double>(v->i);
  return wrong_type(key, *v, "a number");
}

Result<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::kBool) return wrong_type(key, *v, "bool");
  return v->b;
}

Result<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::kString) return wrong_type(key, *v, "string");
  return v->s;
}

Result<const Value*> File::get_array(std::string_view key, ValueType elem) const {
  const Value* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::kArray) return wrong_type(key, *v, "array");
  // Arrays are stored by class (ints, floats, strings, items), so any element type of
  // the requested class is accepted.
  if (storage_class(v->elem_type) != storage_class(elem)) {
    return Status::error("metadata key '" + std::string(key) + "' is an array of " + value_type_name(v->elem_type) +
                         ", expected " + value_type_name(elem));
  }
  return v;
}
Result<int64_t> File::get_int_or(std::string_view key, int64_t def) const {
  return find(key) ? get_int(key) : Result<int64_t>(def);
}
Result<double> File::get_float_or(std::string_view key, double def) const {
  return find(key) ? get_float(key) : Result<double>(def);
}
Result<bool> File::get_bool_or(std::string_view key, bool def) const {
  return find(key) ? get_bool(key) : Result<bool>(def);
}
Result<std::string> File::get_string_or(std::string_view key, std::string def) const {
  return find(key) ? get_string(key) : Result<std::string>(std::move(def));
}

}  // namespace flashlm::gguf
