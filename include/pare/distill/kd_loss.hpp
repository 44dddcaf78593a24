// Knowledge-distillation loss T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + λ·CE(y, z_s) over a batch of logits, and its exact gradient w.r.t. the student logits.
#pragma once

// Hinton et al., "Distilling the Knowledge in a Neural Network" (2015). Per row r of the
// student logits z_s [B, V] and teacher logits z_t [B, V], with p = softmax(z_t / T),
// q = softmax(z_s / T), s = softmax(z_s) and label y_r:
//
//     L_r = T²·KL(p ‖ q) + λ·CE(y_r, z_s)      KL(p ‖ q) = Σ_v p_v (log p_v − log q_v)
//                                              CE(y, z_s) = −log s_y
//     L   = (1/B)·Σ_r L_r
//
// Gradient (the teacher is a constant). With log q_v = z_v/T − log Σ_u e^{z_u/T}:
//     ∂(−Σ_v p_v log q_v)/∂z_u = −p_u/T + (Σ_v p_v)·q_u/T = (q_u − p_u)/T,
// the entropy term Σ p log p does not depend on z_s, and ∂(−log s_y)/∂z_u = s_u − [u = y]:
//
//     ∂L/∂z_s[r, u] = (1/B)·( T·(q_u − p_u) + λ·(s_u − [u = y_r]) )
//
// (T² times the 1/T of the tempered softmax leaves one factor T; the T² keeps the soft
// term's gradient scale independent of T, as in the paper.)
//
// Numerics: every softmax subtracts its row maximum before exponentiating (exp arguments
// <= 0, nothing overflows; logits of ±1e4 are fine), exponentials are float32 (a
// branch-free polynomial the compiler vectorizes over the vocabulary, < 2 ulp, exactly
// 0 below −87), sums and the KL's log-ratios (z_t − z_s differences) are float64. The
// loss is accurate to about 1e-7 absolute, the gradient to about 1e-7·(1/B)·(T + λ).
// Inputs with NaN/Inf throw value_error naming the argument and position.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

struct kd_options {
  double temperature = 1.0;  ///< T > 0
  double ce_weight = 0.0;    ///< λ >= 0 (0: labels unused)
};

struct kd_loss_result {
  double loss = 0;              ///< mean over rows of row_loss: T²·kl + λ·ce
  double kl = 0;                ///< mean over rows of KL(p ‖ q) (not scaled by T²)
  double ce = 0;                ///< mean over rows of CE(y, z_s) (0 when λ = 0 and no labels)
  std::vector<double> row_loss; ///< L_r per row
};

namespace detail {
/// e^x for x <= 0 in float32: Cephes-style range reduction and degree-6 polynomial,
/// branch-free so that loops over it vectorize; returns 0 for x < −87 (e^−87 ≈ 1.6e-38).
PARE_ALWAYS_INLINE float exp_nonpositive(float x) noexcept {
  // Selects are integer bit blends: a float `?:` followed by float arithmetic is not
  // if-converted under -ftrapping-math, which would stop vectorization.
  const std::int32_t under = -static_cast<std::int32_t>(x < -87.0f);  // all ones below −87
  const float lo = -87.0f, magic = 12582912.0f;                        // 1.5·2²³: adding it rounds to an integer
  std::int32_t xb, lb, mi;
  std::memcpy(&xb, &x, sizeof xb);
  std::memcpy(&lb, &lo, sizeof lb);
  std::memcpy(&mi, &magic, sizeof mi);
  const std::int32_t cb = (xb & ~under) | (lb & under);
  float xc;
  std::memcpy(&xc, &cb, sizeof xc);
  const float t = xc * 1.44269504088896341f + magic;  // n = round(x / ln 2) in [−126, 0]
  const float n = t - magic;
  std::int32_t ti;
  std::memcpy(&ti, &t, sizeof ti);
  const std::int32_t ni = ti - mi;
  float r = xc - n * 0.693359375f;  // r = x − n·ln 2 in two steps (Cody-Waite)
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;  // e^r, r in [−ln2/2, ln2/2]; y >= 1 whenever n = −126
  std::int32_t yi;
  std::memcpy(&yi, &y, sizeof yi);
  yi += static_cast<std::int32_t>(static_cast<std::uint32_t>(ni) << 23);  // · 2^n
  yi &= ~under;
  float out;
  std::memcpy(&out, &yi, sizeof out);
  return out;
}

/// Σ term(v) for v < n in float64 with eight independent partial sums (vectorizable).
template <class F>
PARE_ALWAYS_INLINE double lane_sum(std::size_t n, F&& term) noexcept {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t n8 = n - n % 8;
  for (std::size_t v = 0; v < n8; v += 8)
    for (std::size_t l = 0; l < 8; ++l) acc[l] += term(v + l);
  double tail = 0;
  for (std::size_t v = n8; v < n; ++v) tail += term(v);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/// e[v] = exp((z[v] − m) / T) (all <= 1); returns Σ e in float64.
inline double shifted_exp(const float* z, std::size_t n, float m, float t, float* e) noexcept {
  for (std::size_t v = 0; v < n; ++v) e[v] = exp_nonpositive((z[v] - m) / t);
  return lane_sum(n, [&](std::size_t v) { return double(e[v]); });
}

/// max_v z[v] (finite input); eight running maxima updated by integer bit blends (vectorizable).
inline float row_max(const float* z, std::size_t n) noexcept {
  float acc[8] = {z[0], z[0], z[0], z[0], z[0], z[0], z[0], z[0]};
  const std::size_t n8 = n - n % 8;
  for (std::size_t v = 0; v < n8; v += 8)
    for (std::size_t l = 0; l < 8; ++l) {
      const std::int32_t gt = -static_cast<std::int32_t>(z[v + l] > acc[l]);
      std::int32_t zb, ab;
      std::memcpy(&zb, z + v + l, sizeof zb);
      std::memcpy(&ab, acc + l, sizeof ab);
      ab = (zb & gt) | (ab & ~gt);
      std::memcpy(acc + l, &ab, sizeof ab);
    }
  float m = z[0];
  for (std::size_t v = n8; v < n; ++v) m = z[v] > m ? z[v] : m;
  for (float a : acc) m = a > m ? a : m;
  return m;
}

inline void check_finite_matrix(const char* where, const char* arg, const matrix_view<const float>& x) {
  for (std::size_t i = 0; i < x.rows(); ++i)
    for (std::size_t j = 0; j < x.cols(); ++j)
      if (!std::isfinite(x(i, j)))
        fail<value_error>(where, ": argument '", arg, "': expected finite values, got ", x(i, j), " at (", i, ", ", j, ")");
}

/// A row as a contiguous pointer: the view's own memory, or a copy in `buf`.
inline const float* contiguous_row(const matrix_view<const float>& x, std::size_t r, std::vector<float>& buf) {
  if (x.has_contiguous_rows()) return x.row_ptr(r);
  buf.resize(x.cols());
  for (std::size_t j = 0; j < x.cols(); ++j) buf[j] = x(r, j);
  return buf.data();
}

inline kd_loss_result kd_loss_impl(const char* where, const matrix_view<const float>& student,
                                   const matrix_view<const float>& teacher, const std::vector<std::int32_t>& labels,
                                   const kd_options& opt, const matrix_view<float>* grad) {
  const std::size_t B = student.rows(), V = student.cols();
  check_same_shape((std::string(where) + ": argument 'teacher'").c_str(), student.shape(), teacher.shape());
  if (B == 0 || V == 0)
    fail<shape_error>(where, ": argument 'student': expected logits [B, V] with B, V >= 1, got ", student.shape());
  if (grad) check_same_shape((std::string(where) + ": argument 'grad'").c_str(), student.shape(), grad->shape());
  const double T = opt.temperature, lambda = opt.ce_weight;
  if (!(std::isfinite(T) && T > 0) || !std::isfinite(static_cast<float>(T)) || static_cast<float>(T) <= 0)
    fail<argument_error>(where, ": argument 'temperature': expected a finite value > 0, got ", T);
  if (!(std::isfinite(lambda) && lambda >= 0))
    fail<argument_error>(where, ": argument 'ce_weight': expected a finite value >= 0, got ", lambda);
  const bool use_labels = lambda > 0 || !labels.empty();
  if (use_labels) {
    if (labels.size() != B)
      fail<argument_error>(where, ": argument 'labels': expected ", B, " labels (one per row)", lambda > 0 ? "" : " or none",
                           ", got ", labels.size());
    for (std::size_t r = 0; r < B; ++r)
      if (labels[r] < 0 || std::size_t(labels[r]) >= V)
        fail<argument_error>(where, ": argument 'labels': expected labels in [0, ", V, "), got ", labels[r], " at row ", r);
  }
  check_finite_matrix(where, "student", student);
  check_finite_matrix(where, "teacher", teacher);

  const float Tf = static_cast<float>(T);
  const bool t_is_one = Tf == 1.0f;
  kd_loss_result res;
  res.row_loss.assign(B, 0.0);
  std::vector<double> row_kl(B, 0.0), row_ce(B, 0.0);
  const double inv_b = 1.0 / double(B);
  parallel_for(0, B, std::max<std::size_t>(1, 16384 / V), [&](std::size_t r0, std::size_t r1) {
    std::vector<float> ea(V), eb(V), ec(t_is_one ? 0 : V), g(grad ? V : 0), bs, bt;
    for (std::size_t r = r0; r < r1; ++r) {
      const float* zs = contiguous_row(student, r, bs);
      const float* zt = contiguous_row(teacher, r, bt);
      const float mt = row_max(zt, V), ms = row_max(zs, V);
      const double za = shifted_exp(zt, V, mt, Tf, ea.data());  // teacher at T
      const double zb = shifted_exp(zs, V, ms, Tf, eb.data());  // student at T
      // KL = (1/Za)·Σ ea_v·d_v − log Za + log Zb, d_v = ((zt_v − zs_v) − (mt − ms)) / T.
      const double dm = double(mt) - double(ms);
      const float* pea = ea.data();
      const double s = lane_sum(V, [&](std::size_t v) {
        const double d = ((double(zt[v]) - double(zs[v])) - dm) / T;
        return double(pea[v]) * d;  // d is finite, so an underflowed e^a contributes 0
      });
      const double kl = std::max(0.0, s / za - std::log(za) + std::log(zb));
      double ce = 0, zc = zb;
      if (use_labels) {
        if (!t_is_one) zc = shifted_exp(zs, V, ms, 1.0f, ec.data());
        ce = std::log(zc) - (double(zs[labels[r]]) - double(ms));
      }
      row_kl[r] = kl;
      row_ce[r] = ce;
      res.row_loss[r] = T * T * kl + lambda * ce;
      if (grad) {
        // g_v = (1/B)·(T·(eb_v/Zb − ea_v/Za) + λ·(ec_v/Zc − [v = y]))
        const float cb = static_cast<float>(T * inv_b / zb), ca = static_cast<float>(T * inv_b / za);
        const float* peb = eb.data();
        float* pg = g.data();
        for (std::size_t v = 0; v < V; ++v) pg[v] = cb * peb[v] - ca * pea[v];
        if (lambda > 0) {
          const float cc = static_cast<float>(lambda * inv_b / zc);
          const float* pec = t_is_one ? eb.data() : ec.data();
          for (std::size_t v = 0; v < V; ++v) pg[v] += cc * pec[v];
          pg[labels[r]] -= static_cast<float>(lambda * inv_b);
        }
        const matrix_view<float>& gv = *grad;
        if (gv.has_contiguous_rows()) std::memcpy(gv.row_ptr(r), pg, V * sizeof(float));
        else
          for (std::size_t v = 0; v < V; ++v) gv(r, v) = pg[v];
      }
    }
  });
  for (std::size_t r = 0; r < B; ++r) {
    res.loss += res.row_loss[r];
    res.kl += row_kl[r];
    res.ce += row_ce[r];
  }
  res.loss *= inv_b;
  res.kl *= inv_b;
  res.ce *= inv_b;
  return res;
}
}  // namespace detail

/// The KD loss of student logits [B, V] against teacher logits [B, V] (see above).
/// `labels` (B class ids in [0, V)) is required when ce_weight > 0 and may be empty
/// otherwise. Throws shape_error, argument_error (T, λ, labels) or value_error (NaN/Inf).
inline kd_loss_result kd_loss(const matrix_view<const float>& student, const matrix_view<const float>& teacher,
                              const std::vector<std::int32_t>& labels = {}, const kd_options& opt = {}) {
  return detail::kd_loss_impl("kd_loss", student, teacher, labels, opt, nullptr);
}

/// kd_loss and ∂L/∂z_s of the batch-mean loss into `grad` [B, V] (written only when
/// nothing throws).
inline kd_loss_result kd_loss_and_grad(const matrix_view<const float>& student, const matrix_view<const float>& teacher,
                                       const std::vector<std::int32_t>& labels, const kd_options& opt,
                                       const matrix_view<float>& grad) {
  return detail::kd_loss_impl("kd_loss_and_grad", student, teacher, labels, opt, &grad);
}

PARE_NAMESPACE_END
