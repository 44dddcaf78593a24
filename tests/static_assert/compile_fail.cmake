# cmake -P script: compiles SOURCE (-fsyntax-only) and requires the outcome its "// expect:" line states.
# Variables: CXX (compiler), INCLUDE (pare's include dir), SOURCE.
# "// expect: compiles" — must compile; "// expect: <regex>" — must fail with a message matching it.
file(STRINGS "${SOURCE}" expect_line REGEX "^// expect: ")
string(REGEX REPLACE "^// expect: " "" expect "${expect_line}")
execute_process(COMMAND "${CXX}" -std=c++17 -fsyntax-only -I "${INCLUDE}" "${SOURCE}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(expect STREQUAL "compiles")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} should compile:\n${err}")
  endif()
elseif(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but a static_assert matching '${expect}' was expected")
elseif(NOT err MATCHES "${expect}")
  message(FATAL_ERROR "${SOURCE} failed without a message matching '${expect}':\n${err}")
endif()
