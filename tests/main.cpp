// Catch2 main for every pare test program.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
