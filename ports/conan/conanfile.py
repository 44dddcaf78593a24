# Conan 2 recipe of pare (header-only): pare's own CMake install makes the package; CMakeDeps gets pare::pare and, with with_linalg, pare::linalg.
import os
import re

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class PareConan(ConanFile):
    name = "pare"
    description = ("Header-only C++17 library for compressing large language models: quantization, pruning, "
                   "low-rank factorization, SIMD kernels chosen at run time")
    license = "MIT"
    topics = ("llm", "quantization", "pruning", "low-rank", "simd", "header-only")
    package_type = "header-library"
    # The settings only drive the CMake run in package(); package_id() drops them: one package for all.
    settings = "os", "arch", "compiler", "build_type"
    options = {"with_linalg": [True, False]}
    default_options = {"with_linalg": False}
    no_copy_source = True

    @property
    def _repo_root(self):
        return os.path.join(self.recipe_folder, "..", "..")

    def set_version(self):
        text = load(self, os.path.join(self._repo_root, "include", "pare", "version.hpp"))
        self.version = re.search(r'#define PARE_VERSION_STRING "([^"]+)"', text).group(1)

    def export_sources(self):
        for pattern in ("CMakeLists.txt", "LICENSE", "cmake/*.cmake", "cmake/*.cmake.in", "include/*"):
            copy(self, pattern, src=self._repo_root, dst=self.export_sources_folder)

    def configure(self):
        if self.options.with_linalg:
            self.options["openblas/*"].build_lapack = True  # LAPACK and LAPACKE inside libopenblas

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # From the versions Debian 12 ships (what pare's CI builds with) to the newest pare's
        # compatibility headers know (xtensor's nested include paths).
        self.requires("xtensor/[>=0.24.3 <0.27]")
        self.requires("xtl/[>=0.7.5 <0.9]")
        self.requires("nlohmann_json/[>=3.11 <4]")
        if self.options.with_linalg:
            self.requires("openblas/[>=0.3.20 <1]")

    def package_id(self):
        self.info.clear()

    def generate(self):
        CMakeDeps(self).generate()  # pare's CMakeLists.txt finds xtensor, xtl and nlohmann_json
        tc = CMakeToolchain(self)
        tc.cache_variables["PARE_BUILD_TESTS"] = "OFF"
        tc.cache_variables["PARE_BUILD_EXAMPLES"] = "OFF"
        tc.cache_variables["PARE_BUILD_BENCH"] = "OFF"
        # PARE_WITH_LAPACK only adds pare::linalg to pare's own CMake files, which package() drops:
        # the headers are the same either way, so building the package needs no LAPACK.
        tc.cache_variables["PARE_WITH_LAPACK"] = "OFF"
        tc.generate()

    def package(self):
        copy(self, "LICENSE", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.configure()
        cmake.install()
        # Consumers get pare-config.cmake from CMakeDeps (package_info below), not pare's own.
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "pare")
        # CMakeDeps also defines a target for the whole package; consumers link the components.
        self.cpp_info.set_property("cmake_target_name", "pare::pare_all")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "pare::pare")
        core.requires = ["xtensor::xtensor", "xtl::xtl", "nlohmann_json::nlohmann_json"]
        core.bindirs = []
        core.libdirs = []
        if str(self.settings.os) in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        native = self.cpp_info.components["native"]  # opt-in -march=native, as pare::native
        native.set_property("cmake_target_name", "pare::native")
        native.requires = ["core"]
        native.includedirs = []
        native.bindirs = []
        native.libdirs = []
        if str(self.settings.compiler) in ("gcc", "clang", "apple-clang"):
            native.cxxflags = ["-march=native"]

        if self.options.with_linalg:
            linalg = self.cpp_info.components["linalg"]
            linalg.set_property("cmake_target_name", "pare::linalg")
            linalg.requires = ["core", "openblas::openblas"]
            linalg.includedirs = []
            linalg.bindirs = []
            linalg.libdirs = []
