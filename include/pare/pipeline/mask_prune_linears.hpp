// Unstructured and N:M pruning of a llama_model's linear layers by magnitude or Wanda: masks from pare/prune, pruned weights zeroed in place.
#pragma once

// prune_linears_masked(m, spec, select, calib) scores every selected linear layer with
// |w| ("magnitude") or |w_ij|·‖x_j‖₂ ("wanda", calibration statistics of the layer's input
// required), builds a mask — unstructured at sparsity s with one budget per output row
// (Wanda's comparison group), or N:M along the input dimension — and replaces the layer
// by an fp32 layer with the pruned weights zeroed. Records say the density reached.
// Specs: "unstructured:<s>:<magnitude|wanda>", "nm:<n>:<m>:<magnitude|wanda>".
// The tied classifier (output.weight) is skipped: pruning it would also prune the
// embedding it shares. Everything is checked before the model changes.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/strings.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/prune/prune.hpp"

PARE_NAMESPACE_BEGIN

struct mask_prune_spec {
  bool nm = false;
  double sparsity = 0.5;
  std::size_t n = 2, m = 4;
  std::string criterion = "magnitude";

  static mask_prune_spec parse(const std::string& s) {
    const std::vector<std::string> t = split(s, ':');
    auto bad = [&](const std::string& why) {
      detail::fail<argument_error>("mask_prune_spec::parse('", s, "'): ", why);
    };
    auto number = [&](const std::string& v, const char* what) {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0') bad(std::string("expected a number for ") + what + ", got '" + v + "'");
      return d;
    };
    mask_prune_spec p;
    if (t[0] == "unstructured" && t.size() == 3) {
      p.sparsity = number(t[1], "the sparsity");
      if (!(p.sparsity >= 0.0 && p.sparsity < 1.0)) bad("expected a sparsity in [0, 1), got " + t[1]);
      p.criterion = t[2];
    } else if (t[0] == "nm" && t.size() == 4) {
      p.nm = true;
      const double n = number(t[1], "N"), m = number(t[2], "M");
      if (n < 1 || m < 1 || n > m || n != double(std::size_t(n)) || m != double(std::size_t(m)))
        bad("expected integers 1 <= N <= M, got " + t[1] + ":" + t[2]);
      p.n = std::size_t(n);
      p.m = std::size_t(m);
      p.criterion = t[3];
    } else {
      bad("expected unstructured:<s>:<criterion> or nm:<n>:<m>:<criterion>");
    }
    if (p.criterion != "magnitude" && p.criterion != "wanda") bad("expected the criterion magnitude or wanda, got '" + p.criterion + "'");
    return p;
  }
};

inline std::vector<layer_change> prune_linears_masked(llama_model& m, const mask_prune_spec& spec,
                                                      const std::function<bool(const std::string&)>& select = {},
                                                      const calibration_capture* calib = nullptr) {
  const char* where = "prune_linears_masked";
  if (spec.criterion == "wanda" && !calib)
    detail::fail<argument_error>(where, ": criterion 'wanda' needs calibration statistics, got none");
  std::vector<std::pair<std::string, std::unique_ptr<linear_layer>>> built;
  std::vector<layer_change> out;
  for (const std::string& name : m.linear_names()) {
    if (name == "output.weight" && m.tied_classifier) continue;
    if (select && !select(name)) continue;
    const linear_layer& cur = m.linear(name);
    const std::size_t rows = cur.out_features(), cols = cur.in_features();
    std::vector<float> w(rows * cols);
    const matrix_view<float> wv(w.data(), rows, cols);
    cur.dense_weights(wv);
    const prune::score_matrix sc =
        spec.criterion == "wanda" ? prune::wanda(calib->at(name))(wv) : prune::magnitude{}(wv);
    const prune::mask mk = spec.nm ? prune::nm_mask(sc.view(), spec.n, spec.m)
                                   : prune::unstructured(sc.view(), spec.sparsity, prune::scope::per_row);
    prune::apply(mk, wv);
    layer_change ch{name, detail::concat("f32 density ", mk.density()), "", false, ""};
    auto layer = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), rows, cols));
    ch.backend = "f32";
    built.emplace_back(name, std::move(layer));
    out.push_back(ch);
  }
  for (auto& [name, layer] : built) m.set_linear(name, std::move(layer));
  return out;
}

PARE_NAMESPACE_END
