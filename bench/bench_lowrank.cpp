// Low-rank decomposition timings: exact SVD (LAPACK ?gesdd) of 4096 x 4096 and randomized SVD rank 256 of 4096 x 11008, with error counters.
//
// Test matrices have a known spectrum: A = H_L·D·H_R with D [m, n] diagonal holding σ_i and
// H_L, H_R products of 4 random Householder reflectors each (orthogonal, applied as rank-1
// updates), so the singular values are exactly σ_i while A is dense. Timing covers only the
// decomposition; the error counters are computed afterwards:
//   svd_exact/<T>      pare::svd<T>(A), 4096 x 4096, σ_i = 0.999^i
//     sigma_err        max_i |s_i − σ_i| / σ_0
//     recon_err        ‖A − U·diag(s)·Vᵀ‖_F / ‖A‖_F (full rank, BLAS gemm in T)
//   randomized/<T>/q<q>  pare::randomized_svd<T>(A, 256, {p = 10, q, seed 1}), 4096 x 11008, σ_i = 0.99^i
//     rel_err          ‖A − U_k·Σ_k·V_kᵀ‖_F / ‖A‖_F (exact for a projection SVD: √(‖A‖² − Σ s_i²))
//     opt_rel_err      the optimum √Σ_{i≥256} σ_i² / ‖A‖_F (Eckart–Young)
//     sigma_err        max_{i<256} |s_i − σ_i| / σ_i
// LAPACK/BLAS is the system's (Debian: OpenBLAS, its own threads: OPENBLAS_NUM_THREADS).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/lowrank/randomized_svd.hpp"
#include "pare/lowrank/svd.hpp"

namespace {

template <class T>
struct known_matrix {
  std::size_t m = 0, n = 0;
  std::vector<T> a;         // [m, n] row-major
  std::vector<double> sigma;  // min(m, n) values
  double norm2 = 0;
};

/// v ← (I − 2·h·hᵀ)·v on rows (left) or columns (right) of the [m, n] row-major a, with ‖h‖ = 1.
template <class T>
void reflect(std::vector<T>& a, std::size_t m, std::size_t n, const std::vector<double>& h, bool left) {
  if (left) {  // a ← a − 2·h·(hᵀ·a)
    std::vector<double> t(n, 0.0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) t[j] += h[i] * double(a[i * n + j]);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) a[i * n + j] = static_cast<T>(double(a[i * n + j]) - 2.0 * h[i] * t[j]);
  } else {  // a ← a − 2·(a·h)·hᵀ
    for (std::size_t i = 0; i < m; ++i) {
      double t = 0;
      for (std::size_t j = 0; j < n; ++j) t += double(a[i * n + j]) * h[j];
      for (std::size_t j = 0; j < n; ++j) a[i * n + j] = static_cast<T>(double(a[i * n + j]) - 2.0 * t * h[j]);
    }
  }
}

std::vector<double> unit_vector(std::size_t n, pare::splitmix64& g) {
  std::vector<double> h(n);
  double s = 0;
  for (double& x : h) {
    x = g.uniform() - 0.5;
    s += x * x;
  }
  for (double& x : h) x /= std::sqrt(s);
  return h;
}

template <class T>
known_matrix<T> make_known(std::size_t m, std::size_t n, double decay) {
  known_matrix<T> k;
  k.m = m;
  k.n = n;
  k.a.assign(m * n, T(0));
  for (std::size_t i = 0; i < std::min(m, n); ++i) {
    k.sigma.push_back(std::pow(decay, double(i)));
    k.a[i * n + i] = static_cast<T>(k.sigma.back());
    k.norm2 += double(k.a[i * n + i]) * double(k.a[i * n + i]);
  }
  pare::splitmix64 g(2024);
  for (int r = 0; r < 4; ++r) {
    reflect(k.a, m, n, unit_vector(m, g), true);
    reflect(k.a, m, n, unit_vector(n, g), false);
  }
  return k;
}

template <class T>
const known_matrix<T>& square() {
  static const known_matrix<T> k = make_known<T>(4096, 4096, 0.999);
  return k;
}
template <class T>
const known_matrix<T>& wide() {
  static const known_matrix<T> k = make_known<T>(4096, 11008, 0.99);
  return k;
}

template <class T>
void svd_exact(benchmark::State& state) {
  const known_matrix<T>& k = square<T>();
  pare::svd_result<T> r;
  for (auto _ : state) {
    r = pare::svd<T>(pare::matrix_view<const T>(k.a.data(), k.m, k.n));
    benchmark::DoNotOptimize(r.s.data());
  }
  double serr = 0;
  for (std::size_t i = 0; i < r.rank(); ++i) serr = std::max(serr, std::fabs(double(r.s[i]) - k.sigma[i]) / k.sigma[0]);
  const std::vector<T> rec = r.reconstruct(r.rank());
  double d2 = 0;
  for (std::size_t i = 0; i < rec.size(); ++i) d2 += std::pow(double(rec[i]) - double(k.a[i]), 2);
  state.counters["sigma_err"] = serr;
  state.counters["recon_err"] = std::sqrt(d2 / k.norm2);
}

template <class T>
void randomized(benchmark::State& state) {
  const known_matrix<T>& k = wide<T>();
  const std::size_t rank = 256;
  const pare::randomized_svd_options opt{10, static_cast<std::size_t>(state.range(0)), 1};
  pare::svd_result<T> r;
  for (auto _ : state) {
    r = pare::randomized_svd<T>(pare::matrix_view<const T>(k.a.data(), k.m, k.n), rank, opt);
    benchmark::DoNotOptimize(r.s.data());
  }
  double opt2 = 0, serr = 0;
  for (std::size_t i = rank; i < k.sigma.size(); ++i) opt2 += k.sigma[i] * k.sigma[i];
  for (std::size_t i = 0; i < rank; ++i) serr = std::max(serr, std::fabs(double(r.s[i]) - k.sigma[i]) / k.sigma[i]);
  state.counters["rel_err"] = pare::projection_error(r, k.norm2) / std::sqrt(k.norm2);
  state.counters["opt_rel_err"] = std::sqrt(opt2 / k.norm2);
  state.counters["sigma_err"] = serr;
}

const bool registered = [] {
  benchmark::RegisterBenchmark("lowrank/svd_exact/4096x4096/float", svd_exact<float>)
      ->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("lowrank/svd_exact/4096x4096/double", svd_exact<double>)
      ->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (int q : {0, 1, 2}) {
    benchmark::RegisterBenchmark("lowrank/randomized/4096x11008/rank256/float", randomized<float>)
        ->Arg(q)->ArgName("q")->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("lowrank/randomized/4096x11008/rank256/double", randomized<double>)
      ->Arg(2)->ArgName("q")->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
