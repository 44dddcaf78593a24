// Shared oracles and data of the solver tests: a float64 Gauss-Jordan inverse, random layer Hessians, the plain-loop Hessian loss, and stories260K's layers with real calibration Hessians.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/solvers/layer_hessian.hpp"
#include "pare_test_support.hpp"

namespace solver_test {

using pare::solvers::layer_hessian;

/// Inverse of an n × n matrix by Gauss-Jordan with partial pivoting, in float64 (no LAPACK).
inline std::vector<double> gauss_jordan_inverse(std::vector<double> a, std::size_t n) {
  std::vector<double> inv(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) inv[i * n + i] = 1.0;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r * n + c]) > std::fabs(a[p * n + c])) p = r;
    for (std::size_t t = 0; t < n; ++t) {
      std::swap(a[c * n + t], a[p * n + t]);
      std::swap(inv[c * n + t], inv[p * n + t]);
    }
    const double d = a[c * n + c];
    for (std::size_t t = 0; t < n; ++t) {
      a[c * n + t] /= d;
      inv[c * n + t] /= d;
    }
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r * n + c];
      if (f == 0.0) continue;
      for (std::size_t t = 0; t < n; ++t) {
        a[r * n + t] -= f * a[c * n + t];
        inv[r * n + t] -= f * inv[c * n + t];
      }
    }
  }
  return inv;
}

/// X [n, k] with correlated channels (each mixes in `mix` of its left neighbour) and loud
/// channels (every `every`-th from `at`, times `loud`), and its Hessian 2·XᵀX/n.
inline layer_hessian random_hessian(std::size_t n, std::size_t k, std::uint64_t seed, double mix = 0.6,
                                    std::size_t every = 7, std::size_t at = 3, double loud = 4.0) {
  const std::vector<float> z = pare_test::gaussian(n * k, seed);
  std::vector<double> h(k * k, 0.0), x(k);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t j = 0; j < k; ++j)
      x[j] = (z[t * k + j] + (j > 0 ? mix * z[t * k + j - 1] : 0.0)) * (j % every == at ? loud : 1.0);
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) h[i * k + j] += 2.0 * x[i] * x[j] / double(n);
  }
  return layer_hessian::from_matrix(k, std::move(h));
}

/// tr((W − Ŵ)·H·(W − Ŵ)ᵀ) by plain loops in float64 (no BLAS, no solver code).
inline double hessian_loss(const std::vector<float>& w, const std::vector<float>& w_hat, std::size_t rows, std::size_t k,
                           const layer_hessian& h) {
  double s = 0;
  std::vector<double> d(k);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < k; ++j) d[j] = double(w[i * k + j]) - double(w_hat[i * k + j]);
    for (std::size_t a = 0; a < k; ++a) {
      if (d[a] == 0.0) continue;
      double t = 0;
      for (std::size_t b = 0; b < k; ++b) t += h.at(a, b) * d[b];
      s += d[a] * t;
    }
  }
  return s;
}

/// stories260K with XᵀX of every linear layer's input over the first 2,048 tokens of
/// tinystories_val_tail.txt in windows of 256.
struct real_calibration {
  pare::llama2c_checkpoint ck;
  pare::llama_model m;
  pare::calibration_capture cal{pare::calibration_capture::options{{true, false, ""}, {}}};

  real_calibration()
      : ck(pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"))),
        m(pare::llama_model::from_llama2c(ck)) {
    const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
    const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_val_tail.txt"));
    std::vector<std::int32_t> toks = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
    toks.resize(std::min<std::size_t>(toks.size(), 2048));
    pare::llama_session s(m);
    s.set_observer(&cal);
    std::vector<float> logits;
    for (std::size_t t = 0; t + 256 <= toks.size(); t += 256) {
      s.reset();
      s.forward(toks.data() + t, 256, logits);
    }
  }

  /// Layer `name`'s weights [rows, K], row-major.
  std::vector<float> weights(const std::string& name) const {
    const pare::matrix_view<const float> wv = ck.matrix(name);
    std::vector<float> w(wv.rows() * wv.cols());
    for (std::size_t i = 0; i < wv.rows(); ++i)
      for (std::size_t j = 0; j < wv.cols(); ++j) w[i * wv.cols() + j] = wv(i, j);
    return w;
  }
};

}  // namespace solver_test
