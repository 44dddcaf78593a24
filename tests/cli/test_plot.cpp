// Tests of pare-compress --plot's code: the Pareto front against a brute-force oracle, the SVG well-formed and true to its rows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "pare_compress/plot.hpp"

using pare_compress::evaluation;
using pare_compress::row;
using pare_compress::xy;

namespace {

/// The definition, pair by pair: i is on the front unless some j has x <= and y <=, one strictly.
std::vector<std::size_t> brute_force_front(const std::vector<xy>& p) {
  std::vector<std::size_t> front;
  for (std::size_t i = 0; i < p.size(); ++i) {
    bool dominated = false;
    for (std::size_t j = 0; j < p.size() && !dominated; ++j)
      dominated = j != i && p[j].x <= p[i].x && p[j].y <= p[i].y && (p[j].x < p[i].x || p[j].y < p[i].y);
    if (!dominated) front.push_back(i);
  }
  return front;
}

std::vector<std::size_t> sorted(std::vector<std::size_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// One element of the document: its name, attributes, text (entities decoded) and comments.
struct element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;
};

struct document {
  std::string error;              ///< empty: well-formed
  std::vector<element> elements;  ///< in document order
  std::vector<std::string> comments;
};

/// Character data or an attribute value with its entities decoded; "" in `error` if all is well.
std::string decode(const std::string& raw, std::string& error) {
  static const std::map<std::string, std::string> entities = {
      {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}};
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '<') error = "a raw '<' in '" + raw + "'";
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    const std::size_t semi = raw.find(';', i);
    const auto e = semi == std::string::npos ? entities.end() : entities.find(raw.substr(i + 1, semi - i - 1));
    if (e == entities.end()) {
      error = "a raw '&' in '" + raw + "'";
      return out;
    }
    out += e->second;
    i = semi;
  }
  return out;
}

/// A tiny XML check: the declaration, comments without "--", tags balanced and nested, quoted
/// attributes, entities known, one root element and nothing but blanks outside it.
document parse(const std::string& s) {
  document d;
  std::vector<std::size_t> open;  // indices into d.elements
  std::size_t roots = 0, i = 0;
  const auto fail = [&](const std::string& why) {
    d.error = why + " at byte " + std::to_string(i);
    return d;
  };
  if (s.compare(0, 5, "<?xml") == 0) i = s.find("?>") + 2;
  while (i < s.size()) {
    if (s[i] != '<') {
      const std::size_t end = std::min(s.find('<', i), s.size());
      const std::string raw = s.substr(i, end - i);
      if (open.empty() && raw.find_first_not_of(" \n\t\r") != std::string::npos) return fail("text outside the root");
      std::string why;
      const std::string text = decode(raw, why);
      if (!why.empty()) return fail(why);
      if (!open.empty()) d.elements[open.back()].text += text;
      i = end;
    } else if (s.compare(i, 4, "<!--") == 0) {
      const std::size_t end = s.find("-->", i + 4);
      if (end == std::string::npos) return fail("an unclosed comment");
      const std::string c = s.substr(i + 4, end - i - 4);
      if (c.find("--") != std::string::npos || (!c.empty() && c.back() == '-')) return fail("'--' in a comment");
      d.comments.push_back(c);
      i = end + 3;
    } else if (s.compare(i, 2, "</") == 0) {
      const std::size_t end = s.find('>', i);
      if (end == std::string::npos || open.empty()) return fail("a stray end tag");
      if (s.substr(i + 2, end - i - 2) != d.elements[open.back()].name) return fail("a mismatched end tag");
      open.pop_back();
      i = end + 1;
    } else {
      element e;
      std::size_t j = i + 1;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':')) ++j;
      e.name = s.substr(i + 1, j - i - 1);
      if (e.name.empty()) return fail("a '<' that starts no tag");
      bool self_closing = false;
      for (;;) {
        while (j < s.size() && s[j] == ' ') ++j;
        if (j >= s.size()) return fail("an unclosed tag");
        if (s.compare(j, 2, "/>") == 0) {
          self_closing = true;
          j += 2;
          break;
        }
        if (s[j] == '>') {
          ++j;
          break;
        }
        const std::size_t eq = s.find('=', j);
        if (eq == std::string::npos || eq + 1 >= s.size() || s[eq + 1] != '"') return fail("an unquoted attribute");
        const std::size_t close = s.find('"', eq + 2);
        if (close == std::string::npos) return fail("an unclosed attribute");
        const std::string name = s.substr(j, eq - j);
        if (e.attrs.count(name)) return fail("a repeated attribute " + name);
        std::string why;
        e.attrs[name] = decode(s.substr(eq + 2, close - eq - 2), why);
        if (!why.empty()) return fail(why);
        j = close + 1;
      }
      if (open.empty() && ++roots > 1) return fail("a second root element");
      d.elements.push_back(e);
      if (!self_closing) open.push_back(d.elements.size() - 1);
      i = j;
    }
  }
  if (!open.empty()) return fail("unclosed <" + d.elements[open.back()].name + ">");
  if (roots != 1 || d.elements.front().name != "svg") return fail("expected one root <svg>");
  return d;
}

std::vector<const element*> all(const document& d, const std::string& name, const std::string& cls = "") {
  std::vector<const element*> out;
  for (const element& e : d.elements)
    if (e.name == name && (cls.empty() || (e.attrs.count("class") && e.attrs.at("class") == cls))) out.push_back(&e);
  return out;
}

double attr(const element& e, const std::string& name) { return std::stod(e.attrs.at(name)); }

/// The polyline's points as (x, y) pixel pairs.
std::vector<std::pair<double, double>> polyline_points(const element& e) {
  std::vector<std::pair<double, double>> out;
  const std::string& s = e.attrs.at("points");
  for (std::size_t i = 0; i < s.size();) {
    char* end = nullptr;
    const double x = std::strtod(s.c_str() + i, &end);
    const double y = std::strtod(end + 1, &end);  // past the ','
    out.push_back({x, y});
    i = std::size_t(end - s.c_str());
    while (i < s.size() && s[i] == ' ') ++i;
  }
  return out;
}

row make_row(std::string recipe, double bits, double ppl) {
  row r;
  r.recipe = std::move(recipe);
  r.bits_per_weight = bits;
  r.ppl = ppl;
  r.predicted = 1097;
  return r;
}

evaluation make_evaluation(std::vector<row> rows) {
  evaluation e;
  e.model_path = "/data/models/stories260K.bin";
  e.text_path = "/data/text/val.txt";
  e.window = 512;
  e.rows = std::move(rows);
  return e;
}

bool plottable(const row& r) { return std::isfinite(r.bits_per_weight) && std::isfinite(r.ppl) && r.ppl > 0; }

/// Where a value sits between its axis's ticks: tick labels are at the tick's position (+4 px
/// below it for y labels); the value's pixel must be their interpolation in the axis's space.
double expected_pixel(const std::vector<const element*>& ticks, const std::string& coord, double offset, bool log,
                      double v) {
  REQUIRE(ticks.size() >= 2);
  const auto t = [&](double u) { return log ? std::log10(u) : u; };
  const double v0 = std::stod(ticks.front()->text), v1 = std::stod(ticks.back()->text);
  const double p0 = attr(*ticks.front(), coord) - offset, p1 = attr(*ticks.back(), coord) - offset;
  return p0 + (t(v) - t(v0)) / (t(v1) - t(v0)) * (p1 - p0);
}

/// Everything the chart must say about `e`, checked against the rows themselves.
void check_chart(const evaluation& e) {
  const std::string svg = pare_compress::plot_svg(e);
  INFO(svg);
  REQUIRE(svg.compare(0, 5, "<?xml") == 0);
  const document d = parse(svg);
  REQUIRE(d.error == "");

  std::vector<const row*> rows;
  std::vector<xy> points;
  for (const row& r : e.rows)
    if (plottable(r)) {
      rows.push_back(&r);
      points.push_back({r.bits_per_weight, r.ppl});
    }
  // One circle per row with both numbers, in row order, its hover title naming the recipe.
  const auto circles = all(d, "circle");
  REQUIRE(circles.size() == rows.size());
  const auto titles = all(d, "title");
  const auto labels = all(d, "text", "label");
  REQUIRE(labels.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string why;
    const std::string recipe =
        decode(pare_compress::xml_escape(rows[i]->recipe), why);  // bytes XML cannot hold replaced
    const std::string t = d.elements[std::size_t(circles[i] - d.elements.data()) + 1].text;
    CHECK(t.compare(0, recipe.size() + 2, recipe + ": ") == 0);
    CHECK(labels[i]->text == recipe);
  }

  // The front: the oracle's rows, coloured and joined in increasing x.
  const std::vector<std::size_t> front = brute_force_front(points);
  for (std::size_t i = 0; i < rows.size(); ++i)
    CHECK(circles[i]->attrs.at("class") == (std::find(front.begin(), front.end(), i) != front.end() ? "front" : "row"));
  std::vector<std::size_t> by_x = front;
  std::sort(by_x.begin(), by_x.end(), [&](std::size_t a, std::size_t b) {
    return points[a].x != points[b].x ? points[a].x < points[b].x : points[a].y < points[b].y;
  });
  const auto lines = all(d, "polyline");
  REQUIRE(lines.size() == 1);
  const auto vertices = polyline_points(*lines[0]);
  REQUIRE(vertices.size() == by_x.size());
  for (std::size_t k = 0; k < by_x.size(); ++k) {
    CHECK(vertices[k].first == attr(*circles[by_x[k]], "cx"));
    CHECK(vertices[k].second == attr(*circles[by_x[k]], "cy"));
    if (k) CHECK(vertices[k].first >= vertices[k - 1].first);
  }

  // Axes: numbered ticks in order; each circle where its numbers put it between them.
  const auto x_ticks = all(d, "text", "x-tick"), y_ticks = all(d, "text", "y-tick");
  REQUIRE(x_ticks.size() >= 2);
  REQUIRE(y_ticks.size() >= 2);
  for (std::size_t k = 1; k < x_ticks.size(); ++k) CHECK(std::stod(x_ticks[k]->text) > std::stod(x_ticks[k - 1]->text));
  for (std::size_t k = 1; k < y_ticks.size(); ++k) CHECK(std::stod(y_ticks[k]->text) > std::stod(y_ticks[k - 1]->text));
  double lo = std::numeric_limits<double>::max(), hi = 0;
  for (const xy& p : points) {
    lo = std::min(lo, p.y);
    hi = std::max(hi, p.y);
  }
  const bool log = !points.empty() && hi > 3 * lo;
  // Round ticks: a digit times a power of ten on the log axis, equal steps on a linear one.
  for (const element* t : y_ticks) {
    const double v = std::stod(t->text), m = v / std::pow(10.0, std::floor(std::log10(v) + 1e-9));
    if (log) CHECK(std::fabs(m - std::round(m)) < 1e-6);
  }
  for (const auto* ticks : {&x_ticks, &y_ticks}) {
    if (ticks == &y_ticks && log) continue;
    const double step = std::stod((*ticks)[1]->text) - std::stod((*ticks)[0]->text);
    for (std::size_t k = 1; k < ticks->size(); ++k)
      CHECK(std::stod((*ticks)[k]->text) - std::stod((*ticks)[k - 1]->text) == Approx(step));
  }
  CHECK(svg.find(log ? "perplexity (log scale)" : "perplexity (linear scale)") != std::string::npos);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(attr(*circles[i], "cx") == Approx(expected_pixel(x_ticks, "x", 0, false, points[i].x)).margin(0.05));
    CHECK(attr(*circles[i], "cy") == Approx(expected_pixel(y_ticks, "y", 4, log, points[i].y)).margin(0.05));
  }

  // The fp32 baseline, dashed, at the first row's perplexity; skipped rows named in a comment.
  const auto dashed = all(d, "line");
  const auto baseline = std::find_if(dashed.begin(), dashed.end(), [](const element* l) {
    return l->attrs.count("id") && l->attrs.at("id") == "baseline";
  });
  if (!e.rows.empty() && plottable(e.rows.front())) {
    REQUIRE(baseline != dashed.end());
    CHECK((*baseline)->attrs.count("stroke-dasharray") == 1);
    CHECK(attr(**baseline, "y1") == attr(*circles[0], "cy"));
  } else {
    CHECK(baseline == dashed.end());
  }
  std::string skipped;
  for (const row& r : e.rows)
    if (!plottable(r)) skipped += r.recipe;
  bool listed = skipped.empty();
  for (const std::string& c : d.comments) listed = listed || c.find("not plotted") != std::string::npos;
  CHECK(listed);
  CHECK(titles.front()->text.find("stories260K.bin") != std::string::npos);
  if (!e.rows.empty())
    CHECK(titles.front()->text.find(std::to_string(e.rows.front().predicted) + " predicted tokens") !=
          std::string::npos);
}

}  // namespace

TEST_CASE("pareto_front: hand-made cases") {
  using v = std::vector<std::size_t>;
  CHECK(pare_compress::pareto_front({}).empty());
  CHECK(pare_compress::pareto_front({{3, 4}}) == v{0});
  // Equal points do not dominate each other; equal x or equal y with the other lower does.
  CHECK(pare_compress::pareto_front({{2, 5}, {2, 5}}) == v{0, 1});
  CHECK(pare_compress::pareto_front({{2, 6}, {2, 5}}) == v{1});
  CHECK(pare_compress::pareto_front({{3, 5}, {2, 5}}) == v{1});
  // Ordered by x: fp32 (32 bits, best perplexity) last.
  CHECK(pare_compress::pareto_front({{32, 4.0}, {8.5, 4.001}, {5.1, 4.7}, {6, 5.5}, {4.1, 5.9}}) == v{4, 2, 1, 0});
}

TEST_CASE("pareto_front equals the O(n^2) definition on random points with ties and duplicates") {
  std::mt19937_64 rng(20240611);
  for (int trial = 0; trial < 3000; ++trial) {
    const std::size_t n = rng() % 40;
    // Small integer grids force equal x, equal y and duplicates; wide ones are the general case.
    const int grid = trial % 3 == 0 ? 3 : trial % 3 == 1 ? 8 : 1000000;
    std::vector<xy> p(n);
    for (xy& q : p) q = {double(rng() % grid) / 4, double(rng() % grid) / 4};
    if (n > 2 && trial % 5 == 0) p[n - 1] = p[rng() % (n - 1)];  // an explicit duplicate
    const std::vector<std::size_t> got = pare_compress::pareto_front(p);
    INFO("trial " << trial << ", " << n << " points");
    REQUIRE(sorted(got) == brute_force_front(p));
    for (std::size_t k = 1; k < got.size(); ++k) {
      const xy &a = p[got[k - 1]], &b = p[got[k]];
      REQUIRE((a.x < b.x || (a.x == b.x && a.y <= b.y)));  // increasing x (equal only for duplicates)
    }
  }
}

TEST_CASE("plot_svg: a run's rows, the front, the baseline, escaped labels, skipped rows") {
  evaluation e = make_evaluation({make_row("fp32", 32, 4.0006), make_row("quant:int8:per_channel:sym", 8.497, 4.0011),
                                  make_row("quant:int4:g32:asym:mse", 5.107, 4.7), make_row("a<b&c>\"'", 6.0, 5.5),
                                  make_row("dup", 5.107, 4.7), make_row("prune:depth:1:ppl", 32, 9.0),
                                  make_row("broken--", 4.0, std::nan("")),
                                  make_row("overflow", 4.0, std::numeric_limits<double>::infinity())});
  check_chart(e);
  const std::string svg = pare_compress::plot_svg(e);
  CHECK(svg.find("a&lt;b&amp;c&gt;&quot;&apos;") != std::string::npos);
  CHECK(svg.find("a<b") == std::string::npos);
  CHECK(svg.find("perplexity (linear scale)") != std::string::npos);
  const document d = parse(svg);
  bool listed = false;
  for (const std::string& c : d.comments)
    listed = listed || (c.find("not plotted: broken- -, overflow") != std::string::npos);
  CHECK(listed);
}

TEST_CASE("plot_svg: a log axis past a 3x perplexity range, one row, no row, bytes XML cannot hold") {
  check_chart(make_evaluation({make_row("fp32", 32, 4.0), make_row("prune:nm:2:4:wanda", 32, 60),
                               make_row("quant:int4:g32", 5, 4.7), make_row("slicegpt:0.25", 24, 13)}));
  CHECK(pare_compress::plot_svg(make_evaluation({make_row("fp32", 32, 4), make_row("x", 4, 12.5)}))
            .find("perplexity (log scale)") != std::string::npos);
  check_chart(make_evaluation({make_row("fp32", 32, 4.0)}));
  check_chart(make_evaluation({make_row("fp32", 32, 4.0), make_row("ruined", 4, 1e30), make_row("worse", 2, 1e200)}));
  check_chart(make_evaluation({}));
  check_chart(make_evaluation({make_row("fp32", std::nan(""), std::nan("")), make_row("q", 4, 5)}));
  // A control character and invalid UTF-8 become U+FFFD; valid UTF-8 stays.
  CHECK(pare_compress::xml_escape(std::string("a\x01z\xff\xc3(\xe2\x82\xac")) ==
        "a\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD(\xe2\x82\xac");
  CHECK(pare_compress::xml_escape("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(pare_compress::xml_escape("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  check_chart(make_evaluation({make_row("fp32", 32, 4.0), make_row(std::string("q\x02\xfe"), 4, 5)}));
}

TEST_CASE("plot_svg: random runs are well-formed and mark the oracle's front") {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<row> rows = {make_row("fp32", 32, 3 + double(rng() % 100) / 50)};
    const std::size_t n = rng() % 25;
    for (std::size_t i = 0; i < n; ++i) {
      const double bits = trial % 2 ? double(rng() % 6) + 2 : double(rng() % 3000) / 100 + 1;
      const double ppl = trial % 2 ? double(rng() % 4) + 4 : std::exp(double(rng() % 400) / 100) + 3;
      rows.push_back(make_row("r" + std::to_string(i) + ":<&>", bits, rng() % 17 == 0 ? std::nan("") : ppl));
    }
    INFO("trial " << trial);
    check_chart(make_evaluation(rows));
  }
}
