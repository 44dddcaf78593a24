// Tests of the pare::error hierarchy and message builder.
#include <catch2/catch.hpp>

#include "pare/core/error.hpp"

TEST_CASE("every pare exception derives from pare::error and carries its message") {
  CHECK_THROWS_AS(pare::detail::fail<pare::shape_error>("a ", 1), pare::error);
  CHECK_THROWS_AS(pare::detail::fail<pare::argument_error>("b"), pare::error);
  CHECK_THROWS_AS(pare::detail::fail<pare::value_error>("c"), pare::error);
  CHECK_THROWS_AS(pare::detail::fail<pare::format_error>("d"), pare::error);
  CHECK_THROWS_AS(pare::detail::fail<pare::io_error>("e"), pare::error);
  CHECK_THROWS_AS(pare::detail::fail<pare::unsupported_error>("f"), pare::error);
  CHECK_THROWS_WITH(pare::detail::fail<pare::argument_error>("q: argument 'bits': expected [2, 8], got ", 9),
                    "q: argument 'bits': expected [2, 8], got 9");
}
