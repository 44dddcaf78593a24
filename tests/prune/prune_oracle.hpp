// Independent references for the pruning tests: ranking by a full sort, float64 criteria, and a typed error-message check.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "pare/core/error.hpp"
#include "pare/core/rng.hpp"

namespace prune_oracle {

/// Keep flags for the n − k most important of `s`: a full sort by (score desc, index asc),
/// the first n − k kept. (The library uses nth_element and a threshold instead.)
inline std::vector<std::uint8_t> keep_by_sort(const std::vector<float>& s, std::size_t k) {
  std::vector<std::size_t> order(s.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (s[a] != s[b]) return s[a] > s[b];
    return a < b;
  });
  std::vector<std::uint8_t> keep(s.size(), 0);
  for (std::size_t r = 0; r + k < s.size(); ++r) keep[order[r]] = 1;
  return keep;
}

/// Scores with many ties: integers 0..levels-1 (as floats), reproducible by seed.
inline std::vector<float> tied_scores(std::size_t n, std::uint64_t seed, unsigned levels = 5) {
  pare::splitmix64 g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(g.next() % levels);
  return v;
}

/// Runs f, requires that it throws E (a pare::error) whose message contains every needle.
template <class E, class F>
void require_throws(F&& f, std::initializer_list<const char*> needles) {
  bool thrown = false;
  try {
    f();
  } catch (const E& e) {
    thrown = true;
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const char* n : needles) CHECK(msg.find(n) != std::string::npos);
  }
  CHECK(thrown);
}

}  // namespace prune_oracle
