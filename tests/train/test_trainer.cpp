// The training loop on stories260K: same seed and options give identical bits (any thread count), a resumed run is bit-identical to an uninterrupted one, AdamW lowers held-out loss, trained weights written back evaluate as the training forward does.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "pare/core/parallel.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/model/surgery.hpp"
#include "pare/train/adamw.hpp"
#include "pare/train/checkpoint.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/sgd.hpp"
#include "pare/train/trainer.hpp"
#include "pare/train/window_loss.hpp"
#include "pare/train/window_sampler.hpp"
#include "pare/train/write_back.hpp"
#include "train_core_test_support.hpp"

namespace trainer_test {

/// The first `n` tokens of val_tail: the training stream of these tests.
inline std::vector<std::int32_t> train_tokens(std::size_t n) {
  const auto& t = train_core_test::val_tail_tokens();
  return std::vector<std::int32_t>(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n));
}
/// `count` windows of `len` + 1 tokens from val_tail after the first `skip` tokens (never trained on).
inline std::vector<std::vector<std::int32_t>> held_out(std::size_t skip, std::size_t count, std::size_t len) {
  const auto& t = train_core_test::val_tail_tokens();
  std::vector<std::vector<std::int32_t>> w;
  for (std::size_t i = 0; i < count; ++i) {
    const auto b = t.begin() + static_cast<std::ptrdiff_t>(skip + i * len);
    w.emplace_back(b, b + static_cast<std::ptrdiff_t>(len + 1));
  }
  return w;
}
inline double mean_loss(const pare::llama_params<float>& p, const std::vector<std::vector<std::int32_t>>& ws) {
  double s = 0;
  for (const auto& w : ws) s += pare::loss_and_grad(p, w, nullptr);
  return s / double(ws.size());
}

inline pare::train_options small_run(std::size_t steps) {
  pare::train_options o;
  o.steps = steps;
  o.accumulation = 2;
  o.max_grad_norm = 1.0;
  o.schedule.peak = 2e-3;
  o.schedule.floor = 2e-4;
  o.schedule.warmup = 2;
  o.schedule.total = 6;
  return o;
}

/// Runs `o` from stories260K with `threads` threads; returns the trained parameters.
inline pare::llama_params<float> run(std::size_t threads, const pare::train_options& o, std::uint64_t seed) {
  pare::thread_pool pool(threads);
  pare::set_executor(&pool);
  auto p = pare::llama_params<float>::from_model(train_core_test::stories260k());
  try {
    pare::parameter_set ps(p, pare::all_tensors());
    pare::adamw opt;
    pare::window_sampler data(train_tokens(4000), 64, seed);
    pare::train(ps, opt, data, o, pare::cross_entropy_loss());
  } catch (...) {
    pare::set_executor(nullptr);
    throw;
  }
  pare::set_executor(nullptr);
  return p;
}

}  // namespace trainer_test

TEST_CASE("train: same seed and options give bit-identical parameters, for 1 and 2 threads; another seed does not") {
  const auto o = trainer_test::small_run(4);
  auto a = trainer_test::run(1, o, 7), b = trainer_test::run(1, o, 7), c = trainer_test::run(2, o, 7);
  auto d = trainer_test::run(1, o, 8);
  auto orig = pare::llama_params<float>::from_model(train_core_test::stories260k());
  CHECK(train_core_test::differing_tensors(a, orig) == long(orig.named().size()));  // every tensor trained
  CHECK(train_core_test::differing_tensors(a, b) == 0);
  CHECK(train_core_test::differing_tensors(a, c) == 0);
  CHECK(train_core_test::differing_tensors(a, d) > 0);
}

TEST_CASE("train: a run checkpointed at step 3 and resumed in fresh objects is bit-identical to an uninterrupted run") {
  const std::string path = "/tmp/pare_h13_resume.ckpt";
  const auto full_opts = trainer_test::small_run(6);
  const pare::llama_model m = train_core_test::stories260k();
  // Uninterrupted: 6 steps, recording the losses.
  auto pa = pare::llama_params<float>::from_model(m);
  pare::parameter_set psa(pa, pare::all_tensors());
  pare::adamw opta;
  pare::window_sampler da(trainer_test::train_tokens(4000), 64, 11);
  std::vector<double> la;
  pare::train(psa, opta, da, full_opts, pare::cross_entropy_loss(), [&](const pare::train_progress& p) { la.push_back(p.loss); });
  REQUIRE(la.size() == 6);
  // Interrupted: 3 steps writing a checkpoint, then everything rebuilt and loaded.
  std::vector<double> lb;
  {
    auto pb = pare::llama_params<float>::from_model(m);
    pare::parameter_set psb(pb, pare::all_tensors());
    pare::adamw optb;
    pare::window_sampler db(trainer_test::train_tokens(4000), 64, 11);
    auto first = full_opts;
    first.steps = 3;
    first.checkpoint_path = path;
    pare::train(psb, optb, db, first, pare::cross_entropy_loss(), [&](const pare::train_progress& p) { lb.push_back(p.loss); });
  }
  auto pc = pare::llama_params<float>::from_model(m);
  pare::parameter_set psc(pc, pare::all_tensors());
  pare::adamw optc;
  pare::window_sampler dc(trainer_test::train_tokens(4000), 64, 12345);  // the checkpoint restores seed 11
  pare::load_checkpoint(path, psc, optc, dc);
  CHECK(optc.steps() == 3);
  std::vector<std::size_t> steps_seen;
  pare::train(psc, optc, dc, full_opts, pare::cross_entropy_loss(), [&](const pare::train_progress& p) {
    lb.push_back(p.loss);
    steps_seen.push_back(p.step);
  });
  CHECK(steps_seen == std::vector<std::size_t>{4, 5, 6});
  REQUIRE(lb.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) CHECK(lb[i] == la[i]);
  CHECK(train_core_test::differing_tensors(pa, pc) == 0);
  auto sa = opta.state(), sc = optc.state();
  REQUIRE(sa.size() == sc.size());
  for (std::size_t i = 0; i < sa.size(); ++i) CHECK(*sa[i].second == *sc[i].second);
  CHECK(da.cursor() == dc.cursor());
  std::remove(path.c_str());
}

TEST_CASE("train: progress reports steps, the schedule's rates, tokens/s and ETA; bad options are refused") {
  auto p = pare::llama_params<float>::from_model(train_core_test::stories260k());
  pare::parameter_set ps(p, pare::name_contains("ffn_norm"));
  pare::sgd_options so;
  so.momentum = 0.9;
  pare::sgd opt(so);
  pare::window_sampler data(trainer_test::train_tokens(2000), 32, 1);
  auto o = trainer_test::small_run(5);
  o.accumulation = 1;
  std::vector<pare::train_progress> seen;
  const auto r = pare::train(ps, opt, data, o, pare::cross_entropy_loss(), [&](const pare::train_progress& pr) { seen.push_back(pr); });
  REQUIRE(seen.size() == 5);
  CHECK(r.steps_run == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(seen[i].step == i + 1);
    CHECK(seen[i].steps == 5);
    CHECK(seen[i].lr == o.schedule.at(i));
    CHECK(std::isfinite(seen[i].loss));
    CHECK(seen[i].grad_norm > 0);
    CHECK(seen[i].tokens_per_s > 0);
    CHECK(seen[i].eta_s >= 0);
  }
  CHECK(seen[4].eta_s == 0);
  CHECK(data.cursor().index == 5);  // one window per step
  // Nothing left to do: a finished run returns at once.
  CHECK(pare::train(ps, opt, data, o, pare::cross_entropy_loss()).steps_run == 0);
  auto bad = o;
  bad.steps = 10;
  bad.accumulation = 0;
  CHECK_THROWS_AS(pare::train(ps, opt, data, bad, pare::cross_entropy_loss()), pare::argument_error);
  bad.accumulation = 1;
  bad.max_grad_norm = -1;
  CHECK_THROWS_AS(pare::train(ps, opt, data, bad, pare::cross_entropy_loss()), pare::argument_error);
  CHECK(opt.steps() == 5);
}

TEST_CASE("AdamW full-weight training on val_tail windows lowers the loss on held-out val_tail windows") {
  const pare::llama_model m = train_core_test::stories260k();
  auto p = pare::llama_params<float>::from_model(m);
  const std::size_t train_n = 16000;  // tokens trained on; held-out windows start after them
  const auto held = trainer_test::held_out(train_n + 1000, 12, 128);
  const double before = trainer_test::mean_loss(p, held);
  pare::parameter_set ps(p, pare::all_tensors());
  pare::adamw_options ao;
  ao.weight_decay = 0.01;
  pare::adamw opt(ao);
  pare::window_sampler data(trainer_test::train_tokens(train_n), 128, 3);
  pare::train_options o;
  o.steps = 30;
  o.accumulation = 2;
  o.max_grad_norm = 1.0;
  o.schedule.peak = 2e-4;  // fine-tuning a trained model: 1e-3 overfits the 16k tokens (held-out loss rises)
  o.schedule.floor = 2e-5;
  o.schedule.warmup = 3;
  o.schedule.total = 30;
  const auto r = pare::train(ps, opt, data, o, pare::cross_entropy_loss());
  const double after = trainer_test::mean_loss(p, held);
  INFO("held-out loss " << before << " -> " << after << "; training loss " << r.first_loss << " -> " << r.last_loss
                        << "; " << r.tokens_per_s << " tokens/s");
  CHECK(after < before);

  // Written back into a llama_model, the session's perplexity on the held-out windows is
  // exp of the training forward's mean loss (two independent forwards).
  pare::llama_model mt = train_core_test::stories260k();
  pare::write_params(p, mt);
  std::vector<std::int32_t> stream;
  for (const auto& w : held) stream.insert(stream.end(), w.begin(), w.end());
  const pare::perplexity_result pr = pare::perplexity(mt, stream, {}, 129);
  REQUIRE(pr.windows == held.size());
  CHECK(pr.nll / double(pr.predicted) == Approx(after).epsilon(1e-5));
  const pare::perplexity_result p0 = pare::perplexity(m, stream, {}, 129);
  CHECK(p0.nll / double(p0.predicted) == Approx(before).epsilon(1e-5));
}

TEST_CASE("write_params refuses a model of other shapes and leaves it unchanged") {
  const auto p = pare::llama_params<float>::from_model(train_core_test::stories260k());
  pare::llama_model m = train_core_test::stories260k();
  std::vector<std::size_t> keep;
  for (std::size_t j = 0; j < 100; ++j) keep.push_back(j);
  pare::shrink_ffn(m, 3, keep);
  m.token_embd.data()[7] = 123.0f;
  CHECK_THROWS_AS(pare::write_params(p, m), pare::shape_error);
  CHECK(m.token_embd.data()[7] == 123.0f);
  CHECK(m.blocks[3].w1->out_features() == 100);
}

TEST_CASE("write_params puts every tensor into the model: from_model reads back the same bits, the session evaluates them") {
  const pare::llama_model m = train_core_test::stories260k();
  auto p = pare::llama_params<float>::from_model(m);
  pare::splitmix64 r(23);
  for (auto& [name, v] : p.named())
    for (float& x : *v) x *= float(0.8 + 0.4 * r.uniform());  // every tensor changed by up to ±20 %
  pare::llama_model mt = train_core_test::stories260k();
  pare::write_params(p, mt);
  auto back = pare::llama_params<float>::from_model(mt);
  CHECK(train_core_test::differing_tensors(back, p) == 0);
  const auto held = trainer_test::held_out(30000, 2, 64);
  std::vector<std::int32_t> stream;
  for (const auto& w : held) stream.insert(stream.end(), w.begin(), w.end());
  const pare::perplexity_result pr = pare::perplexity(mt, stream, {}, 65);
  CHECK(pr.nll / double(pr.predicted) == Approx(trainer_test::mean_loss(p, held)).epsilon(1e-5));
}
