// Sampler: greedy is argmax, sampled frequencies follow softmax(logits/T), top-p keeps the nucleus, seeds reproduce.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "pare/model/sampler.hpp"

TEST_CASE("sampler: greedy, temperature, top-p and seeds") {
  const std::vector<float> logits{1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  pare::sampler greedy;
  CHECK(greedy.next(logits.data(), logits.size()) == 1);  // first of the tied maxima

  for (float temp : {1.0f, 0.5f}) {
    INFO("T = " << temp);
    double z = 0;
    std::vector<double> p(logits.size());
    for (std::size_t i = 0; i < p.size(); ++i) z += (p[i] = std::exp(logits[i] / temp));
    pare::sampler s(temp, 1.0f, 42);
    const int n = 200000;
    std::vector<int> count(logits.size(), 0);
    for (int i = 0; i < n; ++i) ++count[s.next(logits.data(), logits.size())];
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double want = p[i] / z, sd = std::sqrt(want * (1 - want) / n);
      CHECK(std::fabs(count[i] / double(n) - want) < 5 * sd + 1e-9);
    }
  }
  // top_p = 0.6: the two tied 3.0 logits hold 2·e³/(2e³+e²+e+e⁻¹) ≈ 0.81 ≥ 0.6 after the first
  // alone (≈ 0.40) is not enough, so exactly tokens 1 and 3 are drawn, each about half the time.
  pare::sampler nucleus(1.0f, 0.6f, 7);
  int c1 = 0, c3 = 0;
  for (int i = 0; i < 20000; ++i) {
    const int t = nucleus.next(logits.data(), logits.size());
    REQUIRE((t == 1 || t == 3));
    (t == 1 ? c1 : c3)++;
  }
  CHECK(std::abs(c1 - c3) < 600);
  pare::sampler a(0.8f, 0.9f, 123), b(0.8f, 0.9f, 123);
  for (int i = 0; i < 100; ++i) REQUIRE(a.next(logits.data(), logits.size()) == b.next(logits.data(), logits.size()));
  CHECK_THROWS_AS(pare::sampler(-1.0f), pare::argument_error);
  CHECK_THROWS_AS(pare::sampler(1.0f, 0.0f), pare::argument_error);
}
