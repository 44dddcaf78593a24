// plot: pare-compress --plot: perplexity against bits per weight as a self-contained SVG, with the Pareto front marked.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "results.hpp"

namespace pare_compress {

/// A point of the trade-off: x bits per weight, y perplexity (both: lower is better).
struct xy {
  double x = 0, y = 0;
};

/// The indices of the points no other point dominates (another point with x <= and y <=,
/// one of them strictly less), ordered by increasing x (then y, then index). Equal points
/// do not dominate each other: duplicates on the front are all kept. Values must not be NaN.
std::vector<std::size_t> pareto_front(const std::vector<xy>& points);

/// The SVG document (with its XML declaration) of `e`: one labelled circle per row with a
/// finite bits/weight and a finite positive perplexity, rows without them listed in a
/// comment; the first row's perplexity (fp32) as a dashed horizontal line; the Pareto front
/// in its own colour, joined by a polyline; a legend; numbered axis ticks, perplexity on a
/// log scale when its range spans more than 3x (the axis label says which); the title
/// names the model file and the predicted-token count. Text is XML-escaped.
std::string plot_svg(const evaluation& e);

/// `s` as XML character data or attribute value: & < > " ' as entities, control characters
/// XML 1.0 forbids and invalid UTF-8 as U+FFFD.
std::string xml_escape(const std::string& s);

}  // namespace pare_compress
