// Packaging consumer of pare::linalg (find_package COMPONENTS linalg, add_subdirectory): pare/pare.hpp, an SVD through LAPACKE, a product through CBLAS.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

// The umbrella; the add_subdirectory consumer includes only the SVD header (a quick compile:
// the umbrella is compiled by the find_package consumer).
#ifdef PARE_CONSUMER_SVD_ONLY
#include <pare/lowrank/svd.hpp>
#include <pare/version.hpp>
#else
#include <pare/pare.hpp>
#endif

#ifndef EXPECTED_PARE_VERSION
#error "the consumer project must define EXPECTED_PARE_VERSION from the package's version"
#endif

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer_linalg: FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  std::printf("consumer_linalg: pare %s (package version %s)\n", pare::version_string, EXPECTED_PARE_VERSION);
  check(std::strcmp(pare::version_string, EXPECTED_PARE_VERSION) == 0, "header version equals the package version");

  // [3, 2] row-major with singular values 3 and 2 (orthogonal columns of norms 3 and 2).
  const std::vector<float> a = {3.0f, 0.0f, 0.0f, 2.0f, 0.0f, 0.0f};
  const pare::matrix_view<const float> m(a.data(), 3, 2);
  const auto d = pare::svd(m);  // LAPACKE ?gesdd
  check(d.rank() == 2, "thin SVD of a 3x2 matrix has 2 singular values");
  check(d.rank() == 2 && std::fabs(d.s[0] - 3.0) < 1e-12 && std::fabs(d.s[1] - 2.0) < 1e-12, "singular values 3 and 2");
  const std::vector<double> r = d.reconstruct(2);  // CBLAS ?gemm
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < r.size(); ++i) worst = std::fmax(worst, std::fabs(r[i] - a[i]));
  check(r.size() == a.size() && worst < 1e-12, "U·diag(s)·Vᵀ reconstructs the matrix");
  std::printf("consumer_linalg: singular values %.3f %.3f, reconstruction error %.2e\n", d.rank() > 0 ? d.s[0] : 0.0,
              d.rank() > 1 ? d.s[1] : 0.0, worst);

  std::printf("consumer_linalg: %s\n", failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
