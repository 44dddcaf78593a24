// Thread safety: pare::quantize, pack + pare::matmul and the model's forward pass called from several threads at once on one shared pool, with set_enabled_isas toggling; run under ThreadSanitizer in CI.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "pare/core/isa.hpp"
#include "pare/core/parallel.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/quant/kernel_weights.hpp"
#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"

// What is safe to call concurrently (README "Threads"): every pare function on inputs
// that no thread writes and outputs that no other thread touches, on the built-in pool
// or one shared thread_pool; set_executor / set_enabled_isas at any time. A
// llama_session is one sequence's state: one thread at a time per session; several
// sessions may share one const llama_model.

namespace {
constexpr std::size_t n_out = 96, k_in = 256, m_rows = 24;

struct pool_guard {
  pare::thread_pool pool{6};
  pool_guard() { pare::set_executor(&pool); }
  ~pool_guard() {
    pare::set_executor(nullptr);
    pare::reset_enabled_isas();
  }
};

/// The whole job one caller repeats: quantize W, pack it, multiply, and run the model
/// on a few tokens; everything it returns is written by this call only.
struct job_result {
  std::vector<float> wq, y, logits;
};
job_result job(const std::vector<float>& w, const std::vector<float>& x, const pare::llama_model& model) {
  job_result r;
  const pare::matrix_view<const float> wv(w.data(), n_out, k_in);
  const pare::quantized_tensor q = pare::quantize(wv, pare::quant_config::parse("int8:g32:sym"));
  const auto deq = q.dequantize();
  r.wq.assign(deq.begin(), deq.end());
  const pare::packed_int8 packed = pare::pack_int8(q);
  r.y.resize(m_rows * n_out);
  pare::matmul(pare::matrix_view<const float>(x.data(), m_rows, k_in), packed,
               pare::matrix_view<float>(r.y.data(), m_rows, n_out));
  pare::llama_session session(model);
  const std::int32_t tokens[] = {1, 403, 407, 261, 378, 365, 300, 293};
  session.forward(tokens, 8, r.logits, true);
  return r;
}

bool close(const std::vector<float>& a, const std::vector<float>& b, double rel) {
  if (a.size() != b.size()) return false;
  double scale = 0;
  for (float v : b) scale = std::max(scale, double(std::fabs(v)));
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::fabs(double(a[i]) - double(b[i])) > rel * scale) return false;
  return true;
}
}  // namespace

TEST_CASE("concurrent callers on one pool get the single-caller results, also while ISAs are toggled") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model model = pare::llama_model::from_llama2c(ck);
  const std::vector<float> w = pare_test::gaussian(n_out * k_in, 11), x = pare_test::gaussian(m_rows * k_in, 12);
  pool_guard guard;
  const job_result ref = job(w, x, model);  // one caller, best ISA

  for (const bool toggle : {false, true}) {
    DYNAMIC_SECTION((toggle ? "with" : "without") << " set_enabled_isas toggling") {
      std::atomic<bool> stop{false};
      std::atomic<int> differ{0}, runs{0};
      std::thread toggler;
      if (toggle)
        toggler = std::thread([&] {
          for (int i = 0; !stop.load(); ++i) {
            pare::set_enabled_isas(i % 2 ? pare::isa::scalar : pare::detected_isas());
            std::this_thread::yield();
          }
        });
      std::vector<std::thread> callers;
      for (int c = 0; c < 3; ++c)
        callers.emplace_back([&] {
          for (int rep = 0; rep < 6; ++rep) {
            const job_result r = job(w, x, model);
            // Weight quantization agrees bit for bit on every ISA; the matmul's integer
            // sums do too, but its fp32 epilogue and the fp32 forward pass may round
            // differently on another ISA.
            const bool same = r.wq == ref.wq && (toggle ? close(r.y, ref.y, 1e-5) && close(r.logits, ref.logits, 1e-4)
                                                        : r.y == ref.y && r.logits == ref.logits);
            if (!same) differ.fetch_add(1);
            runs.fetch_add(1);
          }
        });
      for (auto& t : callers) t.join();
      stop.store(true);
      if (toggler.joinable()) toggler.join();
      pare::reset_enabled_isas();
      CHECK(runs.load() == 18);
      CHECK(differ.load() == 0);
    }
  }
}
