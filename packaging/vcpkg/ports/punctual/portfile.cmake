# punctual is header-only: one release build installs the headers, the CMake package and the
# pkg-config modules.
set(VCPKG_BUILD_TYPE release)

# The release tarball from GitHub. To package a local checkout instead (no network), see
# packaging/test.sh: it archives the checkout with `git archive`, puts the tarball in vcpkg's
# downloads directory under the name vcpkg_from_github looks for (punctual-punctual-<REF>.tar.gz)
# and installs an overlay copy of this port whose REF and SHA512 name that tarball.
vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO punctual/punctual
    REF "v${VERSION}"
    SHA512 0 # set at release: vcpkg prints the tarball's SHA512 when this one does not match
    HEAD_REF main
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DPUNCTUAL_INSTALL=ON
        -DPUNCTUAL_BUILD_TESTS=OFF
        -DPUNCTUAL_BUILD_EXAMPLES=OFF
        -DPUNCTUAL_BUILD_BENCHMARKS=OFF
        -DPUNCTUAL_DEVELOPER_MODE=OFF
        # punctual.pc has Libs (-pthread): vcpkg wants such files in lib/pkgconfig, not share/.
        -DPUNCTUAL_INSTALL_PKGCONFIGDIR=lib/pkgconfig
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/punctual)

# A store's pkg-config module only with its feature: punctual-sqlite.pc requires sqlite3.pc and
# punctual-postgres.pc requires libpq.pc, which the features' dependencies install.
foreach(store IN ITEMS sqlite postgres)
    if(NOT store IN_LIST FEATURES)
        file(REMOVE "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/punctual-${store}.pc")
    endif()
endforeach()
vcpkg_fixup_pkgconfig()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
# The project has no LICENSE file yet; until it has one, the copyright file says so plainly
# instead of naming terms nobody chose.
if(EXISTS "${SOURCE_PATH}/LICENSE")
    vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
else()
    file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
        "The punctual sources this package was built from (version ${VERSION}) contain no LICENSE file.\n"
        "Ask punctual's authors for the terms under which it may be used.\n")
endif()
