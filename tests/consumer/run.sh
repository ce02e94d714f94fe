#!/usr/bin/env bash
# Builds and runs a tiny consumer of punctual four ways, as a user's project would:
#   1. find_package(punctual) against an install prefix (installed with `cmake --install --prefix`,
#      so the package must be relocatable); also where a CMake package provides asio::asio
#   2. add_subdirectory(<repo>)
#   3. pkg-config (punctual.pc, punctual-sqlite.pc and punctual-postgres.pc from the same prefix)
#   4. Meson, with punctual as a subproject (and Meson's own install of the .pc files)
# and checks PUNCTUAL_INSTALL: off under add_subdirectory unless asked for. Each store's consumer
# is built where its client library (SQLite3, libpq) is installed.
# Usage: tests/consumer/run.sh [scratch-dir]   (default: build/consumer). Needs cmake, ninja,
# pkg-config, meson and a C++20 compiler. Exits non-zero on the first failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/build/consumer}
jobs=${PUNCTUAL_JOBS:-2}

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

step() { printf '\n=== consumer: %s\n' "$*"; }

step "install punctual into $out/prefix"
cmake -S "$repo" -B "$out/punctual-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPUNCTUAL_BUILD_TESTS=OFF -DPUNCTUAL_BUILD_EXAMPLES=OFF -DPUNCTUAL_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$out/punctual-build" >/dev/null
cmake --install "$out/punctual-build" --prefix "$out/prefix" >/dev/null
test -f "$out/prefix/include/punctual/time.hpp"
test -f "$out/prefix/share/cmake/punctual/punctualConfig.cmake"
for pc in punctual punctual-sqlite punctual-postgres; do
  test -f "$out/prefix/share/pkgconfig/$pc.pc"
done

step "1/4 find_package(punctual)"
cmake -S "$here" -B "$out/find-package" -G Ninja -DCONSUMER_MODE=find_package \
  -DCMAKE_PREFIX_PATH="$out/prefix" -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON >/dev/null
cmake --build "$out/find-package" -j "$jobs"
"$out/find-package/consumer"
if [ -x "$out/find-package/consumer-sqlite" ]; then "$out/find-package/consumer-sqlite"; fi
if [ -x "$out/find-package/consumer-postgres" ]; then "$out/find-package/consumer-postgres"; fi
# The same package where a CMake package provides asio::asio (as vcpkg's and Conan's do): a
# stand-in asio-config.cmake for the Asio found above. punctual::punctual must link that target
# (its compile definition reaches the consumer) instead of naming Asio's directory itself.
asio_dir=$(sed -n 's/^PUNCTUAL_ASIO_INCLUDE_DIR:PATH=//p' "$out/find-package/CMakeCache.txt")
mkdir -p "$out/asio-package/share/asio"
cat >"$out/asio-package/share/asio/asio-config.cmake" <<ASIO
add_library(asio::asio INTERFACE IMPORTED)
set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "$asio_dir"
  INTERFACE_COMPILE_DEFINITIONS CONSUMER_ASIO_FROM_PACKAGE=1)
ASIO
cmake -S "$here" -B "$out/find-package-asio-target" -G Ninja -DCONSUMER_MODE=find_package \
  -DCMAKE_PREFIX_PATH="$out/prefix;$out/asio-package" -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON >/dev/null
if ! grep -q 'CONSUMER_ASIO_FROM_PACKAGE=1' "$out/find-package-asio-target/build.ninja"; then
  echo "find_package(punctual) did not use the asio::asio target of an Asio CMake package" >&2
  exit 1
fi
echo "find_package(punctual) uses asio::asio where an Asio CMake package provides it"

step "2/4 add_subdirectory(punctual)"
cmake -S "$here" -B "$out/add-subdirectory" -G Ninja -DCONSUMER_MODE=add_subdirectory \
  -DPUNCTUAL_SOURCE_DIR="$repo" >/dev/null
cmake --build "$out/add-subdirectory" -j "$jobs"
"$out/add-subdirectory/consumer"
if [ -x "$out/add-subdirectory/consumer-sqlite" ]; then "$out/add-subdirectory/consumer-sqlite"; fi
if [ -x "$out/add-subdirectory/consumer-postgres" ]; then "$out/add-subdirectory/consumer-postgres"; fi
# PUNCTUAL_INSTALL defaults to OFF below a consumer's project: its install has none of punctual ...
cmake --install "$out/add-subdirectory" --prefix "$out/sub-prefix" >/dev/null
if [ -e "$out/sub-prefix/include/punctual" ] || [ -e "$out/sub-prefix/share/cmake/punctual" ]; then
  echo "add_subdirectory(punctual) installed punctual's files without PUNCTUAL_INSTALL=ON" >&2
  exit 1
fi
# ... and ON when the consumer asks for it.
cmake "$out/add-subdirectory" -DPUNCTUAL_INSTALL=ON >/dev/null
cmake --install "$out/add-subdirectory" --prefix "$out/sub-prefix-on" >/dev/null
test -f "$out/sub-prefix-on/include/punctual/time.hpp"
test -f "$out/sub-prefix-on/share/cmake/punctual/punctualConfig.cmake"
test -f "$out/sub-prefix-on/share/pkgconfig/punctual-sqlite.pc"
echo "PUNCTUAL_INSTALL: nothing installed by default under add_subdirectory, everything with ON"

step "3/4 pkg-config"
export PKG_CONFIG_PATH="$out/prefix/share/pkgconfig"
pkg-config --exists --print-errors punctual
echo "punctual.pc: $(pkg-config --modversion punctual): $(pkg-config --cflags --libs punctual)"
# pkgconfig_build <module> <source> <output> [flags...]: compiles and links against one module
pkgconfig_build() {
  local module=$1 source=$2 output=$3
  shift 3
  # shellcheck disable=SC2046  # pkg-config output is meant to be split into words
  ${CXX:-c++} -std=c++20 -Wall -Wextra -Wpedantic -Werror "$@" $(pkg-config --cflags "$module") \
    "$source" -o "$output" $(pkg-config --libs "$module")
}
# The module's version is the headers' (both read from version.hpp).
pkgconfig_build punctual "$here/main.cpp" "$out/pkg-config-consumer" \
  -DCONSUMER_EXPECTED_VERSION="\"$(pkg-config --modversion punctual)\""
"$out/pkg-config-consumer"
# Each store's module brings its client library, where that library is installed.
for store in sqlite:sqlite3 postgres:libpq; do
  module=punctual-${store%%:*}
  if pkg-config --exists "${store#*:}"; then
    echo "$module.pc: $(pkg-config --modversion "$module"): $(pkg-config --libs "$module")"
    pkgconfig_build "$module" "$here/${store%%:*}_main.cpp" "$out/pkg-config-$module"
    "$out/pkg-config-$module"
  elif pkg-config --exists "$module"; then
    echo "$module.pc resolves although ${store#*:}.pc is missing" >&2
    exit 1
  else
    echo "$module.pc: skipped, ${store#*:} is not installed ($(pkg-config --print-errors --exists "$module" 2>&1 | head -n 1))"
  fi
done
unset PKG_CONFIG_PATH

step "4/4 Meson subproject"
src="$out/meson-src"
mkdir -p "$src/subprojects"
cp "$here/meson/meson.build" "$here/main.cpp" "$src/"
ln -s "$repo" "$src/subprojects/punctual"
meson setup "$out/meson-build" "$src" >/dev/null
# As a subproject punctual must build nothing of its own.
if meson introspect --targets "$out/meson-build" | grep -q '"punctual-tests"'; then
  echo "punctual built its tests as a Meson subproject" >&2
  exit 1
fi
meson compile -C "$out/meson-build" -j "$jobs"
"$out/meson-build/consumer"
# Meson's own install of punctual (tests and examples off: nothing to compile) has the same modules.
meson setup "$out/meson-install-build" "$repo" -Dtests=disabled -Dexamples=disabled \
  --prefix "$out/meson-prefix" >/dev/null
meson install -C "$out/meson-install-build" >/dev/null
for pc in punctual punctual-sqlite punctual-postgres; do
  meson_version=$(sed -n 's/^Version: *//p' "$out/meson-prefix/share/pkgconfig/$pc.pc")
  cmake_version=$(sed -n 's/^Version: *//p' "$out/prefix/share/pkgconfig/$pc.pc")
  if [ -z "$meson_version" ] || [ "$meson_version" != "$cmake_version" ]; then
    echo "$pc.pc: Meson's version '$meson_version', CMake's '$cmake_version'" >&2
    exit 1
  fi
done
echo "Meson installs punctual.pc, punctual-sqlite.pc and punctual-postgres.pc, versions as CMake's"

printf '\nconsumer tests: all 4 ways passed\n'
