// llama_session: the forward pass of a llama_model with a KV cache (batched prefill and one-token decode).
#pragma once

// Per block (as llama2.c run.c, in fp32):
//   xb = rmsnorm(x) · attn_norm          rmsnorm: x / sqrt(mean(x²) + eps)
//   q, k, v = xb·Wqᵀ, xb·Wkᵀ, xb·Wvᵀ; RoPE on q and k: for each head and pair i (dims 2i, 2i+1),
//             angle = pos · theta^(-2i / head_size), (a, b) → (a·cos − b·sin, a·sin + b·cos)
//   attention per query head h over positions 0..pos (causal), key/value head h / (n_heads / n_kv_heads),
//             scores q·k / sqrt(head_size), softmax (max subtracted), weighted sum of v
//   x += att·Woᵀ                         (x ← x·Sᵀ + att·Woᵀ with a residual linear S, see llama_block)
//   xb = rmsnorm(x) · ffn_norm;  x += (silu(xb·W1ᵀ) ⊙ (xb·W3ᵀ))·W2ᵀ   (likewise)
// then logits = (rmsnorm(x) · output_norm)·Woutᵀ.
// forward() takes a batch of consecutive tokens (positions pos()..pos()+n-1); every
// linear layer sees an [n, in] matrix, so prefill runs GEMMs and decode GEMVs.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/model/llama_model.hpp"

PARE_NAMESPACE_BEGIN

class llama_session {
 public:
  /// Observes the input of every linear layer during forward() (calibration capture).
  /// Called with the layer's GGUF name and its input x [n, in_features].
  struct linear_observer {
    virtual ~linear_observer() = default;
    virtual void on_linear_input(const std::string& name, const matrix_view<const float>& x) = 0;
    /// The residual stream x [n, dim] where it enters a norm: before block `block`'s
    /// attention norm (`before_ffn` false), before its FFN norm (true), and with block ==
    /// number of blocks before the output norm. Default: ignored.
    virtual void on_residual(std::size_t block, bool before_ffn, const matrix_view<const float>& x) {
      (void)block, (void)before_ffn, (void)x;
    }
  };

  explicit llama_session(const llama_model& m) : m_(m) {
    const llama_config& c = m.config;
    std::size_t total = 0;
    for (const llama_block& b : m.blocks) {
      cache_offset_.push_back(total);
      total += static_cast<std::size_t>(c.seq_len) * b.n_kv_heads * c.head_size();
    }
    key_cache_ = aligned_buffer<float>(total);
    value_cache_ = aligned_buffer<float>(total);
    // RoPE table: cos/sin per position and pair, in float as llama2.c run.c computes them.
    const std::size_t hs = c.head_size(), pairs = hs / 2;
    rope_cos_.resize(static_cast<std::size_t>(c.seq_len) * pairs);
    rope_sin_.resize(rope_cos_.size());
    for (int p = 0; p < c.seq_len; ++p)
      for (std::size_t i = 0; i < pairs; ++i) {
        const float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(hs));
        const float angle = static_cast<float>(p) * freq;
        rope_cos_[p * pairs + i] = std::cos(angle);
        rope_sin_[p * pairs + i] = std::sin(angle);
      }
  }

  const llama_model& model() const noexcept { return m_; }
  /// The position of the next token (tokens seen since reset()).
  std::size_t pos() const noexcept { return pos_; }
  void reset() noexcept { pos_ = 0; }
  void set_observer(linear_observer* o) noexcept { observer_ = o; }

  /// Runs `n` tokens at positions pos()..pos()+n-1. Writes the logits of every token
  /// ([n, vocab]) into `logits` if `all_logits`, else only those of the last token ([vocab]).
  /// Throws argument_error for a token id out of range or a batch past seq_len (nothing
  /// is changed then).
  void forward(const std::int32_t* tokens, std::size_t n, std::vector<float>& logits, bool all_logits = false) {
    check_positions("forward", n);
    check_tokens(tokens, n);
    resize(n);
    embed_rows(tokens, n, x_.data());
    for (std::size_t l = 0; l < m_.blocks.size(); ++l) block(l, x_.data(), n);
    head(x_.data(), n, logits, all_logits);
    pos_ += n;
  }

  /// The token embeddings of `n` tokens into x [n, dim] (the residual stream entering
  /// block 0). argument_error for an id out of range.
  void embed(const std::int32_t* tokens, std::size_t n, float* x) const {
    check_tokens(tokens, n);
    embed_rows(tokens, n, x);
  }

  /// Runs block `l` on the residual stream x [n, dim] in place, for positions
  /// pos()..pos()+n-1 (its key/value cache rows are written; pos() does not move).
  /// Running every block in order after embed() and then head() is forward() exactly;
  /// block-wise pipelines (pare/pipeline/sequential_linears.hpp) run one block over many
  /// windows at a time with reset() between windows. argument_error for a block index
  /// out of range or positions past seq_len.
  void forward_block(std::size_t l, float* x, std::size_t n) {
    if (l >= m_.blocks.size())
      detail::fail<argument_error>("llama_session::forward_block: argument 'l': expected a block index below ",
                                   m_.blocks.size(), ", got ", l);
    check_positions("forward_block", n);
    resize(n);
    block(l, x, n);
  }

  /// The output norm and classifier on x [n, dim]: logits of every row ([n, vocab]) if
  /// `all_logits`, else of the last row only. The observer sees output.weight's input.
  void forward_head(const float* x, std::size_t n, std::vector<float>& logits, bool all_logits = false) {
    if (n == 0) detail::fail<argument_error>("llama_session::forward_head: argument 'n': expected at least 1 row, got 0");
    resize(n);
    head(x, n, logits, all_logits);
  }

 private:
  void check_positions(const char* fn, std::size_t n) const {
    const llama_config& c = m_.config;
    if (n == 0) detail::fail<argument_error>("llama_session::", fn, ": argument 'n': expected at least 1 token, got 0");
    if (pos_ + n > static_cast<std::size_t>(c.seq_len))
      detail::fail<argument_error>("llama_session::", fn, ": expected at most ", c.seq_len - static_cast<long>(pos_),
                                   " more tokens (seq_len ", c.seq_len, ", position ", pos_, "), got ", n);
  }

  void check_tokens(const std::int32_t* tokens, std::size_t n) const {
    for (std::size_t t = 0; t < n; ++t)
      if (tokens[t] < 0 || tokens[t] >= m_.config.vocab_size)
        detail::fail<argument_error>("llama_session::forward: token ", t, ": expected an id in [0, ", m_.config.vocab_size,
                                     "), got ", tokens[t]);
  }

  void embed_rows(const std::int32_t* tokens, std::size_t n, float* x) const {
    const std::size_t dim = m_.config.dim;
    for (std::size_t t = 0; t < n; ++t)
      std::copy(m_.token_embd.data() + static_cast<std::size_t>(tokens[t]) * dim,
                m_.token_embd.data() + (static_cast<std::size_t>(tokens[t]) + 1) * dim, x + t * dim);
  }

  /// Block l on the residual stream x [n, dim] (positions pos_..pos_+n-1).
  void block(std::size_t l, float* x, std::size_t n) {
    const llama_config& c = m_.config;
    const std::size_t dim = c.dim, hs = c.head_size();
    const llama_block& b = m_.blocks[l];
    const std::string p = observer_ ? "blk." + std::to_string(l) + "." : std::string();
    const std::size_t qd = b.n_heads * hs, kv = b.n_kv_heads * hs, hid = b.w1->out_features();
    if (observer_) observer_->on_residual(l, false, matrix_view<const float>(x, n, dim));
    rmsnorm(x, b.attn_norm.data(), n, dim, xb_.data());
    run(p, "attn_q.weight", *b.wq, xb_.data(), n, dim, q_.data(), qd);
    run(p, "attn_k.weight", *b.wk, xb_.data(), n, dim, k_.data(), kv);
    run(p, "attn_v.weight", *b.wv, xb_.data(), n, dim, v_.data(), kv);
    rope(q_.data(), n, qd);
    rope(k_.data(), n, kv);
    float* kc = key_cache_.data() + cache_offset_[l];
    float* vc = value_cache_.data() + cache_offset_[l];
    std::copy(k_.data(), k_.data() + n * kv, kc + pos_ * kv);
    std::copy(v_.data(), v_.data() + n * kv, vc + pos_ * kv);
    attention(b, kc, vc, n);
    run(p, "attn_output.weight", *b.wo, att_.data(), n, qd, xb2_.data(), dim);
    residual_add(b.attn_shortcut.get(), x, n, dim);
    if (observer_) observer_->on_residual(l, true, matrix_view<const float>(x, n, dim));
    rmsnorm(x, b.ffn_norm.data(), n, dim, xb_.data());
    run(p, "ffn_gate.weight", *b.w1, xb_.data(), n, dim, h1_.data(), hid);
    run(p, "ffn_up.weight", *b.w3, xb_.data(), n, dim, h3_.data(), hid);
    for (std::size_t i = 0; i < n * hid; ++i) {
      const float g = h1_[i];
      h1_[i] = g * (1.0f / (1.0f + std::exp(-g))) * h3_[i];
    }
    run(p, "ffn_down.weight", *b.w2, h1_.data(), n, hid, xb2_.data(), dim);
    residual_add(b.ffn_shortcut.get(), x, n, dim);
  }

  void head(const float* x, std::size_t n, std::vector<float>& logits, bool all_logits) {
    const std::size_t dim = m_.config.dim, vocab = m_.config.vocab_size;
    if (observer_) observer_->on_residual(m_.blocks.size(), false, matrix_view<const float>(x, n, dim));
    const std::size_t first = all_logits ? 0 : n - 1, rows = n - first;
    rmsnorm(x + first * dim, m_.output_norm.data(), rows, dim, xb_.data());
    logits.resize(rows * vocab);
    if (observer_) observer_->on_linear_input("output.weight", matrix_view<const float>(xb_.data(), rows, dim));
    m_.output->forward(matrix_view<const float>(xb_.data(), rows, dim), matrix_view<float>(logits.data(), rows, vocab));
  }

  void resize(std::size_t n) {
    const llama_config& c = m_.config;
    const std::size_t dim = c.dim;
    std::size_t kv = 0, qd = 0, hid = 0;  // widest block (blocks may be pruned to different widths)
    for (const llama_block& b : m_.blocks) {
      kv = std::max<std::size_t>(kv, static_cast<std::size_t>(b.n_kv_heads) * c.head_size());
      qd = std::max<std::size_t>(qd, static_cast<std::size_t>(b.n_heads) * c.head_size());
      hid = std::max(hid, b.w1->out_features());
    }
    if (x_.size() >= n * dim && q_.size() >= n * qd) return;
    x_ = aligned_buffer<float>(n * dim);
    xb_ = aligned_buffer<float>(n * dim);
    xb2_ = aligned_buffer<float>(n * dim);
    q_ = aligned_buffer<float>(n * qd);
    att_ = aligned_buffer<float>(n * qd);
    k_ = aligned_buffer<float>(n * kv);
    v_ = aligned_buffer<float>(n * kv);
    h1_ = aligned_buffer<float>(n * hid);
    h3_ = aligned_buffer<float>(n * hid);
  }

  /// x ← x + xb2, or x ← x·Sᵀ + xb2 with the residual linear S.
  void residual_add(const linear_layer* s, float* x, std::size_t n, std::size_t dim) {
    if (s) {
      if (xs_.size() < n * dim) xs_ = aligned_buffer<float>(n * dim);
      s->forward(matrix_view<const float>(x, n, dim), matrix_view<float>(xs_.data(), n, dim));
      std::copy(xs_.data(), xs_.data() + n * dim, x);
    }
    for (std::size_t i = 0; i < n * dim; ++i) x[i] += xb2_[i];
  }

  void run(const std::string& prefix, const char* name, const linear_layer& w, const float* x, std::size_t n,
           std::size_t in, float* y, std::size_t out) {
    const matrix_view<const float> xv(x, n, in);
    if (observer_) observer_->on_linear_input(prefix + name, xv);
    w.forward(xv, matrix_view<float>(y, n, out));
  }

  void rmsnorm(const float* x, const float* gain, std::size_t n, std::size_t dim, float* y) const {
    for (std::size_t t = 0; t < n; ++t) {
      const float* xr = x + t * dim;
      float ss = 0.0f;
      for (std::size_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
      ss /= static_cast<float>(dim);
      ss += m_.config.norm_eps;
      ss = 1.0f / std::sqrt(ss);
      for (std::size_t i = 0; i < dim; ++i) y[t * dim + i] = gain[i] * (ss * xr[i]);
    }
  }

  void rope(float* v, std::size_t n, std::size_t width) const {
    const std::size_t hs = m_.config.head_size(), pairs = hs / 2;
    for (std::size_t t = 0; t < n; ++t) {
      const float* cs = rope_cos_.data() + (pos_ + t) * pairs;
      const float* sn = rope_sin_.data() + (pos_ + t) * pairs;
      float* r = v + t * width;
      for (std::size_t i = 0; i < width; i += 2) {
        const std::size_t j = (i % hs) / 2;
        const float a = r[i], b = r[i + 1];
        r[i] = a * cs[j] - b * sn[j];
        r[i + 1] = a * sn[j] + b * cs[j];
      }
    }
  }

  void attention(const llama_block& b, const float* kc, const float* vc, std::size_t n) {
    const llama_config& c = m_.config;
    const std::size_t hs = c.head_size(), kv = b.n_kv_heads * hs, dim = b.n_heads * hs;
    const std::size_t heads = static_cast<std::size_t>(b.n_heads);
    const std::size_t group = heads / static_cast<std::size_t>(b.n_kv_heads);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const std::size_t tasks = n * heads;
    // Chunks of at least ~32K multiply-adds (a decode step of a small model stays on one thread).
    const std::size_t grain = std::max<std::size_t>(1, 32768 / std::max<std::size_t>(1, (pos_ + n) * hs * 2));
    parallel_for(0, tasks, grain, [&](std::size_t lo, std::size_t hi) {
      std::vector<float> score(pos_ + n);
      for (std::size_t task = lo; task < hi; ++task) {
        const std::size_t t = task / heads, h = task % heads;
        const std::size_t upto = pos_ + t + 1;  // causal: positions 0..pos_+t
        const float* q = q_.data() + t * dim + h * hs;
        const std::size_t kvh = h / group;
        float mx = -INFINITY;
        for (std::size_t s = 0; s < upto; ++s) {
          const float* k = kc + s * kv + kvh * hs;
          float d = 0.0f;
          for (std::size_t i = 0; i < hs; ++i) d += q[i] * k[i];
          score[s] = d * scale;
          mx = std::max(mx, score[s]);
        }
        float sum = 0.0f;
        for (std::size_t s = 0; s < upto; ++s) {
          score[s] = std::exp(score[s] - mx);
          sum += score[s];
        }
        float* out = att_.data() + t * dim + h * hs;
        std::fill(out, out + hs, 0.0f);
        for (std::size_t s = 0; s < upto; ++s) {
          const float a = score[s] / sum;
          const float* v = vc + s * kv + kvh * hs;
          for (std::size_t i = 0; i < hs; ++i) out[i] += a * v[i];
        }
      }
    });
  }

  const llama_model& m_;
  std::size_t pos_ = 0;
  linear_observer* observer_ = nullptr;
  aligned_buffer<float> key_cache_, value_cache_;
  std::vector<float> rope_cos_, rope_sin_;
  std::vector<std::size_t> cache_offset_;  // per block, into the caches
  aligned_buffer<float> x_, xb_, xb2_, q_, att_, k_, v_, h1_, h3_, xs_;
};

PARE_NAMESPACE_END
