// Backward pass of the reference model: gradients against central finite differences in float64 on stories260K; loss against the session.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <cstdint>
#include <vector>

#include "model_test_support.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
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

namespace llama_grad_test {

/// A loss of the logits written here in float64: L = Σ c[t,v]·z[t,v] + Σ_t w_t·KL(p_t ‖ softmax(z_t))
/// with fixed random c, w and teacher distributions p_t, and its gradient
/// ∂L/∂z[t,v] = c[t,v] + w_t·(softmax(z_t)[v] − p_t[v]).
struct logits_functional {
  std::vector<double> c, w, teacher;  // c, teacher: [n × vocab]; w: [n]
  logits_functional(std::size_t n, std::size_t vocab, std::uint64_t seed) {
    pare::splitmix64 r(seed);
    c.resize(n * vocab);
    for (double& x : c) x = (r.uniform() - 0.5) * 0.02;
    w.resize(n);
    for (double& x : w) x = 0.5 + r.uniform();
    teacher.resize(n * vocab);
    for (std::size_t t = 0; t < n; ++t) {
      double z = 0;
      for (std::size_t v = 0; v < vocab; ++v) z += (teacher[t * vocab + v] = std::exp(3 * r.uniform()));
      for (std::size_t v = 0; v < vocab; ++v) teacher[t * vocab + v] /= z;
    }
  }
  double operator()(const pare::matrix_view<const double>& z, const pare::matrix_view<double>& dz) const {
    double loss = 0;
    const std::size_t vocab = z.cols();
    for (std::size_t t = 0; t < z.rows(); ++t) {
      double mx = z(t, 0);
      for (std::size_t v = 0; v < vocab; ++v) mx = std::max(mx, z(t, v));
      double s = 0;
      for (std::size_t v = 0; v < vocab; ++v) s += std::exp(z(t, v) - mx);
      const double lse = mx + std::log(s);
      for (std::size_t v = 0; v < vocab; ++v) {
        const double p = teacher[t * vocab + v];
        loss += c[t * vocab + v] * z(t, v) + w[t] * p * (std::log(p) - (z(t, v) - lse));
        dz(t, v) = c[t * vocab + v] + w[t] * (std::exp(z(t, v) - lse) - p);
      }
    }
    return loss;
  }
};

/// Counts the largest batch handed to the wrapped executor (to know work was split).
class counting_executor final : public pare::executor {
 public:
  explicit counting_executor(pare::executor& inner) : inner_(inner) {}
  std::size_t concurrency() const noexcept override { return inner_.concurrency(); }
  void run(std::size_t ntasks, const std::function<void(std::size_t)>& task) override {
    max_tasks = std::max(max_tasks, ntasks);
    inner_.run(ntasks, task);
  }
  std::size_t max_tasks = 0;

 private:
  pare::executor& inner_;
};

}  // namespace llama_grad_test

TEST_CASE("logits entry: gradients of a loss of the logits match float64 central finite differences") {
  pare::llama_model m = stories260k();
  pare::shrink_kv_heads(m, 1, {0, 3});  // block 1: fewer KV heads (grouped-query attention)
  auto p = pare::llama_params<double>::from_model(m);
  const llama_grad_test::logits_functional f(grad_tokens.size(), m.config.vocab_size, 77);
  pare::llama_params<double> g;
  pare::llama_pass<double> pass;
  const double l0 = pare::logits_loss_and_grad(p, grad_tokens, f, &g, false, &pass);
  CHECK(std::isfinite(l0));
  REQUIRE(pass.ready());
  CHECK(pass.logits().rows() == grad_tokens.size());
  std::uint64_t state = 999;
  auto next = [&] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
  auto gn = g.named();
  std::size_t checked = 0, nonzero = 0;
  std::size_t ti = 0;
  for (auto& [name, v] : p.named()) {
    std::vector<double>* gv = gn[ti++].second;
    REQUIRE(gv->size() == v->size());
    std::vector<std::size_t> idx{static_cast<std::size_t>(std::max_element(gv->begin(), gv->end(), [](double a, double b) {
                                   return std::fabs(a) < std::fabs(b);
                                 }) - gv->begin())};
    for (int r = 0; r < 2; ++r) idx.push_back(next() % v->size());
    for (std::size_t i : idx) {
      const double w0 = (*v)[i], h = 1e-5 * std::max(1.0, std::fabs(w0));
      (*v)[i] = w0 + h;
      const double lp = pare::logits_loss_and_grad(p, grad_tokens, f, nullptr);
      (*v)[i] = w0 - h;
      const double lm = pare::logits_loss_and_grad(p, grad_tokens, f, nullptr);
      (*v)[i] = w0;
      const double fd = (lp - lm) / (2 * h), an = (*gv)[i];
      INFO(name << "[" << i << "]: analytic " << an << ", finite difference " << fd);
      CHECK(std::fabs(fd - an) <= 1e-7 + 2e-5 * std::fabs(an));
      nonzero += std::fabs(an) > 1e-6;
      ++checked;
    }
  }
  CHECK(checked == 3 * p.named().size());
  CHECK(nonzero >= p.named().size());  // at least the largest entry of every tensor is non-trivial
}

TEST_CASE("logits entry: the pass's logits equal the session's, and backward accumulates") {
  const pare::llama_model m = stories260k();
  pare::llama_session s(m);
  std::vector<float> ref;
  s.forward(grad_tokens.data(), grad_tokens.size(), ref, true);
  const auto pf = pare::llama_params<float>::from_model(m);
  pare::llama_pass<float> pass;
  pass.forward(pf, grad_tokens);
  const auto lg = pass.logits();
  REQUIRE(lg.rows() * lg.cols() == ref.size());
  double worst = 0;
  for (std::size_t t = 0; t < lg.rows(); ++t)
    for (std::size_t v = 0; v < lg.cols(); ++v) worst = std::max(worst, std::fabs(double(lg(t, v)) - ref[t * lg.cols() + v]));
  CHECK(worst < 1e-4);
  // backward(d) twice, the second with accumulate, = 2·backward(d) (up to float rounding).
  std::vector<float> d(lg.rows() * lg.cols());
  pare::splitmix64 r(5);
  for (float& x : d) x = float(r.uniform() - 0.5);
  const pare::matrix_view<const float> dv(d.data(), lg.rows(), lg.cols());
  pare::llama_params<float> g1, g2;
  pass.backward(dv, g1);
  pass.backward(dv, g2);
  pass.backward(dv, g2, true);
  auto n1 = g1.named(), n2 = g2.named();
  std::size_t bad = 0, nonzero = 0;
  for (std::size_t i = 0; i < n1.size(); ++i) {
    const std::vector<float>& a = *n1[i].second;
    float scale = 0;
    for (float x : a) scale = std::max(scale, std::fabs(x));
    for (std::size_t j = 0; j < a.size(); ++j) {
      bad += std::fabs((*n2[i].second)[j] - 2 * a[j]) > 1e-5f * scale;
      nonzero += a[j] != 0;
    }
  }
  CHECK(bad == 0);
  CHECK(nonzero > 100000);
  // Bad dlogits shape: error, grad untouched.
  std::vector<float> small(lg.cols());
  const auto before = g1.embd;
  CHECK_THROWS_AS(pass.backward(pare::matrix_view<const float>(small.data(), 1, lg.cols()), g1), pare::shape_error);
  CHECK(g1.embd == before);
  pare::llama_pass<float> fresh;
  CHECK_THROWS_AS(fresh.backward(dv, g1), pare::argument_error);
}

TEST_CASE("training forward/backward is bit-identical for 1, 2 and 3 threads") {
  const auto p = pare::llama_params<float>::from_model(stories260k());
  std::vector<std::int32_t> toks(160);
  pare::splitmix64 r(11);
  toks[0] = 1;
  for (std::size_t i = 1; i < toks.size(); ++i) toks[i] = static_cast<std::int32_t>(3 + r.next() % 509);
  std::vector<float> losses;
  std::vector<pare::llama_params<float>> grads;
  for (std::size_t threads : {1, 2, 3}) {
    pare::thread_pool pool(threads);
    llama_grad_test::counting_executor ex(pool);
    pare::set_executor(&ex);
    pare::llama_params<float> g;
    try {
      losses.push_back(pare::loss_and_grad(p, toks, &g));
    } catch (...) {
      pare::set_executor(nullptr);
      throw;
    }
    pare::set_executor(nullptr);
    CHECK(ex.max_tasks == (threads == 1 ? 0u : threads));  // the work really was split (1 thread: never)
    grads.push_back(std::move(g));
  }
  for (std::size_t k = 1; k < grads.size(); ++k) {
    CHECK(std::memcmp(&losses[k], &losses[0], sizeof(float)) == 0);
    auto a = grads[0].named(), b = grads[k].named();
    std::size_t differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      differ += std::memcmp(a[i].second->data(), b[i].second->data(), a[i].second->size() * sizeof(float)) != 0;
    INFO(k + 1 << " threads");
    CHECK(differ == 0);
  }
}
