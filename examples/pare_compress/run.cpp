// run: pare-compress's long work: models built, steps applied, perplexity and speed measured, files converted.
#include "run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "plot.hpp"
#include "progress.hpp"
#include "pare/io/atomic_file.hpp"
#include "pare/io/convert/gguf_quantize.hpp"
#include "pare/io/convert/safetensors_quantize.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare/pipeline/structured_prune.hpp"

namespace pare_compress {
namespace {

/// How much work each phase is, in units of about one token through the forward pass, so
/// the progress line can say how far the run is and how long is left. Perplexity of the
/// evaluated text dominates; steps cost a window plus, when they calibrate, passes over the
/// calibration text (one per block for block scores). Estimates, corrected by the
/// measured rate as the run goes.
struct work_estimate {
  double eval = 0, calib = 0, window = 0, blocks = 0;

  explicit work_estimate(const plan& p)
      : eval(double(p.tokens.size())),
        calib(double(p.calib_tokens.size())),
        window(double(std::min(p.window, p.tokens.size()))),
        blocks(double(std::max<std::size_t>(p.n_layers, 1))) {}

  /// Prefill of one window three times, 16 + 128 decode steps (slower per token).
  double speed() const { return 3 * window + 4 * 144; }
  double step(const pare::recipe_step& st) const {
    if (!st.needs_calibration()) return window;
    if (st.kind == pare::recipe_step::gptq || st.kind == pare::recipe_step::gptq_ggml || st.kind == pare::recipe_step::awq ||
        st.kind == pare::recipe_step::sparsegpt)
      return window + calib * (st.fp_target ? 10 : 5);  // block-sequential: five block passes per block (x2 with a reference)
    if (st.kind == pare::recipe_step::smoothquant) return window + calib;  // one capture pass
    if (st.kind == pare::recipe_step::mixed) return window + calib * 5 + calib * 0.125 * 3 * blocks;  // sensitivities + sequential
    const bool per_block = st.kind != pare::recipe_step::quant && st.kind != pare::recipe_step::ggml &&
                           st.kind != pare::recipe_step::kmeans && st.kind != pare::recipe_step::lowrank &&
                           st.kind != pare::recipe_step::masked && st.kind != pare::recipe_step::slice;
    return window + calib * (per_block ? blocks : 2);  // block removal scores every block
  }
  double row(const std::vector<pare::recipe_step>& steps) const {
    double u = eval + speed();
    for (const pare::recipe_step& st : steps) u += step(st);
    return u;
  }
  double sensitivity() const { return blocks * eval + blocks * calib + 3 * calib; }
  double total(const plan& p) const {
    double u = row({});
    for (const auto& steps : p.steps) u += row(steps);
    return u + (p.sensitivity ? sensitivity() : 0);
  }
};

pare::llama_model fresh_model(const plan& p) {
  return p.gguf ? pare::llama_model_from_gguf(*p.gguf) : pare::llama_model::from_llama2c(*p.checkpoint);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Prefill: one protocol window as a batch; decode: up to 128 single tokens after a prompt
/// of the first 16 tokens (fewer if the text has fewer: only `toks` is ever read).
void measure_speed(const pare::llama_model& m, const std::vector<std::int32_t>& toks, std::size_t window, row& r) {
  pare::llama_session s(m);
  std::vector<float> logits;
  const std::size_t n = std::min({toks.size(), window, static_cast<std::size_t>(m.config.seq_len)});
  const std::size_t prompt = std::min<std::size_t>(16, n);
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    s.reset();
    const auto t0 = std::chrono::steady_clock::now();
    s.forward(toks.data(), n, logits);
    best = std::min(best, seconds_since(t0));
  }
  r.prefill_tps = double(n) / best;
  s.reset();
  s.forward(toks.data(), prompt, logits);
  const std::size_t steps = std::min<std::size_t>(128, static_cast<std::size_t>(m.config.seq_len) - prompt);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < steps; ++i) {
    const std::int32_t t = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    s.forward(&t, 1, logits);
  }
  r.decode_tps = double(steps) / seconds_since(t0);
}

/// Size, perplexity and speed of model m as row `name`.
row measure(const std::string& name, const pare::llama_model& m, std::vector<change> changes, const plan& p,
            const work_estimate& w, progress_meter& meter) {
  row r;
  r.recipe = name;
  r.changes = std::move(changes);
  r.bytes = m.storage_bytes();
  r.weights = m.weight_count();
  r.bits_per_weight = 8.0 * double(r.bytes) / double(r.weights);
  meter.begin_phase("perplexity", w.eval);
  const pare::perplexity_result ppl = pare::perplexity(m, p.tokens, meter.callback(), p.window);
  meter.end_phase();
  r.ppl = ppl.ppl;
  r.predicted = ppl.predicted;
  r.windows = ppl.windows;
  meter.begin_phase("speed", w.speed());
  measure_speed(m, p.tokens, p.window, r);
  meter.end_phase();
  return r;
}

std::vector<change> changes_of(const std::vector<pare::layer_change>& in) {
  std::vector<change> out;
  for (const pare::layer_change& c : in) out.push_back({c.name, c.format, c.backend, c.fallback, c.reason});
  return out;
}

/// The recipe's steps applied in order to m; the layers they changed.
std::vector<change> apply_recipe(const plan& p, std::size_t i, pare::llama_model& m, pare::calibration_set& cal,
                                 const work_estimate& w, progress_meter& meter) {
  const auto select = p.selection();
  std::vector<pare::layer_change> changes;
  for (const pare::recipe_step& st : p.steps[i]) {
    meter.begin_phase(p.steps[i].size() == 1 ? std::string("applying") : "step " + st.text, w.step(st));
    const auto ch = pare::apply_recipe_step(st, m, select, cal);
    changes.insert(changes.end(), ch.begin(), ch.end());
    meter.end_phase();
  }
  return changes_of(changes);
}

void write_out(const plan& p, const pare::llama_model& m, const std::string& name, progress_meter& meter) {
  meter.begin_phase("writing " + p.out, 0);
  pare::write_model_gguf(m, *p.tok, p.out);
  meter.end_phase();
  meter.note("[" + name + "] wrote " + p.out + " (" + std::to_string(std::filesystem::file_size(p.out)) + " bytes)");
}

/// --plot: the chart of the rows through a temporary renamed into place (a failure leaves no file).
void write_plot(const plan& p, const evaluation& e, progress_meter& meter) {
  const std::string svg = plot_svg(e);
  pare::atomic_file f(p.plot);
  f.write(svg.data(), svg.size());
  f.commit();
  meter.note("wrote " + p.plot + " (perplexity against bits/weight, " + std::to_string(svg.size()) + " bytes)");
}

std::string row_summary(const row& r, double base) {
  char b[160];
  std::snprintf(b, sizeof b, "%s: %.3f bits/weight, perplexity %.4f (%+.2f %%)", r.recipe.c_str(), r.bits_per_weight,
                r.ppl, 100.0 * (r.ppl / base - 1.0));
  return b;
}

/// Each block's removal on the evaluated and the calibration text, its Taylor score and magnitude.
std::vector<block_row> block_sensitivity(const plan& p, const pare::calibration_set& cal, const work_estimate& w,
                                         progress_meter& meter) {
  pare::llama_model m = fresh_model(p);
  const std::size_t blocks = m.blocks.size();
  std::size_t calls = 0;  // perplexity runs so far: one per removed block
  meter.begin_phase("perplexity without each block", blocks * w.eval);
  const auto pe = pare::ppl_drop_scores(m, [&](const pare::llama_model& x) {
    const auto on = [&](std::size_t done, std::size_t total) {
      meter.advance(calls * total + done, blocks * total, "block " + std::to_string(calls));
    };
    const double ppl = pare::perplexity(x, p.tokens, on, p.window).ppl;
    ++calls;
    return ppl;
  });
  meter.end_phase();
  meter.begin_phase("calibration perplexity without each block", blocks * w.calib);
  const auto pc = pare::ppl_drop_scores(m, [&](const pare::llama_model& x) { return cal.ppl(x); });
  meter.end_phase();
  meter.begin_phase("Taylor scores", 3 * w.calib);
  const auto ts = pare::taylor_block_scores(m, cal.windows(m));
  meter.end_phase();
  const auto ms = pare::magnitude_block_scores(m);
  std::vector<block_row> out;
  for (std::size_t b = 0; b < blocks; ++b) out.push_back({pe[b], pc[b], ts[b], ms[b]});
  return out;
}

}  // namespace

evaluation run_evaluation(const plan& p) {
  const work_estimate w(p);
  progress_meter meter(w.total(p), stderr_is_terminal());
  pare::calibration_set cal;
  cal.window = p.calib_window;
  cal.tokens = p.calib_tokens;
  if (!cal.tokens.empty())
    meter.note("[calibration] " + std::to_string(cal.tokens.size()) + " tokens of " + p.calib_path + " (windows of " +
               std::to_string(cal.window) + ")");

  evaluation e;
  e.model_path = p.model_path;
  e.text_path = p.text_path;
  e.window = p.window;
  e.calib_tokens = cal.tokens.size();
  const std::size_t rows = 1 + p.recipes.size() + (p.sensitivity ? 1 : 0);
  {
    meter.begin_row(1, rows, "fp32", w.row({}));
    const pare::llama_model m = fresh_model(p);
    e.rows.push_back(measure("fp32", m, {}, p, w, meter));
    meter.end_row(row_summary(e.rows.back(), e.rows.front().ppl));
  }
  for (std::size_t i = 0; i < p.recipes.size(); ++i) {
    meter.begin_row(i + 2, rows, p.recipes[i], w.row(p.steps[i]));
    pare::llama_model m = fresh_model(p);
    std::vector<change> changes = apply_recipe(p, i, m, cal, w, meter);
    e.rows.push_back(measure(p.recipes[i], m, std::move(changes), p, w, meter));
    if (!p.out.empty()) write_out(p, m, p.recipes[i], meter);
    meter.end_row(row_summary(e.rows.back(), e.rows.front().ppl));
  }
  if (!p.out.empty() && p.recipes.empty()) write_out(p, fresh_model(p), "fp32", meter);
  if (p.sensitivity) {
    meter.begin_row(rows, rows, "block sensitivity", w.sensitivity());
    e.blocks = block_sensitivity(p, cal, w, meter);
    meter.end_row("block sensitivity of " + std::to_string(e.blocks.size()) + " blocks");
  }
  if (!p.plot.empty()) write_plot(p, e, meter);
  meter.finish();
  return e;
}

conversion run_gguf_file(const plan& p) {
  const pare::gguf_file& in = *p.gguf;
  // Progress in tensor elements: the elements of the tensors before the one being converted.
  std::map<std::string, std::uint64_t> before;
  std::uint64_t total = 0;
  for (const pare::gguf_tensor& t : in.tensors()) {
    before[t.name] = total;
    total += t.elements();
  }
  progress_meter meter(double(total), stderr_is_terminal());
  meter.begin_row(1, 1, p.recipes[0] + " -> " + p.out, double(total));
  meter.begin_phase("converting", double(total));
  pare::ggml::gguf_quantize_options qo;
  qo.target = p.steps[0][0].ggml_spec.type;
  qo.select = p.selection();
  qo.progress = [&](const std::string& name) {
    meter.advance(static_cast<std::size_t>(before[name]), static_cast<std::size_t>(total), name);
  };
  const auto changes = pare::ggml::quantize_gguf(in, p.out, qo);
  meter.end_phase();
  meter.finish();
  conversion c;
  c.model_path = p.model_path;
  c.out_path = p.out;
  c.recipe = p.recipes[0];
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const auto& x = changes[i];
    c.tensors.push_back({x.name, x.from, x.to, x.bytes_in, x.bytes_out, in.tensors()[i].elements(), x.converted,
                         x.fallback, x.reason});
  }
  return c;
}

conversion run_safetensors_file(const plan& p) {
  std::function<bool(const std::string&)> select;  // empty: the converter's default selection
  if (!p.include.empty() || !p.exclude.empty()) select = p.selection();
  std::fprintf(stderr, "[%s] converting %s to %s\n", p.recipes[0].c_str(), p.model_path.c_str(), p.out.c_str());
  const auto changes = pare::quantize_safetensors(*p.safetensors, p.out, p.steps[0][0].cfg, select);
  conversion c;
  c.format = conversion::kind::safetensors;
  c.model_path = p.model_path;
  c.out_path = p.out;
  c.recipe = p.recipes[0];
  for (const auto& x : changes)
    c.tensors.push_back({x.name, "", x.format, x.bytes_in, x.bytes_out, 0, x.converted, x.fallback, x.reason});
  return c;
}

}  // namespace pare_compress
