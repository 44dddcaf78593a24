// minmax_observer: the clipping range is the running [min, max] of everything observed.
#pragma once

#include <cstddef>

#include "pare/stats/observers/observer.hpp"

PARE_NAMESPACE_BEGIN

/// [min, max] of all observed values, for any format and scheme (the symmetric scheme
/// then uses max(|min|, |max|)). -0.0 counts as less than +0.0, as in the kernels' scan.
class minmax_observer : public detail::observer_base<minmax_observer> {
 public:
  static constexpr const char* name = "minmax";
  static constexpr const char* type_name = "minmax_observer";

  minmax_observer() = default;

  void reset() noexcept { mm_ = detail::min_max(); }

  observed_range range(int_format fmt, scheme_kind /*scheme*/) const {
    check_range_call(!mm_.empty(), fmt);
    return observed_range{mm_.lo, mm_.hi};
  }

 private:
  friend class detail::observer_base<minmax_observer>;
  void accumulate(const float* x, std::size_t n) noexcept { mm_.add(x, n); }

  detail::min_max mm_;
};

PARE_NAMESPACE_END
