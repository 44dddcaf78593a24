// Runtime entry points for ggml's formats: quantize a float matrix to ggml blocks (optionally with an importance matrix), dequantize, and the owning ggml_tensor.
#pragma once

// Usage:
//   pare::ggml::ggml_tensor q = pare::ggml::quantize(w, pare::ggml::type::q4_K);           // w: [rows, cols]
//   pare::ggml::ggml_tensor qi = pare::ggml::quantize(w, pare::ggml::type::q4_K, imatrix);  // imatrix: cols weights
//   std::vector<float> back = q.dequantize();        // bit-identical to ggml's to_float
//
// Results are byte-identical to ggml_quantize_chunk (ggml 0.21) for every type in
// types.hpp, with a null importance matrix when `imatrix` is empty: formats that ignore
// importance (f16, bf16, q8_0) accept and ignore it, as ggml does.
// Errors (nothing is written): cols not a multiple of the block size, an empty matrix,
// NaN/Inf inputs, an importance matrix of the wrong length or with a negative or
// non-finite entry, a byte buffer of the wrong size.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/dtypes/bf16.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/ggml/iq4_nl.hpp"
#include "pare/ggml/k_quants.hpp"
#include "pare/ggml/legacy_quants.hpp"
#include "pare/ggml/types.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

namespace detail {
[[noreturn]] inline void fail_type(type t) {
  ::pare::detail::fail<argument_error>("pare::ggml: argument 'type': expected a supported ggml type, got id ",
                                       static_cast<std::uint32_t>(t));
}
}  // namespace detail

/// Quantizes one row of `cols` floats into row_bytes(t, cols) bytes (no validation).
inline void quantize_row(type t, const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) {
  switch (t) {
    case type::f16:
      for (std::size_t j = 0; j < cols; ++j) detail::store_f16(y + 2 * j, x[j]);
      return;
    case type::bf16:
      for (std::size_t j = 0; j < cols; ++j) {
        const std::uint16_t h = ::pare::float_to_bf16(x[j]);
        y[2 * j] = static_cast<std::uint8_t>(h & 0xFF);
        y[2 * j + 1] = static_cast<std::uint8_t>(h >> 8);
      }
      return;
    case type::q8_0: return quantize_row_q8_0(x, y, cols, imatrix);
    case type::q4_0: return quantize_row_q4_0(x, y, cols, imatrix);
    case type::q4_1: return quantize_row_q4_1(x, y, cols, imatrix);
    case type::q5_0: return quantize_row_q5_0(x, y, cols, imatrix);
    case type::q5_1: return quantize_row_q5_1(x, y, cols, imatrix);
    case type::q2_K: return quantize_row_q2_K(x, y, cols, imatrix);
    case type::q3_K: return quantize_row_q3_K(x, y, cols, imatrix);
    case type::q4_K: return quantize_row_q4_K(x, y, cols, imatrix);
    case type::q5_K: return quantize_row_q5_K(x, y, cols, imatrix);
    case type::q6_K: return quantize_row_q6_K(x, y, cols, imatrix);
    case type::iq4_nl: return quantize_row_iq4_nl(x, y, cols, imatrix);
  }
  detail::fail_type(t);
}

/// Dequantizes one row (no validation), exactly as ggml's to_float.
inline void dequantize_row(type t, const std::uint8_t* y, float* x, std::size_t cols) {
  switch (t) {
    case type::f16:
      for (std::size_t j = 0; j < cols; ++j) x[j] = detail::load_f16(y + 2 * j);
      return;
    case type::bf16:
      for (std::size_t j = 0; j < cols; ++j) x[j] = ::pare::bf16_to_float(detail::load_u16(y + 2 * j));
      return;
    case type::q8_0: return dequantize_row_q8_0(y, x, cols);
    case type::q4_0: return dequantize_row_q4_0(y, x, cols);
    case type::q4_1: return dequantize_row_q4_1(y, x, cols);
    case type::q5_0: return dequantize_row_q5_0(y, x, cols);
    case type::q5_1: return dequantize_row_q5_1(y, x, cols);
    case type::q2_K: return dequantize_row_q2_K(y, x, cols);
    case type::q3_K: return dequantize_row_q3_K(y, x, cols);
    case type::q4_K: return dequantize_row_q4_K(y, x, cols);
    case type::q5_K: return dequantize_row_q5_K(y, x, cols);
    case type::q6_K: return dequantize_row_q6_K(y, x, cols);
    case type::iq4_nl: return dequantize_row_iq4_nl(y, x, cols);
  }
  detail::fail_type(t);
}

/// A matrix in one ggml format: rows × cols elements stored as rows · row_bytes(type, cols) bytes.
class ggml_tensor {
 public:
  ggml_tensor() = default;
  /// Takes ownership of `bytes`; shape_error unless its size is rows · row_bytes(t, cols).
  ggml_tensor(type t, std::size_t rows, std::size_t cols, std::vector<std::uint8_t> bytes)
      : type_(t), rows_(rows), cols_(cols), bytes_(std::move(bytes)) {
    const std::size_t rb = ::pare::ggml::row_bytes(t, cols, "pare::ggml::ggml_tensor");
    if (rows == 0 || bytes_.size() != rows * rb)
      ::pare::detail::fail<shape_error>("pare::ggml::ggml_tensor: argument 'bytes': expected ", rows, " rows of ", rb,
                                        " bytes (", to_string(t), ", ", cols, " columns) = ", rows * rb,
                                        " bytes, got ", bytes_.size());
  }

  type format() const noexcept { return type_; }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t row_bytes() const { return ::pare::ggml::row_bytes(type_, cols_); }
  const std::vector<std::uint8_t>& bytes() const noexcept { return bytes_; }
  const std::uint8_t* row(std::size_t i) const { return bytes_.data() + i * row_bytes(); }
  /// Storage bits per weight (scales included).
  double bits_per_weight() const { return ::pare::ggml::bits_per_weight(type_); }

  /// Dequantizes into y [rows, cols] (any strides).
  void dequantize_into(matrix_view<float> y) const {
    if (y.rows() != rows_ || y.cols() != cols_)
      ::pare::detail::fail<shape_error>("pare::ggml::ggml_tensor::dequantize_into: argument 'y': expected [", rows_, ", ",
                                        cols_, "], got ", y.shape());
    const std::size_t rb = row_bytes();
    parallel_for(0, rows_, 1, [&](std::size_t lo, std::size_t hi) {
      std::vector<float> tmp(y.col_stride() == 1 ? 0 : cols_);
      for (std::size_t i = lo; i < hi; ++i) {
        if (y.col_stride() == 1) {
          dequantize_row(type_, bytes_.data() + i * rb, &y(i, 0), cols_);
        } else {
          dequantize_row(type_, bytes_.data() + i * rb, tmp.data(), cols_);
          for (std::size_t j = 0; j < cols_; ++j) y(i, j) = tmp[j];
        }
      }
    });
  }

  /// The dequantized matrix, row-major.
  std::vector<float> dequantize() const {
    std::vector<float> out(rows_ * cols_);
    dequantize_into(matrix_view<float>(out.data(), rows_, cols_));
    return out;
  }

 private:
  type type_ = type::f16;
  std::size_t rows_ = 0, cols_ = 0;
  std::vector<std::uint8_t> bytes_;
};

namespace detail {
/// Validates w and imatrix for quantize(); throws before anything is written.
inline void check_quantize_args(matrix_view<const float> w, type t, const std::vector<float>& imatrix,
                                const char* where) {
  row_bytes(t, w.cols(), where);
  if (w.rows() == 0) ::pare::detail::fail<shape_error>(where, ": argument 'w': expected at least one row, got ", w.shape());
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j)
      if (!std::isfinite(w(i, j)))
        ::pare::detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", w(i, j), " at (", i,
                                          ", ", j, ")");
  if (!imatrix.empty()) {
    if (imatrix.size() != w.cols())
      ::pare::detail::fail<shape_error>(where, ": argument 'imatrix': expected ", w.cols(),
                                        " entries (one per column), got ", imatrix.size());
    for (std::size_t j = 0; j < imatrix.size(); ++j)
      if (!std::isfinite(imatrix[j]) || imatrix[j] < 0)
        ::pare::detail::fail<value_error>(where, ": argument 'imatrix': expected finite non-negative weights, got ",
                                          imatrix[j], " at column ", j);
  }
}
}  // namespace detail

/// Quantizes w [rows, cols] (any strides) to `t`, as ggml_quantize_chunk does; `imatrix`
/// (one non-negative weight per column, or empty) is ggml's importance matrix.
inline ggml_tensor quantize(matrix_view<const float> w, type t, const std::vector<float>& imatrix = {}) {
  const char* where = "pare::ggml::quantize";
  detail::check_quantize_args(w, t, imatrix, where);
  const std::size_t rows = w.rows(), cols = w.cols(), rb = row_bytes(t, cols);
  std::vector<std::uint8_t> bytes(rows * rb);
  const float* qw = imatrix.empty() ? nullptr : imatrix.data();
  parallel_for(0, rows, 1, [&](std::size_t lo, std::size_t hi) {
    std::vector<float> tmp(w.col_stride() == 1 ? 0 : cols);
    for (std::size_t i = lo; i < hi; ++i) {
      if (w.col_stride() == 1) {
        quantize_row(t, &w(i, 0), bytes.data() + i * rb, cols, qw);
      } else {
        for (std::size_t j = 0; j < cols; ++j) tmp[j] = w(i, j);
        quantize_row(t, tmp.data(), bytes.data() + i * rb, cols, qw);
      }
    }
  });
  return ggml_tensor(t, rows, cols, std::move(bytes));
}

/// y = dequantize(quantize(x, t, imatrix)) for x [rows, cols] (QAT-style fake quantization through ggml's format).
inline void fake_quantize(matrix_view<const float> x, type t, matrix_view<float> y, const std::vector<float>& imatrix = {}) {
  if (y.rows() != x.rows() || y.cols() != x.cols())
    ::pare::detail::fail<shape_error>("pare::ggml::fake_quantize: argument 'y': expected ", x.shape(), ", got ", y.shape());
  quantize(x, t, imatrix).dequantize_into(y);
}

}  // namespace ggml
PARE_NAMESPACE_END
