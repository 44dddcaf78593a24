// Tests of what every observer shares: the trait, edge cases, NaN and empty errors, strided views, any_observer and
// spec strings.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "observer_oracle.hpp"
#include "observers_test_support.hpp"
#include "pare/stats/observers.hpp"
#include "pare_test_support.hpp"

namespace {

using observers_test::asym;
using observers_test::sym;

std::vector<pare::any_observer> all_observers() {
  return {pare::minmax_observer{},     pare::ema_minmax_observer{},
          pare::percentile_observer{}, pare::percentile_observer{90.0},
          pare::mse_observer{},        pare::kl_observer{},
          pare::kl_observer{64}};
}

/// The observer contract on x: finite lo ≤ hi; asymmetric inside [min(m, 0), max(M, 0)];
/// symmetric max(|lo|, |hi|) ≤ max|x|.
void check_contract(const pare::observed_range& r, const std::vector<float>& x, pare::scheme_kind s) {
  const float m = *std::min_element(x.begin(), x.end()), M = *std::max_element(x.begin(), x.end());
  const float amax = std::max(std::fabs(m), std::fabs(M));
  CHECK(std::isfinite(r.lo));
  CHECK(std::isfinite(r.hi));
  CHECK(r.lo <= r.hi);
  if (s == pare::scheme_kind::asymmetric) {
    CHECK(r.lo >= std::min(m, 0.0f));
    CHECK(r.hi <= std::max(M, 0.0f));
  } else {
    CHECK(std::max(std::fabs(r.lo), std::fabs(r.hi)) <= amax);
  }
}

}  // namespace

static_assert(pare::is_observer_v<pare::minmax_observer>);
static_assert(pare::is_observer_v<pare::ema_minmax_observer>);
static_assert(pare::is_observer_v<pare::percentile_observer>);
static_assert(pare::is_observer_v<pare::mse_observer>);
static_assert(pare::is_observer_v<pare::kl_observer>);
static_assert(pare::is_observer_v<pare::any_observer>);
static_assert(!pare::is_observer_v<int>);
static_assert(!pare::is_observer_v<pare::observed_range>);
static_assert(!pare::is_observer_v<pare::int_format>);

TEST_CASE("every observer meets the contract on sizes 1-17 and typical data, in every format") {
  std::uint64_t seed = 3000;
  for (std::size_t n = 1; n <= 17; ++n) {
    const auto x = pare_test::gaussian(n, seed++, 1.0, n % 3 == 0 ? 0.8 : 0.0);
    for (const auto& proto : all_observers()) {
      for (int bits = 2; bits <= 8; ++bits) {
        for (auto s : {sym, asym}) {
          INFO(to_string(proto) << " n " << n << " bits " << bits << (s == sym ? " sym" : " asym"));
          check_contract(pare::observe_range(proto, x.data(), n, pare::int_format{bits, bits % 2 == 1}, s), x, s);
        }
      }
    }
  }
  for (const auto& x : {obs_oracle::student_t3(4096, 1), pare_test::uniform(1000, 2, 0.5, 3.0),
                        pare_test::uniform(1000, 3, -3.0, -0.5)}) {
    for (const auto& proto : all_observers())
      for (auto s : {sym, asym}) {
        INFO(to_string(proto));
        check_contract(pare::observe_range(proto, x.data(), x.size(), pare::int_format{4, true}, s), x, s);
      }
  }
}

TEST_CASE("all-zero, constant and single-value data") {
  const pare::int_format fmt{4, true};
  for (const auto& proto : all_observers()) {
    INFO(to_string(proto));
    const std::vector<float> zeros(100, 0.0f);
    for (auto s : {sym, asym}) {
      const auto r = pare::observe_range(proto, zeros.data(), zeros.size(), fmt, s);
      CHECK(r.lo == 0.0f);
      CHECK(r.hi == 0.0f);
    }
    for (float c : {3.25f, -0.75f}) {
      const std::vector<float> x(50, c);
      for (std::size_t n : {std::size_t(1), x.size()}) {
        for (auto s : {sym, asym}) {
          // Every observer gives the parameters of the range [c, c].
          const auto r = pare::observe_range(proto, x.data(), n, fmt, s);
          const auto p = pare::params_from_range(r.lo, r.hi, fmt, s), want = pare::params_from_range(c, c, fmt, s);
          CHECK(p.scale == want.scale);
          CHECK(p.zero_point == want.zero_point);
          check_contract(r, x, s);
        }
      }
    }
  }
}

TEST_CASE("an empty observer throws pare::error, NaN and Inf throw value_error naming the index") {
  const pare::int_format fmt{8, true};
  for (auto o : all_observers()) {
    INFO(to_string(o));
    CHECK_THROWS_AS(o.range(fmt, sym), pare::error);
    CHECK_THROWS_WITH(o.range(fmt, sym), Catch::Contains("nothing was observed"));
    o.observe(static_cast<const float*>(nullptr), 0);  // an empty batch is fine
    CHECK_THROWS_AS(o.range(fmt, sym), pare::error);
    std::vector<float> x = pare_test::gaussian(200, 5);
    o.observe(x.data(), 10);
    const auto before = o.range(fmt, asym);
    x[137] = std::nanf("");
    CHECK_THROWS_AS(o.observe(x.data(), x.size()), pare::value_error);
    CHECK_THROWS_WITH(o.observe(x.data(), x.size()), Catch::Contains("index 137") && Catch::Contains("nan"));
    x[137] = 1.0f;
    x[3] = -INFINITY;
    CHECK_THROWS_WITH(o.observe(x.data(), x.size()), Catch::Contains("index 3") && Catch::Contains("inf"));
    // Strided view: the message gives the row-major index and the shape.
    const pare::tensor_view<const float> col(x.data(), pare::shape_t{50, 2}, {4, 2});  // x[4i + 2j]
    x[3] = 0.0f;
    x[4 * 7 + 2] = std::nanf("");
    CHECK_THROWS_WITH(o.observe(col), Catch::Contains("row-major index 15") && Catch::Contains("[50, 2]"));
    // ... and the observer is unchanged.
    CHECK(o.range(fmt, asym).lo == before.lo);
    CHECK(o.range(fmt, asym).hi == before.hi);
    CHECK_THROWS_AS(o.observe(static_cast<const float*>(nullptr), 3), pare::argument_error);
    CHECK_THROWS_WITH(o.range(pare::int_format{9, true}, sym), Catch::Contains("'bits'"));
    o.reset();
    CHECK_THROWS_AS(o.range(fmt, sym), pare::error);
  }
}

TEST_CASE("observe(tensor_view) of any rank and strides equals observe of the gathered values") {
  // A [3, 4, 5] tensor, viewed transposed (strides 1, 3, 12) and with a negative stride.
  const auto base = obs_oracle::student_t3(60, 17);
  const pare::tensor_view<const float> t(base.data(), pare::shape_t{5, 4, 3}, {1, 5, 20});
  std::vector<float> gathered;
  for (std::size_t i = 0; i < 5; ++i)
    for (std::size_t j = 0; j < 4; ++j)
      for (std::size_t k = 0; k < 3; ++k) gathered.push_back(t(i, j, k));
  const pare::tensor_view<const float> rev(base.data() + 59, pare::shape_t{60}, {-1});
  std::vector<float> reversed(base.rbegin(), base.rend());
  const pare::tensor_view<const float> wide(base.data(), pare::shape_t{2, 300},
                                            {0, 0});  // broadcast: 600 copies of x[0]
  const std::vector<float> copies(600, base[0]);
  for (const auto& proto : all_observers()) {
    for (auto s : {sym, asym}) {
      INFO(to_string(proto));
      const pare::int_format fmt{4, false};
      auto a = proto;
      a.observe(t);
      const auto want = pare::observe_range(proto, gathered.data(), gathered.size(), fmt, s);
      CHECK(a.range(fmt, s).lo == want.lo);
      CHECK(a.range(fmt, s).hi == want.hi);
      auto b = proto;
      b.observe(rev);
      const auto want_rev = pare::observe_range(proto, reversed.data(), reversed.size(), fmt, s);
      CHECK(b.range(fmt, s).lo == want_rev.lo);
      CHECK(b.range(fmt, s).hi == want_rev.hi);
      auto c = proto;
      c.observe(wide);
      const auto want_wide = pare::observe_range(proto, copies.data(), copies.size(), fmt, s);
      CHECK(c.range(fmt, s).lo == want_wide.lo);
      CHECK(c.range(fmt, s).hi == want_wide.hi);
      // rank 0: one element
      auto d = proto;
      d.observe(pare::tensor_view<const float>(base.data() + 5, pare::shape_t{}));
      CHECK(d.range(fmt, asym).hi == pare::observe_range(proto, base.data() + 5, 1, fmt, asym).hi);
    }
  }
}

TEST_CASE("parse_observer and to_string round-trip") {
  CHECK(to_string(pare::parse_observer("minmax")) == "minmax");
  CHECK(to_string(pare::parse_observer("ema")) == "ema=0.01");
  CHECK(to_string(pare::parse_observer("ema=0.05")) == "ema=0.05");
  CHECK(to_string(pare::parse_observer("percentile")) == "percentile=99.99");
  CHECK(to_string(pare::parse_observer("percentile=99.9")) == "percentile=99.9");
  CHECK(to_string(pare::parse_observer("mse")) == "mse=100");
  CHECK(to_string(pare::parse_observer("mse=200")) == "mse=200");
  CHECK(to_string(pare::parse_observer("kl")) == "kl=2048");
  CHECK(to_string(pare::parse_observer("kl=4096")) == "kl=4096");
  CHECK(to_string(pare::parse_observer("mse=50,max_shrink=0.5,exact_limit=1000")) ==
        "mse=50,max_shrink=0.5,exact_limit=1000");
  CHECK(to_string(pare::parse_observer("percentile=99,exact_limit=7")) == "percentile=99,exact_limit=7");
  CHECK(to_string(pare::parse_observer("kl=100,exact_limit=0")) == "kl=100,exact_limit=0");

  const auto e = pare::parse_observer("ema=0.05");
  REQUIRE(e.get_if<pare::ema_minmax_observer>() != nullptr);
  CHECK(e.get_if<pare::ema_minmax_observer>()->momentum() == 0.05f);
  CHECK(std::string(e.kind()) == "ema");
  const auto m = pare::parse_observer("mse=200");
  REQUIRE(m.get_if<pare::mse_observer>() != nullptr);
  CHECK(m.get_if<pare::mse_observer>()->grid() == 200);
  CHECK(m.get_if<pare::mse_observer>()->max_shrink() == 0.8f);
  CHECK(pare::parse_observer("percentile=99.9").get_if<pare::percentile_observer>()->percentile() == 99.9);
  CHECK(pare::parse_observer("kl=4096").get_if<pare::kl_observer>()->bins() == 4096);
  CHECK(pare::parse_observer("kl").get_if<pare::mse_observer>() == nullptr);

  // Awkward knob values survive the round trip exactly.
  for (const pare::any_observer& o :
       {pare::any_observer(pare::ema_minmax_observer{0.1f}), pare::any_observer(pare::ema_minmax_observer{1.0f / 3}),
        pare::any_observer(pare::percentile_observer{99.123456789}),
        pare::any_observer(pare::percentile_observer{1e-7}), pare::any_observer(pare::mse_observer{7, 0.333f, 12345}),
        pare::any_observer(pare::kl_observer{3, 1})}) {
    const std::string s = to_string(o);
    INFO(s);
    const auto back = pare::parse_observer(s);
    CHECK(to_string(back) == s);
    CHECK(std::string(back.kind()) == o.kind());
  }
  CHECK(pare::parse_observer(to_string(pare::ema_minmax_observer{1.0f / 3}))
            .get_if<pare::ema_minmax_observer>()
            ->momentum() == 1.0f / 3);
  CHECK(pare::parse_observer(to_string(pare::percentile_observer{99.123456789}))
            .get_if<pare::percentile_observer>()
            ->percentile() == 99.123456789);
}

TEST_CASE("parse_observer rejects junk, naming what it accepts or the knob") {
  CHECK_THROWS_WITH(pare::parse_observer("fancy"), Catch::Contains("'fancy'") && Catch::Contains("minmax") &&
                                                       Catch::Contains("ema") && Catch::Contains("percentile") &&
                                                       Catch::Contains("mse") && Catch::Contains("kl"));
  CHECK_THROWS_AS(pare::parse_observer(""), pare::argument_error);
  CHECK_THROWS_AS(pare::parse_observer("MSE"), pare::argument_error);
  CHECK_THROWS_WITH(pare::parse_observer("minmax=3"), Catch::Contains("'minmax'"));
  CHECK_THROWS_WITH(pare::parse_observer("ema=abc"), Catch::Contains("'momentum'") && Catch::Contains("'abc'"));
  CHECK_THROWS_WITH(pare::parse_observer("ema=2"), Catch::Contains("'momentum'"));
  CHECK_THROWS_WITH(pare::parse_observer("ema="), Catch::Contains("'momentum'"));
  CHECK_THROWS_WITH(pare::parse_observer("percentile=0"), Catch::Contains("'percentile'"));
  CHECK_THROWS_WITH(pare::parse_observer("percentile=101"), Catch::Contains("'percentile'"));
  CHECK_THROWS_WITH(pare::parse_observer("percentile=nan"), Catch::Contains("'percentile'"));
  CHECK_THROWS_WITH(pare::parse_observer("percentile=99.9x"), Catch::Contains("'percentile'"));
  CHECK_THROWS_WITH(pare::parse_observer("mse=0"), Catch::Contains("'grid'"));
  CHECK_THROWS_WITH(pare::parse_observer("mse=-1"), Catch::Contains("'grid'"));
  CHECK_THROWS_WITH(pare::parse_observer("mse=1.5"), Catch::Contains("'grid'"));
  CHECK_THROWS_WITH(pare::parse_observer("mse=100,max_shrink=1"), Catch::Contains("'max_shrink'"));
  CHECK_THROWS_WITH(pare::parse_observer("kl=0"), Catch::Contains("'bins'"));
  CHECK_THROWS_WITH(pare::parse_observer("kl=99999999999"), Catch::Contains("'bins'"));
  CHECK_THROWS_WITH(pare::parse_observer("kl=64,max_shrink=0.5"), Catch::Contains("'max_shrink=0.5'"));
  CHECK_THROWS_WITH(pare::parse_observer("minmax,exact_limit=5"), Catch::Contains("'exact_limit=5'"));
  CHECK_THROWS_WITH(pare::parse_observer("percentile=99,exact_limit=x"), Catch::Contains("'exact_limit'"));
}

TEST_CASE("any_observer forwards to the held observer, streaming included") {
  const auto x = obs_oracle::student_t3(3000, 44);
  const pare::int_format fmt{4, true};
  for (const auto& proto : all_observers()) {
    INFO(to_string(proto));
    pare::any_observer a = proto;
    for (std::size_t i = 0; i < x.size(); i += 500) a.observe(x.data() + i, 500);
    std::visit(
        [&](auto concrete) {
          concrete.reset();
          for (std::size_t i = 0; i < x.size(); i += 500) concrete.observe(x.data() + i, 500);
          for (auto s : {sym, asym}) {
            CHECK(a.range(fmt, s).lo == concrete.range(fmt, s).lo);
            CHECK(a.range(fmt, s).hi == concrete.range(fmt, s).hi);
          }
        },
        proto.variant());
  }
  CHECK(std::string(pare::any_observer{}.kind()) == "minmax");
}

TEST_CASE("observe_range uses the prototype's knobs, not its data") {
  const auto x = pare_test::gaussian(256, 91);
  const std::vector<float> far(10, 100.0f);
  const pare::int_format fmt{4, true};
  for (auto proto : all_observers()) {
    INFO(to_string(proto));
    const auto clean = pare::observe_range(proto, x.data(), x.size(), fmt, asym);
    proto.observe(far.data(), far.size());
    const auto r = pare::observe_range(proto, x.data(), x.size(), fmt, asym);
    CHECK(r.lo == clean.lo);
    CHECK(r.hi == clean.hi);
  }
}

TEST_CASE("parse_observer options: each at most once, never empty") {
  CHECK_THROWS_WITH(pare::parse_observer("mse=5,max_shrink=0.5,max_shrink=0.6"),
                    Catch::Contains("'max_shrink' repeats"));
  CHECK_THROWS_WITH(pare::parse_observer("kl=64,exact_limit="), Catch::Contains("'exact_limit'"));
  CHECK_THROWS_WITH(pare::parse_observer("mse,max_shrink"), Catch::Contains("'max_shrink'"));
  CHECK_THROWS_WITH(pare::parse_observer("percentile=99,"), Catch::Contains("unknown option ''"));
  CHECK(pare::parse_observer("mse,max_shrink=0.25").get_if<pare::mse_observer>()->max_shrink() == 0.25f);
  CHECK(pare::parse_observer("mse,max_shrink=0.25").get_if<pare::mse_observer>()->grid() == 100);
}
