// plot: the --plot SVG (perplexity against bits per weight, Pareto front, fp32 baseline) built as a string, and the front itself.
#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace pare_compress {

std::vector<std::size_t> pareto_front(const std::vector<xy>& points) {
  std::vector<std::size_t> order(points.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const xy &p = points[a], &q = points[b];
    return p.x != q.x ? p.x < q.x : p.y != q.y ? p.y < q.y : a < b;
  });
  // Sorted by x then y, a point's possible dominators all come before it. The lowest y so
  // far (first reached at best_x) dominates it unless it is higher, or equal at the same x.
  std::vector<std::size_t> front;
  double best_y = 0, best_x = 0;
  for (std::size_t i : order) {
    const xy& p = points[i];
    const bool dominated = !front.empty() && (best_y < p.y || (best_y == p.y && best_x < p.x));
    if (dominated) continue;
    if (front.empty() || p.y < best_y) {
      best_y = p.y;
      best_x = p.x;
    }
    front.push_back(i);
  }
  return front;
}

std::string xml_escape(const std::string& s) {
  const std::string replacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ? replacement : std::string(1, char(c));
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, then continuation bytes, no overlong
    // form, no surrogate, nothing above U+10FFFF.
    const std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    unsigned long cp = n == 4 ? c & 0x07u : n == 3 ? c & 0x0Fu : c & 0x1Fu;
    bool ok = n != 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      ok = (d & 0xC0u) == 0x80u;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    const unsigned long min_cp = n == 4 ? 0x10000 : n == 3 ? 0x800 : 0x80;
    ok = ok && cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
    out += ok ? s.substr(i, n) : replacement;
    i += ok ? n : 1;
  }
  return out;
}

namespace {

// The canvas: plot area [left, right] x [top, bottom] in pixels; the legend sits above it,
// labels of points near the right edge run into the right margin.
constexpr double width = 960, height = 600, left = 80, right = 780, top = 84, bottom = 530;
const char* const row_colour = "#3b6fb6";
const char* const front_colour = "#d6452b";

std::string num(double v, int decimals = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

/// Text safe inside <!-- -->: escaped, no "--", not ending in '-'.
std::string comment_text(const std::string& s) {
  std::string out = xml_escape(s);
  for (std::size_t at; (at = out.find("--")) != std::string::npos;) out.replace(at, 2, "- -");
  if (!out.empty() && out.back() == '-') out += ' ';
  return out;
}

/// One axis: the data domain [lo, hi] in data units, log or linear, and its ticks.
struct axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;

  double t(double v) const { return log ? std::log10(v) : v; }
  /// 0 at lo, 1 at hi.
  double fraction(double v) const { return (t(v) - t(lo)) / (t(hi) - t(lo)); }
};

/// 1, 2 or 5 times a power of ten: about `target` steps over `span`.
double nice_step(double span, double target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

/// Round steps around [lo, hi] (a single value gets room around it); never below 0 for
/// data that is not.
axis linear_axis(double lo, double hi) {
  axis a;
  if (hi - lo <= 1e-9 * std::max(1.0, std::fabs(hi))) {
    const double pad = std::max(std::fabs(lo) * 0.1, 0.5);
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step(hi - lo, 6);
  const bool non_negative = lo >= 0;
  a.lo = std::floor(lo / step - 0.05) * step;
  a.hi = std::ceil(hi / step + 0.05) * step;
  if (non_negative) a.lo = std::max(a.lo, 0.0);
  for (double v = a.lo; v <= a.hi + step * 1e-6; v += step) a.ticks.push_back(std::fabs(v) < step * 1e-6 ? 0 : v);
  return a;
}

/// Log scale over [lo, hi] (positive) with a margin, `pixels` long; ticks at every digit, at
/// 1, 2 and 5, or at 1 times powers of ten (every few decades when they are many): the
/// densest whose closest labels stay 13 px apart.
axis log_axis(double lo, double hi, double pixels) {
  axis a;
  a.log = true;
  a.lo = lo / 1.12;
  a.hi = hi * 1.12;
  const double per_decade = pixels / (std::log10(a.hi) - std::log10(a.lo));
  std::vector<int> mantissas = {1};
  if (per_decade * std::log10(2.0) >= 13) mantissas = {1, 2, 5};                        // 1 to 2 the closest
  if (per_decade * std::log10(10.0 / 9) >= 13) mantissas = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // 9 to 10 the closest
  const int decades = std::max(1, int(std::ceil(13 / per_decade)));  // 1 unless decades are under 13 px
  for (int k = int(std::floor(std::log10(a.lo))); k <= int(std::ceil(std::log10(a.hi))); ++k)
    for (int m : mantissas) {
      if (k % decades != 0) continue;
      const double v = m * std::pow(10.0, k);
      if (v >= a.lo && v <= a.hi) a.ticks.push_back(v);
    }
  return a;
}

/// A linear tick's label with as many decimals as its step needs; a log tick's with %g.
std::string tick_label(const axis& a, double v) {
  if (a.log || a.ticks.size() < 2) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
  }
  const double step = a.ticks[1] - a.ticks[0];
  return num(v, std::max(0, -int(std::floor(std::log10(step) + 1e-9))));
}

bool plottable(const row& r) { return std::isfinite(r.bits_per_weight) && std::isfinite(r.ppl) && r.ppl > 0; }

std::string base_name(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// A small circle as a path (legend markers are not <circle>s: those are the rows).
std::string marker(double x, double y, const char* colour) {
  return "<path d=\"M" + num(x - 4) + "," + num(y) + " a4,4 0 1,0 8,0 a4,4 0 1,0 -8,0\" fill=\"" + colour + "\"/>\n";
}

/// A rectangle on the canvas: a label's or a point's extent.
struct box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool overlaps(const box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

/// Where a point's label goes: its text anchor, whether it sits left of the point, whether it was moved.
struct spot {
  double x = 0, y = 0;
  bool flip = false, moved = false;
};

/// Each label beside its point, top rows first: right of it or else left, on its line or else
/// moved up or down in 12 px steps (up to 96 px) to the first place that covers no other label,
/// point or box of `taken`, right of the y axis, inside the canvas (and the plot when moved);
/// right of the point, on its line, when no place is free. `chars`: each label's length.
std::vector<spot> place_labels(const std::vector<xy>& at, const std::vector<std::size_t>& chars,
                               std::vector<box> taken) {
  for (const xy& p : at) taken.push_back({p.x - 5, p.y - 5, p.x + 5, p.y + 5});
  std::vector<std::size_t> order(at.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return at[a].y != at[b].y ? at[a].y < at[b].y : at[a].x < at[b].x; });
  std::vector<spot> spots(at.size());
  for (std::size_t i : order) {
    const double w = 6.2 * double(chars[i]) + 2;
    const auto extent = [&](const spot& c) {
      return c.flip ? box{c.x - w, c.y - 9, c.x, c.y + 2} : box{c.x, c.y - 9, c.x + w, c.y + 2};
    };
    spot& sp = spots[i];
    sp = {at[i].x + 8, at[i].y + 4, false, false};
    for (int k = 0; k <= 16; ++k) {
      const double y = at[i].y + 4 + 12.0 * ((k + 1) / 2) * (k % 2 ? -1 : 1);
      for (const bool flip : {false, true}) {
        const spot c{flip ? at[i].x - 8 : at[i].x + 8, y, flip, k > 0};
        const box b = extent(c);
        const bool inside = b.x0 >= left && b.x1 <= width && (k == 0 || (b.y0 >= top && b.y1 <= bottom));
        if (inside && std::none_of(taken.begin(), taken.end(), [&](const box& t) { return t.overlaps(b); })) {
          sp = c;
          k = 16;  // found: stop both loops
          break;
        }
      }
    }
    taken.push_back(extent(sp));
  }
  return spots;
}

void draw_axes(std::string& s, const axis& xa, const axis& ya) {
  s += "<g font-size=\"12\" fill=\"#333\">\n";
  for (double v : xa.ticks) {
    const std::string x = num(left + xa.fraction(v) * (right - left));
    s += "<line x1=\"" + x + "\" y1=\"" + num(top) + "\" x2=\"" + x + "\" y2=\"" + num(bottom) +
         "\" stroke=\"#e4e4e4\"/>\n";
    s += "<text x=\"" + x + "\" y=\"" + num(bottom + 18) + "\" text-anchor=\"middle\" class=\"x-tick\">" +
         tick_label(xa, v) + "</text>\n";
  }
  for (double v : ya.ticks) {
    const double yv = bottom - ya.fraction(v) * (bottom - top);
    const std::string y = num(yv);
    s += "<line x1=\"" + num(left) + "\" y1=\"" + y + "\" x2=\"" + num(right) + "\" y2=\"" + y +
         "\" stroke=\"#e4e4e4\"/>\n";
    s += "<text x=\"" + num(left - 8) + "\" y=\"" + num(yv + 4) + "\" text-anchor=\"end\" class=\"y-tick\">" +
         tick_label(ya, v) + "</text>\n";
  }
  s += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(right - left) + "\" height=\"" +
       num(bottom - top) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += "<text x=\"" + num((left + right) / 2) + "\" y=\"" + num(bottom + 44) +
       "\" text-anchor=\"middle\" font-size=\"14\">bits per weight</text>\n";
  const std::string ly = num((top + bottom) / 2);
  s += "<text x=\"22\" y=\"" + ly + "\" transform=\"rotate(-90 22 " + ly +
       ")\" text-anchor=\"middle\" font-size=\"14\">perplexity (" + (ya.log ? "log" : "linear") + " scale)</text>\n";
  s += "</g>\n";
}

void draw_legend(std::string& s, bool baseline) {
  const double y = 56;
  const std::string front_text = "Pareto front (no other row has both fewer bits/weight and lower perplexity)";
  s += "<g font-size=\"12\" fill=\"#333\">\n";
  s += marker(left + 6, y, row_colour);
  s += "<text x=\"" + num(left + 16) + "\" y=\"" + num(y + 4) + "\">recipe</text>\n";
  const double fx = left + 90;
  s += "<line x1=\"" + num(fx - 6) + "\" y1=\"" + num(y) + "\" x2=\"" + num(fx + 18) + "\" y2=\"" + num(y) +
       "\" stroke=\"" + front_colour + "\" stroke-width=\"2\"/>\n";
  s += marker(fx + 6, y, front_colour);
  s += "<text x=\"" + num(fx + 24) + "\" y=\"" + num(y + 4) + "\">" + front_text + "</text>\n";
  if (baseline) {
    const double bx = fx + 24 + 6.8 * double(front_text.size()) + 24;  // after the front's text (12 px glyphs)
    s += "<line x1=\"" + num(bx) + "\" y1=\"" + num(y) + "\" x2=\"" + num(bx + 28) + "\" y2=\"" + num(y) +
         "\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n";
    s += "<text x=\"" + num(bx + 34) + "\" y=\"" + num(y + 4) + "\">fp32 baseline</text>\n";
  }
  s += "</g>\n";
}

}  // namespace

std::string plot_svg(const evaluation& e) {
  // The rows with both numbers, and those skipped.
  std::vector<const row*> rows;
  std::vector<xy> points;
  std::string skipped;
  for (const row& r : e.rows) {
    if (plottable(r)) {
      rows.push_back(&r);
      points.push_back({r.bits_per_weight, r.ppl});
    } else {
      skipped += (skipped.empty() ? "" : ", ") + r.recipe;
    }
  }
  const bool baseline = !e.rows.empty() && plottable(e.rows.front());
  const double base_ppl = baseline ? e.rows.front().ppl : 0;

  // The axes: every point and the baseline inside.
  double x_lo = 0, x_hi = 32, y_lo = 1, y_hi = 2;  // no row to plot: empty linear axes
  if (!points.empty()) {
    x_lo = x_hi = points[0].x;
    y_lo = y_hi = points[0].y;
  }
  for (const xy& p : points) {
    x_lo = std::min(x_lo, p.x);
    x_hi = std::max(x_hi, p.x);
    y_lo = std::min(y_lo, p.y);
    y_hi = std::max(y_hi, p.y);
  }
  const axis xa = linear_axis(x_lo, x_hi);
  const axis ya = y_hi > 3 * y_lo ? log_axis(y_lo, y_hi, bottom - top) : linear_axis(y_lo, y_hi);
  const auto px = [&](double x) { return left + xa.fraction(x) * (right - left); };
  const auto py = [&](double y) { return bottom - ya.fraction(y) * (bottom - top); };

  const std::string model = base_name(e.model_path);
  const std::size_t predicted = e.rows.empty() ? 0 : e.rows.front().predicted;
  const std::string title = "Perplexity against bits per weight: " + model + ", " + std::to_string(predicted) +
                            " predicted tokens" + (e.window ? " (windows of " + std::to_string(e.window) + ")" : "");

  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width, 0) + "\" height=\"" + num(height, 0) +
       "\" viewBox=\"0 0 " + num(width, 0) + " " + num(height, 0) + "\" font-family=\"sans-serif\">\n";
  s += "<title>" + xml_escape(title) + "</title>\n";
  s += "<!-- pare-compress chart of " + comment_text(e.model_path) + ", text " + comment_text(e.text_path) + " -->\n";
  if (!skipped.empty())
    s += "<!-- rows without bits/weight or perplexity, not plotted: " + comment_text(skipped) + " -->\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(width / 2) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">" +
       xml_escape(title) + "</text>\n";
  draw_legend(s, baseline);
  draw_axes(s, xa, ya);

  std::vector<box> taken;  // the baseline's label, which point labels avoid
  if (baseline) {
    taken.push_back({left + 6, py(base_ppl) - 14, left + 6 + 6.2 * 11 + 2, py(base_ppl) - 3});
    const std::string y = num(py(base_ppl));
    s += "<line id=\"baseline\" x1=\"" + num(left) + "\" y1=\"" + y + "\" x2=\"" + num(right) + "\" y2=\"" + y +
         "\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n";
    s += "<text x=\"" + num(left + 6) + "\" y=\"" + num(py(base_ppl) - 5) + "\" font-size=\"11\" fill=\"#555\">fp32 " +
         num(base_ppl, 4) + "</text>\n";
  }

  const std::vector<std::size_t> front = pareto_front(points);
  std::vector<bool> on_front(points.size(), false);
  std::string line;
  for (std::size_t i : front) {
    on_front[i] = true;
    line += (line.empty() ? "" : " ") + num(px(points[i].x)) + "," + num(py(points[i].y));
  }
  s += "<polyline id=\"pareto-front\" points=\"" + line + "\" fill=\"none\" stroke=\"" + front_colour +
       "\" stroke-width=\"2\"/>\n";

  std::vector<xy> at;
  std::vector<std::size_t> chars;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    at.push_back({px(points[i].x), py(points[i].y)});
    chars.push_back(rows[i]->recipe.size());
  }
  const std::vector<spot> spots = place_labels(at, chars, taken);

  s += "<g font-size=\"11\">\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double cx = at[i].x, cy = at[i].y;
    const spot& sp = spots[i];
    const std::string label = xml_escape(rows[i]->recipe);
    s += "<circle class=\"" + std::string(on_front[i] ? "front" : "row") + "\" cx=\"" + num(cx) + "\" cy=\"" + num(cy) +
         "\" r=\"" + (on_front[i] ? "5" : "4") + "\" fill=\"" + (on_front[i] ? front_colour : row_colour) +
         "\"><title>" + label + ": " + num(points[i].x, 3) + " bits/weight, perplexity " + num(points[i].y, 4) +
         "</title></circle>\n";
    if (sp.moved)  // a label moved off its point's line: a thin leader to it
      s += "<line x1=\"" + num(cx) + "\" y1=\"" + num(cy) + "\" x2=\"" + num(sp.flip ? sp.x + 2 : sp.x - 2) +
           "\" y2=\"" + num(sp.y - 4) + "\" stroke=\"#999\" stroke-width=\"0.7\"/>\n";
    s += "<text x=\"" + num(sp.x) + "\" y=\"" + num(sp.y) + "\"" + (sp.flip ? " text-anchor=\"end\"" : "") +
         " class=\"label\" fill=\"" + (on_front[i] ? front_colour : "#333") + "\">" + label + "</text>\n";
  }
  s += "</g>\n</svg>\n";
  return s;
}

}  // namespace pare_compress
