"""Conan 2 recipe for punctual, a header-only C++20 job scheduler on standalone Asio.

Packages the checkout it sits in (the headers under ../../include):

    conan create packaging/conan --build=missing [-o "&:with_sqlite=True"] [-o "&:with_postgres=True"]

packaging/test.sh runs it with test_package (a small scheduler program) against local recipes.
"""

import os
import re

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class PunctualConan(ConanFile):
    name = "punctual"
    description = "Header-only C++20 job scheduler built from coroutines on a standalone Asio io_context"
    topics = ("scheduler", "cron", "jobs", "asio", "coroutines", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_sqlite": [True, False],
        "with_postgres": [True, False],
    }
    default_options = {
        "with_sqlite": False,
        "with_postgres": False,
    }
    no_copy_source = True

    @property
    def _checkout(self):
        return os.path.join(self.recipe_folder, "..", "..")

    def set_version(self):
        # The version is written once, in version.hpp, as CMake and Meson read it.
        if self.version:
            return
        text = load(self, os.path.join(self._checkout, "include", "punctual", "version.hpp"))
        parts = []
        for part in ("MAJOR", "MINOR", "PATCH"):
            match = re.search(rf"^#define PUNCTUAL_VERSION_{part} (\d+)$", text, re.MULTILINE)
            if not match:
                raise ConanException(f"include/punctual/version.hpp: no '#define PUNCTUAL_VERSION_{part} <number>'")
            parts.append(match.group(1))
        self.version = ".".join(parts)

    def export_sources(self):
        copy(self, "*.hpp", os.path.join(self._checkout, "include"),
             os.path.join(self.export_sources_folder, "include"))
        copy(self, "LICENSE*", self._checkout, self.export_sources_folder)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Headers only, but consumers include Asio's, SQLite's and libpq's headers through punctual's:
        # transitive_headers, and the libraries are linked by the consumer.
        self.requires("asio/[>=1.28.0 <2]", transitive_headers=True)
        if self.options.with_sqlite:
            self.requires("sqlite3/[>=3.40.0 <4]", transitive_headers=True)
        if self.options.with_postgres:
            self.requires("libpq/[>=15.0 <19]", transitive_headers=True)

    def package_id(self):
        self.info.clear()

    def validate(self):
        check_min_cppstd(self, 20)

    def package(self):
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))
        copy(self, "LICENSE*", self.source_folder, os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        # The CMake package and targets punctual's own punctualConfig.cmake exports:
        # find_package(punctual) gives punctual::punctual, and punctual::sqlite / punctual::postgres
        # with the options that bring their client libraries. (The aggregate of all of them gets
        # its own name, since the core library already is punctual::punctual.)
        self.cpp_info.set_property("cmake_file_name", "punctual")
        self.cpp_info.set_property("cmake_target_name", "punctual::all")
        self.cpp_info.set_property("pkg_config_name", "punctual-all")

        core = self.cpp_info.components["punctual"]
        core.set_property("cmake_target_name", "punctual::punctual")
        core.set_property("pkg_config_name", "punctual")
        core.requires = ["asio::asio"]
        core.bindirs = []
        core.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        # A store's component: punctual plus the store's client library (its ConanCenter component).
        for store, client in (("sqlite", "sqlite3::sqlite"), ("postgres", "libpq::pq")):
            if self.options.get_safe(f"with_{store}"):
                component = self.cpp_info.components[store]
                component.set_property("cmake_target_name", f"punctual::{store}")
                component.set_property("pkg_config_name", f"punctual-{store}")
                component.requires = ["punctual", client]
                component.bindirs = []
                component.libdirs = []
