# pare's own programs (tests, examples, benchmarks): warnings and optional sanitizers; never applied to pare::pare.
add_library(pare_dev_flags INTERFACE)
target_compile_options(pare_dev_flags INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Wall -Wextra -Wpedantic>)
option(PARE_WERROR "Treat warnings as errors in pare's own programs" OFF)
if(PARE_WERROR)
  target_compile_options(pare_dev_flags INTERFACE $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Werror>)
endif()
set(PARE_SANITIZE "" CACHE STRING "Sanitizers for pare's own programs, e.g. address,undefined")
if(PARE_SANITIZE)
  target_compile_options(pare_dev_flags INTERFACE -fsanitize=${PARE_SANITIZE} -fno-omit-frame-pointer
                         -fno-sanitize-recover=all)
  target_link_options(pare_dev_flags INTERFACE -fsanitize=${PARE_SANITIZE})
endif()
