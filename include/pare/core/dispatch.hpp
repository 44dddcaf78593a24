// Runtime dispatch: a cached choice of the best enabled kernel variant, re-made when the enabled ISAs change.
#pragma once

// Usage (one dispatcher per operation, as a function-local static):
//
//   using fn_t = void (*)(const float*, std::size_t, float*);
//   static const pare::dispatcher<fn_t> d{{
//       {pare::isa::avx512bw, &avx512bw::op},   // listed only where compiled
//       {pare::isa::avx2, &avx2::op},
//       {pare::isa::scalar, &ref::op}}};
//   d.pick()(args...);   // records the variant for last_used_isa()
//
// The best variant whose level is enabled wins; a missing (isa, op) pair therefore
// falls back to the next level below. A scalar variant must always be listed.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "pare/core/isa.hpp"

PARE_NAMESPACE_BEGIN

/// One compiled variant of an operation.
template <class Fn>
struct kernel_variant {
  isa level;
  Fn fn;
};

/// Chooses and caches the best enabled variant of one operation.
template <class Fn>
class dispatcher {
 public:
  dispatcher(std::initializer_list<kernel_variant<Fn>> variants) : variants_(variants) {}

  /// The chosen variant's function; records its level for last_used_isa().
  Fn pick() const {
    const kernel_variant<Fn>& v = choose();
    detail::last_isa = v.level;
    return v.fn;
  }

  /// The chosen variant (without recording it). Safe from any number of threads, also
  /// while set_enabled_isas() runs: the choice and the generation it was made for are
  /// cached in one atomic word, so a reader never pairs a choice with a newer generation.
  const kernel_variant<Fn>& choose() const {
    const std::uint64_t gen = detail::state().generation.load(std::memory_order_acquire);
    const std::uint64_t cached = cached_.load(std::memory_order_acquire);
    if (cached >> index_bits == (gen & generation_mask)) return variants_[cached & index_mask];
    const isa enabled = enabled_isas();
    std::size_t best = variants_.size();
    for (isa l : all_isas_best_first) {
      if (!has(enabled, l)) continue;
      for (std::size_t i = 0; i < variants_.size() && best == variants_.size(); ++i)
        if (variants_[i].level == l) best = i;
      if (best != variants_.size()) break;
    }
    if (best == variants_.size()) detail::fail<unsupported_error>("dispatcher: no kernel variant for the enabled ISAs");
    cached_.store((gen & generation_mask) << index_bits | best, std::memory_order_release);
    return variants_[best];
  }

  /// The levels this operation has variants for.
  isa available() const noexcept {
    isa s = isa::none;
    for (const auto& v : variants_) s = s | v.level;
    return s;
  }

 private:
  static constexpr unsigned index_bits = 8;  // at most 256 variants per operation
  static constexpr std::uint64_t index_mask = (std::uint64_t(1) << index_bits) - 1;
  static constexpr std::uint64_t generation_mask = ~std::uint64_t(0) >> index_bits;
  std::vector<kernel_variant<Fn>> variants_;
  // (generation << index_bits) | index of the choice; generation 0 is never current.
  mutable std::atomic<std::uint64_t> cached_{0};
};

PARE_NAMESPACE_END
