# ctest "packaging: vcpkg install" / "packaging: conan package": runs the CMake commands that pare's vcpkg port or conan recipe runs, then checks what they install.
#
# cmake -DTOOL=vcpkg|conan -DSOURCE_DIR=<pare> -DWORK=<scratch dir> -DPREFIX=<where the package ends up>
#       -DVERSION=<x.y.z> -DCXX=<compiler> [-DNINJA=<ninja>] [-DGENERATOR=<fallback> -DMAKE_PROGRAM=...]
#       -P install_check.cmake
#
# vcpkg (ports/vcpkg/pare, as `vcpkg install pare[linalg]` on x64-linux): the port's configure
# options are read from portfile.cmake, so the commands follow the port. The package ends in
# PREFIX with pare's own CMake files; the consumer tests use it. Not replicated: vcpkg's toolchain
# file (scripts/buildsystems/vcpkg.cmake, which needs a vcpkg root: here the system packages are
# found instead) and vcpkg_cmake_config_fixup (moves share/cmake/pare to share/pare and rewrites
# the relative prefix).
# conan (ports/conan/conanfile.py, as `conan create ports/conan` with Conan 2's default Linux
# profile): the cache variables are read from the recipe's generate(); conan_toolchain.cmake is
# replaced by a stand-in with the lines CMakeToolchain writes that matter here. Consumers of the
# conan package get pare-config.cmake from CMakeDeps (package_info), which needs conan to test.
cmake_minimum_required(VERSION 3.16)
foreach(_v TOOL SOURCE_DIR WORK PREFIX VERSION CXX)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "install_check.cmake: -D${_v}=... is required")
  endif()
endforeach()

# run_step(what dir command...): runs the command in dir, prints it and its output.
function(run_step what dir)
  string(REPLACE ";" " " _line "${ARGN}")
  message(STATUS "${what} (in ${dir}): ${_line}")
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${dir}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  message("${_out}")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${_rc})")
  endif()
  set(step_output "${_out}" PARENT_SCOPE)
endfunction()

# Every header of the source tree is installed, and nothing else below include/; no libraries.
function(check_headers_only prefix)
  file(GLOB_RECURSE _src RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/pare/*.hpp")
  file(GLOB_RECURSE _inst RELATIVE "${prefix}/include" "${prefix}/include/*")
  list(SORT _src)
  list(SORT _inst)
  if(NOT _src STREQUAL _inst)
    set(_missing ${_src})
    list(REMOVE_ITEM _missing ${_inst})
    set(_extra ${_inst})
    list(REMOVE_ITEM _extra ${_src})
    message(FATAL_ERROR "${prefix}/include differs from the source headers: missing '${_missing}', extra '${_extra}'")
  endif()
  file(GLOB_RECURSE _all RELATIVE "${prefix}" "${prefix}/*")
  foreach(_f IN LISTS _all)
    if(_f MATCHES "\\.(a|so|dylib|lib|dll)$" OR _f MATCHES "\\.so\\.")
      message(FATAL_ERROR "a header-only package has a library: ${_f}")
    endif()
  endforeach()
  list(LENGTH _src _n)
  message(STATUS "${_n} headers installed, every one of include/pare/, nothing else below include/, no library")
endfunction()

# Nothing in the package's CMake files names the source, build or staging directories or a system path.
function(check_relocatable dir)
  file(GLOB _files "${dir}/*.cmake")
  foreach(_f IN LISTS _files)
    file(READ "${_f}" _text)
    foreach(_abs "${SOURCE_DIR}" "${WORK}" "${PREFIX}" "/usr/")
      string(FIND "${_text}" "${_abs}" _at)
      if(NOT _at EQUAL -1)
        message(FATAL_ERROR "${_f} contains the absolute path ${_abs}")
      endif()
    endforeach()
  endforeach()
endfunction()

# The version file as find_package evaluates it: SameMajorVersion, and ARCH_INDEPENDENT
# (a 32-bit consumer of this 64-bit install must be accepted).
function(pare_check_version cmake_dir requested expect_compatible)
  string(REPLACE "." ";" _parts "${requested}")
  list(GET _parts 0 PACKAGE_FIND_VERSION_MAJOR)
  list(GET _parts 1 PACKAGE_FIND_VERSION_MINOR)
  set(PACKAGE_FIND_VERSION "${requested}")
  set(PACKAGE_FIND_VERSION_COUNT 2)
  set(PACKAGE_FIND_VERSION_PATCH 0)
  set(PACKAGE_FIND_VERSION_TWEAK 0)
  set(PACKAGE_FIND_NAME pare)
  set(CMAKE_SIZEOF_VOID_P 4)
  include("${cmake_dir}/pareConfigVersion.cmake")
  if(NOT PACKAGE_VERSION STREQUAL "${VERSION}")
    message(FATAL_ERROR "pareConfigVersion.cmake says version '${PACKAGE_VERSION}', expected ${VERSION}")
  endif()
  if(PACKAGE_VERSION_UNSUITABLE)
    message(FATAL_ERROR "pareConfigVersion.cmake is unsuitable for a 32-bit consumer: it must be ARCH_INDEPENDENT")
  endif()
  if(expect_compatible AND NOT PACKAGE_VERSION_COMPATIBLE)
    message(FATAL_ERROR "pare ${VERSION} refuses a request for ${requested}")
  elseif(NOT expect_compatible AND PACKAGE_VERSION_COMPATIBLE)
    message(FATAL_ERROR "pare ${VERSION} accepts a request for ${requested}; SameMajorVersion must refuse it")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK}" "${PREFIX}")

if(TOOL STREQUAL "vcpkg")
  set(_port "${SOURCE_DIR}/ports/vcpkg/pare")
  file(READ "${_port}/vcpkg.json" _manifest)
  string(REGEX MATCH "\"version\": \"([^\"]*)\"" _m "${_manifest}")
  set(_port_version "${CMAKE_MATCH_1}")
  if(NOT _port_version STREQUAL VERSION OR NOT _manifest MATCHES "\"features\": {[ \r\n]*\"linalg\": {")
    message(FATAL_ERROR "ports/vcpkg/pare/vcpkg.json: version '${_port_version}' (expected ${VERSION}), or no feature linalg")
  endif()
  file(READ "${_port}/portfile.cmake" _portfile)
  # OPTIONS of vcpkg_cmake_configure (-DPARE_...=...), and vcpkg_check_features' FEATURES
  # "linalg PARE_WITH_LAPACK": ${FEATURE_OPTIONS} is -DPARE_WITH_LAPACK=ON for pare[linalg].
  string(REGEX MATCHALL "-DPARE_[A-Z_]+=[A-Z]+" _port_options "${_portfile}")
  if(NOT _portfile MATCHES "FEATURES[ \t\r\n]+linalg[ \t]+(PARE_[A-Z_]+)")
    message(FATAL_ERROR "portfile.cmake maps no feature linalg to a PARE_ option")
  endif()
  set(_feature_options "-D${CMAKE_MATCH_1}=ON")
  if(NOT _portfile MATCHES "vcpkg_cmake_config_fixup\\(CONFIG_PATH ([^ )]+)\\)")
    message(FATAL_ERROR "portfile.cmake has no vcpkg_cmake_config_fixup(CONFIG_PATH ...)")
  endif()
  set(_config_path "${CMAKE_MATCH_1}")

  # vcpkg_cmake_configure, release only (the port sets VCPKG_BUILD_TYPE release): run in
  # buildtrees/pare/x64-linux-rel, installing into packages/pare_x64-linux.
  set(_build "${WORK}/x64-linux-rel")
  set(_packages "${PREFIX}-packages")
  file(REMOVE_RECURSE "${_packages}")
  file(MAKE_DIRECTORY "${_build}")
  if(NINJA)
    set(_gen -G Ninja "-DCMAKE_MAKE_PROGRAM=${NINJA}")  # vcpkg_cmake_configure: Ninja on every non-Windows host
    set(_gen_args -- -v -j2)                           # vcpkg_cmake_build: Ninja's -v -j<VCPKG_CONCURRENCY>
  else()
    message(STATUS "no ninja: the ${GENERATOR} generator stands in for vcpkg's Ninja")
    set(_gen -G "${GENERATOR}")
    if(MAKE_PROGRAM)
      list(APPEND _gen "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
    endif()
    set(_gen_args)
  endif()
  set(_configure "${CMAKE_COMMAND}" "${SOURCE_DIR}"
      ${_port_options} ${_feature_options}                # the port's OPTIONS
      "-DCMAKE_CXX_COMPILER=${CXX}"                       # stands in for the triplet's toolchain (scripts/toolchains/linux.cmake)
      -DBUILD_SHARED_LIBS=OFF                             # VCPKG_LIBRARY_LINKAGE static (x64-linux)
      -DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON               # the rest: vcpkg_cmake_configure's fixed arguments
      -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
      -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON
      -DCMAKE_INSTALL_SYSTEM_RUNTIME_LIBS_SKIP=TRUE
      -DCMAKE_VERBOSE_MAKEFILE=ON
      -DVCPKG_APPLOCAL_DEPS=OFF
      -DCMAKE_ERROR_ON_ABSOLUTE_INSTALL_DESTINATION=ON
      -DCMAKE_INSTALL_LIBDIR:STRING=lib
      -DCMAKE_INSTALL_BINDIR:STRING=bin
      -DVCPKG_MANIFEST_INSTALL=OFF
      ${_gen}
      -DCMAKE_BUILD_TYPE=Release
      "-DCMAKE_INSTALL_PREFIX=${_packages}")
  run_step("vcpkg_cmake_configure" "${_build}" ${_configure})
  # vcpkg warns about port OPTIONS the project does not use.
  string(REGEX MATCH "Manually-specified variables were not used by the project:\n\n(    [^\n]*\n)*" _unused "${step_output}")
  if(_unused MATCHES "PARE_[A-Z_]+")
    message(FATAL_ERROR "pare does not use the port's option ${CMAKE_MATCH_0}")
  endif()
  # vcpkg_cmake_install = vcpkg_cmake_build(TARGET install)
  run_step("vcpkg_cmake_install" "${_build}" "${CMAKE_COMMAND}" --build . --config Release --target install ${_gen_args})
  if(NOT EXISTS "${_packages}/${_config_path}/pareConfig.cmake")
    message(FATAL_ERROR "vcpkg_cmake_config_fixup(CONFIG_PATH ${_config_path}) would find no pareConfig.cmake")
  endif()
  # vcpkg copies packages/pare_x64-linux into installed/x64-linux: the package must not care where it is.
  file(RENAME "${_packages}" "${PREFIX}")

  check_headers_only("${PREFIX}")
  set(_cmake_dir "${PREFIX}/${_config_path}")
  foreach(_f pareConfig.cmake pareConfigVersion.cmake pareTargets.cmake pareLinalgTargets.cmake pareLapacke.cmake)
    if(NOT EXISTS "${_cmake_dir}/${_f}")
      message(FATAL_ERROR "the install lacks ${_config_path}/${_f}")
    endif()
  endforeach()
  check_relocatable("${_cmake_dir}")
  # pare::pare (pareTargets.cmake) knows nothing of BLAS/LAPACK; pare::linalg links pare::pare and
  # pare::lapacke, which pareLapacke.cmake defines on the consumer's machine.
  file(READ "${_cmake_dir}/pareTargets.cmake" _targets)
  string(TOLOWER "${_targets}" _targets_lc)
  if(_targets_lc MATCHES "lapack|blas")
    message(FATAL_ERROR "pareTargets.cmake (pare::pare, pare::native) mentions BLAS/LAPACK")
  endif()
  file(READ "${_cmake_dir}/pareLinalgTargets.cmake" _linalg)
  if(NOT _linalg MATCHES "INTERFACE_LINK_LIBRARIES \"pare::pare;pare::lapacke\"")
    message(FATAL_ERROR "pareLinalgTargets.cmake: pare::linalg must link exactly pare::pare;pare::lapacke")
  endif()
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" _mm "${VERSION}")
  pare_check_version("${_cmake_dir}" "${_mm}" TRUE)
  pare_check_version("${_cmake_dir}" "1.0" FALSE)
  pare_check_version("${_cmake_dir}" "99.0" FALSE)
  message(STATUS "pare ${VERSION} as vcpkg installs pare[linalg], in ${PREFIX}: headers, pare::pare without "
                 "BLAS/LAPACK, pare::linalg, no absolute paths, version file SameMajorVersion and arch independent")

elseif(TOOL STREQUAL "conan")
  set(_recipe_file "${SOURCE_DIR}/ports/conan/conanfile.py")
  file(READ "${_recipe_file}" _recipe)
  foreach(_must "package_type = \"header-library\"" "def package_id(self):\n        self.info.clear()"
                "cmake.configure()" "cmake.install()" "rmdir(self, os.path.join(self.package_folder, \"share\"))")
    string(FIND "${_recipe}" "${_must}" _at)
    if(_at EQUAL -1)
      message(FATAL_ERROR "ports/conan/conanfile.py lacks '${_must}' (this test replicates it)")
    endif()
  endforeach()
  # set_version() reads PARE_VERSION_STRING from include/pare/version.hpp.
  file(STRINGS "${SOURCE_DIR}/include/pare/version.hpp" _vline REGEX "#define PARE_VERSION_STRING \"")
  if(NOT _vline MATCHES "#define PARE_VERSION_STRING \"${VERSION}\"")
    message(FATAL_ERROR "the recipe's set_version() would read '${_vline}', expected version ${VERSION}")
  endif()
  # generate(): tc.cache_variables["PARE_..."] = "..." become -D arguments of cmake.configure().
  string(REGEX MATCHALL "tc\\.cache_variables\\[\"[A-Z_]+\"\\] = \"[A-Z]+\"" _vars "${_recipe}")
  set(_cache_args "")
  foreach(_v IN LISTS _vars)
    string(REGEX REPLACE "tc\\.cache_variables\\[\"([A-Z_]+)\"\\] = \"([A-Z]+)\"" "-D\\1=\\2" _arg "${_v}")
    list(APPEND _cache_args "${_arg}")
  endforeach()
  if(NOT _cache_args MATCHES "PARE_BUILD_TESTS=OFF")
    message(FATAL_ERROR "no PARE_ cache variables found in the recipe's generate()")
  endif()

  # cmake_layout with build_type=Release: build/Release, generators in build/Release/generators.
  set(_build "${WORK}/build/Release")
  set(_generators "${_build}/generators")
  file(MAKE_DIRECTORY "${_generators}")
  # Stand-in for conan_toolchain.cmake (CMakeToolchain, default profile: gcc, libstdc++11,
  # cppstd gnu17, x86_64), the blocks that act on this package; CMakeDeps' files would sit in
  # the generators folder, here the system packages are found.
  file(WRITE "${_generators}/conan_toolchain.cmake" "# Stand-in for Conan's conan_toolchain.cmake (tests/packaging/install_check.cmake).
set(CMAKE_CXX_COMPILER \"${CXX}\")                         # compilers block
string(APPEND CMAKE_CXX_FLAGS_INIT \" -m64\")                # arch_flags block
add_compile_definitions(_GLIBCXX_USE_CXX11_ABI=1)           # libcxx block
set(CMAKE_CXX_STANDARD 17)                                  # cppstd block
set(CMAKE_CXX_EXTENSIONS ON)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_FIND_PACKAGE_PREFER_CONFIG ON)                    # find_paths block
list(PREPEND CMAKE_PREFIX_PATH \"${_generators}\")
set(CMAKE_INSTALL_PREFIX \"${PREFIX}\")                     # output_dirs block
set(CMAKE_INSTALL_BINDIR \"bin\")
set(CMAKE_INSTALL_SBINDIR \"bin\")
set(CMAKE_INSTALL_LIBEXECDIR \"bin\")
set(CMAKE_INSTALL_LIBDIR \"lib\")
set(CMAKE_INSTALL_INCLUDEDIR \"include\")
set(CMAKE_INSTALL_OLDINCLUDEDIR \"include\")
")
  # package(): copy(LICENSE), cmake.configure(), cmake.install(), rmdir(share)
  file(COPY "${SOURCE_DIR}/LICENSE" DESTINATION "${PREFIX}/licenses")
  run_step("CMake.configure()" "${_build}" "${CMAKE_COMMAND}" -G "Unix Makefiles"
           "-DCMAKE_TOOLCHAIN_FILE=${_generators}/conan_toolchain.cmake" "-DCMAKE_INSTALL_PREFIX=${PREFIX}"
           ${_cache_args} -DCMAKE_POLICY_DEFAULT_CMP0091=NEW -DCMAKE_BUILD_TYPE=Release "${SOURCE_DIR}")
  run_step("CMake.install()" "${_build}" "${CMAKE_COMMAND}" --install "${_build}" --prefix "${PREFIX}")
  # Built with PARE_WITH_LAPACK=OFF: pare's own CMake files (dropped next) have no pare::linalg.
  foreach(_f pareLinalgTargets.cmake pareLapacke.cmake)
    if(EXISTS "${PREFIX}/share/cmake/pare/${_f}")
      message(FATAL_ERROR "an install with PARE_WITH_LAPACK=OFF has share/cmake/pare/${_f}")
    endif()
  endforeach()
  if(NOT EXISTS "${PREFIX}/share/cmake/pare/pareConfig.cmake")
    message(FATAL_ERROR "cmake --install wrote no share/cmake/pare/pareConfig.cmake")
  endif()
  file(REMOVE_RECURSE "${PREFIX}/share")

  check_headers_only("${PREFIX}")
  file(GLOB _top RELATIVE "${PREFIX}" "${PREFIX}/*")
  list(SORT _top)
  if(NOT _top STREQUAL "include;licenses" OR NOT EXISTS "${PREFIX}/licenses/LICENSE")
    message(FATAL_ERROR "the conan package holds '${_top}', expected include/ and licenses/LICENSE only")
  endif()
  message(STATUS "pare ${VERSION} as conan packages it, in ${PREFIX}: include/ (every header) and licenses/ only")
else()
  message(FATAL_ERROR "install_check.cmake: TOOL is '${TOOL}', expected vcpkg or conan")
endif()
