// Non-owning strided views (tensor_view, matrix_view) over memory that pare or an engine owns.
#pragma once

// Terms
// -----
// A view is a pointer to the first element, a shape and strides. Strides are counted
// in elements (not bytes) and may be zero (broadcast) or negative. A view never owns
// or copies memory: the caller keeps the memory alive for as long as the view is used.
// `tensor_view<const T>` is the read-only form; every `tensor_view<T>` converts to it.
//
// Weight matrices follow the [out_features, in_features] row-major convention of
// PyTorch and GGUF: row i of a weight matrix holds the weights of output i.
//
// `is_contiguous()` means dense row-major (C order): the last stride is 1 and each
// earlier stride is the product of the later extents (axes of extent 1 may have any
// stride). Contiguous views can be reshaped; strided ones cannot.

#include <array>
#include <climits>
#include <cstdint>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <type_traits>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// Largest rank a tensor_view can hold.
inline constexpr std::size_t max_rank = 8;

/// A shape: up to max_rank extents, printable as "[2, 3]".
class shape_t {
 public:
  shape_t() = default;
  shape_t(std::initializer_list<std::size_t> extents) {
    if (extents.size() > max_rank)
      detail::fail<shape_error>("shape: rank must be at most ", max_rank, ", got ", extents.size());
    for (std::size_t e : extents) dims_[rank_++] = e;
  }
  template <class It>
  shape_t(It first, It last) {
    for (; first != last; ++first) {
      if (rank_ == max_rank)
        detail::fail<shape_error>("shape: rank must be at most ", max_rank);
      dims_[rank_++] = static_cast<std::size_t>(*first);
    }
  }
  std::size_t rank() const noexcept { return rank_; }
  std::size_t operator[](std::size_t i) const noexcept { return dims_[i]; }
  std::size_t& operator[](std::size_t i) noexcept { return dims_[i]; }
  std::size_t size() const noexcept {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  const std::size_t* begin() const noexcept { return dims_.data(); }
  const std::size_t* end() const noexcept { return dims_.data() + rank_; }
  friend bool operator==(const shape_t& a, const shape_t& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend bool operator!=(const shape_t& a, const shape_t& b) noexcept { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const shape_t& s) {
    os << '[';
    for (std::size_t i = 0; i < s.rank_; ++i) os << (i ? ", " : "") << s.dims_[i];
    return os << ']';
  }
  std::string str() const { return detail::concat(*this); }

 private:
  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

/// Throws shape_error naming `what` and printing both shapes unless they are equal.
inline void check_same_shape(const char* what, const shape_t& expected, const shape_t& got) {
  if (expected != got)
    detail::fail<shape_error>(what, ": shapes disagree: expected ", expected, ", got ", got);
}

template <class T>
class matrix_view;

/// N-dimensional non-owning strided view. See the essay at the top of this file.
template <class T>
class tensor_view {
 public:
  using value_type = std::remove_cv_t<T>;
  using element_type = T;
  using strides_t = std::array<std::ptrdiff_t, max_rank>;

  tensor_view() = default;

  /// Contiguous row-major view of `shape` starting at `data`.
  tensor_view(T* data, const shape_t& shape) : data_(data), shape_(shape) {
    std::ptrdiff_t s = 1;
    for (std::size_t i = shape.rank(); i-- > 0;) {
      strides_[i] = s;
      s *= static_cast<std::ptrdiff_t>(shape[i]);
    }
  }

  /// View with explicit strides in elements (`strides` has one entry per axis).
  tensor_view(T* data, const shape_t& shape, std::initializer_list<std::ptrdiff_t> strides)
      : data_(data), shape_(shape) {
    if (strides.size() != shape.rank())
      detail::fail<shape_error>("tensor_view: argument 'strides': expected ", shape.rank(),
                                " strides for shape ", shape, ", got ", strides.size());
    std::size_t i = 0;
    for (std::ptrdiff_t s : strides) strides_[i++] = s;
  }

  tensor_view(T* data, const shape_t& shape, const strides_t& strides)
      : data_(data), shape_(shape), strides_(strides) {}

  /// Read-only conversion.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  tensor_view(const tensor_view<U>& other)  // NOLINT(google-explicit-constructor)
      : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

  T* data() const noexcept { return data_; }
  const shape_t& shape() const noexcept { return shape_; }
  const strides_t& strides() const noexcept { return strides_; }
  std::size_t rank() const noexcept { return shape_.rank(); }
  std::size_t extent(std::size_t axis) const noexcept { return shape_[axis]; }
  std::ptrdiff_t stride(std::size_t axis) const noexcept { return strides_[axis]; }
  std::size_t size() const noexcept { return shape_.size(); }
  bool empty() const noexcept { return size() == 0; }

  /// True when the view is dense row-major (see the essay above).
  bool is_contiguous() const noexcept {
    std::ptrdiff_t expect = 1;
    for (std::size_t i = rank(); i-- > 0;) {
      if (shape_[i] != 1 && strides_[i] != expect) return false;
      expect *= static_cast<std::ptrdiff_t>(shape_[i]);
    }
    return true;
  }

  /// Element access by one index per axis (unchecked).
  template <class... I>
  T& operator()(I... idx) const noexcept {
    static_assert((std::is_integral_v<I> && ...), "tensor_view::operator(): indices must be integers");
    const std::ptrdiff_t ii[] = {static_cast<std::ptrdiff_t>(idx)...};
    std::ptrdiff_t off = 0;
    for (std::size_t a = 0; a < sizeof...(I); ++a) off += ii[a] * strides_[a];
    return data_[off];
  }

  /// Checked element access: throws shape_error on a wrong index count or range.
  T& at(std::initializer_list<std::size_t> idx) const {
    if (idx.size() != rank())
      detail::fail<shape_error>("tensor_view::at: expected ", rank(), " indices for shape ", shape_,
                                ", got ", idx.size());
    std::ptrdiff_t off = 0;
    std::size_t a = 0;
    for (std::size_t i : idx) {
      if (i >= shape_[a])
        detail::fail<shape_error>("tensor_view::at: index ", i, " on axis ", a, " is outside shape ", shape_);
      off += static_cast<std::ptrdiff_t>(i) * strides_[a++];
    }
    return data_[off];
  }

  /// Sub-view with the first axis fixed at `i` (rank drops by one).
  tensor_view operator[](std::size_t i) const {
    if (rank() == 0) detail::fail<shape_error>("tensor_view::operator[]: cannot index a rank-0 view");
    if (i >= shape_[0])
      detail::fail<shape_error>("tensor_view::operator[]: index ", i, " outside shape ", shape_);
    tensor_view r;
    r.data_ = data_ + static_cast<std::ptrdiff_t>(i) * strides_[0];
    r.shape_ = shape_t(shape_.begin() + 1, shape_.end());
    for (std::size_t a = 1; a < rank(); ++a) r.strides_[a - 1] = strides_[a];
    return r;
  }

  /// Sub-view keeping indices [begin, end) of `axis`.
  tensor_view slice(std::size_t axis, std::size_t begin, std::size_t end) const {
    if (axis >= rank())
      detail::fail<shape_error>("tensor_view::slice: axis ", axis, " outside rank ", rank(), " of shape ", shape_);
    if (begin > end || end > shape_[axis])
      detail::fail<shape_error>("tensor_view::slice: range [", begin, ", ", end, ") outside extent ",
                                shape_[axis], " of axis ", axis, " in shape ", shape_);
    tensor_view r = *this;
    r.data_ = data_ + static_cast<std::ptrdiff_t>(begin) * strides_[axis];
    r.shape_[axis] = end - begin;
    return r;
  }

  /// Same memory with a new shape; requires a contiguous view of equal size.
  tensor_view reshape(const shape_t& new_shape) const {
    if (new_shape.size() != size())
      detail::fail<shape_error>("tensor_view::reshape: sizes differ: shape ", shape_, " has ", size(),
                                " elements, new shape ", new_shape, " has ", new_shape.size());
    if (!is_contiguous())
      detail::fail<shape_error>("tensor_view::reshape: view of shape ", shape_, " is not contiguous");
    return tensor_view(data_, new_shape);
  }

  /// The 2-D view of a rank-2 tensor (rank-1 becomes one row).
  matrix_view<T> as_matrix() const;

 private:
  T* data_ = nullptr;
  shape_t shape_{};
  strides_t strides_{};
};

/// Two-dimensional non-owning strided view; the common case for weight matrices
/// ([out_features, in_features], row-major) and activation batches ([tokens, features]).
template <class T>
class matrix_view {
 public:
  using value_type = std::remove_cv_t<T>;
  using element_type = T;

  matrix_view() = default;

  /// Marks "rows follow each other densely" for the row_stride argument.
  static constexpr std::ptrdiff_t dense = PTRDIFF_MIN;

  /// Row-major rows × cols starting at `data`, rows `row_stride` elements apart
  /// (default: cols, i.e. dense), elements `col_stride` apart within a row.
  matrix_view(T* data, std::size_t rows, std::size_t cols, std::ptrdiff_t row_stride = dense,
              std::ptrdiff_t col_stride = 1)
      : data_(data),
        rows_(rows),
        cols_(cols),
        row_stride_(row_stride == dense ? static_cast<std::ptrdiff_t>(cols) * col_stride : row_stride),
        col_stride_(col_stride) {}

  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  matrix_view(const matrix_view<U>& o)  // NOLINT(google-explicit-constructor)
      : data_(o.data()), rows_(o.rows()), cols_(o.cols()), row_stride_(o.row_stride()), col_stride_(o.col_stride()) {}

  T* data() const noexcept { return data_; }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t size() const noexcept { return rows_ * cols_; }
  bool empty() const noexcept { return size() == 0; }
  std::ptrdiff_t row_stride() const noexcept { return row_stride_; }
  std::ptrdiff_t col_stride() const noexcept { return col_stride_; }
  shape_t shape() const { return shape_t{rows_, cols_}; }

  /// Elements within a row are adjacent (col_stride 1): rows can be handed to kernels.
  bool has_contiguous_rows() const noexcept { return col_stride_ == 1 || cols_ <= 1; }
  /// Dense row-major: contiguous rows that follow each other without gaps.
  bool is_contiguous() const noexcept {
    return has_contiguous_rows() && (rows_ <= 1 || row_stride_ == static_cast<std::ptrdiff_t>(cols_));
  }

  T& operator()(std::size_t i, std::size_t j) const noexcept {
    return data_[static_cast<std::ptrdiff_t>(i) * row_stride_ + static_cast<std::ptrdiff_t>(j) * col_stride_];
  }

  /// Pointer to the first element of row i (rows are contiguous when col_stride is 1).
  T* row_ptr(std::size_t i) const noexcept { return data_ + static_cast<std::ptrdiff_t>(i) * row_stride_; }

  /// Row i as a rank-1 view.
  tensor_view<T> row(std::size_t i) const {
    if (i >= rows_) detail::fail<shape_error>("matrix_view::row: index ", i, " outside shape ", shape());
    return tensor_view<T>(row_ptr(i), shape_t{cols_}, {col_stride_});
  }

  /// Column j as a rank-1 view.
  tensor_view<T> col(std::size_t j) const {
    if (j >= cols_) detail::fail<shape_error>("matrix_view::col: index ", j, " outside shape ", shape());
    return tensor_view<T>(data_ + static_cast<std::ptrdiff_t>(j) * col_stride_, shape_t{rows_}, {row_stride_});
  }

  /// Sub-matrix of `nrows` × `ncols` starting at (r0, c0).
  matrix_view block(std::size_t r0, std::size_t c0, std::size_t nrows, std::size_t ncols) const {
    if (r0 + nrows > rows_ || c0 + ncols > cols_ || r0 + nrows < r0 || c0 + ncols < c0)
      detail::fail<shape_error>("matrix_view::block: block at (", r0, ", ", c0, ") of shape [", nrows, ", ",
                                ncols, "] does not fit in shape ", shape());
    return matrix_view(data_ + static_cast<std::ptrdiff_t>(r0) * row_stride_ + static_cast<std::ptrdiff_t>(c0) * col_stride_,
                       nrows, ncols, row_stride_, col_stride_);
  }

  /// Rows [begin, end).
  matrix_view rows_range(std::size_t begin, std::size_t end) const {
    if (begin > end) detail::fail<shape_error>("matrix_view::rows_range: begin ", begin, " > end ", end);
    return block(begin, 0, end - begin, cols_);
  }

  /// The transposed view (no copy).
  matrix_view transposed() const noexcept { return matrix_view(data_, cols_, rows_, col_stride_, row_stride_); }

  /// The same memory as a rank-2 tensor_view.
  tensor_view<T> as_tensor() const { return tensor_view<T>(data_, shape(), {row_stride_, col_stride_}); }

 private:
  T* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::ptrdiff_t row_stride_ = 0;
  std::ptrdiff_t col_stride_ = 1;
};

template <class T>
matrix_view<T> tensor_view<T>::as_matrix() const {
  if (rank() == 2) return matrix_view<T>(data_, shape_[0], shape_[1], strides_[0], strides_[1]);
  if (rank() == 1) return matrix_view<T>(data_, 1, shape_[0], static_cast<std::ptrdiff_t>(shape_[0]) * strides_[0], strides_[0]);
  detail::fail<shape_error>("tensor_view::as_matrix: expected a rank-1 or rank-2 view, got shape ", shape_);
}

/// Contiguous view over `n` elements at `p`.
template <class T>
tensor_view<T> view(T* p, std::size_t n) {
  return tensor_view<T>(p, shape_t{n});
}

/// Dense row-major matrix view over `rows*cols` elements at `p`.
template <class T>
matrix_view<T> matrix(T* p, std::size_t rows, std::size_t cols) {
  return matrix_view<T>(p, rows, cols);
}

/// Throws shape_error unless the two matrices have the same shape.
template <class A, class B>
void check_same_shape(const char* what, const matrix_view<A>& a, const matrix_view<B>& b) {
  check_same_shape(what, a.shape(), b.shape());
}

PARE_NAMESPACE_END
