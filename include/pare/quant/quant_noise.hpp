// Quant-Noise (Fan et al. 2020): each training step, fake-quantize a random fraction p of a weight's blocks; the rest pass unchanged.
#pragma once

// Terms ("Training with Quantization Noise for Extreme Model Compression", Fan, Stock,
// Graham, Grave, Gribonval, Jégou, Joulin, 2020):
//   block     `block_cols` contiguous columns of one row of a weight [out_features,
//             in_features] (block_cols must divide in_features), or the whole row
//             (quant_noise_config::whole_row).
//   mask      which blocks are noised in one training step; drawn by quant_noise_sample
//             from (seed, step), so a step's mask is reproducible and steps differ:
//               bernoulli:   block (i, b) independently with probability p, from the
//                            counter-based generator of pare/core/rng.hpp
//                            (counter_uniform(row_key(step seed, i), b) < p; independent
//                            of thread count and of the other rows);
//               exact_count: exactly round(p · blocks) blocks of the whole matrix, all
//                            subsets equally likely (selection sampling, Knuth's
//                            Algorithm S, over a SplitMix64 stream).
//   forward   y = fake_quant_forward(w, params) on noised blocks (bit for bit the same
//             values), y = w elsewhere. No 1/(1 − p) rescaling: the noise is the
//             quantizer itself (fairseq's zeroing proxy for iPQ rescales; this is the
//             scalar-quantization form).
//   backward  noised elements: fake_quant_backward's rule under params.range (STE mask,
//             scale and zero-point gradients summed over noised elements only);
//             elsewhere identity (∂y/∂w = 1, no parameter gradient).
// p = 0 is the identity, p = 1 is plain fake quantization.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/quant/fake_quant.hpp"

PARE_NAMESPACE_BEGIN

/// How quant_noise_sample draws the noised blocks.
enum class quant_noise_sampling {
  bernoulli,    ///< each block independently with probability p (the paper)
  exact_count,  ///< exactly round(p · blocks) blocks of the matrix
};

/// Quant-Noise settings of one weight.
struct quant_noise_config {
  /// block_cols value meaning "one block per row".
  static constexpr std::size_t whole_row = std::numeric_limits<std::size_t>::max();

  double p = 0.1;               ///< fraction of blocks noised per step, in [0, 1]
  std::size_t block_cols = 8;   ///< columns per block (divides in_features), or whole_row
  quant_noise_sampling sampling = quant_noise_sampling::bernoulli;
  std::uint64_t seed = 0;

  /// Block width for a matrix of `cols` columns.
  std::size_t block_width(std::size_t cols) const noexcept { return block_cols == whole_row ? cols : block_cols; }

  /// Throws argument_error unless p is in [0, 1] and the block width divides cols.
  void validate(const char* where, std::size_t cols) const {
    if (!(p >= 0.0 && p <= 1.0))
      detail::fail<argument_error>(where, ": argument 'p': expected a fraction in [0, 1], got ", p);
    if (block_cols == 0)
      detail::fail<argument_error>(where, ": argument 'block_cols': expected at least 1 (or whole_row), got 0");
    if (block_cols != whole_row && cols % block_cols != 0)
      detail::fail<argument_error>(where, ": argument 'block_cols': expected a divisor of the ", cols,
                                   " columns (or whole_row), got ", block_cols);
    if (sampling != quant_noise_sampling::bernoulli && sampling != quant_noise_sampling::exact_count)
      detail::fail<argument_error>(where, ": argument 'sampling': expected bernoulli or exact_count, got ",
                                   static_cast<int>(sampling));
  }
};

/// The noised blocks of one rows × cols weight in one step.
struct quant_noise_mask {
  std::size_t rows = 0, cols = 0;
  std::size_t block_cols = 1;         ///< block width (whole rows: cols)
  std::vector<std::uint8_t> noised;   ///< rows × blocks_per_row(), 1 = fake-quantized

  std::size_t blocks_per_row() const noexcept { return block_cols == 0 ? 0 : cols / block_cols; }
  /// Whether block b of row i is noised.
  bool block(std::size_t i, std::size_t b) const { return noised[i * blocks_per_row() + b] != 0; }
  /// Whether element (i, j) is noised.
  bool element(std::size_t i, std::size_t j) const { return block(i, j / block_cols); }
  /// Number of noised blocks.
  std::size_t count() const noexcept {
    std::size_t n = 0;
    for (std::uint8_t b : noised) n += b != 0;
    return n;
  }

  /// Throws unless the mask is consistent and fits a rows × cols matrix.
  void validate(const char* where, std::size_t r, std::size_t c) const {
    if (r != rows || c != cols)
      detail::fail<shape_error>(where, ": argument 'mask': expected a mask for shape ", shape_t{r, c}, ", got one for ",
                                shape_t{rows, cols});
    if (cols != 0 && (block_cols == 0 || cols % block_cols != 0))
      detail::fail<argument_error>(where, ": argument 'mask': expected block_cols dividing ", cols, ", got ",
                                   block_cols);
    if (noised.size() != rows * blocks_per_row())
      detail::fail<shape_error>(where, ": argument 'mask': expected ", rows * blocks_per_row(), " block flags, got ",
                                noised.size());
  }
};

/// Draws step `step`'s mask for a rows × cols weight (see the essay above). Deterministic
/// in (cfg.seed, step, rows, cols, cfg).
inline quant_noise_mask quant_noise_sample(std::size_t rows, std::size_t cols, const quant_noise_config& cfg,
                                           std::uint64_t step) {
  cfg.validate("quant_noise_sample", cols);
  quant_noise_mask m;
  m.rows = rows;
  m.cols = cols;
  m.block_cols = cols == 0 ? 1 : cfg.block_width(cols);
  const std::size_t bpr = m.blocks_per_row(), n = rows * bpr;
  m.noised.assign(n, 0);
  const std::uint64_t step_seed = mix64(cfg.seed ^ mix64(step + 0xD1B54A32D192ED03ull));
  if (cfg.sampling == quant_noise_sampling::bernoulli) {
    const float p = static_cast<float>(cfg.p);  // u has 24 bits: P(u < p) = ceil(p·2^24)/2^24
    for (std::size_t i = 0; i < rows; ++i) {
      const std::uint32_t key = row_key(step_seed, i);
      for (std::size_t b = 0; b < bpr; ++b)
        m.noised[i * bpr + b] = cfg.p >= 1.0 || counter_uniform(key, static_cast<std::uint32_t>(b)) < p;
    }
  } else {
    std::size_t need = static_cast<std::size_t>(std::floor(cfg.p * static_cast<double>(n) + 0.5));
    if (need > n) need = n;
    splitmix64 g(step_seed);
    for (std::size_t t = 0; t < n && need > 0; ++t) {
      // Algorithm S: select with probability need / (n − t); exactly `need` in the end.
      if (g.uniform() * static_cast<double>(n - t) < static_cast<double>(need)) {
        m.noised[t] = 1;
        --need;
      }
    }
  }
  return m;
}

/// y = fake_quant_forward(x, p) on the blocks `mask` marks, y = x elsewhere. x is a weight
/// [out_features, in_features]. Validates everything before writing y; y may alias x.
inline void quant_noise_forward(matrix_view<const float> x, const fake_quant_params& p, const quant_noise_mask& mask,
                                matrix_view<float> y) {
  const char* where = "quant_noise_forward";
  check_same_shape("quant_noise_forward: argument 'y'", x.shape(), y.shape());
  p.validate(where, x.rows(), x.cols());
  mask.validate(where, x.rows(), x.cols());
  const detail::contiguous_rows src(x);
  const matrix_view<const float>& xv = src.view();
  for (std::size_t i = 0; i < xv.rows(); ++i) {
    const kernels::row_stats st = kernels::scan_row(xv.row_ptr(i), xv.cols());
    if (st.first_nonfinite != xv.cols())
      detail::fail<value_error>(where, ": argument 'x': expected finite values, got ", xv(i, st.first_nonfinite),
                                " at position (", i, ", ", st.first_nonfinite, ")");
  }
  std::vector<float> inv(p.scales.size());
  for (std::size_t k = 0; k < inv.size(); ++k) inv[k] = inverse_scale(p.scales[k]);
  const std::size_t bpr = mask.blocks_per_row();
  parallel_for(0, xv.rows(), detail::row_grain(xv.cols()), [&](std::size_t lo, std::size_t hi) {
    std::vector<float> fq(xv.cols());
    for (std::size_t i = lo; i < hi; ++i) {
      const float* xr = xv.row_ptr(i);
      // The whole row through the same kernel as fake_quant_forward, then the noised blocks kept.
      kernels::fake_quant_row(xr, xv.cols(), row_params_for(p.format, p.gran, p.cols, i, p.scales.data(), inv.data(),
                                                            p.zero_points.data()),
                              fq.data());
      for (std::size_t b = 0; b < bpr; ++b) {
        const bool on = mask.noised[i * bpr + b] != 0;
        for (std::size_t j = b * mask.block_cols; j < (b + 1) * mask.block_cols; ++j) y(i, j) = on ? fq[j] : xr[j];
      }
    }
  });
}

/// Gradients of quant_noise_forward: fake_quant_backward's rule (under p.range, scaled by
/// grad_scale) on the noised elements, identity elsewhere; parameter gradients are sums
/// over the noised elements only.
inline fake_quant_grads quant_noise_backward(matrix_view<const float> x, matrix_view<const float> grad_y,
                                             const fake_quant_params& p, const quant_noise_mask& mask,
                                             float grad_scale = 1.0f) {
  mask.validate("quant_noise_backward", x.rows(), x.cols());
  const std::size_t bpr = mask.blocks_per_row();
  return detail::fake_quant_backward_where("quant_noise_backward", x, grad_y, p, grad_scale,
                                           [&](std::size_t i, std::uint8_t* on) {
                                             for (std::size_t b = 0; b < bpr; ++b)
                                               std::fill(on + b * mask.block_cols, on + (b + 1) * mask.block_cols,
                                                         mask.noised[i * bpr + b]);
                                           });
}

PARE_NAMESPACE_END
