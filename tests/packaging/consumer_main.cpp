// Packaging consumer of pare::pare alone (find_package without components): the core umbrella, no LAPACK, used for real work.
#include <cmath>
#include <cstdio>
#include <cstring>

#include <pare/pare_core.hpp>

#if __has_include(<xtensor/containers/xtensor.hpp>)
#include <xtensor/containers/xtensor.hpp>
#else
#include <xtensor/xtensor.hpp>
#endif

// pare_core.hpp reaches no LAPACK header (tests/layers/include_order.cmake checks the sources; this
// checks an installed copy). _LAPACKE_H_ and CBLAS_H are the reference and OpenBLAS include guards.
#if defined(_LAPACKE_H_) || defined(CBLAS_H)
#error "pare/pare_core.hpp included <lapacke.h> or <cblas.h>: the core must not need LAPACK"
#endif

#ifndef EXPECTED_PARE_VERSION
#error "the consumer project must define EXPECTED_PARE_VERSION from the package's version"
#endif

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  std::printf("consumer: pare %s (package version %s), enabled ISAs:", pare::version_string, EXPECTED_PARE_VERSION);
  pare::for_each_isa(pare::enabled_isas(), [](pare::isa l) { std::printf(" %s", pare::to_string(l)); });
  std::printf("\n");
  check(std::strcmp(pare::version_string, EXPECTED_PARE_VERSION) == 0, "header version equals the package version");
  check(pare::has(pare::detected_isas(), pare::isa::scalar), "scalar is always detected");

  // A zero-copy view over an xtensor container: [out_features, in_features] row-major.
  xt::xtensor<float, 2> w = {{0.5f, -1.0f, 0.25f, 2.0f}, {1.5f, 0.0f, -0.75f, -3.0f}, {0.1f, 0.2f, 0.3f, 0.4f}};
  const pare::matrix_view<float> m = pare::matrix_of(w);
  check(m.rows() == 3 && m.cols() == 4, "matrix_of shape");
  check(m(1, 3) == -3.0f && m.data() == w.data(), "matrix_of is a zero-copy view");
  m(2, 0) = 0.125f;
  check(w(2, 0) == 0.125f, "writes through the view reach the container");

  // Quantize with the runtime config and check the round trip.
  const auto q = pare::quantize(pare::matrix_view<const float>(m), pare::quant_config::parse("int8:per_channel:sym"));
  const auto d = q.dequantize();
  double worst = 0;
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j) worst = std::fmax(worst, std::fabs(double(d(i, j)) - m(i, j)));
  std::printf("consumer: int8 per-channel round trip, max abs error %.6f, %.3f bits/weight\n", worst,
              q.bits_per_weight());
  check(worst < 3.0 / 127, "int8 round-trip error is within half a step of the largest row");

  // Errors are pare::error exceptions with a message.
  bool threw = false;
  try {
    pare::quant_config::parse("int99:nonsense");
  } catch (const pare::error& e) {
    threw = std::strlen(e.what()) > 0;
  }
  check(threw, "a bad config string throws pare::error");

  std::printf("consumer: %s\n", failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
