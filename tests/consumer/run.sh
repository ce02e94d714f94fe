#!/usr/bin/env bash
# Builds and runs a tiny consumer of punctual four ways, as a user's project would:
#   1. find_package(punctual) against an install prefix (installed with `cmake --install --prefix`,
#      so the package must be relocatable)
#   2. add_subdirectory(<repo>)
#   3. pkg-config (punctual.pc from the same install prefix)
#   4. Meson, with punctual as a subproject
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
test -f "$out/prefix/share/pkgconfig/punctual.pc"

step "1/4 find_package(punctual)"
cmake -S "$here" -B "$out/find-package" -G Ninja -DCONSUMER_MODE=find_package \
  -DCMAKE_PREFIX_PATH="$out/prefix" -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON >/dev/null
cmake --build "$out/find-package" -j "$jobs"
"$out/find-package/consumer"
if [ -x "$out/find-package/consumer-sqlite" ]; then "$out/find-package/consumer-sqlite"; fi

step "2/4 add_subdirectory(punctual)"
cmake -S "$here" -B "$out/add-subdirectory" -G Ninja -DCONSUMER_MODE=add_subdirectory \
  -DPUNCTUAL_SOURCE_DIR="$repo" >/dev/null
cmake --build "$out/add-subdirectory" -j "$jobs"
"$out/add-subdirectory/consumer"
if [ -x "$out/add-subdirectory/consumer-sqlite" ]; then "$out/add-subdirectory/consumer-sqlite"; fi

step "3/4 pkg-config"
export PKG_CONFIG_PATH="$out/prefix/share/pkgconfig"
pkg-config --exists --print-errors punctual
echo "punctual.pc: $(pkg-config --modversion punctual): $(pkg-config --cflags --libs punctual)"
# shellcheck disable=SC2046  # pkg-config output is meant to be split into words
${CXX:-c++} -std=c++20 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags punctual) \
  "$here/main.cpp" -o "$out/pkg-config-consumer" $(pkg-config --libs punctual)
"$out/pkg-config-consumer"
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

printf '\nconsumer tests: all 4 ways passed\n'
