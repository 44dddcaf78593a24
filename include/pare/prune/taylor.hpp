// First-order Taylor criterion |w · ∂L/∂w| from a gradient matrix of any source (float or double).
#pragma once

// score(i, j) = |w(i, j) · g(i, j)|: the first-order estimate of the loss change when
// w(i, j) is set to zero (Molchanov et al. 2017/2019). g is ∂L/∂w of the same shape,
// from anywhere: pare's exact backward pass (pare/model/llama_grad.hpp), an autograd
// engine, or gradients averaged over several batches by the caller. The product is
// formed in double and rounded to float once. The taylor object keeps a view of the
// gradient: the gradient's memory must outlive it.

#include <cmath>
#include <cstddef>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// Criterion: |weight × gradient|.
class taylor {
 public:
  static constexpr const char* name = "taylor";

  /// Without a gradient: for model granularities, where the model supplies gradients
  /// (pare/prune/block_model.hpp); scoring a matrix then is an argument_error.
  taylor() = default;
  explicit taylor(const matrix_view<const float>& grad) : gf_(grad), is_double_(false), has_grad_(true) {}
  explicit taylor(const matrix_view<const double>& grad) : gd_(grad), is_double_(true), has_grad_(true) {}

  bool has_gradient() const noexcept { return has_grad_; }

  shape_t grad_shape() const { return is_double_ ? gd_.shape() : gf_.shape(); }

  /// score(i, j) = |w(i, j) · g(i, j)|. shape_error (both shapes) unless w and the
  /// gradient agree; value_error naming 'w' or 'grad' for a non-finite entry.
  score_matrix operator()(const matrix_view<const float>& w) const {
    const char* where = "pare::prune::taylor";
    if (!has_grad_)
      pare::detail::fail<argument_error>(where, ": argument 'grad': expected the gradient ∂L/∂w of w's shape (taylor(grad)), "
                                                "got none");
    check_same_shape("pare::prune::taylor: arguments 'w' and 'grad'", w.shape(), grad_shape());
    detail::check_finite(where, "w", w);
    if (is_double_) detail::check_finite(where, "grad", gd_);
    else detail::check_finite(where, "grad", gf_);
    score_matrix s(w.rows(), w.cols());
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) {
        const double g = is_double_ ? gd_(i, j) : double(gf_(i, j));
        s(i, j) = static_cast<float>(std::fabs(double(w(i, j)) * g));
      }
    return s;
  }

 private:
  matrix_view<const float> gf_;
  matrix_view<const double> gd_;
  bool is_double_ = false;
  bool has_grad_ = false;
};

}  // namespace prune
PARE_NAMESPACE_END
