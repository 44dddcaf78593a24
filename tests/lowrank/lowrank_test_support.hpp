// Shared helpers of the low-rank tests: float64 references, random orthonormal bases, and the real model, tokens and calibration (loaded once).
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare_test_support.hpp"

namespace lowrank_test {

/// Row-major [m, n] of doubles.
struct dmat {
  std::size_t m = 0, n = 0;
  std::vector<double> v;
  dmat() = default;
  dmat(std::size_t rows, std::size_t cols) : m(rows), n(cols), v(rows * cols, 0.0) {}
  double& operator()(std::size_t i, std::size_t j) { return v[i * n + j]; }
  double operator()(std::size_t i, std::size_t j) const { return v[i * n + j]; }
};

/// Plain triple loop in long double (the reference product, independent of BLAS).
inline dmat mul(const dmat& a, const dmat& b) {
  dmat c(a.m, b.n);
  for (std::size_t i = 0; i < a.m; ++i)
    for (std::size_t j = 0; j < b.n; ++j) {
      long double s = 0;
      for (std::size_t k = 0; k < a.n; ++k) s += (long double)a(i, k) * b(k, j);
      c(i, j) = double(s);
    }
  return c;
}
inline dmat transpose(const dmat& a) {
  dmat t(a.n, a.m);
  for (std::size_t i = 0; i < a.m; ++i)
    for (std::size_t j = 0; j < a.n; ++j) t(j, i) = a(i, j);
  return t;
}
inline double frob2(const dmat& a) {
  long double s = 0;
  for (double x : a.v) s += (long double)x * x;
  return double(s);
}
inline double diff_frob2(const dmat& a, const dmat& b) {
  long double s = 0;
  for (std::size_t i = 0; i < a.v.size(); ++i) s += ((long double)a.v[i] - b.v[i]) * ((long double)a.v[i] - b.v[i]);
  return double(s);
}
/// Largest |(QᵀQ − I)_ij| for Q [m, k] (columns orthonormal).
inline double orthonormality_defect(const dmat& q) {
  double worst = 0;
  for (std::size_t a = 0; a < q.n; ++a)
    for (std::size_t b = 0; b < q.n; ++b) {
      long double s = 0;
      for (std::size_t i = 0; i < q.m; ++i) s += (long double)q(i, a) * q(i, b);
      worst = std::fmax(worst, std::fabs(double(s) - (a == b ? 1.0 : 0.0)));
    }
  return worst;
}

/// [m, k] with orthonormal columns: twice-modified Gram–Schmidt of Gaussian columns (no LAPACK).
inline dmat random_orthonormal(std::size_t m, std::size_t k, std::uint64_t seed) {
  const std::vector<float> g = pare_test::gaussian(m * k, seed);
  dmat q(m, k);
  for (std::size_t i = 0; i < m * k; ++i) q.v[i] = g[i];
  for (std::size_t j = 0; j < k; ++j)
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t p = 0; p < j; ++p) {
        long double d = 0;
        for (std::size_t i = 0; i < m; ++i) d += (long double)q(i, j) * q(i, p);
        for (std::size_t i = 0; i < m; ++i) q(i, j) -= double(d) * q(i, p);
      }
      long double nn = 0;
      for (std::size_t i = 0; i < m; ++i) nn += (long double)q(i, j) * q(i, j);
      const double inv = 1.0 / std::sqrt(double(nn));
      for (std::size_t i = 0; i < m; ++i) q(i, j) *= inv;
    }
  return q;
}

/// A = U·diag(s)·Vᵀ with random orthonormal U [m, k], V [n, k] and the given s (k values).
inline dmat with_spectrum(std::size_t m, std::size_t n, const std::vector<double>& s, std::uint64_t seed) {
  const std::size_t k = s.size();
  dmat u = random_orthonormal(m, k, seed), v = random_orthonormal(n, k, seed + 1);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) u(i, j) *= s[j];
  return mul(u, transpose(v));
}

inline std::string read_text(const std::string& rel) {
  std::ifstream in(pare_test::data_path(rel), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline const pare::llama2c_checkpoint& checkpoint() {
  static const pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  return ck;
}
inline pare::llama_model model() { return pare::llama_model::from_llama2c(checkpoint()); }

/// The protocol token stream of text/tinystories_val_head.txt.
inline const std::vector<std::int32_t>& protocol_tokens() {
  static const std::vector<std::int32_t> t = [] {
    const pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), 512);
    return pare::protocol_tokens(tok, read_text("text/tinystories_val_head.txt"));
  }();
  return t;
}
inline std::vector<std::int32_t> first_tokens(std::size_t n) {
  const auto& t = protocol_tokens();
  return std::vector<std::int32_t>(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(std::min(n, t.size())));
}

/// Runs `tokens` through the model in protocol windows (seq_len 512, fresh cache each) with `obs` attached.
inline void run_windows(const pare::llama_model& m, const std::vector<std::int32_t>& tokens,
                        pare::llama_session::linear_observer* obs) {
  pare::llama_session s(m);
  s.set_observer(obs);
  std::vector<float> logits;
  const std::size_t w = static_cast<std::size_t>(m.config.seq_len);
  for (std::size_t b = 0; b < tokens.size(); b += w) {
    const std::size_t n = std::min(w, tokens.size() - b);
    s.reset();
    s.forward(tokens.data() + b, n, logits, /*all_logits=*/true);  // the classifier sees every row
  }
}

/// Calibration statistics (XᵀX, channel sums) of the dense model over the first 1000 protocol tokens.
inline const pare::calibration_capture& calibration() {
  static const pare::calibration_capture cap = [] {
    pare::calibration_capture c;
    run_windows(model(), first_tokens(1000), &c);
    return c;
  }();
  return cap;
}

}  // namespace lowrank_test
