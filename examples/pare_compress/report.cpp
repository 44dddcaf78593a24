// report: pare-compress's stdout report, markdown (printf, the table format tests and users read) or JSON (nlohmann-json).
#include "report.hpp"

#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pare_compress {
namespace {

double delta_percent(double ppl, double base) { return 100.0 * (ppl / base - 1.0); }

/// A layer's format chosen by a mixed: step (listed in its own section, not as a fallback or change).
bool mixed_choice(const change& c) { return c.reason.find("mixed precision, budget ") != std::string::npos; }

/// One line per (recipe, fallback format, reason) with the tensors it concerns.
void print_fallbacks(const std::vector<row>& rows) {
  bool any = false;
  for (const row& r : rows) {
    std::vector<const change*> done;
    for (const change& c : r.changes) {
      if (!c.fallback || mixed_choice(c)) continue;
      bool seen = false;
      for (const change* d : done) seen = seen || (d->format == c.format && d->reason == c.reason);
      if (seen) continue;
      done.push_back(&c);
      std::string names;
      std::size_t count = 0;
      for (const change& e : r.changes)
        if (e.fallback && !mixed_choice(e) && e.format == c.format && e.reason == c.reason) names += (count++ ? ", " : "") + e.name;
      if (!any) std::printf("\nfallbacks (tensors the recipe's format cannot take):\n");
      any = true;
      std::printf("  %s: %zu tensor%s -> %s (%s): %s\n", r.recipe.c_str(), count, count == 1 ? "" : "s",
                  c.format.c_str(), c.reason.c_str(), names.c_str());
    }
  }
}

void print_structural_changes(const std::vector<row>& rows) {
  bool any = false;
  for (const row& r : rows) {
    std::string what;
    for (const change& c : r.changes)
      if (!c.fallback && !c.reason.empty() && !mixed_choice(c)) what += (what.empty() ? "" : "; ") + c.name + " " + c.format;
    if (what.empty()) continue;
    if (!any) std::printf("\nstructural changes:\n");
    any = true;
    std::printf("  %s: %s\n", r.recipe.c_str(), what.c_str());
  }
}

/// mixed: steps: the achieved bits/weight against the budget, then each layer's format and why.
void print_mixed_precision(const std::vector<row>& rows) {
  for (const row& r : rows) {
    bool any = false;
    for (const change& c : r.changes) {
      if (!mixed_choice(c)) continue;
      if (!any) {
        const std::size_t at = r.recipe.find("mixed:");
        const double budget = at == std::string::npos ? 0.0 : std::strtod(r.recipe.c_str() + at + 6, nullptr);
        std::printf("\nmixed precision, %s: %.4f bits/weight stored, budget %g; each layer's format:\n\n", r.recipe.c_str(),
                    r.bits_per_weight, budget);
        std::printf("| layer | format | choice |\n|---|---|---|\n");
        any = true;
      }
      std::printf("| %s | %s | %s |\n", c.name.c_str(), c.format.c_str(), c.reason.c_str());
    }
  }
}

void print_legend(const std::vector<row>& rows) {
  std::printf("\nweights: the model's weights, a linear layer counting out x in whatever its storage (pruned\n"
              "blocks, FFN neurons and sliced widths remove weights; factorized, shared and quantized layers\n"
              "do not). bits/weight = 8 x bytes / weights: every stored byte (embedding, norms, scales, zero\n"
              "points, residual linears); the tied classifier is stored once. Linear layers run on: ");
  std::string backends;
  for (const row& r : rows)
    for (const change& c : r.changes)
      if (backends.find(c.backend) == std::string::npos) backends += (backends.empty() ? "" : ", ") + c.backend;
  std::printf("%s.\n", backends.empty() ? "f32" : backends.c_str());
}

void print_block_sensitivity(const evaluation& e) {
  if (e.blocks.empty()) return;
  const double base = e.rows.front().ppl;
  std::printf(
      "\nblock sensitivity (perplexity with the block removed; Taylor = Σ|w·∂L/∂w| and magnitude = Σ|w|\n"
      "over the block; calibration text: %zu tokens; Taylor+ keeps the first and last block):\n\n",
      e.calib_tokens);
  std::printf("| block | PPL without (eval) | ΔPPL %% | PPL without (calib) | Taylor | magnitude |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  for (std::size_t b = 0; b < e.blocks.size(); ++b) {
    const block_row& k = e.blocks[b];
    std::printf("| %zu | %.4f | %+.1f | %.4f | %.5f | %.1f |\n", b, k.ppl_eval, delta_percent(k.ppl_eval, base),
                k.ppl_calib, k.taylor, k.magnitude);
  }
}

}  // namespace

void print_markdown(const evaluation& e) {
  const row& fp32 = e.rows.front();
  std::printf("model %s, text %s: %zu predicted tokens in %zu windows of %zu\n\n", e.model_path.c_str(),
              e.text_path.c_str(), fp32.predicted, fp32.windows, e.window);
  std::printf("| recipe | bits/weight | bytes | weights | perplexity | ΔPPL %% | prefill tok/s | decode tok/s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const row& r : e.rows)
    std::printf("| %s | %.3f | %zu | %zu | %.4f | %+.2f | %.0f | %.0f |\n", r.recipe.c_str(), r.bits_per_weight,
                r.bytes, r.weights, r.ppl, delta_percent(r.ppl, fp32.ppl), r.prefill_tps, r.decode_tps);
  print_fallbacks(e.rows);
  print_structural_changes(e.rows);
  print_mixed_precision(e.rows);
  print_legend(e.rows);
  print_block_sensitivity(e);
}

void print_json(const evaluation& e, std::ostream& out) {
  using json = nlohmann::ordered_json;  // keys in the order written
  const double base = e.rows.front().ppl;
  json rows = json::array();
  for (const row& r : e.rows) {
    json fallbacks = json::array();
    for (const change& c : r.changes)
      if (c.fallback) fallbacks.push_back({{"tensor", c.name}, {"format", c.format}, {"reason", c.reason}});
    rows.push_back({{"recipe", r.recipe},
                    {"bits_per_weight", r.bits_per_weight},
                    {"bytes", r.bytes},
                    {"weights", r.weights},
                    {"perplexity", r.ppl},
                    {"delta_ppl_percent", delta_percent(r.ppl, base)},
                    {"prefill_tokens_per_s", r.prefill_tps},
                    {"decode_tokens_per_s", r.decode_tps},
                    {"fallbacks", std::move(fallbacks)}});
  }
  json blocks = json::array();
  for (std::size_t b = 0; b < e.blocks.size(); ++b)
    blocks.push_back({{"block", b},
                      {"ppl_without", e.blocks[b].ppl_eval},
                      {"calib_ppl_without", e.blocks[b].ppl_calib},
                      {"taylor", e.blocks[b].taylor},
                      {"magnitude", e.blocks[b].magnitude}});
  const json doc = {{"model", e.model_path},
                    {"text", e.text_path},
                    {"predicted_tokens", e.rows.front().predicted},
                    {"rows", std::move(rows)},
                    {"block_sensitivity", std::move(blocks)}};
  // Paths need not be UTF-8: invalid bytes become U+FFFD instead of an exception.
  out << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

void print_conversion(const conversion& c) {
  std::uint64_t before = 0, after = 0, elements = 0;
  std::size_t converted = 0;
  for (const tensor_change& t : c.tensors) {
    before += t.bytes_in;
    after += t.bytes_out;
    elements += t.elements;
    converted += t.converted;
  }
  const auto ull = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  if (c.format == conversion::kind::safetensors) {
    std::printf("%s -> %s (%s, compressed-tensors pack-quantized): %zu of %zu tensors converted, %llu -> %llu bytes\n",
                c.model_path.c_str(), c.out_path.c_str(), c.recipe.c_str(), converted, c.tensors.size(), ull(before),
                ull(after));
    for (const tensor_change& t : c.tensors)
      if (t.fallback) std::printf("  fallback %s: %s (%s)\n", t.name.c_str(), t.to.c_str(), t.reason.c_str());
    return;
  }
  std::printf("%s -> %s (%s): %zu of %zu tensors converted, %llu -> %llu bytes, ", c.model_path.c_str(),
              c.out_path.c_str(), c.recipe.c_str(), converted, c.tensors.size(), ull(before), ull(after));
  if (elements == 0)
    std::printf("no weights (the file has no tensor elements, so no bits/weight)\n");
  else
    std::printf("%.3f -> %.3f bits/weight\n", 8.0 * double(before) / double(elements),
                8.0 * double(after) / double(elements));
  for (const tensor_change& t : c.tensors)
    if (t.fallback)
      std::printf("  fallback %s: %s -> %s (%s)\n", t.name.c_str(), t.from.c_str(), t.to.c_str(), t.reason.c_str());
}

}  // namespace pare_compress
