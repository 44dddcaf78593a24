// Seeded, counter-based random numbers: the same (seed, row, column) gives the same value on every ISA.
#pragma once

// Stochastic rounding must give identical codes in the scalar reference and every
// SIMD variant, whatever the thread split. So random values are not drawn from a
// sequential generator but computed from their coordinates:
//
//     row_key(seed, row)   = mix64(seed ^ mix64(row + 0x9E3779B97F4A7C15))   (64 → 32 bits)
//     bits(row_key, col)   = lowbias32(row_key + col * 0x9E3779B9)            (32-bit lanes)
//     uniform(row_key,col) = (bits >> 8) · 2⁻²⁴  ∈ [0, 1)
//
// `lowbias32` is Chris Wellons' 32-bit integer hash (public domain constants); its
// operations (add, multiply-low, xor, shift) exist in SSE4.1/AVX2/AVX-512/NEON lanes.

#include <cstdint>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN

/// SplitMix64 finaliser.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

/// 32-bit integer hash with low bias (Wellons).
constexpr std::uint32_t lowbias32(std::uint32_t x) noexcept {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/// Per-row key from a 64-bit seed.
constexpr std::uint32_t row_key(std::uint64_t seed, std::uint64_t row) noexcept {
  return static_cast<std::uint32_t>(mix64(seed ^ mix64(row + 0x9E3779B97F4A7C15ull)) >> 32);
}

/// Random bits for column `col` of a row with key `key`.
constexpr std::uint32_t counter_bits(std::uint32_t key, std::uint32_t col) noexcept {
  return lowbias32(key + col * 0x9E3779B9u);
}

/// Uniform float in [0, 1) with 24 random bits, exactly representable.
inline float counter_uniform(std::uint32_t key, std::uint32_t col) noexcept {
  return static_cast<float>(counter_bits(key, col) >> 8) * (1.0f / 16777216.0f);
}

/// A small sequential generator (SplitMix64) for test data and seeding.
class splitmix64 {
 public:
  explicit constexpr splitmix64(std::uint64_t seed) noexcept : s_(seed) {}
  constexpr std::uint64_t next() noexcept { return mix64(s_ += 0x9E3779B97F4A7C15ull); }
  /// Uniform double in [0, 1).
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t s_;
};

PARE_NAMESPACE_END
