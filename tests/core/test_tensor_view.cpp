// Tests of tensor_view / matrix_view: strides, sub-views, errors, and zero-copy xtensor interop.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "pare/core/xtensor_interop.hpp"
#if __has_include(<xtensor/containers/xtensor.hpp>)
#include <xtensor/containers/xadapt.hpp>
#include <xtensor/containers/xtensor.hpp>
#include <xtensor/views/xview.hpp>
#else
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>
#endif

TEST_CASE("contiguous tensor_view strides, element access and reshape") {
  std::vector<int> buf(24);
  std::iota(buf.begin(), buf.end(), 0);
  pare::tensor_view<int> v(buf.data(), {2, 3, 4});
  CHECK(v.rank() == 3);
  CHECK(v.size() == 24);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(2) == 1);
  CHECK(v.is_contiguous());
  CHECK(v(1, 2, 3) == 23);
  CHECK(v.at({1, 0, 2}) == 14);
  CHECK_THROWS_AS(v.at({2, 0, 0}), pare::shape_error);
  auto r = v.reshape({6, 4});
  CHECK(r(5, 3) == 23);
  CHECK_THROWS_WITH(v.reshape({5, 5}), Catch::Contains("[2, 3, 4]") && Catch::Contains("[5, 5]"));
  auto s = v[1];
  CHECK(s.rank() == 2);
  CHECK(s(0, 0) == 12);
  auto sl = v.slice(2, 1, 3);
  CHECK(sl.extent(2) == 2);
  CHECK(sl(0, 0, 0) == 1);
  CHECK_FALSE(sl.is_contiguous());
  CHECK_THROWS_AS(sl.reshape({12}), pare::shape_error);
  pare::tensor_view<const int> cv = v;  // read-only conversion
  CHECK(cv(0, 1, 1) == 5);
}

TEST_CASE("matrix_view rows, columns, blocks and transposition") {
  std::vector<float> buf(5 * 7);
  std::iota(buf.begin(), buf.end(), 0.0f);
  pare::matrix_view<float> m(buf.data(), 5, 7);
  CHECK(m.is_contiguous());
  CHECK(m(4, 6) == 34.0f);
  CHECK(m.row(2)(3) == 17.0f);
  CHECK(m.col(3)(4) == 31.0f);
  auto b = m.block(1, 2, 3, 4);
  CHECK(b(0, 0) == 9.0f);
  CHECK(b(2, 3) == 26.0f);
  CHECK(b.has_contiguous_rows());
  CHECK_FALSE(b.is_contiguous());
  auto t = m.transposed();
  CHECK(t.rows() == 7);
  CHECK(t(6, 4) == 34.0f);
  CHECK_FALSE(t.has_contiguous_rows());
  CHECK_THROWS_AS(m.block(4, 0, 2, 7), pare::shape_error);
  CHECK_THROWS_WITH(m.row(5), Catch::Contains("[5, 7]"));
  pare::matrix_view<const float> c = m;
  CHECK(c.as_tensor().shape() == pare::shape_t{5, 7});
}

TEST_CASE("check_same_shape prints both shapes") {
  CHECK_NOTHROW(pare::check_same_shape("f", pare::shape_t{2, 3}, pare::shape_t{2, 3}));
  CHECK_THROWS_WITH(pare::check_same_shape("f", pare::shape_t{2, 3}, pare::shape_t{3, 2}),
                    Catch::Contains("expected [2, 3], got [3, 2]"));
}

TEST_CASE("views of xtensor containers and adaptors share their memory") {
  xt::xtensor<float, 2> a = xt::zeros<float>({4, 6});
  auto v = pare::view(a);
  CHECK(v.data() == a.data());
  CHECK(v.shape() == pare::shape_t{4, 6});
  v(2, 5) = 7.5f;  // write through the view
  CHECK(a(2, 5) == 7.5f);
  auto m = pare::matrix_of(a);
  CHECK(&m(3, 1) == &a(3, 1));

  std::vector<double> raw(12, 0.0);
  auto ad = xt::adapt(raw.data(), raw.size(), xt::no_ownership(), std::vector<std::size_t>{3, 4});
  auto va = pare::view(ad);
  CHECK(va.data() == raw.data());
  va(1, 2) = 3.0;
  CHECK(raw[6] == 3.0);

  auto col = xt::view(a, xt::all(), 5);  // strided view, offset into a
  auto vc = pare::view(col);
  CHECK(&vc(2) == &a(2, 5));
  CHECK(vc(2) == 7.5f);

  xt::xtensor<int, 2, xt::layout_type::column_major> cm = xt::zeros<int>({3, 5});
  auto vcm = pare::view(cm);
  CHECK_FALSE(vcm.is_contiguous());
  vcm(1, 4) = 9;
  CHECK(cm(1, 4) == 9);
}
