// Float64 forward pass of a LLaMA model written from the model definition: the oracle of the model tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/llama_model.hpp"

namespace {

/// A dense matrix in float64, row-major.
struct oracle_matrix {
  std::size_t rows = 0, cols = 0;
  std::vector<double> w;
  std::vector<double> operator*(const std::vector<double>& x) const {
    std::vector<double> y(rows, 0.0);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) y[i] += w[i * cols + j] * x[j];
    return y;
  }
};

/// What the oracle reads: sizes, and weights by GGUF name ("blk.0.attn_q.weight",
/// "output.weight", norms as 1×n matrices); `shortcut` gives a block's residual linear
/// ("blk.0.attn_shortcut" / "blk.0.ffn_shortcut") or an empty matrix for the identity.
struct oracle_model {
  int n_layers = 0, n_heads = 0, n_kv_heads = 0;
  std::size_t dim = 0, head_size = 0;
  double eps = 1e-5, theta = 10000.0;
  std::function<oracle_matrix(const std::string&)> get;
  std::function<oracle_matrix(const std::string&)> shortcut;
};

/// Float64 forward pass of the whole sequence, returning the logits of every position.
inline std::vector<std::vector<double>> oracle_logits(const oracle_model& m, const std::vector<std::int32_t>& toks) {
  const std::size_t dim = m.dim, hs = m.head_size, T = toks.size();
  auto norm = [&](const std::vector<double>& x, const std::string& g) {
    const oracle_matrix w = m.get(g);
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / double(x.size()) + m.eps);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = w.w[i] * x[i] * r;
    return y;
  };
  auto residual = [&](std::vector<double>& x, const std::string& s, const std::vector<double>& add) {
    const oracle_matrix sm = m.shortcut ? m.shortcut(s) : oracle_matrix{};
    if (!sm.w.empty()) x = sm * x;
    for (std::size_t i = 0; i < dim; ++i) x[i] += add[i];
  };
  std::vector<std::vector<double>> x(T, std::vector<double>(dim));
  const oracle_matrix emb = m.get("token_embd.weight");
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < dim; ++i) x[t][i] = emb.w[std::size_t(toks[t]) * dim + i];
  auto rope = [&](std::vector<double>& v, std::size_t pos) {
    for (std::size_t i = 0; i < v.size(); i += 2) {
      const double ang = double(pos) * std::pow(m.theta, -double(i % hs) / double(hs));
      const double a = v[i], b = v[i + 1];
      v[i] = a * std::cos(ang) - b * std::sin(ang);
      v[i + 1] = a * std::sin(ang) + b * std::cos(ang);
    }
  };
  for (int l = 0; l < m.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const oracle_matrix wq = m.get(p + "attn_q.weight"), wk = m.get(p + "attn_k.weight"), wv = m.get(p + "attn_v.weight"),
                        wo = m.get(p + "attn_output.weight"), w1 = m.get(p + "ffn_gate.weight"),
                        w2 = m.get(p + "ffn_down.weight"), w3 = m.get(p + "ffn_up.weight");
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (std::size_t t = 0; t < T; ++t) {
      const auto xb = norm(x[t], p + "attn_norm.weight");
      q[t] = wq * xb;
      k[t] = wk * xb;
      v[t] = wv * xb;
      rope(q[t], t);
      rope(k[t], t);
    }
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<double> att(std::size_t(m.n_heads) * hs, 0.0);
      for (int h = 0; h < m.n_heads; ++h) {
        const std::size_t kh = h / (m.n_heads / m.n_kv_heads);
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (std::size_t u = 0; u <= t; ++u) {
          double d = 0;
          for (std::size_t i = 0; i < hs; ++i) d += q[t][h * hs + i] * k[u][kh * hs + i];
          s[u] = d / std::sqrt(double(hs));
          mx = std::max(mx, s[u]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (std::size_t u = 0; u <= t; ++u)
          for (std::size_t i = 0; i < hs; ++i) att[h * hs + i] += s[u] / sum * v[u][kh * hs + i];
      }
      residual(x[t], p + "attn_shortcut", wo * att);
      const auto xb = norm(x[t], p + "ffn_norm.weight");
      auto g = w1 * xb;
      const auto u = w3 * xb;
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      residual(x[t], p + "ffn_shortcut", w2 * g);
    }
  }
  const oracle_matrix head = m.get("output.weight");
  std::vector<std::vector<double>> out(T);
  for (std::size_t t = 0; t < T; ++t) out[t] = head * norm(x[t], "output_norm.weight");
  return out;
}

inline oracle_matrix oracle_from(const pare::matrix_view<const float>& w) {
  oracle_matrix r{w.rows(), w.cols(), std::vector<double>(w.rows() * w.cols())};
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) r.w[i * w.cols() + j] = w(i, j);
  return r;
}

/// The oracle over a llama2.c checkpoint's tensors (classifier tied or not, eps 1e-5).
inline std::vector<std::vector<double>> oracle_logits(const pare::llama2c_checkpoint& ck, const std::vector<std::int32_t>& toks) {
  const auto c = ck.config();
  oracle_model m;
  m.n_layers = c.n_layers;
  m.n_heads = c.n_heads;
  m.n_kv_heads = c.n_kv_heads;
  m.dim = c.dim;
  m.head_size = c.dim / c.n_heads;
  m.get = [&ck](const std::string& n) {
    const std::string name = n == "output.weight" && ck.config().shared_classifier ? "token_embd.weight" : n;
    const pare::tensor_view<const float> t = ck.tensor(name);
    if (t.rank() == 1) return oracle_from(pare::matrix_view<const float>(t.data(), 1, t.shape()[0]));
    return oracle_from(t.as_matrix());
  };
  return oracle_logits(m, toks);
}

/// The oracle over a llama_model's layers as they are now (dense_weights of every linear).
inline std::vector<std::vector<double>> oracle_logits(const pare::llama_model& lm, const std::vector<std::int32_t>& toks) {
  const pare::llama_config& c = lm.config;
  oracle_model m;
  m.n_layers = static_cast<int>(lm.blocks.size());
  m.n_heads = c.n_heads;
  m.n_kv_heads = c.n_kv_heads;
  m.dim = c.dim;
  m.head_size = c.head_size();
  m.eps = c.norm_eps;
  m.theta = c.rope_theta;
  auto dense = [](const pare::linear_layer& l) {
    std::vector<float> w(l.out_features() * l.in_features());
    l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), l.in_features()));
    return oracle_from(pare::matrix_view<const float>(w.data(), l.out_features(), l.in_features()));
  };
  auto vec = [](const std::vector<float>& v) { return oracle_from(pare::matrix_view<const float>(v.data(), 1, v.size())); };
  m.get = [&lm, dense, vec](const std::string& n) {
    if (n == "token_embd.weight")
      return oracle_from(pare::matrix_view<const float>(lm.token_embd.data(), std::size_t(lm.config.vocab_size),
                                                        std::size_t(lm.config.dim)));
    if (n == "output_norm.weight") return vec(lm.output_norm);
    if (n.compare(0, 4, "blk.") != 0) return dense(lm.linear(n));
    const std::size_t l = std::stoul(n.substr(4));
    const std::string rest = n.substr(n.find('.', 4) + 1);
    if (rest == "attn_norm.weight") return vec(lm.blocks[l].attn_norm);
    if (rest == "ffn_norm.weight") return vec(lm.blocks[l].ffn_norm);
    return dense(lm.linear(n));
  };
  m.shortcut = [&lm, dense](const std::string& n) {
    const pare::llama_block& b = lm.blocks[std::stoul(n.substr(4))];
    const auto& s = n.find("attn_shortcut") != std::string::npos ? b.attn_shortcut : b.ffn_shortcut;
    return s ? dense(*s) : oracle_matrix{};
  };
  return oracle_logits(m, toks);
}

}  // namespace
