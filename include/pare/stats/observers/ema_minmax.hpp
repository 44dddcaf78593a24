// ema_minmax_observer: min and max as exponential moving averages over calibration batches.
#pragma once

// The first batch sets lo = min(batch), hi = max(batch); every later batch b updates
//     lo ← (1 - m)·lo + m·min(b),   hi ← (1 - m)·hi + m·max(b)
// with m = momentum (PyTorch's MovingAverageMinMaxObserver, averaging_constant = m).
// A batch is one observe() call, whatever its rank or strides; empty batches are
// ignored. The averages are carried in double and rounded to float by range(). Each
// update is a convex combination, so lo ≤ hi and both stay inside the data's [min, max].
// On a single batch the result is exactly minmax_observer's.

#include <cmath>
#include <cstddef>

#include "pare/stats/observers/observer.hpp"

PARE_NAMESPACE_BEGIN

class ema_minmax_observer : public detail::observer_base<ema_minmax_observer> {
 public:
  static constexpr const char* name = "ema";
  static constexpr const char* type_name = "ema_minmax_observer";
  static constexpr float default_momentum = 0.01f;

  ema_minmax_observer() = default;

  /// momentum in [0, 1]: 0 keeps the first batch's range, 1 keeps only the last batch's.
  explicit ema_minmax_observer(float momentum) : momentum_(momentum) {
    if (!(momentum >= 0.0f && momentum <= 1.0f))
      detail::fail<argument_error>("ema_minmax_observer: argument 'momentum': expected a value in [0, 1], got ",
                                   momentum);
  }

  float momentum() const noexcept { return momentum_; }

  void reset() noexcept {
    seen_ = false;
    lo_ = hi_ = 0.0;
  }

  observed_range range(int_format fmt, scheme_kind /*scheme*/) const {
    check_range_call(seen_, fmt);
    return observed_range{static_cast<float>(lo_), static_cast<float>(hi_)};
  }

 private:
  friend class detail::observer_base<ema_minmax_observer>;
  void batch_begin() noexcept { batch_ = detail::min_max(); }
  void accumulate(const float* x, std::size_t n) noexcept { batch_.add(x, n); }
  void batch_end() noexcept {
    if (batch_.empty()) return;
    if (!seen_) {
      lo_ = batch_.lo;
      hi_ = batch_.hi;
      seen_ = true;
      return;
    }
    const double m = momentum_;
    lo_ = (1.0 - m) * lo_ + m * double(batch_.lo);
    hi_ = (1.0 - m) * hi_ + m * double(batch_.hi);
  }

  float momentum_ = default_momentum;
  bool seen_ = false;
  double lo_ = 0.0, hi_ = 0.0;
  detail::min_max batch_;
};

PARE_NAMESPACE_END
