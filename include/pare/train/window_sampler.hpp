// window_sampler: a token stream cut into training windows of L+1 tokens, visited in a seeded shuffled order per epoch, with a saveable cursor.
#pragma once

// Window w (0 <= w < count = (N − 1) / L for N tokens) is tokens[w·L, w·L + L + 1): L
// predictions whose targets are the next window's first inputs, so no target is
// skipped and windows do not overlap in what they predict. Epoch e visits the windows in
// the permutation Fisher–Yates draws from splitmix64(mix64(seed) ^ mix64(e + 1)): the
// order depends on (seed, epoch) only, so the cursor (epoch, index) and the seed are the
// whole state of the data order (what a checkpoint stores).

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/rng.hpp"

PARE_NAMESPACE_BEGIN

/// Position in the data order: the next window is order(epoch)[index].
struct data_cursor {
  std::uint64_t epoch = 0, index = 0;
  friend bool operator==(const data_cursor& a, const data_cursor& b) noexcept { return a.epoch == b.epoch && a.index == b.index; }
};

class window_sampler {
 public:
  /// argument_error unless window >= 1 and there is at least one window (N >= L + 1).
  window_sampler(std::vector<std::int32_t> tokens, std::size_t window, std::uint64_t seed)
      : tokens_(std::move(tokens)), len_(window), seed_(seed) {
    if (window < 1) detail::fail<argument_error>("window_sampler: argument 'window': expected a length >= 1, got 0");
    if (tokens_.size() < window + 1)
      detail::fail<argument_error>("window_sampler: argument 'tokens': expected at least window + 1 = ", window + 1,
                                   " tokens, got ", tokens_.size());
    count_ = (tokens_.size() - 1) / window;
    build_order();
  }

  std::size_t size() const noexcept { return count_; }          ///< windows per epoch
  std::size_t window_length() const noexcept { return len_; }   ///< L (a window holds L + 1 tokens)
  std::uint64_t seed() const noexcept { return seed_; }
  data_cursor cursor() const noexcept { return cur_; }

  /// Window w in text order (L + 1 tokens).
  std::vector<std::int32_t> window(std::size_t w) const {
    if (w >= count_) detail::fail<argument_error>("window_sampler::window: argument 'w': expected an index below ", count_, ", got ", w);
    return std::vector<std::int32_t>(tokens_.begin() + w * len_, tokens_.begin() + w * len_ + len_ + 1);
  }
  /// The visiting order of epoch e (a permutation of 0..size()-1).
  std::vector<std::size_t> order(std::uint64_t epoch) const {
    std::vector<std::size_t> o(count_);
    for (std::size_t i = 0; i < count_; ++i) o[i] = i;
    splitmix64 r(mix64(seed_) ^ mix64(epoch + 1));
    for (std::size_t i = count_; i > 1; --i) std::swap(o[i - 1], o[r.next() % i]);
    return o;
  }
  /// The window at the cursor; advances it (to the next epoch after the last window).
  std::vector<std::int32_t> next() {
    std::vector<std::int32_t> w = window(order_[cur_.index]);
    if (++cur_.index == count_) {
      cur_.index = 0;
      ++cur_.epoch;
      build_order();
    }
    return w;
  }
  /// Moves to `c` with seed `seed` (a checkpoint's). argument_error, nothing changed, if
  /// c.index >= size().
  void seek(data_cursor c, std::uint64_t seed) {
    if (c.index >= count_)
      detail::fail<argument_error>("window_sampler::seek: argument 'cursor': expected an index below ", count_, ", got ", c.index);
    const std::uint64_t old_seed = seed_;
    seed_ = seed;
    try {
      order_ = order(c.epoch);
    } catch (...) {
      seed_ = old_seed;
      throw;
    }
    cur_ = c;
  }
  void seek(data_cursor c) { seek(c, seed_); }

 private:
  void build_order() { order_ = order(cur_.epoch); }
  std::vector<std::int32_t> tokens_;
  std::size_t len_, count_ = 0;
  std::uint64_t seed_;
  data_cursor cur_;
  std::vector<std::size_t> order_;
};

PARE_NAMESPACE_END
