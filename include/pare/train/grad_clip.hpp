// Global-norm gradient clipping over a parameter_set: scales every trainable gradient so their joint L2 norm is at most max_norm.
#pragma once

// norm = sqrt(Σ over trainable tensors and elements of g²), summed in float64 in a fixed
// order (tensor by tensor, element by element). If norm > max_norm every gradient is
// multiplied by max_norm / norm (no ε: the norm after clipping is max_norm up to float
// rounding); otherwise nothing changes. The pre-clip norm is returned (for logging, like
// torch.nn.utils.clip_grad_norm_).

#include <cmath>
#include <cstddef>

#include "pare/core/error.hpp"
#include "pare/train/parameter_set.hpp"

PARE_NAMESPACE_BEGIN

/// L2 norm of the trainable gradients of ps (float64 sum).
inline double grad_norm(const parameter_set& ps) {
  double s = 0;
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (float g : ps.grad(i)) s += double(g) * double(g);
  return std::sqrt(s);
}

/// See above. argument_error unless max_norm > 0 (finite); value_error, gradients
/// unchanged, if the norm is not finite (a NaN/Inf gradient).
inline double clip_grad_norm(parameter_set& ps, double max_norm) {
  if (!(max_norm > 0 && std::isfinite(max_norm)))
    detail::fail<argument_error>("clip_grad_norm: argument 'max_norm': expected a finite value > 0, got ", max_norm);
  const double norm = grad_norm(ps);
  if (!std::isfinite(norm))
    detail::fail<value_error>("clip_grad_norm: argument 'ps': expected finite gradients, got a norm of ", norm);
  if (norm > max_norm) ps.scale_grad(static_cast<float>(max_norm / norm));
  return norm;
}

PARE_NAMESPACE_END
