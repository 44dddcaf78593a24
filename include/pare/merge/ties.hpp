// TIES-merging: trim each task vector to its top-k% magnitudes, elect a sign per entry, average the agreeing entries (disjoint mean), scale by λ.
#pragma once

// Yadav et al., "TIES-Merging: Resolving Interference When Merging Models" (2023).
// With base θ₀ and fine-tuned θ₁..θ_N, per entry p (all arithmetic in float64):
//
//   1. task vectors   τᵢ = θᵢ − θ₀
//   2. trim           τ̂ᵢ keeps the keep = ⌊density·n + ½⌋ entries of τᵢ with the largest
//                     |τ| and zeroes the others; n is the tensor's size (scope per_tensor,
//                     mergekit's choice) or the checkpoint's total size (scope global, the
//                     paper's). Ties in |τ| go to the lower index (tensors in name order
//                     for global), so exactly `keep` entries are kept.
//   3. elect sign     γ_p = sgn(Σᵢ τ̂ᵢ,p)                       (the summed trimmed values)
//   4. disjoint mean  A_p = {i : τ̂ᵢ,p ≠ 0, sgn(τ̂ᵢ,p) = γ_p};
//                     τ_p = (Σ_{i∈A_p} τ̂ᵢ,p) / |A_p|, 0 when γ_p = 0 or A_p is empty
//   5. merge          θ_p = θ₀,p + λ·τ_p, rounded once to float
//
// So for λ > 0 every changed entry moves in the elected direction, and only agreeing
// entries enter its mean. Options are checked first (density in (0, 1], λ finite);
// checkpoints must be compatible (checkpoint.hpp; checkpoint 0 is the base). Errors
// name the tensor or argument; nothing is changed.
//
// ties_trim(τ, density) exposes step 2 on one vector; over whole llama_models:
// ties_merge_into (pare/pipeline/merge_models.hpp).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "pare/merge/checkpoint.hpp"
#include "pare/merge/task_arithmetic.hpp"

PARE_NAMESPACE_BEGIN

enum class ties_scope { per_tensor, global };

struct ties_options {
  double density = 0.2;  ///< fraction of each task vector kept, in (0, 1]
  double lambda = 1.0;   ///< scale of the merged task vector
  ties_scope scope = ties_scope::per_tensor;

  void validate(const char* where) const {
    if (!(density > 0 && density <= 1))
      detail::fail<argument_error>(where, ": argument 'density': expected a value in (0, 1], got ", density);
    if (!std::isfinite(lambda)) detail::fail<argument_error>(where, ": argument 'lambda': expected a finite value, got ", lambda);
  }
};

/// Entries kept out of n at `density`: ⌊density·n + ½⌋ (at most n).
inline std::size_t ties_keep_count(std::size_t n, double density) {
  if (!(density > 0 && density <= 1))
    detail::fail<argument_error>("ties_keep_count: argument 'density': expected a value in (0, 1], got ", density);
  const double k = std::floor(density * double(n) + 0.5);
  return std::min(n, static_cast<std::size_t>(k));
}

namespace detail {
/// The `keep`-th entry in the order (|τ| descending, index ascending): entry e is kept
/// iff (|τ_e| > mag) or (|τ_e| == mag and e <= index). keep == 0 keeps nothing.
struct ties_cut {
  double mag = 0;
  std::size_t index = 0;
  bool none = true;
  bool kept(double a, std::size_t e) const noexcept { return !none && (a > mag || (a == mag && e <= index)); }
};

inline ties_cut ties_threshold(const std::vector<double>& mag, std::size_t keep) {
  ties_cut c;
  if (keep == 0 || mag.empty()) return c;
  std::vector<std::size_t> idx(mag.size());
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  const auto before = [&](std::size_t a, std::size_t b) { return mag[a] > mag[b] || (mag[a] == mag[b] && a < b); };
  std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep - 1), idx.end(), before);
  c.index = idx[keep - 1];
  c.mag = mag[c.index];
  c.none = false;
  return c;
}
}  // namespace detail

/// Step 2 on one vector: τ with all but its ties_keep_count(n, density) largest
/// magnitudes set to 0 (ties to the lower index).
inline std::vector<double> ties_trim(const std::vector<double>& tau, double density) {
  const std::size_t keep = ties_keep_count(tau.size(), density);
  std::vector<double> mag(tau.size());
  for (std::size_t e = 0; e < tau.size(); ++e) mag[e] = std::fabs(tau[e]);
  const detail::ties_cut cut = detail::ties_threshold(mag, keep);
  std::vector<double> out(tau.size(), 0.0);
  for (std::size_t e = 0; e < tau.size(); ++e)
    if (cut.kept(mag[e], e)) out[e] = tau[e];
  return out;
}

namespace detail {
inline checkpoint ties_merge_impl(const char* where, const checkpoint& base, const std::vector<const checkpoint*>& tuned,
                                  const ties_options& opt) {
  opt.validate(where);
  check_compatible(where, with_base(base, tuned));
  const std::size_t nt = tuned.size();
  // Global scope: one cut per task over every entry (tensors in name order).
  std::vector<ties_cut> global(nt);
  if (opt.scope == ties_scope::global) {
    std::size_t total = 0;
    for (const auto& kv : base) total += kv.second.values.size();
    const std::size_t keep = ties_keep_count(total, opt.density);
    std::vector<double> mag(total);
    for (std::size_t i = 0; i < nt; ++i) {
      std::size_t o = 0;
      for (const auto& [name, t0] : base) {
        const std::vector<float>& x = tuned[i]->at(name).values;
        for (std::size_t e = 0; e < x.size(); ++e) mag[o++] = std::fabs(double(x[e]) - double(t0.values[e]));
      }
      global[i] = ties_threshold(mag, keep);
    }
  }
  checkpoint out;
  std::size_t offset = 0;  // global index of the tensor's first entry
  std::vector<std::vector<double>> tau(nt);
  std::vector<double> mag;
  for (const auto& [name, t0] : base) {
    const std::size_t n = t0.values.size();
    const float* b = t0.values.data();
    const std::size_t keep = ties_keep_count(n, opt.density);
    for (std::size_t i = 0; i < nt; ++i) {
      const float* x = tuned[i]->at(name).values.data();
      tau[i].resize(n);
      mag.resize(n);
      for (std::size_t e = 0; e < n; ++e) {
        tau[i][e] = double(x[e]) - double(b[e]);
        mag[e] = std::fabs(tau[i][e]);
      }
      const ties_cut cut = opt.scope == ties_scope::global ? global[i] : ties_threshold(mag, keep);
      const std::size_t off = opt.scope == ties_scope::global ? offset : 0;
      for (std::size_t e = 0; e < n; ++e)
        if (!cut.kept(mag[e], off + e)) tau[i][e] = 0.0;
    }
    std::vector<float> v(n);
    for (std::size_t e = 0; e < n; ++e) {
      double sum = 0;
      for (std::size_t i = 0; i < nt; ++i) sum += tau[i][e];
      double merged = 0;
      if (sum != 0) {
        double agree = 0;
        std::size_t count = 0;
        for (std::size_t i = 0; i < nt; ++i) {
          const double t = tau[i][e];
          if ((sum > 0 && t > 0) || (sum < 0 && t < 0)) {
            agree += t;
            ++count;
          }
        }
        if (count) merged = agree / double(count);
      }
      v[e] = static_cast<float>(double(b[e]) + opt.lambda * merged);
    }
    out.emplace(name, checkpoint_tensor(t0.shape, std::move(v)));
    offset += n;
  }
  return out;
}
}  // namespace detail

/// TIES-merging of the tuned checkpoints onto the base (see above).
inline checkpoint ties_merge(const checkpoint& base, const std::vector<const checkpoint*>& tuned, const ties_options& opt = {}) {
  return detail::ties_merge_impl("ties_merge", base, tuned, opt);
}

PARE_NAMESPACE_END
