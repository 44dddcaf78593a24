// Merging named checkpoints: weighted averages, task arithmetic and TIES against float64 references and hand-computed values; mismatches throw.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "pare/merge/average.hpp"
#include "pare/merge/task_arithmetic.hpp"
#include "pare/merge/ties.hpp"
#include "pare_test_support.hpp"

namespace {

pare::checkpoint random_checkpoint(std::uint64_t seed, double sigma = 1.0) {
  pare::checkpoint c;
  c.emplace("a.weight", pare::checkpoint_tensor(pare::shape_t{7, 9}, pare_test::gaussian(63, seed, sigma)));
  c.emplace("b.bias", pare::checkpoint_tensor(pare::shape_t{13}, pare_test::gaussian(13, seed + 1000, sigma)));
  c.emplace("c.conv", pare::checkpoint_tensor(pare::shape_t{2, 3, 5}, pare_test::gaussian(30, seed + 2000, sigma)));
  return c;
}

pare::checkpoint plus_noise(const pare::checkpoint& base, std::uint64_t seed, double sigma) {
  pare::checkpoint c = base;
  for (auto& [name, t] : c) {
    const std::vector<float> n = pare_test::gaussian(t.values.size(), seed + std::hash<std::string>{}(name) % 1000, sigma);
    for (std::size_t e = 0; e < n.size(); ++e) t.values[e] += n[e];
  }
  return c;
}

bool bit_equal(const pare::checkpoint& a, const pare::checkpoint& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.shape != t.shape || it->second.values.size() != t.values.size()) return false;
    if (std::memcmp(t.values.data(), it->second.values.data(), t.values.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

/// Float64 TIES reference: full sort per task (per tensor or over all tensors in name order).
pare::checkpoint ties_reference(const pare::checkpoint& base, const std::vector<const pare::checkpoint*>& tuned, double density,
                                double lambda, bool global) {
  const std::size_t nt = tuned.size();
  // Flatten every task vector in name order.
  std::vector<std::vector<double>> tau(nt);
  std::vector<std::pair<std::size_t, std::size_t>> ranges;  // [begin, end) per tensor
  for (const auto& [name, t0] : base) {
    const std::size_t b = tau.empty() || tau[0].empty() ? 0 : tau[0].size();
    for (std::size_t i = 0; i < nt; ++i)
      for (std::size_t e = 0; e < t0.values.size(); ++e)
        tau[i].push_back(double(tuned[i]->at(name).values[e]) - double(t0.values[e]));
    ranges.emplace_back(b, b + t0.values.size());
  }
  auto trim = [&](std::vector<double>& v, std::size_t b, std::size_t e) {
    std::vector<std::size_t> idx(e - b);
    std::iota(idx.begin(), idx.end(), b);
    std::sort(idx.begin(), idx.end(), [&](std::size_t x, std::size_t y) {
      return std::fabs(v[x]) > std::fabs(v[y]) || (std::fabs(v[x]) == std::fabs(v[y]) && x < y);
    });
    const std::size_t keep = static_cast<std::size_t>(std::floor(density * double(e - b) + 0.5));
    for (std::size_t k = keep; k < idx.size(); ++k) v[idx[k]] = 0;
  };
  for (std::size_t i = 0; i < nt; ++i) {
    if (global) trim(tau[i], 0, tau[i].size());
    else
      for (const auto& r : ranges) trim(tau[i], r.first, r.second);
  }
  pare::checkpoint out;
  std::size_t o = 0;
  for (const auto& [name, t0] : base) {
    std::vector<float> v(t0.values.size());
    for (std::size_t e = 0; e < v.size(); ++e, ++o) {
      double s = 0;
      for (std::size_t i = 0; i < nt; ++i) s += tau[i][o];
      const int gamma = s > 0 ? 1 : s < 0 ? -1 : 0;
      double sum = 0;
      int count = 0;
      for (std::size_t i = 0; i < nt; ++i)
        if (gamma != 0 && tau[i][o] != 0 && (tau[i][o] > 0) == (gamma > 0)) {
          sum += tau[i][o];
          ++count;
        }
      v[e] = static_cast<float>(double(t0.values[e]) + lambda * (count ? sum / count : 0.0));
    }
    out.emplace(name, pare::checkpoint_tensor(t0.shape, v));
  }
  return out;
}

void check_close(const pare::checkpoint& got, const pare::checkpoint& want, double tol = 1e-6) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, t] : want) {
    INFO(name);
    const auto& g = got.at(name);
    REQUIRE(g.shape == t.shape);
    for (std::size_t e = 0; e < t.values.size(); ++e) REQUIRE(g.values[e] == Approx(t.values[e]).margin(tol).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("weighted_average: a checkpoint averaged with itself is returned bit for bit", "[merge][average]") {
  const pare::checkpoint a = random_checkpoint(1);
  CHECK(bit_equal(pare::weighted_average({&a, &a}), a));
  CHECK(bit_equal(pare::weighted_average({&a, &a, &a}), a));
  CHECK(bit_equal(pare::weighted_average({&a, &a}, {0.3, 0.7}), a));
  CHECK(bit_equal(pare::weighted_average({&a, &a, &a, &a, &a}, {1, 2, 3, 4, 5}), a));
  CHECK(bit_equal(pare::weighted_average({&a}), a));
  CHECK(bit_equal(pare::weighted_average({&a, &a}, {0.5, 0.5}, false), a));
}

TEST_CASE("weighted_average against float64: normalized, unnormalized and uniform", "[merge][average]") {
  const pare::checkpoint a = random_checkpoint(2), b = random_checkpoint(3), c = random_checkpoint(4);
  const std::vector<const pare::checkpoint*> cks{&a, &b, &c};
  auto ref = [&](const std::vector<double>& w, bool normalize) {
    const double sw = normalize ? w[0] + w[1] + w[2] : 1.0;
    pare::checkpoint out = a;
    for (auto& [name, t] : out)
      for (std::size_t e = 0; e < t.values.size(); ++e)
        t.values[e] = static_cast<float>((w[0] * a.at(name).values[e] + w[1] * b.at(name).values[e] + w[2] * c.at(name).values[e]) / sw);
    return out;
  };
  check_close(pare::weighted_average(cks), ref({1, 1, 1}, true), 1e-7);
  check_close(pare::weighted_average(cks, {0.2, 0.5, 0.3}), ref({0.2, 0.5, 0.3}, true), 1e-7);
  check_close(pare::weighted_average(cks, {2, 5, 3}), ref({0.2, 0.5, 0.3}, true), 1e-7);
  check_close(pare::weighted_average(cks, {1.5, -0.5, 0.25}, false), ref({1.5, -0.5, 0.25}, false), 1e-7);
  check_close(pare::weighted_average(cks, {}, false), ref({1, 1, 1}, true), 1e-7);
  CHECK_THROWS_AS(pare::weighted_average(cks, {1, 2}), pare::argument_error);
  CHECK_THROWS_AS(pare::weighted_average(cks, {1, -1, 1}), pare::argument_error);
  CHECK_THROWS_AS(pare::weighted_average(cks, {0, 0, 0}), pare::argument_error);
  CHECK_THROWS_AS(pare::weighted_average(cks, {1, std::nan(""), 1}, false), pare::argument_error);
  CHECK_THROWS_AS(pare::weighted_average({}), pare::argument_error);
}

TEST_CASE("task arithmetic: lambda 0 returns the base exactly, other lambdas match float64", "[merge][task_arithmetic]") {
  const pare::checkpoint base = random_checkpoint(5);
  const pare::checkpoint t1 = plus_noise(base, 6, 0.1), t2 = plus_noise(base, 7, 0.1);
  CHECK(bit_equal(pare::task_arithmetic(base, {&t1, &t2}, {0.0}), base));
  CHECK(bit_equal(pare::task_arithmetic(base, {&t1, &t2}, {0.0, 0.0}), base));
  CHECK(bit_equal(pare::task_arithmetic(base, {}, {0.0}), base));
  CHECK(bit_equal(pare::task_arithmetic(base, {&t1}, {1.0}), t1));
  const std::vector<double> lam{0.7, -0.4};
  pare::checkpoint want = base;
  for (auto& [name, t] : want)
    for (std::size_t e = 0; e < t.values.size(); ++e) {
      const double b = base.at(name).values[e];
      t.values[e] = static_cast<float>(b + lam[0] * (double(t1.at(name).values[e]) - b) + lam[1] * (double(t2.at(name).values[e]) - b));
    }
  check_close(pare::task_arithmetic(base, {&t1, &t2}, lam), want, 1e-7);
  // The task vector.
  const pare::checkpoint tv = pare::task_vector(base, t1);
  for (const auto& [name, t] : tv)
    for (std::size_t e = 0; e < t.values.size(); ++e)
      REQUIRE(t.values[e] == static_cast<float>(double(t1.at(name).values[e]) - double(base.at(name).values[e])));
  CHECK_THROWS_AS(pare::task_arithmetic(base, {&t1, &t2}, {1, 2, 3}), pare::argument_error);
  CHECK_THROWS_AS(pare::task_arithmetic(base, {&t1}, {std::numeric_limits<double>::infinity()}), pare::argument_error);
}

TEST_CASE("TIES: hand-computed trim, sign election and disjoint mean", "[merge][ties]") {
  // Base 0, so the tuned checkpoints are the task vectors. Density 0.5 keeps 3 of 6.
  //   τ1 = [ .5, -.2,  .1,   0,  .9, -.3]  ->  [ .5,   0, 0, 0,  .9, -.3]
  //   τ2 = [-.4,  .3,  .2, -.1,  .8,  .6]  ->  [-.4,   0, 0, 0,  .8,  .6]
  //   τ3 = [ .6, -.5, -.05, .2, -.7,  .1]  ->  [ .6, -.5, 0, 0, -.7,   0]
  //   Σ    = [ .7, -.5,   0,   0, 1.0,  .3]  ->  signs + − 0 0 + +
  //   disjoint means: [(.5+.6)/2, −.5, 0, 0, (.9+.8)/2, .6]
  auto ck = [](std::vector<float> v) {
    pare::checkpoint c;
    c.emplace("w", pare::checkpoint_tensor(pare::shape_t{2, 3}, std::move(v)));
    return c;
  };
  const pare::checkpoint base = ck({0, 0, 0, 0, 0, 0});
  const pare::checkpoint t1 = ck({.5f, -.2f, .1f, 0.f, .9f, -.3f});
  const pare::checkpoint t2 = ck({-.4f, .3f, .2f, -.1f, .8f, .6f});
  const pare::checkpoint t3 = ck({.6f, -.5f, -.05f, .2f, -.7f, .1f});
  pare::ties_options opt;
  opt.density = 0.5;
  const pare::checkpoint m = pare::ties_merge(base, {&t1, &t2, &t3}, opt);
  const std::vector<double> want{(double(.5f) + double(.6f)) / 2, -.5, 0, 0, (double(.9f) + double(.8f)) / 2, .6};
  for (std::size_t e = 0; e < 6; ++e) CHECK(m.at("w").values[e] == Approx(want[e]).margin(1e-7));
  // A plain mean over all kept entries would give (.5 − .4 + .6)/3 at entry 0, not .55.
  CHECK(m.at("w").values[0] != Approx((.5 - .4 + .6) / 3).margin(1e-3));
  opt.lambda = 2;
  const pare::checkpoint m2 = pare::ties_merge(base, {&t1, &t2, &t3}, opt);
  for (std::size_t e = 0; e < 6; ++e) CHECK(m2.at("w").values[e] == Approx(2 * want[e]).margin(2e-7));
}

TEST_CASE("TIES: the trimmed fraction is exact, ties go to the lower index", "[merge][ties]") {
  CHECK(pare::ties_keep_count(10, 0.25) == 3);
  CHECK(pare::ties_keep_count(10, 0.2) == 2);
  CHECK(pare::ties_keep_count(7, 1.0) == 7);
  CHECK(pare::ties_keep_count(3, 0.1) == 0);
  CHECK_THROWS_AS(pare::ties_keep_count(3, 0.0), pare::argument_error);
  CHECK_THROWS_AS(pare::ties_keep_count(3, 1.5), pare::argument_error);
  const std::vector<float> g = pare_test::gaussian(1000, 8);
  const std::vector<double> tau(g.begin(), g.end());
  for (double density : {0.01, 0.1, 0.2, 0.5, 0.9, 1.0}) {
    INFO("density " << density);
    const std::vector<double> t = pare::ties_trim(tau, density);
    const std::size_t kept = static_cast<std::size_t>(std::count_if(t.begin(), t.end(), [](double v) { return v != 0; }));
    CHECK(kept == static_cast<std::size_t>(std::floor(density * 1000 + 0.5)));
    double min_kept = std::numeric_limits<double>::infinity(), max_dropped = 0;
    for (std::size_t e = 0; e < tau.size(); ++e) {
      if (t[e] != 0) {
        REQUIRE(t[e] == tau[e]);
        min_kept = std::min(min_kept, std::fabs(tau[e]));
      } else {
        max_dropped = std::max(max_dropped, std::fabs(tau[e]));
      }
    }
    CHECK(min_kept >= max_dropped);
  }
  CHECK(pare::ties_trim({1, -1, 1, 1, 0.5}, 0.4) == std::vector<double>{1, -1, 0, 0, 0});
  CHECK(pare::ties_trim({0.5, 1, -1, 1}, 0.5) == std::vector<double>{0, 1, -1, 0});
  // With one task, TIES changes exactly the kept entries of each tensor.
  const pare::checkpoint base = random_checkpoint(9), t1 = plus_noise(base, 10, 0.1);
  pare::ties_options opt;
  opt.density = 0.3;
  const pare::checkpoint m = pare::ties_merge(base, {&t1}, opt);
  for (const auto& [name, t] : m) {
    std::size_t changed = 0;
    for (std::size_t e = 0; e < t.values.size(); ++e) changed += t.values[e] != base.at(name).values[e];
    CHECK(changed == pare::ties_keep_count(t.values.size(), 0.3));
  }
}

TEST_CASE("TIES against a float64 reference: signs agree, disjoint mean, per-tensor and global trimming", "[merge][ties]") {
  const pare::checkpoint base = random_checkpoint(11, 0.5);
  std::vector<pare::checkpoint> tuned;
  for (std::uint64_t s = 0; s < 4; ++s) tuned.push_back(plus_noise(base, 20 + 7 * s, 0.05));
  const std::vector<const pare::checkpoint*> tp{&tuned[0], &tuned[1], &tuned[2], &tuned[3]};
  for (bool global : {false, true}) {
    for (double density : {0.2, 0.5, 1.0}) {
      INFO("global " << global << " density " << density);
      pare::ties_options opt;
      opt.density = density;
      opt.lambda = 0.8;
      opt.scope = global ? pare::ties_scope::global : pare::ties_scope::per_tensor;
      const pare::checkpoint m = pare::ties_merge(base, tp, opt);
      check_close(m, ties_reference(base, tp, density, 0.8, global), 1e-7);
      // The result moves every changed entry in the elected direction.
      const pare::checkpoint ref = ties_reference(base, tp, density, 1.0, global);
      for (const auto& [name, t] : m)
        for (std::size_t e = 0; e < t.values.size(); ++e) {
          const double d = double(t.values[e]) - double(base.at(name).values[e]);
          const double elected = double(ref.at(name).values[e]) - double(base.at(name).values[e]);
          if (d != 0) REQUIRE(((d > 0) == (elected > 0)));
        }
    }
  }
  pare::ties_options bad;
  bad.density = 0;
  CHECK_THROWS_AS(pare::ties_merge(base, tp, bad), pare::argument_error);
  bad.density = 0.5;
  bad.lambda = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(pare::ties_merge(base, tp, bad), pare::argument_error);
}

TEST_CASE("mismatched checkpoints throw errors naming the tensor", "[merge]") {
  const pare::checkpoint a = random_checkpoint(12);
  pare::checkpoint missing = a;
  missing.erase("b.bias");
  pare::checkpoint extra = a;
  extra.emplace("d.extra", pare::checkpoint_tensor(pare::shape_t{2}, {1.0f, 2.0f}));
  pare::checkpoint reshaped = a;
  reshaped.at("a.weight").shape = pare::shape_t{9, 7};
  pare::checkpoint nan = a;
  nan.at("c.conv").values[4] = std::numeric_limits<float>::quiet_NaN();
  auto expect = [&](auto&& f, const char* name, auto tag) {
    using E = decltype(tag);
    try {
      f();
      FAIL("expected a throw naming " << name);
    } catch (const E& e) {
      CHECK_THAT(e.what(), Catch::Contains(name));
    }
  };
  const pare::ties_options opt;
  for (const pare::checkpoint* other : {&missing, &extra}) {
    const char* name = other == &missing ? "b.bias" : "d.extra";
    expect([&] { pare::weighted_average({&a, other}); }, name, pare::argument_error(""));
    expect([&] { pare::weighted_average({other, &a}); }, name, pare::argument_error(""));
    expect([&] { pare::task_arithmetic(a, {other}, {1.0}); }, name, pare::argument_error(""));
    expect([&] { pare::ties_merge(a, {&a, other}, opt); }, name, pare::argument_error(""));
  }
  expect([&] { pare::weighted_average({&a, &reshaped}); }, "a.weight", pare::shape_error(""));
  expect([&] { pare::task_arithmetic(a, {&reshaped}, {1.0}); }, "a.weight", pare::shape_error(""));
  expect([&] { pare::ties_merge(reshaped, {&a}, opt); }, "a.weight", pare::shape_error(""));
  expect([&] { pare::weighted_average({&a, &nan}); }, "c.conv", pare::value_error(""));
  expect([&] { pare::task_arithmetic(nan, {&a}, {0.0}); }, "c.conv", pare::value_error(""));
  expect([&] { pare::ties_merge(a, {&nan}, opt); }, "c.conv", pare::value_error(""));
  CHECK_THROWS_AS(pare::checkpoint_tensor(pare::shape_t{2, 2}, {1.0f}), pare::shape_error);
  CHECK_THROWS_AS(pare::weighted_average({&a, nullptr}), pare::argument_error);
}
