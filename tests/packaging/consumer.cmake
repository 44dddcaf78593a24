# ctest "packaging: find_package/add_subdirectory/version": configures, builds and runs one consumer project.
#
# cmake -DSOURCE=<consumer dir> -DBINARY=<its build dir> -DGENERATOR=<gen> -DCXX=<compiler> -DCONFIG=<type>
#       [-DMAKE_PROGRAM=...] [-DCXX_FLAGS=...] [-DPREFIX=<install prefix>] [-DPARE_SOURCE_DIR=...]
#       [-DRUN=<program to run after the build>] [-DCONFIGURE_ONLY=ON] -P consumer.cmake
cmake_minimum_required(VERSION 3.16)
foreach(_v SOURCE BINARY GENERATOR CXX)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "consumer.cmake: -D${_v}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${BINARY}")  # a fresh configure every time: no stale cache hides a problem
set(_args -S "${SOURCE}" -B "${BINARY}" -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}"
          -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND _args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CONFIG)
  list(APPEND _args "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
if(DEFINED CXX_FLAGS)
  list(APPEND _args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(PREFIX)
  list(APPEND _args "-DCMAKE_PREFIX_PATH=${PREFIX}" "-DPARE_EXPECTED_PREFIX=${PREFIX}")
endif()
if(PARE_SOURCE_DIR)
  list(APPEND _args "-DPARE_SOURCE_DIR=${PARE_SOURCE_DIR}")
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" ${_args} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer ${SOURCE} failed (${_rc})")
endif()
if(CONFIGURE_ONLY)
  return()
endif()

set(_build_args --build "${BINARY}")
if(CONFIG)
  list(APPEND _build_args --config "${CONFIG}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" ${_build_args} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "building the consumer ${SOURCE} failed (${_rc})")
endif()

if(RUN)
  # Single-config generators put the program in the build dir, multi-config ones in <config>/.
  set(_exe "${BINARY}/${RUN}${CMAKE_EXECUTABLE_SUFFIX}")
  if(NOT EXISTS "${_exe}" AND CONFIG)
    set(_exe "${BINARY}/${CONFIG}/${RUN}${CMAKE_EXECUTABLE_SUFFIX}")
  endif()
  execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "the consumer program ${_exe} failed (${_rc})")
  endif()
endif()
