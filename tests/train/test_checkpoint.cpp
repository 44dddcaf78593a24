// Checkpoints: a round trip restores parameters, optimizer state and step, data seed and cursor bit for bit; truncated, corrupted or mismatched files raise errors and change nothing.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include "pare/train/adamw.hpp"
#include "pare/train/checkpoint.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/sgd.hpp"
#include "pare/train/window_sampler.hpp"
#include "train_core_test_support.hpp"

namespace checkpoint_test {

inline std::string temp_path(const std::string& stem) { return "/tmp/pare_h13_" + stem + ".ckpt"; }

inline std::vector<char> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}
inline void spit(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::int32_t> tokens() {
  std::vector<std::int32_t> t(200);
  std::iota(t.begin(), t.end(), 0);
  return t;
}

/// A training state with distinct values: params, AdamW after `steps` random-gradient steps, a sampler moved on.
struct state {
  pare::llama_params<float> p;
  pare::parameter_set ps;
  pare::adamw opt;
  pare::window_sampler data;
  state(std::uint64_t seed, std::size_t steps, std::size_t dim = 5)
      : p(train_core_test::tiny_params(7, dim, seed)), ps(p, pare::all_tensors()), data(tokens(), 9, seed) {
    pare::splitmix64 r(seed);
    for (std::size_t s = 0; s < steps; ++s) {
      for (std::size_t i = 0; i < ps.size(); ++i)
        for (float& g : ps.grad(i)) g = float(r.uniform() - 0.5);
      opt.step(ps, 0.01);
      data.next();
    }
  }
  /// Everything a load may change, as bytes.
  std::vector<std::vector<float>> snapshot() {
    std::vector<std::vector<float>> s;
    for (auto& [n, v] : p.named()) s.push_back(*v);
    for (auto& [n, v] : opt.state()) s.push_back(*v);
    s.push_back({float(opt.steps()), float(data.cursor().epoch), float(data.cursor().index), float(data.seed())});
    return s;
  }
};

}  // namespace checkpoint_test

TEST_CASE("checkpoint round trip restores parameters, optimizer state and step, data seed and cursor exactly") {
  const std::string path = checkpoint_test::temp_path("roundtrip");
  checkpoint_test::state a(1, 3);
  for (int i = 0; i < 25; ++i) a.data.next();  // into epoch 1
  pare::save_checkpoint(path, a.ps, a.opt, a.data);
  checkpoint_test::state b(2, 1);
  REQUIRE(a.snapshot() != b.snapshot());
  pare::load_checkpoint(path, b.ps, b.opt, b.data);
  CHECK(train_core_test::differing_tensors(a.p, b.p) == 0);
  CHECK(b.opt.steps() == 3);
  CHECK(b.data.cursor() == a.data.cursor());
  CHECK(b.data.seed() == 1);
  CHECK(a.snapshot() == b.snapshot());
  // Both continue identically: same next windows, same next update.
  for (int i = 0; i < 30; ++i) CHECK(a.data.next() == b.data.next());
  for (std::size_t i = 0; i < a.ps.size(); ++i)
    for (std::size_t k = 0; k < a.ps.grad(i).size(); ++k) a.ps.grad(i)[k] = b.ps.grad(i)[k] = float(k % 5) - 2;
  a.opt.step(a.ps, 0.02);
  b.opt.step(b.ps, 0.02);
  CHECK(train_core_test::differing_tensors(a.p, b.p) == 0);
  std::remove(path.c_str());
}

TEST_CASE("bad checkpoints (missing, truncated, wrong magic/version, corrupted, mismatched) raise errors and change nothing") {
  const std::string path = checkpoint_test::temp_path("source"), bad = checkpoint_test::temp_path("bad");
  checkpoint_test::state a(1, 3);
  pare::save_checkpoint(path, a.ps, a.opt, a.data);
  const std::vector<char> good = checkpoint_test::slurp(path);
  REQUIRE(good.size() > 100);
  checkpoint_test::state target(5, 2);
  const auto before = target.snapshot();
  auto expect_unchanged = [&] { CHECK(target.snapshot() == before); };

  CHECK_THROWS_AS(pare::load_checkpoint("/tmp/pare_h13_no_such_file.ckpt", target.ps, target.opt, target.data), pare::io_error);
  expect_unchanged();
  for (std::size_t len : {std::size_t(0), std::size_t(5), std::size_t(20), std::size_t(30), good.size() / 2, good.size() - 9,
                          good.size() - 1}) {
    checkpoint_test::spit(bad, std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)));
    INFO("truncated to " << len << " bytes");
    CHECK_THROWS_AS(pare::load_checkpoint(bad, target.ps, target.opt, target.data), pare::format_error);
    expect_unchanged();
  }
  auto with = [&](std::size_t at, char value) {
    std::vector<char> b = good;
    b[at] = value;
    checkpoint_test::spit(bad, b);
  };
  with(0, 'X');  // magic
  CHECK_THROWS_WITH(pare::load_checkpoint(bad, target.ps, target.opt, target.data), Catch::Contains("magic"));
  with(8, 2);  // version 2
  CHECK_THROWS_WITH(pare::load_checkpoint(bad, target.ps, target.opt, target.data), Catch::Contains("version"));
  with(good.size() / 2, static_cast<char>(good[good.size() / 2] ^ 0x10));  // a flipped bit in the tensor data
  CHECK_THROWS_WITH(pare::load_checkpoint(bad, target.ps, target.opt, target.data), Catch::Contains("checksum"));
  {
    std::vector<char> b = good;
    b.push_back(0);
    checkpoint_test::spit(bad, b);
    CHECK_THROWS_AS(pare::load_checkpoint(bad, target.ps, target.opt, target.data), pare::format_error);
  }
  expect_unchanged();

  // Mismatches with the objects to restore into.
  checkpoint_test::state wide(5, 2, 6);  // dim 6: other tensor sizes
  const auto wide_before = wide.snapshot();
  CHECK_THROWS_AS(pare::load_checkpoint(path, wide.ps, wide.opt, wide.data), pare::shape_error);
  CHECK(wide.snapshot() == wide_before);
  pare::parameter_set only_norm(target.p, pare::name_contains("norm"));  // other trainable set: other state names
  CHECK_THROWS_AS(pare::load_checkpoint(path, only_norm, target.opt, target.data), pare::shape_error);
  expect_unchanged();
  pare::sgd momentum(pare::sgd_options{0.9, 0, 0, false});
  CHECK_THROWS_WITH(pare::load_checkpoint(path, target.ps, momentum, target.data), Catch::Contains("adamw"));
  CHECK(momentum.steps() == 0);
  pare::window_sampler other_data(checkpoint_test::tokens(), 10, 1);
  CHECK_THROWS_AS(pare::load_checkpoint(path, target.ps, target.opt, other_data), pare::argument_error);
  CHECK(other_data.cursor() == pare::data_cursor{});
  expect_unchanged();
  // The good file still loads into the target afterwards.
  pare::load_checkpoint(path, target.ps, target.opt, target.data);
  CHECK(target.snapshot() == a.snapshot());
  std::remove(path.c_str());
  std::remove(bad.c_str());
}

TEST_CASE("save_checkpoint replaces a checkpoint atomically and leaves no temporary behind") {
  const std::string path = checkpoint_test::temp_path("atomic");
  checkpoint_test::state a(1, 1), b(2, 2);
  pare::save_checkpoint(path, a.ps, a.opt, a.data);
  pare::save_checkpoint(path, b.ps, b.opt, b.data);
  checkpoint_test::state c(3, 0);
  pare::load_checkpoint(path, c.ps, c.opt, c.data);
  CHECK(c.snapshot() == b.snapshot());
  CHECK_THROWS_AS(pare::save_checkpoint("/nonexistent_dir_h13/x.ckpt", a.ps, a.opt, a.data), pare::io_error);
  std::remove(path.c_str());
}
