// Writing a pruned model (factory/prune.h): every kept tensor renamed to its new layer
// and sliced by the plan, the hyper-parameters rewritten.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <numeric>

#include "factory/prune.h"
#include "formats/gguf_writer.h"
#include "quant/quant.h"

namespace flashlm::factory {
namespace {

constexpr size_t kFlushBytes = size_t{4} << 20;  // a producer hands the writer pieces of about this size

// Rows and columns a tensor keeps (indices into the source); empty means all of them. A
// 1-D tensor is one row, so a bias keeps columns.
struct Slice {
  std::vector<int64_t> rows, cols;
};

// The element indices of whole units (heads of head_dim elements, ...).
std::vector<int64_t> expand(const std::vector<int>& units, int64_t unit) {
  std::vector<int64_t> out;
  for (int u : units) {
    for (int64_t i = 0; i < unit; ++i) out.push_back(u * unit + i);
  }
  return out;
}

// "blk.N.<rest>" -> N and rest, or -1.
int split_layer(const std::string& name, std::string* rest) {
  if (!name.starts_with("blk.")) return -1;
  size_t i = 4;
  int v = 0;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && v < 100000; ++i) v = v * 10 + (name[i] - '0');
  if (i == 4 || i >= name.size() || name[i] != '.') return -1;
  *rest = name.substr(i + 1);
  return v;
}

Slice slice_for(const std::string& suffix, const LayerPlan& l, const PrunePlan& p) {
  const int64_t hd = p.before.head_dim;
  const bool ffn = p.after.n_ff != p.before.n_ff;
  const bool heads = p.after.n_head != p.before.n_head;
  const std::vector<int64_t> q = heads ? expand(l.heads, hd) : std::vector<int64_t>{};
  const std::vector<int64_t> kv = heads ? expand(l.kv_groups, hd) : std::vector<int64_t>{};
  Slice s;
  if (ffn && (suffix == "ffn_gate.weight" || suffix == "ffn_up.weight")) s.rows = l.neurons;
  if (ffn && suffix == "ffn_down.weight") s.cols = l.neurons;
  if (suffix == "attn_q.weight") s.rows = q;
  if (suffix == "attn_k.weight" || suffix == "attn_v.weight") s.rows = kv;
  if (suffix == "attn_output.weight" || suffix == "attn_q.bias") s.cols = q;
  if (suffix == "attn_k.bias" || suffix == "attn_v.bias") s.cols = kv;
  return s;
}

// Sets an integer key, keeping the type the file used for it.
void set_int(gguf::Writer& w, const std::string& key, int64_t v) {
  const gguf::Value* old = w.find(key);
  gguf::Value nv = old != nullptr && old->is_integer() ? *old : gguf::make_u32(0);
  nv.i = v;
  w.set(key, nv);
}

// Streams a sliced tensor: whole rows copied as bytes; with a column slice each kept row
// is converted to f32, gathered and converted to the output type.
Status produce(const gguf::TensorInfo& t, const Slice& s, DType out_type, gguf::TensorSink& sink) {
  const int64_t n = t.ne[0];
  const int64_t n_rows = t.nelements() / n;
  const size_t in_bytes = row_size(t.dtype, n);
  const int64_t n_out = s.cols.empty() ? n : static_cast<int64_t>(s.cols.size());
  const size_t out_bytes = row_size(out_type, n_out);
  std::vector<uint8_t> buf;
  buf.reserve(kFlushBytes + out_bytes);
  std::vector<float> src, dst;
  if (!s.cols.empty()) {
    src.resize(static_cast<size_t>(n));
    dst.resize(static_cast<size_t>(n_out));
  }
  const int64_t rows_out = s.rows.empty() ? n_rows : static_cast<int64_t>(s.rows.size());
  for (int64_t i = 0; i < rows_out; ++i) {
    const int64_t r = s.rows.empty() ? i : s.rows[static_cast<size_t>(i)];
    const uint8_t* row = t.data + static_cast<size_t>(r) * in_bytes;
    const size_t at = buf.size();
    buf.resize(at + out_bytes);
    if (s.cols.empty()) {
      std::copy(row, row + in_bytes, buf.data() + at);
    } else {
      type_traits(t.dtype).to_float(row, src.data(), n);
      for (size_t j = 0; j < dst.size(); ++j) dst[j] = src[static_cast<size_t>(s.cols[j])];
      type_traits(out_type).from_float(dst.data(), buf.data() + at, n_out);
    }
    if (buf.size() >= kFlushBytes || i + 1 == rows_out) {
      if (Status st = sink.write(buf.data(), buf.size()); !st) return st;
      buf.clear();
    }
  }
  return Status::ok();
}

}  // namespace

Result<PruneWriteResult> write_pruned(const gguf::File& in, const PrunePlan& p, const std::string& out_path) {
  std::error_code ec;
  if (std::filesystem::equivalent(in.path(), out_path, ec)) {
    return Status::error("the output '" + out_path + "' is the input file; write to another path");
  }
  const std::string& a = p.before.arch;
  gguf::Writer w;
  w.copy_metadata(in);
  set_int(w, a + ".block_count", p.after.n_layer);
  set_int(w, a + ".feed_forward_length", p.after.n_ff);
  set_int(w, a + ".attention.head_count", p.after.n_head);
  set_int(w, a + ".attention.head_count_kv", p.after.n_head_kv);
  // Always written: loaders would otherwise derive the head size from n_embd / n_head.
  set_int(w, a + ".attention.key_length", p.before.head_dim);
  set_int(w, a + ".attention.value_length", p.before.head_dim);
  // A per-layer array (gemma3's sliding-window pattern, when a file has one) follows its layers.
  const std::string pattern_key = a + ".attention.sliding_window_pattern";
  if (const gguf::Value* v = in.find(pattern_key); v != nullptr && v->type == gguf::ValueType::kArray) {
    if (v->ints.size() != static_cast<size_t>(p.before.n_layer)) {
      return Status::error("'" + pattern_key + "' does not have one entry per layer");
    }
    gguf::Value nv = *v;
    nv.ints.clear();
    for (const LayerPlan& l : p.layers) nv.ints.push_back(v->ints[static_cast<size_t>(l.src)]);
    nv.count = nv.ints.size();
    w.set(pattern_key, nv);
  }

  std::vector<int> new_index(static_cast<size_t>(p.before.n_layer), -1);
  for (size_t i = 0; i < p.layers.size(); ++i) new_index[static_cast<size_t>(p.layers[i].src)] = static_cast<int>(i);

  PruneWriteResult res;
  for (const gguf::TensorInfo& t : in.tensors()) {
    std::string suffix;
    const int layer = split_layer(t.name, &suffix);
    std::string name = t.name;
    Slice s;
    if (layer >= 0) {
      if (layer >= p.before.n_layer) return Status::error("tensor '" + t.name + "' is past the last layer");
      const int ni = new_index[static_cast<size_t>(layer)];
      if (ni < 0) continue;  // a dropped layer
      name = "blk." + std::to_string(ni) + "." + suffix;
      s = slice_for(suffix, p.layers[static_cast<size_t>(ni)], p);
    }
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    DType type = t.dtype;
    if (!s.rows.empty() && t.n_dims != 2) return Status::error("tensor '" + t.name + "' is not a matrix");
    if (!s.rows.empty()) ne[1] = static_cast<int64_t>(s.rows.size());
    if (!s.cols.empty()) {
      ne[0] = static_cast<int64_t>(s.cols.size());
      const TypeTraits& tt = type_traits(t.dtype);
      if (tt.from_float == nullptr || row_size(t.dtype, ne[0]) == 0) {
        type = DType::F16;
        res.f16_fallbacks.push_back(name);
      }
    }
    const gguf::TensorInfo* src = &t;
    Status st = s.rows.empty() && s.cols.empty()
                    ? w.add_tensor(name, type, std::move(ne), t.data)
                    : w.add_tensor(name, type, std::move(ne), [src, s = std::move(s), type](gguf::TensorSink& sink) {
                        return produce(*src, s, type, sink);
                      });
    if (!st) return st.with_context("tensor '" + name + "'");
  }
  if (Status st = w.write(out_path); !st) return st;
  res.bytes_written = std::filesystem::file_size(out_path, ec);
  return res;
}

}  // namespace flashlm::factory
