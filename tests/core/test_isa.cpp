// Tests of CPU feature detection, the enabled-ISA controls and the dispatcher.
#include <catch2/catch.hpp>

#include "pare/core/dispatch.hpp"

namespace {
int f_scalar() { return 1; }
int f_avx2() { return 2; }
int f_avx512() { return 3; }
}  // namespace

TEST_CASE("detected ISAs always include scalar and respect the chains") {
  const pare::isa d = pare::detected_isas();
  CHECK(pare::has(d, pare::isa::scalar));
  if (pare::has(d, pare::isa::avx512vnni)) CHECK(pare::has(d, pare::isa::avx512bw));
  if (pare::has(d, pare::isa::avx512bw)) CHECK(pare::has(d, pare::isa::avx2));
  if (pare::has(d, pare::isa::avx2)) CHECK(pare::has(d, pare::isa::sse4_1));
  if (pare::has(d, pare::isa::neon_dot)) CHECK(pare::has(d, pare::isa::neon));
#if defined(__AVX2__)
  CHECK(pare::has(d, pare::isa::avx2));  // a binary built for AVX2 can only run where it is detected
#endif
}

TEST_CASE("parse_isa round-trips every level and rejects unknown names") {
  for (pare::isa l : pare::all_isas_best_first) CHECK(pare::parse_isa(pare::to_string(l)) == l);
  CHECK_THROWS_AS(pare::parse_isa("avx1024"), pare::argument_error);
  CHECK_THROWS_WITH(pare::parse_isa("avx1024"), Catch::Contains("avx1024"));
}

TEST_CASE("dispatcher picks the best enabled variant and falls back to lower levels") {
  const pare::dispatcher<int (*)()> d{
      {pare::isa::avx512bw, &f_avx512}, {pare::isa::avx2, &f_avx2}, {pare::isa::scalar, &f_scalar}};
  const pare::isa det = pare::detected_isas();
  pare::for_each_isa(det, [&](pare::isa level) {
    pare::set_enabled_isas(pare::with_lower_levels(level));
    const int got = d.pick()();
    const pare::isa used = pare::last_used_isa();
    INFO("enabled up to " << pare::to_string(level));
    if (level == pare::isa::avx512vnni || level == pare::isa::avx512bw) {
      CHECK(got == 3);
      CHECK(used == pare::isa::avx512bw);
    } else if (level == pare::isa::avx2) {
      CHECK(got == 2);
      CHECK(used == pare::isa::avx2);
    } else {
      CHECK(got == 1);
      CHECK(used == pare::isa::scalar);
    }
  });
  pare::set_enabled_isas(pare::isa::scalar);
  CHECK(d.pick()() == 1);
  pare::reset_enabled_isas();
}
