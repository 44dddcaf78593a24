// Conan test_package program: quantizes a small matrix with pare's core and, with PARE_TEST_LINALG, takes its singular values.
#include <cstdio>

#ifdef PARE_TEST_LINALG
#include <pare/pare.hpp>
#else
#include <pare/pare_core.hpp>
#endif

int main() {
  const float w[4] = {1.0f, -2.0f, 3.0f, -4.0f};
  const pare::matrix_view<const float> m(w, 2, 2);
  const auto q = pare::quantize(m, pare::quant_config::parse("int8:per_channel:sym"));
  std::printf("pare %s: int8 per channel, %.2f bits/weight\n", pare::version_string, q.bits_per_weight());
#ifdef PARE_TEST_LINALG
  const auto s = pare::singular_values(m);
  std::printf("singular values %.4f %.4f\n", s[0], s[1]);
#endif
  return 0;
}
