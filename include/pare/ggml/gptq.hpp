// GPTQ whose output is a llama.cpp block format: the column walk of solvers/gptq.hpp with each block's parameters from pare's byte-exact ggml quantizer and each code written straight into ggml's block bytes.
#pragma once

// gptq_quantize_ggml(W [rows, K], H, type, opt, imatrix) returns rows · row_bytes(type, K)
// bytes laid out exactly as ggml's quantize_row_<type> writes them (llama.cpp loads them,
// pare's dequantize_row_<type> reads them), with codes chosen by GPTQ to lower
// tr(ΔW·H·ΔWᵀ) instead of |ΔW| element by element.
//
// Walk (storage order), with (H + λ·mean(diag H)·I)⁻¹ = Uᵀ·U (solvers/layer_hessian.hpp):
//   at the first column of each ggml block (32 elements; 256 for the K formats), for every
//   row: run ggml's quantizer for `type` on the row's CURRENT weights of that block (the
//   original ones minus the error of every column already quantized), imatrix passed on.
//   Its bytes hold the block's parameters as the dequantizer reads them (fp16 d and m,
//   the 4- or 6-bit sub-block scales and mins); they stay fixed. Element e of the block
//   can then take the values
//       v_e(c) = a_e · t(c) + b_e     (float, in the dequantizer's order of operations)
//   over the codes c of the type, t(c) = c − offset (IQ4_NL: codebook[c]), with
//       type               a_e                    b_e              t(c)
//       Q8_0               d                      0                c − 128 (byte int8(t))
//       Q4_0, Q5_0         d                      0                c − 8, c − 16
//       Q4_1, Q5_1         d                      m                c
//       IQ4_NL             d                      0                kvalues_iq4nl[c]
//       Q2_K               d·sc_s                 −dmin·m_s        c           (s = e/16)
//       Q3_K               d·(sc_s − 32)          0                c − 4       (s = e/16)
//       Q4_K, Q5_K         d·sc_s                 −dmin·m_s        c           (s = e/32)
//       Q6_K               d·sc_s                 0                c − 32      (s = e/16)
//   column j:  c_j = argmin_c |w_j − v_j(c)|  (ties: keep the code ggml's quantizer wrote,
//              else the smallest c), written into the block bytes;
//              e = (w_j − v_j(c_j)) / U_jj,  w_k −= e·U_jk for the columns k after j,
//   the update lazy as in gptq.hpp (within a batch of block_size columns, rounded to whole
//   ggml blocks, at once; beyond it once per batch as one BLAS product). Double precision.
//
// act_order (walk by decreasing H_jj) keeps the layout with "static groups": every block's
// parameters come up front from ggml's quantization of the original rows, then the walk
// chooses codes under them in its own order.
//
// Importance matrix: Q4_0, Q4_1, Q5_0 and Q5_1 weigh element x_j by imatrix_j·sqrt(σ² + x_j²)
// with σ² = mean(x²) over the WHOLE row (ggml); the later blocks of a row are not known
// when a block's parameters are chosen, so σ² here is that of the original row (with
// no error to propagate — diagonal H — the parameters are ggml's byte for byte). The
// other formats' σ² is per block, and Q8_0 ignores the importance matrix, as in ggml.
//
// Dead inputs (H_jj = 0) have their weights set to zero first (then rounded to the
// nearest value their block allows, which need not be 0). `error` is tr(ΔW·H·ΔWᵀ) for
// the undamped H from OBS's identity (as gptq.hpp): the walk's Σ e² is the loss under
// H' = H + δ·I with 1 on the dead diagonals, so error = Σ e² − δ·‖W0 − Ŵ‖² − ‖(W0 − Ŵ)_dead‖².
//
// This header sits in ggml/ rather than solvers/ because of the layer order (docs/DESIGN.md:
// methods < ggml); its API is in pare::solvers beside gptq_quantize.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/huge_pages.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/ggml/detail/block_bytes.hpp"
#include "pare/ggml/detail/exact_float.hpp"
#include "pare/ggml/detail/scale_search.hpp"
#include "pare/ggml/iq4_nl.hpp"
#include "pare/ggml/k_quants.hpp"
#include "pare/ggml/legacy_quants.hpp"
#include "pare/ggml/quantize.hpp"
#include "pare/ggml/types.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/solvers/gptq.hpp"
#include "pare/solvers/layer_hessian.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

struct gptq_ggml_result {
  std::vector<std::uint8_t> blocks;  ///< rows · ggml::row_bytes(type, K), ggml's block layout
  double error = 0;                  ///< tr(ΔW·H·ΔWᵀ), undamped H, ΔW = W − dequantize(blocks)
  double dampening = 0;              ///< λ used (larger than asked when retries > 0)
  int dampening_retries = 0;         ///< H was not positive definite this many times (a warning)
  std::size_t dead_columns = 0;      ///< inputs with H_jj = 0, their weights zeroed
};

namespace detail {
namespace gptq_ggml {

/// The code range of a type the walk supports: codes 0 .. count − 1, level t(c).
struct codec {
  ggml::type id;
  int count;
  int offset;                   ///< t(c) = c − offset (when codebook is null)
  const std::int8_t* codebook;  ///< t(c) = codebook[c] (IQ4_NL)
};

/// The codec of a type gptq_quantize_ggml supports, or null.
inline const codec* find_codec(ggml::type t) noexcept {
  using ggml::type;
  static const codec table[] = {{type::q4_0, 16, 8, nullptr},  {type::q4_1, 16, 0, nullptr},
                                {type::q5_0, 32, 16, nullptr}, {type::q5_1, 32, 0, nullptr},
                                {type::q8_0, 256, 128, nullptr}, {type::iq4_nl, 16, 0, ggml::iq4nl_codebook()},
                                {type::q2_K, 4, 0, nullptr},   {type::q3_K, 8, 4, nullptr},
                                {type::q4_K, 16, 0, nullptr},  {type::q5_K, 32, 0, nullptr},
                                {type::q6_K, 64, 32, nullptr}};
  for (const codec& c : table)
    if (c.id == t) return &c;
  return nullptr;
}

inline const char* supported_names() noexcept {
  return "q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, q2_K, q3_K, q4_K, q5_K, q6_K";
}

/// Where element e's code sits in a block: `lo_bits` bits at byte lo_at from bit lo_shift,
/// then (hi_bits > 0) the next bits at byte hi_at from bit hi_shift; the stored field is
/// the code XOR flip (Q8_0 stores int8(c − 128) = c ^ 0x80).
struct code_field {
  std::size_t lo_at;
  int lo_shift, lo_bits;
  std::size_t hi_at;
  int hi_shift, hi_bits;
  int flip;
};

inline code_field field_of(ggml::type t, int e) noexcept {
  using ggml::type;
  const std::size_t n = std::size_t(e);
  switch (t) {
    case type::q8_0: return {2 + n, 0, 8, 0, 0, 0, 0x80};
    case type::q4_0:
    case type::iq4_nl: return {2 + n % 16, 4 * (e / 16), 4, 0, 0, 0, 0};
    case type::q4_1: return {4 + n % 16, 4 * (e / 16), 4, 0, 0, 0, 0};
    case type::q5_0: return {6 + n % 16, 4 * (e / 16), 4, 2 + n / 8, e % 8, 1, 0};
    case type::q5_1: return {8 + n % 16, 4 * (e / 16), 4, 4 + n / 8, e % 8, 1, 0};
    case type::q2_K: return {16 + 32 * (n / 128) + n % 32, 2 * ((e % 128) / 32), 2, 0, 0, 0, 0};
    case type::q3_K: return {32 + 32 * (n / 128) + n % 32, 2 * ((e % 128) / 32), 2, n % 32, e / 32, 1, 0};
    case type::q4_K: return {16 + 32 * (n / 64) + n % 32, 4 * ((e / 32) % 2), 4, 0, 0, 0, 0};
    case type::q5_K: return {48 + 32 * (n / 64) + n % 32, 4 * ((e / 32) % 2), 4, 16 + n % 32, e / 32, 1, 0};
    case type::q6_K: {
      const std::size_t h = n / 128, s = (n % 128) / 32, l = n % 32;
      return {64 * h + l + 32 * (s & 1), 4 * int(s >> 1), 4, 128 + 32 * h + l, 2 * int(s), 2, 0};
    }
    default: return {0, 0, 0, 0, 0, 0, 0};
  }
}

inline int get_code(ggml::type t, const std::uint8_t* blk, int e) noexcept {
  const code_field f = field_of(t, e);
  int c = (blk[f.lo_at] >> f.lo_shift) & ((1 << f.lo_bits) - 1);
  if (f.hi_bits) c |= ((blk[f.hi_at] >> f.hi_shift) & ((1 << f.hi_bits) - 1)) << f.lo_bits;
  return c ^ f.flip;
}

inline void set_code(ggml::type t, std::uint8_t* blk, int e, int code) noexcept {
  const code_field f = field_of(t, e);
  const int c = code ^ f.flip;
  auto put = [blk](std::size_t at, int shift, int bits, int v) {
    const int mask = ((1 << bits) - 1) << shift;
    blk[at] = static_cast<std::uint8_t>((blk[at] & ~mask) | ((v << shift) & mask));
  };
  put(f.lo_at, f.lo_shift, f.lo_bits, c);
  if (f.hi_bits) put(f.hi_at, f.hi_shift, f.hi_bits, c >> f.lo_bits);
}

PARE_GGML_EXACT_BEGIN

/// Element e's values a·t(c) + b under the parameters in its block's bytes.
struct element_grid {
  float a, b;
};

inline element_grid grid_of(ggml::type t, const std::uint8_t* blk, int e) noexcept {
  PARE_GGML_EXACT
  using ggml::type;
  using ggml::detail::load_f16;
  switch (t) {
    case type::q4_1:
    case type::q5_1: return {load_f16(blk), load_f16(blk + 2)};
    case type::q2_K: {
      const std::uint8_t sc = blk[e / 16];
      return {load_f16(blk + 80) * float(sc & 0xF), -(load_f16(blk + 82) * float(sc >> 4))};
    }
    case type::q3_K: return {load_f16(blk + 108) * float(ggml::detail::q3_scale(blk + 96, e / 16)), 0.0f};
    case type::q4_K:
    case type::q5_K: {
      std::uint8_t sc = 0, m = 0;
      ggml::detail::get_scale_min(e / 32, blk + 4, &sc, &m);
      return {load_f16(blk) * float(sc), -(load_f16(blk + 2) * float(m))};
    }
    case type::q6_K: return {load_f16(blk + 208) * float(static_cast<std::int8_t>(blk[192 + e / 16])), 0.0f};
    default: return {load_f16(blk), 0.0f};  // q8_0, q4_0, q5_0, iq4_nl
  }
}

/// The code of element e nearest to x under its block's parameters (ties: the code already
/// in the block, else the smallest); *value receives what the dequantizer makes of it.
inline int nearest_code(const codec& k, const std::uint8_t* blk, int e, double x, float* value) noexcept {
  PARE_GGML_EXACT
  const element_grid g = grid_of(k.id, blk, e);
  auto level = [&k](int c) { return k.codebook ? float(k.codebook[c]) : float(c - k.offset); };
  int best = get_code(k.id, blk, e);
  float best_v = g.a * level(best) + g.b;
  double best_d = std::fabs(x - double(best_v));
  for (int c = 0; c < k.count; ++c) {
    const float v = g.a * level(c) + g.b;
    const double d = std::fabs(x - double(v));
    if (d < best_d) {
      best = c;
      best_v = v;
      best_d = d;
    }
  }
  *value = best_v;
  return best;
}

PARE_GGML_EXACT_END

/// ggml's quantization of one block x (parameters and codes) into blk. qw: the block's
/// importance weights or null; sigma2: σ² of the row, used by the 32-element affine and
/// symmetric formats with importance (ggml takes it over the whole row).
inline void quantize_block(const codec& k, const float* x, std::uint8_t* blk, const float* qw, float sigma2) {
  using ggml::type;
  namespace gd = ggml::detail;
  const bool sym = k.id == type::q4_0 || k.id == type::q5_0;
  const bool affine = k.id == type::q4_1 || k.id == type::q5_1;
  if (!qw || !(sym || affine)) {
    ggml::quantize_row(k.id, x, blk, ggml::traits(k.id).block_size, qw);
    return;
  }
  // ggml's quantize_row_{sym,affine} with importance, for one block and the given σ².
  const bool five = k.id == type::q5_0 || k.id == type::q5_1;
  const std::size_t qs_at = (affine ? 4 : 2) + (five ? 4 : 0);
  std::uint8_t* qh = five ? blk + (affine ? 4 : 2) : nullptr;
  float wt[32];
  gd::importance_weights(x, qw, sigma2, 32, wt);
  if (sym) {
    std::int8_t L[32];
    gd::store_f16(blk, gd::symmetric_fit(32, five ? 16 : 8, x, L, 1, wt));
    gd::pack_nibbles(reinterpret_cast<const std::uint8_t*>(L), blk + qs_at, qh);
  } else {
    std::uint8_t L[32], Laux[32];
    float min = 0;
    const float d = gd::affine_fit(32, five ? 31 : 15, x, wt, L, &min, Laux, -0.9f, 0.05f, 36, false, true);
    gd::store_f16(blk, d);
    gd::store_f16(blk + 2, -min);
    gd::pack_nibbles(L, blk + qs_at, qh);
  }
}

}  // namespace gptq_ggml
}  // namespace detail

/// GPTQ of W [rows, K] against H (K × K) into ggml blocks of `type` (see the top of this
/// file). imatrix: null or K non-negative importance weights, as ggml's quantize takes.
/// Errors (nothing is modified): argument_error for a type without block parameters
/// (f16, bf16) or block_size 0; shape_error when K is not a positive multiple of the
/// type's block size, W has no rows or H's size is not K; value_error for NaN/Inf in W
/// or a negative or non-finite imatrix entry (and from inverse_factor_of: bad dampening,
/// H singular even after the retries).
inline gptq_ggml_result gptq_quantize_ggml(matrix_view<const float> w, const layer_hessian& h, ggml::type type,
                                           const gptq_options& opt = {}, const float* imatrix = nullptr) {
  const char* where = "pare::solvers::gptq_quantize_ggml";
  namespace gg = detail::gptq_ggml;
  const gg::codec* codec = gg::find_codec(type);
  if (!codec) {
    const ggml::type_traits* tr = ggml::find_traits(static_cast<std::uint32_t>(type));
    pare::detail::fail<argument_error>(where, ": argument 'type': expected a ggml block format (",
                                       gg::supported_names(), "), got ",
                                       tr ? std::string(tr->name) : "id " + std::to_string(std::uint32_t(type)));
  }
  const std::size_t rows = w.rows(), k = w.cols(), g = ggml::traits(type).block_size;
  if (k == 0 || k % g != 0)
    pare::detail::fail<shape_error>(where, ": argument 'w': expected a column count that is a positive multiple of ", g,
                                    " (the ", ggml::to_string(type), " block size), got ", w.shape());
  if (rows == 0) pare::detail::fail<shape_error>(where, ": argument 'w': expected at least one row, got ", w.shape());
  if (h.n != k)
    pare::detail::fail<shape_error>(where, ": argument 'h': expected a ", k, " x ", k,
                                    " Hessian (one row per input of 'w'), got ", h.n, " x ", h.n);
  if (opt.block_size == 0) pare::detail::fail<argument_error>(where, ": argument 'block_size': expected at least 1, got 0");
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (!std::isfinite(w(i, j)))
        pare::detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", w(i, j), " at (", i, ", ",
                                        j, ")");
  if (imatrix)
    for (std::size_t j = 0; j < k; ++j)
      if (!std::isfinite(imatrix[j]) || imatrix[j] < 0)
        pare::detail::fail<value_error>(where, ": argument 'imatrix': expected finite non-negative weights, got ",
                                        imatrix[j], " at column ", j);

  const std::vector<std::size_t> order = detail::gptq_order(h, opt.act_order);
  const inverse_factor f = inverse_factor_of(h, opt.act_order ? order : std::vector<std::size_t>{}, opt.hessian);
  const bool dynamic = !opt.act_order;  // block parameters from the current weights
  const std::size_t bs = std::max(g, opt.block_size / g * g);
  const std::size_t rb = ggml::row_bytes(type, k, where), kb = ggml::traits(type).type_size;

  // Original weights (dead columns zeroed) in float, their rows' σ², and in double, in
  // walking order, for the solve.
  std::vector<char> dead(k, 0);
  for (std::size_t j : f.dead_columns) dead[j] = 1;
  std::vector<float> w0(rows * k);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j) w0[i * k + j] = dead[j] ? 0.0f : w(i, j);
  std::vector<float> sigma2(rows, 0.0f);
  if (imatrix)
    for (std::size_t i = 0; i < rows; ++i) sigma2[i] = ggml::detail::row_sigma2(w0.data() + i * k, k);
  std::vector<double> ww;
  resize_huge(ww, rows * k);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t a = 0; a < k; ++a) ww[i * k + a] = w0[i * k + order[a]];

  gptq_ggml_result res;
  res.blocks.assign(rows * rb, 0);
  if (!dynamic)  // static groups: every block's parameters from the original rows
    parallel_for(0, rows, 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i)
        ggml::quantize_row(type, w0.data() + i * k, res.blocks.data() + i * rb, k, imatrix);
    });

  std::vector<double> err(rows * bs);
  std::vector<double> row_loss(rows, 0.0), row_dw2(rows, 0.0);  // Σ e² and ΔW·(H' − H)·ΔWᵀ per row
  for (std::size_t i1 = 0; i1 < k; i1 += bs) {
    const std::size_t i2 = std::min(k, i1 + bs), nb = i2 - i1;
    parallel_for(0, rows, std::max<std::size_t>(1, 4096 / nb), [&](std::size_t lo, std::size_t hi) {
      float xb[256];
      for (std::size_t r = lo; r < hi; ++r) {
        double* wr = ww.data() + r * k;
        std::uint8_t* yr = res.blocks.data() + r * rb;
        for (std::size_t a = i1; a < i2; ++a) {
          const std::size_t j = order[a];
          std::uint8_t* blk = yr + (j / g) * kb;
          if (dynamic && j % g == 0) {  // storage order: columns j .. j + g − 1 are a .. a + g − 1
            for (std::size_t t = 0; t < g; ++t) xb[t] = static_cast<float>(wr[a + t]);
            gg::quantize_block(*codec, xb, blk, imatrix ? imatrix + j : nullptr, sigma2[r]);
          }
          const int e = int(j % g);
          float v = 0;
          gg::set_code(type, blk, e, gg::nearest_code(*codec, blk, e, wr[a], &v));
          const double q_err = (wr[a] - double(v)) / f.at(a, a);
          err[r * bs + (a - i1)] = q_err;
          row_loss[r] += q_err * q_err;
          const double dw = double(w0[r * k + j]) - double(v);
          row_dw2[r] += (dead[j] ? 1.0 + f.damp_add : f.damp_add) * dw * dw;
          const double* urow = f.u.data() + a * k;
          for (std::size_t b = a + 1; b < i2; ++b) wr[b] -= q_err * urow[b];
        }
      }
    });
    // Columns beyond the batch: W[:, i2:] −= Err · U[i1:i2, i2:].
    if (i2 < k)
      lapack::gemm_strided(where, false, false, rows, k - i2, nb, -1.0, err.data(), bs, f.u.data() + i1 * k + i2, k, 1.0,
                           ww.data() + i2, k);
  }
  double loss = 0, dw2 = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    loss += row_loss[r];
    dw2 += row_dw2[r];
  }
  res.error = std::max(0.0, loss - dw2);
  res.dampening = f.dampening;
  res.dampening_retries = f.retries;
  res.dead_columns = f.dead_columns.size();
  return res;
}

}  // namespace solvers
PARE_NAMESPACE_END
