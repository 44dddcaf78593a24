// Shared test helpers: the data directory (PARE_DATA_DIR) and reproducible random data.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "pare/core/rng.hpp"

namespace pare_test {

/// PARE_DATA_DIR from the environment, else the CMake default (../shared/data).
inline std::string data_dir() {
  const char* env = std::getenv("PARE_DATA_DIR");
  if (env && *env) return env;
  return PARE_DATA_DIR_DEFAULT;
}

/// Path of a file below the data directory, e.g. data_path("models/stories260K.bin").
inline std::string data_path(const std::string& rel) { return data_dir() + "/" + rel; }

/// Whole file as bytes; fails the test if it cannot be read.
inline std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(f.good());
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// n Gaussian floats (Box-Muller over splitmix64), reproducible by seed.
inline std::vector<float> gaussian(std::size_t n, std::uint64_t seed, double sigma = 1.0, double mean = 0.0) {
  pare::splitmix64 g(seed);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    double u1 = g.uniform(), u2 = g.uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    v[i] = static_cast<float>(mean + sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  return v;
}

/// The same values in double (float64 oracles take their inputs this way).
inline std::vector<double> to_double(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

/// n uniform floats in [lo, hi).
inline std::vector<float> uniform(std::size_t n, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  pare::splitmix64 g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(lo + (hi - lo) * g.uniform());
  return v;
}

}  // namespace pare_test
