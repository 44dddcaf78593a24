// Float64 forward pass of a llama2.c checkpoint written from the model definition: the oracle of the model tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"

namespace {

/// Float64 forward pass of the whole sequence written from the model definition,
/// returning the logits of every position.
inline std::vector<std::vector<double>> oracle_logits(const pare::llama2c_checkpoint& ck, const std::vector<std::int32_t>& toks) {
  const auto c = ck.config();
  const std::size_t dim = c.dim, hs = dim / c.n_heads, hid = c.hidden_dim;
  const std::size_t T = toks.size(), vocab = c.vocab_size;
  auto mat = [&](const std::string& n) { return ck.matrix(n); };
  auto matvec = [](const pare::matrix_view<const float>& w, const std::vector<double>& x) {
    std::vector<double> y(w.rows(), 0.0);
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) y[i] += double(w(i, j)) * x[j];
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const std::string& g) {
    const pare::tensor_view<const float> w = ck.tensor(g);
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / double(x.size()) + 1e-5);
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = double(w(i)) * x[i] * r;
    return y;
  };
  std::vector<std::vector<double>> x(T, std::vector<double>(dim));
  const pare::matrix_view<const float> emb = mat("token_embd.weight");
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < dim; ++i) x[t][i] = emb(toks[t], i);
  auto rope = [&](std::vector<double>& v, std::size_t pos) {
    for (std::size_t i = 0; i < v.size(); i += 2) {
      const double ang = double(pos) * std::pow(10000.0, -double(i % hs) / double(hs));
      const double a = v[i], b = v[i + 1];
      v[i] = a * std::cos(ang) - b * std::sin(ang);
      v[i + 1] = a * std::sin(ang) + b * std::cos(ang);
    }
  };
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (std::size_t t = 0; t < T; ++t) {
      const auto xb = norm(x[t], p + "attn_norm.weight");
      q[t] = matvec(mat(p + "attn_q.weight"), xb);
      k[t] = matvec(mat(p + "attn_k.weight"), xb);
      v[t] = matvec(mat(p + "attn_v.weight"), xb);
      rope(q[t], t);
      rope(k[t], t);
    }
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<double> att(dim, 0.0);
      for (int h = 0; h < c.n_heads; ++h) {
        const std::size_t kh = h / (c.n_heads / c.n_kv_heads);
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
      const auto o = matvec(mat(p + "attn_output.weight"), att);
      for (std::size_t i = 0; i < dim; ++i) x[t][i] += o[i];
      const auto xb = norm(x[t], p + "ffn_norm.weight");
      auto g = matvec(mat(p + "ffn_gate.weight"), xb);
      const auto u = matvec(mat(p + "ffn_up.weight"), xb);
      for (std::size_t i = 0; i < hid; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const auto d = matvec(mat(p + "ffn_down.weight"), g);
      for (std::size_t i = 0; i < dim; ++i) x[t][i] += d[i];
    }
  }
  std::vector<std::vector<double>> out(T);
  for (std::size_t t = 0; t < T; ++t) out[t] = matvec(mat("token_embd.weight"), norm(x[t], "output_norm.weight"));
  (void)vocab;
  return out;
}


}  // namespace
