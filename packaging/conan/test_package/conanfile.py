"""Builds and runs packaging/consumer (a small scheduler program) against the package."""

import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout


class PunctualTestConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        CMakeDeps(self).generate()
        toolchain = CMakeToolchain(self)
        toolchain.user_presets_path = False  # no CMakeUserPresets.json in the source folder
        toolchain.generate()

    def _option(self, name):
        return "ON" if self.dependencies["punctual"].options.get_safe(name) else "OFF"

    def build(self):
        cmake = CMake(self)
        cmake.configure(variables={
            "CONSUMER_WITH_SQLITE": self._option("with_sqlite"),
            "CONSUMER_WITH_POSTGRES": self._option("with_postgres"),
        })
        cmake.build()

    def test(self):
        if can_run(self):
            self.run(os.path.join(self.cpp.build.bindir, "consumer", "punctual-package-consumer"), env="conanrun")
