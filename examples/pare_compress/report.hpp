// report: pare-compress's output on stdout: the markdown table, the JSON report (nlohmann-json), the file-mode summary.
#pragma once

#include <iosfwd>

#include "results.hpp"

namespace pare_compress {

/// The markdown report: header line, the table of rows, fallbacks, structural changes, the
/// legend, the block-sensitivity table.
void print_markdown(const evaluation& e);

/// The same figures as one JSON document: model, text, predicted_tokens, rows (recipe,
/// bits_per_weight, bytes, weights, perplexity, delta_ppl_percent, prefill_tokens_per_s,
/// decode_tokens_per_s, fallbacks), block_sensitivity.
void print_json(const evaluation& e, std::ostream& out);

/// File mode: the summary line (tensors converted, bytes, bits/weight) and the fallbacks.
void print_conversion(const conversion& c);

}  // namespace pare_compress
