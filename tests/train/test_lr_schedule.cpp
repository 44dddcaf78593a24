// lr_schedule against its closed forms evaluated by hand at chosen steps (warmup, cosine, linear, constant, floor), and its argument checks.
#include <catch2/catch.hpp>

#include "pare/train/lr_schedule.hpp"

TEST_CASE("lr_schedule: warmup then cosine to a floor, at chosen steps") {
  pare::lr_schedule s;
  s.peak = 1e-3;
  s.floor = 1e-4;
  s.warmup = 10;
  s.total = 110;
  s.decay = pare::lr_decay::cosine;
  CHECK(s.at(0) == Approx(1e-4));          // 1e-3 · 1/10
  CHECK(s.at(4) == Approx(5e-4));          // 1e-3 · 5/10
  CHECK(s.at(9) == Approx(1e-3));          // end of warmup
  CHECK(s.at(10) == Approx(1e-3));         // progress 0: cos 0 = 1
  CHECK(s.at(35) == Approx(1e-4 + 9e-4 * (1 + 0.70710678118654752) / 2));  // progress 1/4: cos(π/4)
  CHECK(s.at(60) == Approx(5.5e-4));       // progress 1/2: cos(π/2) = 0
  CHECK(s.at(85) == Approx(1e-4 + 9e-4 * (1 - 0.70710678118654752) / 2));
  CHECK(s.at(110) == Approx(1e-4));        // progress 1
  CHECK(s.at(1000) == Approx(1e-4));       // held at the floor
}

TEST_CASE("lr_schedule: linear decay, constant, and no warmup") {
  pare::lr_schedule s;
  s.peak = 2.0;
  s.floor = 0.5;
  s.warmup = 0;
  s.total = 30;
  s.decay = pare::lr_decay::linear;
  CHECK(s.at(0) == Approx(2.0));
  CHECK(s.at(10) == Approx(1.5));  // 0.5 + 1.5 · (1 − 1/3)
  CHECK(s.at(20) == Approx(1.0));
  CHECK(s.at(30) == Approx(0.5));
  CHECK(s.at(31) == Approx(0.5));
  s.decay = pare::lr_decay::constant;
  s.warmup = 4;
  CHECK(s.at(1) == Approx(1.0));  // 2 · 2/4
  CHECK(s.at(4) == Approx(2.0));
  CHECK(s.at(29) == Approx(2.0));
  // warmup == total: warmup then the floor at once (no division by zero).
  s.decay = pare::lr_decay::cosine;
  s.warmup = s.total = 5;
  CHECK(s.at(4) == Approx(2.0));
  CHECK(s.at(5) == Approx(2.0));  // progress (5 − 5) / max(1, 0) = 0
  CHECK(s.at(6) == Approx(0.5));
}

TEST_CASE("lr_schedule rejects a floor above the peak, a negative peak and total < warmup") {
  pare::lr_schedule s;
  s.peak = 1e-3;
  s.floor = 2e-3;
  CHECK_THROWS_AS(s.at(0), pare::argument_error);
  s.floor = 0;
  s.peak = -1;
  CHECK_THROWS_AS(s.validate(), pare::argument_error);
  s.peak = 1;
  s.warmup = 10;
  s.total = 5;
  CHECK_THROWS_AS(s.at(3), pare::argument_error);
}
