// Feature distillation losses between student and teacher hidden states [B, D]: mean squared error and cosine distance (1 − cos), with exact gradients.
#pragma once

// For student rows s_r and teacher rows t_r (D features each; the teacher is a constant):
//
//   MSE     L = (1/(B·D))·Σ_r Σ_j (s_rj − t_rj)²          row_loss_r = (1/D)·Σ_j (s_rj − t_rj)²
//           ∂L/∂s_rj = 2·(s_rj − t_rj) / (B·D)
//
//   cosine  L = (1/B)·Σ_r (1 − cos_r),  cos_r = s_r·t_r / (n_s·n_t),
//           n_s = max(‖s_r‖, eps), n_t = max(‖t_r‖, eps)  (eps guards zero rows)
//           ∂L/∂s_r = −(1/B)·( t_r/(n_s·n_t) − cos_r·s_r/n_s² )   when ‖s_r‖ > eps
//           ∂L/∂s_r = −(1/B)·t_r/(n_s·n_t)                        when ‖s_r‖ <= eps (n_s constant)
//
// Reductions are float64 (eight partial sums, vectorizable); gradients are rounded to
// float once. The loss is the mean of row_loss. Shapes must agree (shape_error);
// NaN/Inf inputs throw value_error naming the argument and position; eps must be > 0.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

struct feature_loss_result {
  double loss = 0;               ///< mean of row_loss
  std::vector<double> row_loss;  ///< per row
};

namespace detail {
/// Σ term(j) for j < n in float64 with eight independent partial sums (vectorizable).
template <class F>
PARE_ALWAYS_INLINE double feature_lane_sum(std::size_t n, F&& term) noexcept {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t n8 = n - n % 8;
  for (std::size_t j = 0; j < n8; j += 8)
    for (std::size_t l = 0; l < 8; ++l) acc[l] += term(j + l);
  double tail = 0;
  for (std::size_t j = n8; j < n; ++j) tail += term(j);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

inline void check_feature_args(const char* where, const matrix_view<const float>& s, const matrix_view<const float>& t,
                               const matrix_view<float>* grad) {
  check_same_shape((std::string(where) + ": argument 'teacher'").c_str(), s.shape(), t.shape());
  if (s.rows() == 0 || s.cols() == 0)
    fail<shape_error>(where, ": argument 'student': expected hidden states [B, D] with B, D >= 1, got ", s.shape());
  if (grad) check_same_shape((std::string(where) + ": argument 'grad'").c_str(), s.shape(), grad->shape());
  for (const auto& [x, name] : {std::pair<const matrix_view<const float>*, const char*>{&s, "student"}, {&t, "teacher"}})
    for (std::size_t i = 0; i < x->rows(); ++i)
      for (std::size_t j = 0; j < x->cols(); ++j)
        if (!std::isfinite((*x)(i, j)))
          fail<value_error>(where, ": argument '", name, "': expected finite values, got ", (*x)(i, j), " at (", i, ", ", j, ")");
}

inline const float* feature_row(const matrix_view<const float>& x, std::size_t r, std::vector<float>& buf) {
  if (x.has_contiguous_rows()) return x.row_ptr(r);
  buf.resize(x.cols());
  for (std::size_t j = 0; j < x.cols(); ++j) buf[j] = x(r, j);
  return buf.data();
}

inline feature_loss_result mse_impl(const char* where, const matrix_view<const float>& student,
                                    const matrix_view<const float>& teacher, const matrix_view<float>* grad) {
  check_feature_args(where, student, teacher, grad);
  const std::size_t B = student.rows(), D = student.cols();
  feature_loss_result res;
  res.row_loss.resize(B);
  std::vector<float> bs, bt;
  const double c = 2.0 / (double(B) * double(D));
  for (std::size_t r = 0; r < B; ++r) {
    const float* s = feature_row(student, r, bs);
    const float* t = feature_row(teacher, r, bt);
    res.row_loss[r] = feature_lane_sum(D, [&](std::size_t j) {
                        const double d = double(s[j]) - double(t[j]);
                        return d * d;
                      }) /
                      double(D);
    res.loss += res.row_loss[r];
    if (grad)
      for (std::size_t j = 0; j < D; ++j) (*grad)(r, j) = static_cast<float>(c * (double(s[j]) - double(t[j])));
  }
  res.loss /= double(B);
  return res;
}

inline feature_loss_result cosine_impl(const char* where, const matrix_view<const float>& student,
                                       const matrix_view<const float>& teacher, double eps, const matrix_view<float>* grad) {
  if (!(std::isfinite(eps) && eps > 0)) fail<argument_error>(where, ": argument 'eps': expected a finite value > 0, got ", eps);
  check_feature_args(where, student, teacher, grad);
  const std::size_t B = student.rows(), D = student.cols();
  feature_loss_result res;
  res.row_loss.resize(B);
  std::vector<float> bs, bt;
  for (std::size_t r = 0; r < B; ++r) {
    const float* s = feature_row(student, r, bs);
    const float* t = feature_row(teacher, r, bt);
    const double dot = feature_lane_sum(D, [&](std::size_t j) { return double(s[j]) * double(t[j]); });
    const double ss = feature_lane_sum(D, [&](std::size_t j) { return double(s[j]) * double(s[j]); });
    const double tt = feature_lane_sum(D, [&](std::size_t j) { return double(t[j]) * double(t[j]); });
    const double ls = std::sqrt(ss), ns = std::max(ls, eps), nt = std::max(std::sqrt(tt), eps);
    const double cos = dot / (ns * nt);
    res.row_loss[r] = 1.0 - cos;
    res.loss += res.row_loss[r];
    if (grad) {
      const double inv_b = 1.0 / double(B);
      const double a = ls > eps ? inv_b * cos / (ns * ns) : 0.0;  // coefficient of s
      const double b = inv_b / (ns * nt);                        // coefficient of t
      for (std::size_t j = 0; j < D; ++j) (*grad)(r, j) = static_cast<float>(a * double(s[j]) - b * double(t[j]));
    }
  }
  res.loss /= double(B);
  return res;
}
}  // namespace detail

/// Mean squared error between student and teacher hidden states [B, D] (see above).
inline feature_loss_result mse_loss(const matrix_view<const float>& student, const matrix_view<const float>& teacher) {
  return detail::mse_impl("mse_loss", student, teacher, nullptr);
}

/// mse_loss and ∂L/∂student into `grad` [B, D].
inline feature_loss_result mse_loss_and_grad(const matrix_view<const float>& student, const matrix_view<const float>& teacher,
                                             const matrix_view<float>& grad) {
  return detail::mse_impl("mse_loss_and_grad", student, teacher, &grad);
}

/// Mean over rows of 1 − cos(student_r, teacher_r) (see above).
inline feature_loss_result cosine_loss(const matrix_view<const float>& student, const matrix_view<const float>& teacher,
                                       double eps = 1e-8) {
  return detail::cosine_impl("cosine_loss", student, teacher, eps, nullptr);
}

/// cosine_loss and ∂L/∂student into `grad` [B, D].
inline feature_loss_result cosine_loss_and_grad(const matrix_view<const float>& student, const matrix_view<const float>& teacher,
                                                const matrix_view<float>& grad, double eps = 1e-8) {
  return detail::cosine_impl("cosine_loss_and_grad", student, teacher, eps, &grad);
}

PARE_NAMESPACE_END
