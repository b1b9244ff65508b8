#include "embed/encoder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "formats/safetensors.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/sgemm.h"
#include "tokenizer/tokenizer_json.h"

namespace flashlm::embed {

struct LayerWeights {
  std::vector<float> qkv_w, qkv_b;    // [3H][H]: query, key, value rows; [3H]
  std::vector<float> out_w, out_b;    // [H][H], [H]
  std::vector<float> ln1_w, ln1_b;    // after attention
  std::vector<float> up_w, up_b;      // [F][H], [F]
  std::vector<float> down_w, down_b;  // [H][F], [H]
  std::vector<float> ln2_w, ln2_b;    // after the FFN
};

struct EncoderWeights {
  std::vector<float> word, pos, type;  // [V][H], [P][H], [types][H]
  std::vector<float> ln_w, ln_b;       // after the embeddings
  std::vector<LayerWeights> layers;
};

namespace {

// One tensor as F32, its shape checked. Checkpoints saved from BertFor* classes prefix
// every name with "bert.".
class TensorReader {
 public:
  explicit TensorReader(const safetensors::Shards& s) : s_(s) {}

  Status read(const std::string& name, std::vector<int64_t> shape, std::vector<float>* out) const {
    std::string key = name;
    if (s_.find(key) == nullptr) key = "bert." + name;
    const safetensors::TensorInfo* t = s_.find(key);
    if (t == nullptr) return Status::error("the checkpoint has no tensor '" + name + "'");
    if (t->shape != shape) {
      std::string want, got;
      for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      for (int64_t d : t->shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      return Status::error("tensor '" + key + "' has shape [" + got + "], config.json implies [" + want + "]");
    }
    Result<std::vector<float>> v = s_.file_of(key)->to_f32(key);
    if (!v) return v.status();
    *out = std::move(v).value();
    return Status::ok();
  }

 private:
  const safetensors::Shards& s_;
};

Result<std::unique_ptr<EncoderWeights>> load_weights(const std::string& dir, const BertConfig& c) {
  Result<safetensors::Shards> shards = safetensors::Shards::open(dir);
  if (!shards) return shards.status();
  const TensorReader r(*shards);
  auto w = std::make_unique<EncoderWeights>();
  const int64_t H = c.hidden, F = c.ffn;
  struct Want {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float>* out;
  };
  std::vector<Want> wants = {
      {"embeddings.word_embeddings.weight", {c.vocab_size, H}, &w->word},
      {"embeddings.position_embeddings.weight", {c.max_positions, H}, &w->pos},
      {"embeddings.token_type_embeddings.weight", {c.type_vocab, H}, &w->type},
      {"embeddings.LayerNorm.weight", {H}, &w->ln_w},
      {"embeddings.LayerNorm.bias", {H}, &w->ln_b},
  };
  w->layers.resize(static_cast<size_t>(c.n_layers));
  // Q, K and V are read separately and stacked into one matrix, so one matmul makes all three.
  std::vector<std::vector<float>> qkv(static_cast<size_t>(c.n_layers) * 6);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w->layers[static_cast<size_t>(l)];
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    std::vector<float>* q = &qkv[static_cast<size_t>(l) * 6];
    const std::pair<const char*, int> parts[] = {{"query", 0}, {"key", 1}, {"value", 2}};
    for (const auto& [name, i] : parts) {
      wants.push_back({p + "attention.self." + name + ".weight", {H, H}, &q[i]});
      wants.push_back({p + "attention.self." + name + ".bias", {H}, &q[3 + i]});
    }
    wants.push_back({p + "attention.output.dense.weight", {H, H}, &L.out_w});
    wants.push_back({p + "attention.output.dense.bias", {H}, &L.out_b});
    wants.push_back({p + "attention.output.LayerNorm.weight", {H}, &L.ln1_w});
    wants.push_back({p + "attention.output.LayerNorm.bias", {H}, &L.ln1_b});
    wants.push_back({p + "intermediate.dense.weight", {F, H}, &L.up_w});
    wants.push_back({p + "intermediate.dense.bias", {F}, &L.up_b});
    wants.push_back({p + "output.dense.weight", {H, F}, &L.down_w});
    wants.push_back({p + "output.dense.bias", {H}, &L.down_b});
    wants.push_back({p + "output.LayerNorm.weight", {H}, &L.ln2_w});
    wants.push_back({p + "output.LayerNorm.bias", {H}, &L.ln2_b});
  }
  for (const Want& want : wants) {
    if (Status st = r.read(want.name, want.shape, want.out); !st) return Status::error(dir + ": " + st.message());
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w->layers[static_cast<size_t>(l)];
    const std::vector<float>* q = &qkv[static_cast<size_t>(l) * 6];
    for (int i = 0; i < 3; ++i) {
      L.qkv_w.insert(L.qkv_w.end(), q[i].begin(), q[i].end());
      L.qkv_b.insert(L.qkv_b.end(), q[3 + i].begin(), q[3 + i].end());
    }
  }
  return w;
}

// y[M][N] = x[M][K] . W^T + b, W stored [N][K] as PyTorch's Linear stores it.
void linear(const float* x, int64_t M, int64_t K, const std::vector<float>& W, const std::vector<float>& b,
            int64_t N, float* y, ThreadPool& pool) {
  SgemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = x;
  g.lda = K;
  g.B = W.data();
  g.ldb = K;
  g.trans_b = true;
  g.C = y;
  g.ldc = N;
  sgemm(g, pool);
  pool.parallel_for(M, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) ops::add(y + r * N, b.data(), y + r * N, N);
  });
}

// y = LayerNorm(a + r) per row (a may be y), in float with a double mean and variance.
void add_layer_norm(const float* a, const float* r, const std::vector<float>& w, const std::vector<float>& b,
                    float eps, int64_t rows, int64_t n, float* y, ThreadPool& pool) {
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
    std::vector<float> s(static_cast<size_t>(n));
    for (int64_t row = r0; row < r1; ++row) {
      const float* ar = a + row * n;
      const float* rr = r != nullptr ? r + row * n : nullptr;
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        s[static_cast<size_t>(i)] = rr != nullptr ? ar[i] + rr[i] : ar[i];
        sum += s[static_cast<size_t>(i)];
      }
      const double mean = sum / static_cast<double>(n);
      double var = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double d = s[static_cast<size_t>(i)] - mean;
        var += d * d;
      }
      const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(n) + eps));
      const float m = static_cast<float>(mean);
      float* yr = y + row * n;
      for (int64_t i = 0; i < n; ++i) yr[i] = (s[static_cast<size_t>(i)] - m) * inv * w[static_cast<size_t>(i)] + b[static_cast<size_t>(i)];
    }
  });
}

}  // namespace

Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;
Encoder::~Encoder() = default;

Result<Encoder> Encoder::load(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::error(dir + ": not a directory (an embedding model is a Hugging Face model directory)");
  Encoder e;
  Result<BertConfig> c = read_bert_config(dir);
  if (!c) return c.status();
  e.config_ = *c;
  Result<tok::Vocab> vocab = tok::vocab_from_tokenizer_json_file((fs::path(dir) / "tokenizer.json").string());
  if (!vocab) return vocab.status();
  Result<SentenceConfig> s = read_sentence_config(dir, e.config_, vocab->wpm.lowercase);
  if (!s) return s.status();
  e.sentence_ = *s;
  if (vocab->n_vocab() > e.config_.vocab_size) {
    return Status::error(dir + ": tokenizer.json has " + std::to_string(vocab->n_vocab()) +
                         " tokens, more than the model's vocab_size " + std::to_string(e.config_.vocab_size));
  }
  Result<tok::Tokenizer> tok = tok::Tokenizer::from_vocab(std::move(vocab).value());
  if (!tok) return tok.status();
  e.tok_ = std::make_unique<tok::Tokenizer>(std::move(tok).value());
  Result<std::unique_ptr<EncoderWeights>> w = load_weights(dir, e.config_);
  if (!w) return w.status();
  e.w_ = std::move(w).value();
  e.name_ = fs::path(dir).lexically_normal().filename().string();
  if (e.name_.empty()) e.name_ = fs::path(dir).lexically_normal().parent_path().filename().string();
  return e;
}

int64_t Encoder::dim() const { return config_.hidden; }

std::vector<int32_t> Encoder::tokenize(std::string_view text, bool truncate) const {
  std::vector<int32_t> ids = tok_->encode(text, /*add_special=*/true, /*parse_special=*/true);
  return truncate ? cut(std::move(ids)) : ids;
}

std::vector<int32_t> Encoder::cut(std::vector<int32_t> ids) const {
  const auto max = static_cast<size_t>(sentence_.max_tokens);
  if (ids.size() <= max) return ids;
  // The text's tokens are cut, a closing special token stays (tokenizers truncates
  // before the post-processor adds it).
  const int32_t last = ids.back();
  const bool keep = tok_->vocab().add_eos && last == tok_->vocab().eos;
  ids.resize(keep ? max - 1 : max);
  if (keep) ids.push_back(last);
  return ids;
}

Result<std::vector<std::vector<float>>> Encoder::embed(const std::vector<std::vector<int32_t>>& seqs,
                                                       ThreadPool& pool) const {
  const BertConfig& c = config_;
  const int64_t H = c.hidden, F = c.ffn, n_heads = c.n_heads, dh = H / n_heads;
  std::vector<int64_t> start(seqs.size() + 1, 0);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto len = static_cast<int64_t>(seqs[s].size());
    if (len < 1 || len > sentence_.max_tokens) {
      return Status::error("input " + std::to_string(s) + " has " + std::to_string(len) + " tokens; this model takes 1 to " +
                           std::to_string(sentence_.max_tokens));
    }
    for (int32_t id : seqs[s]) {
      if (id < 0 || id >= c.vocab_size) {
        return Status::error("input " + std::to_string(s) + " holds token id " + std::to_string(id) +
                             ", outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
      }
    }
    start[s + 1] = start[s] + len;
  }
  const int64_t T = start.back();
  std::vector<std::vector<float>> out(seqs.size());
  if (T == 0) return out;

  // Embeddings: word + position + token type 0, then LayerNorm.
  std::vector<float> x(static_cast<size_t>(T * H)), tmp(static_cast<size_t>(T * H));
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t p = 0; p < seqs[s].size(); ++p) {
      float* row = tmp.data() + (start[s] + static_cast<int64_t>(p)) * H;
      const float* we = w_->word.data() + static_cast<int64_t>(seqs[s][p]) * H;
      const float* pe = w_->pos.data() + static_cast<int64_t>(p) * H;
      const float* te = w_->type.data();  // every token is of type 0 (one text per input)
      for (int64_t i = 0; i < H; ++i) row[i] = (we[i] + te[i]) + pe[i];  // BERT's order
    }
  }
  add_layer_norm(tmp.data(), nullptr, w_->ln_w, w_->ln_b, c.ln_eps, T, H, x.data(), pool);

  std::vector<float> qkv(static_cast<size_t>(T * 3 * H)), ctx(static_cast<size_t>(T * H)), ffn(static_cast<size_t>(T * F));
  // Work items for attention: (sequence, head) pairs.
  const auto n_items = static_cast<int64_t>(seqs.size()) * n_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  for (const LayerWeights& L : w_->layers) {
    linear(x.data(), T, H, L.qkv_w, L.qkv_b, 3 * H, qkv.data(), pool);
    pool.parallel_for(n_items, [&](int64_t i0, int64_t i1, int) {
      std::vector<float> p;
      for (int64_t item = i0; item < i1; ++item) {
        const auto s = static_cast<size_t>(item / n_heads);
        const int64_t h = item % n_heads;
        const int64_t base = start[s], len = start[s + 1] - start[s];
        p.resize(static_cast<size_t>(len));
        for (int64_t i = 0; i < len; ++i) {
          const float* q = qkv.data() + (base + i) * 3 * H + h * dh;
          float mx = -INFINITY;
          for (int64_t j = 0; j < len; ++j) {
            const float* k = qkv.data() + (base + j) * 3 * H + H + h * dh;
            const float v = ops::dot(q, k, dh) * scale;
            p[static_cast<size_t>(j)] = v;
            mx = std::max(mx, v);
          }
          for (int64_t j = 0; j < len; ++j) p[static_cast<size_t>(j)] -= mx;
          ops::exp_row(p.data(), p.data(), len);
          double sum = 0.0;
          for (int64_t j = 0; j < len; ++j) sum += p[static_cast<size_t>(j)];
          const float inv = static_cast<float>(1.0 / sum);
          float* o = ctx.data() + (base + i) * H + h * dh;
          std::fill(o, o + dh, 0.0f);
          for (int64_t j = 0; j < len; ++j) {
            const float* v = qkv.data() + (base + j) * 3 * H + 2 * H + h * dh;
            ops::axpy(p[static_cast<size_t>(j)] * inv, v, o, dh);
          }
        }
      }
    });
    linear(ctx.data(), T, H, L.out_w, L.out_b, H, tmp.data(), pool);
    add_layer_norm(tmp.data(), x.data(), L.ln1_w, L.ln1_b, c.ln_eps, T, H, x.data(), pool);
    linear(x.data(), T, H, L.up_w, L.up_b, F, ffn.data(), pool);
    pool.parallel_for(T, [&](int64_t r0, int64_t r1, int) {
      ops::gelu_erf(ffn.data() + r0 * F, ffn.data() + r0 * F, (r1 - r0) * F);
    });
    linear(ffn.data(), T, F, L.down_w, L.down_b, H, tmp.data(), pool);
    add_layer_norm(tmp.data(), x.data(), L.ln2_w, L.ln2_b, c.ln_eps, T, H, x.data(), pool);
  }

  for (size_t s = 0; s < seqs.size(); ++s) {
    out[s] = pool_rows(x.data() + start[s] * H, start[s + 1] - start[s], H, sentence_.pooling, sentence_.normalize);
  }
  return out;
}

}  // namespace flashlm::embed
