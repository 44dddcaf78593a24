// Backward pass of the reference model: gradients against central finite differences in float64 on stories260K; loss against the session.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "model_test_support.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/surgery.hpp"
#include "pare_test_support.hpp"

namespace {
using model_test::stories260k;

const std::vector<std::int32_t> grad_tokens{1, 403, 407, 261, 378, 11, 300, 42, 7, 450, 499, 259};
}  // namespace

TEST_CASE("training-mode loss equals the session's mean next-token NLL") {
  const pare::llama_model m = stories260k();
  pare::llama_session s(m);
  std::vector<float> logits;
  s.forward(grad_tokens.data(), grad_tokens.size(), logits, true);
  double nll = 0;
  const std::size_t vocab = m.config.vocab_size;
  for (std::size_t t = 0; t + 1 < grad_tokens.size(); ++t) {
    const float* l = logits.data() + t * vocab;
    double mx = *std::max_element(l, l + vocab), z = 0;
    for (std::size_t i = 0; i < vocab; ++i) z += std::exp(double(l[i]) - mx);
    nll += std::log(z) - (double(l[grad_tokens[t + 1]]) - mx);
  }
  nll /= double(grad_tokens.size() - 1);
  const auto pd = pare::llama_params<double>::from_model(m);
  const auto pf = pare::llama_params<float>::from_model(m);
  CHECK(pare::loss_and_grad(pd, grad_tokens, nullptr) == Approx(nll).epsilon(1e-5));
  CHECK(double(pare::loss_and_grad(pf, grad_tokens, nullptr)) == Approx(nll).epsilon(1e-5));
}

TEST_CASE("gradients of every tensor match central finite differences in float64") {
  pare::llama_model m = stories260k();
  // Also exercise pruned shapes: one block with fewer KV heads and a narrower FFN.
  pare::shrink_kv_heads(m, 1, {0, 3});
  std::vector<std::size_t> keep;
  for (std::size_t j = 0; j < 172; j += 2) keep.push_back(j);
  pare::shrink_ffn(m, 2, keep);
  auto p = pare::llama_params<double>::from_model(m);
  pare::llama_params<double> g;
  pare::loss_and_grad(p, grad_tokens, &g);
  std::uint64_t state = 12345;
  auto next = [&] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
  auto gn = g.named();
  std::size_t checked = 0;
  double worst = 0;
  for (auto& [name, v] : p.named()) {
    std::vector<double>* gv = nullptr;
    for (auto& e : gn)
      if (e.first == name) gv = e.second;
    REQUIRE(gv != nullptr);
    REQUIRE(gv->size() == v->size());
    // A few random entries, plus the entry with the largest gradient.
    std::vector<std::size_t> idx{static_cast<std::size_t>(std::max_element(gv->begin(), gv->end(), [](double a, double b) {
                                   return std::fabs(a) < std::fabs(b);
                                 }) - gv->begin())};
    for (int r = 0; r < 3; ++r) idx.push_back(next() % v->size());
    if (name == "token_embd.weight") idx.push_back(403 * 64 + 5);  // a row that is both looked up and a classifier row
    for (std::size_t i : idx) {
      const double w0 = (*v)[i], h = 1e-5 * std::max(1.0, std::fabs(w0));
      (*v)[i] = w0 + h;
      const double lp = pare::loss_and_grad(p, grad_tokens, nullptr);
      (*v)[i] = w0 - h;
      const double lm = pare::loss_and_grad(p, grad_tokens, nullptr);
      (*v)[i] = w0;
      const double fd = (lp - lm) / (2 * h), an = (*gv)[i];
      INFO(name << "[" << i << "]: analytic " << an << ", finite difference " << fd);
      CHECK(std::fabs(fd - an) <= 1e-8 + 1e-5 * std::fabs(an));
      worst = std::max(worst, std::fabs(fd - an));
      ++checked;
    }
  }
  CHECK(checked >= 4 * (1 + 5 * 9 + 1));
  INFO("worst |fd - analytic| = " << worst);
}

TEST_CASE("loss_and_grad rejects bad token sequences") {
  const auto p = pare::llama_params<float>::from_model(stories260k());
  CHECK_THROWS_AS(pare::loss_and_grad(p, {1}, nullptr), pare::argument_error);
  CHECK_THROWS_AS(pare::loss_and_grad(p, {1, 600}, nullptr), pare::argument_error);
}
