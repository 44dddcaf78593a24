# vcpkg portfile of pare: header-only, installed by pare's own CMake rules; the feature linalg turns on PARE_WITH_LAPACK (pare::linalg).
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../../include/pare/version.hpp")
  # Used as an overlay port from a pare checkout (vcpkg install pare --overlay-ports=<pare>/ports/vcpkg):
  # the checkout itself is the source.
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
else()
  # Copied into a registry: the release tarball. REPO and SHA512 are filled in when a release is
  # tagged (with SHA512 0, vcpkg downloads the tarball and prints its SHA512).
  vcpkg_from_github(
      OUT_SOURCE_PATH SOURCE_PATH
      REPO pare-authors/pare
      REF "v${VERSION}"
      SHA512 0
      HEAD_REF main
  )
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        linalg PARE_WITH_LAPACK
)

set(VCPKG_BUILD_TYPE release) # header-only port

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DPARE_BUILD_TESTS=OFF
        -DPARE_BUILD_EXAMPLES=OFF
        -DPARE_BUILD_BENCH=OFF
        ${FEATURE_OPTIONS}
)

vcpkg_cmake_install()

# pare installs its package files to share/cmake/pare; vcpkg wants them in share/pare.
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/pare)

vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
