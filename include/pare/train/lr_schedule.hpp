// lr_schedule: learning rate per step, linear warmup then cosine, linear or no decay to a floor (closed forms).
#pragma once

// For step s = 0, 1, ... (the index of the optimizer step about to be taken), peak rate
// η, floor η_min, W warmup steps and S total steps:
//
//     s < W:   η · (s + 1) / W                                   (linear warmup)
//     s >= W:  progress π = min(1, (s − W) / max(1, S − W))
//              cosine:   η_min + (η − η_min) · (1 + cos(π·π)) / 2
//              linear:   η_min + (η − η_min) · (1 − π)
//              constant: η
// so the first step after warmup runs at η and step S (and later) at η_min.

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

enum class lr_decay { cosine, linear, constant };

struct lr_schedule {
  double peak = 1e-3;           ///< η, finite, >= 0
  double floor = 0;             ///< η_min in [0, η]
  std::size_t warmup = 0;       ///< W
  std::size_t total = 1;        ///< S >= W (steps of the whole run)
  lr_decay decay = lr_decay::cosine;

  /// argument_error naming the field that is out of range.
  void validate() const {
    if (!(peak >= 0 && std::isfinite(peak))) detail::fail<argument_error>("lr_schedule: argument 'peak': expected a finite value >= 0, got ", peak);
    if (!(floor >= 0 && floor <= peak))
      detail::fail<argument_error>("lr_schedule: argument 'floor': expected a value in [0, peak = ", peak, "], got ", floor);
    if (total < warmup)
      detail::fail<argument_error>("lr_schedule: argument 'total': expected at least the warmup steps (", warmup, "), got ", total);
  }

  /// The rate of step s (see above).
  double at(std::size_t s) const {
    validate();
    if (s < warmup) return peak * double(s + 1) / double(warmup);
    if (decay == lr_decay::constant) return peak;
    const double pi = std::min(1.0, double(s - warmup) / double(std::max<std::size_t>(1, total - warmup)));
    if (decay == lr_decay::linear) return floor + (peak - floor) * (1 - pi);
    return floor + (peak - floor) * 0.5 * (1 + std::cos(3.14159265358979323846 * pi));
  }
};

PARE_NAMESPACE_END
