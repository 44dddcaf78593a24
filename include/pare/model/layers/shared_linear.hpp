// Linear layers with shared weights: codebook_linear (k-means codebook + packed indices) and hashed_linear (HashedNets), run as fp32 after one dequantization.
#pragma once

// The stored form is the shared form (pare/share/kmeans.hpp, pare/share/hashing.hpp):
// storage_bytes() reports codebooks plus packed indices, or the K hashed values. For
// speed, the forward pass uses the shared weights dequantized once at construction into
// a dense_linear (the fp32 kernels); backend() says so. dense_weights() returns exactly
// the shared weights (codebook values), which the forward pass multiplies by.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/model/layers/linear.hpp"
#include "pare/share/hashing.hpp"
#include "pare/share/kmeans.hpp"

PARE_NAMESPACE_BEGIN

/// A linear layer stored as k-means codebooks and b-bit indices.
class codebook_linear final : public linear_layer {
 public:
  explicit codebook_linear(kmeans_tensor t) : t_(std::move(t)) {
    const std::vector<float> w = t_.dequantize();
    dense_ = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), t_.rows, t_.cols));
  }
  /// Clusters `w` [out, in] under `cfg`.
  codebook_linear(const matrix_view<const float>& w, const kmeans_config& cfg) : codebook_linear(kmeans_cluster(w, cfg)) {}

  std::size_t in_features() const noexcept override { return t_.cols; }
  std::size_t out_features() const noexcept override { return t_.rows; }
  std::string format() const override { return t_.config.str(); }
  std::size_t storage_bytes() const noexcept override { return t_.storage_bytes(); }
  void dense_weights(const matrix_view<float>& w) const override { t_.dequantize_into(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("codebook_linear::forward", x, y);
    dense_->forward(x, y);
  }
  std::string backend() const { return "f32 (dequantized)"; }
  double bits_per_weight() const noexcept { return t_.bits_per_weight(); }
  const kmeans_tensor& tensor() const noexcept { return t_; }

 private:
  kmeans_tensor t_;
  std::unique_ptr<dense_linear> dense_;
};

/// A linear layer stored as K hashed shared values.
class hashed_linear final : public linear_layer {
 public:
  explicit hashed_linear(hashed_tensor t) : t_(std::move(t)) {
    const std::vector<float> w = t_.dequantize();
    dense_ = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), t_.rows, t_.cols));
  }
  /// Fits the shared values of `w` [out, in] under `cfg`.
  hashed_linear(const matrix_view<const float>& w, const hashed_config& cfg) : hashed_linear(hash_share(w, cfg)) {}

  std::size_t in_features() const noexcept override { return t_.cols; }
  std::size_t out_features() const noexcept override { return t_.rows; }
  std::string format() const override { return t_.str(); }
  std::size_t storage_bytes() const noexcept override { return t_.storage_bytes(); }
  void dense_weights(const matrix_view<float>& w) const override { t_.dequantize_into(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("hashed_linear::forward", x, y);
    dense_->forward(x, y);
  }
  std::string backend() const { return "f32 (dequantized)"; }
  double bits_per_weight() const noexcept { return t_.bits_per_weight(); }
  const hashed_tensor& tensor() const noexcept { return t_; }

 private:
  hashed_tensor t_;
  std::unique_ptr<dense_linear> dense_;
};

PARE_NAMESPACE_END
