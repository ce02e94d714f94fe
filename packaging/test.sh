#!/usr/bin/env bash
# Packages the current checkout with each package manager that is installed and builds and runs
# packaging/consumer (a small scheduler program) against the package, as a user of the port or
# recipe would:
#   Conan 2  (a `conan` command on PATH): conan create packaging/conan, whose test_package builds
#            and runs the consumer with CMakeDeps/CMakeToolchain.
#   vcpkg    (VCPKG_ROOT: a vcpkg root with its tool built): vcpkg install punctual[...] from an
#            overlay copy of packaging/vcpkg/ports/punctual whose REF and SHA512 name a tarball of
#            the checkout (git archive; tracked files with their uncommitted changes), put in
#            vcpkg's downloads directory, so vcpkg_from_github needs no network; then the consumer
#            with vcpkg's toolchain file, and the port's pkg-config modules.
# A tool that is missing is skipped, and said so plainly; the exit status is non-zero only when a
# tool that is there fails.
#
# Usage: packaging/test.sh [scratch-dir]      (default: build/packaging)
# Environment:
#   PUNCTUAL_PACKAGING_STORES  stores to package and use, of "sqlite postgres" (default both; "" none)
#   PUNCTUAL_CONAN_ARGS        extra arguments to `conan create` (profiles, -s, remotes ...)
#   PUNCTUAL_VCPKG_OVERLAY_PORTS  more overlay port directories, ':'-separated (e.g. stand-ins for
#                              sqlite3/libpq where vcpkg cannot download their sources)
#   PUNCTUAL_VCPKG_TRIPLET     default x64-linux
#   PUNCTUAL_JOBS              build parallelism (default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${1:-$repo/build/packaging}
jobs=${PUNCTUAL_JOBS:-2}
stores=${PUNCTUAL_PACKAGING_STORES-sqlite postgres}
triplet=${PUNCTUAL_VCPKG_TRIPLET:-x64-linux}

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

step() { printf '\n=== packaging: %s\n' "$*"; }
has_store() { [[ " $stores " == *" $1 "* ]]; }

# The version is written once, in version.hpp; the port's manifest must say the same.
version=$(sed -n -E 's/^#define PUNCTUAL_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)$/\2/p' \
  "$repo/include/punctual/version.hpp" | paste -sd.)
port_version=$(sed -n -E 's/^ *"version": "([^"]*)".*/\1/p' "$here/vcpkg/ports/punctual/vcpkg.json")
if [ "$port_version" != "$version" ]; then
  echo "packaging/vcpkg/ports/punctual/vcpkg.json says version $port_version, version.hpp $version" >&2
  exit 1
fi
echo "punctual $version; stores: ${stores:-none}"

cmake_flags=()
for s in sqlite postgres; do
  if has_store $s; then cmake_flags+=("-DCONSUMER_WITH_${s^^}=ON"); fi
done

ran=()
skipped=()

run_conan() {
  step "Conan: $(conan --version)"
  # test_package builds in the scratch directory, not in the source folder.
  local args=(create "$here/conan" --build=missing -s compiler.cppstd=20 -c "tools.build:jobs=$jobs"
    -c "tools.cmake.cmake_layout:test_folder=$out/conan-test_package")
  local s
  for s in sqlite postgres; do
    if has_store $s; then args+=(-o "&:with_$s=True"); else args+=(-o "&:with_$s=False"); fi
  done
  # shellcheck disable=SC2206  # extra arguments are meant to be split into words
  args+=(${PUNCTUAL_CONAN_ARGS:-})
  echo "+ conan ${args[*]}"
  conan "${args[@]}"
}

run_vcpkg() {
  local vcpkg="$VCPKG_ROOT/vcpkg"
  step "vcpkg: $("$vcpkg" version | head -n 1)"
  # A tarball of the checkout, named as vcpkg_from_github names its download.
  local rev
  rev=$(git -C "$repo" stash create)
  rev=${rev:-$(git -C "$repo" rev-parse HEAD)}
  local downloads=${VCPKG_DOWNLOADS:-$VCPKG_ROOT/downloads}
  mkdir -p "$downloads"
  local tarball="$downloads/punctual-punctual-$rev.tar.gz"
  git -C "$repo" archive --format=tar --prefix="punctual-$rev/" "$rev" | gzip -cn >"$tarball"
  local sha512
  sha512=$(sha512sum "$tarball" | cut -d' ' -f1)
  echo "checkout snapshot $rev -> $tarball"

  # The port as committed, with REF and SHA512 naming that tarball.
  mkdir -p "$out/vcpkg-overlay"
  cp -r "$here/vcpkg/ports/punctual" "$out/vcpkg-overlay/"
  sed -i -E -e "s|^( *REF ).*|\1$rev|" -e "s|^( *SHA512 ).*|\1$sha512|" \
    "$out/vcpkg-overlay/punctual/portfile.cmake"
  grep -q "REF $rev" "$out/vcpkg-overlay/punctual/portfile.cmake"
  grep -q "SHA512 $sha512" "$out/vcpkg-overlay/punctual/portfile.cmake"

  local features=""
  local s
  for s in sqlite postgres; do
    if has_store $s; then features+="${features:+,}$s"; fi
  done
  local overlays=(--overlay-ports="$out/vcpkg-overlay")
  local extra
  IFS=: read -r -a extra <<<"${PUNCTUAL_VCPKG_OVERLAY_PORTS:-}"
  for s in "${extra[@]}"; do
    if [ -n "$s" ]; then overlays+=(--overlay-ports="$s"); fi
  done
  local installed="$out/vcpkg-installed"
  local args=(install --classic "punctual${features:+[$features]}:$triplet" "${overlays[@]}"
    --x-install-root="$installed" --x-buildtrees-root="$out/vcpkg-buildtrees"
    --x-packages-root="$out/vcpkg-packages" --binarysource=clear)
  echo "+ vcpkg ${args[*]}"
  "$vcpkg" "${args[@]}" 2>&1 | tee "$out/vcpkg-install.log"
  # vcpkg's post-build checks only warn; a port with such a problem is not ready.
  if grep -q 'post-build check problem' "$out/vcpkg-install.log"; then
    echo "vcpkg's post-build checks found problems in the port (above)" >&2
    exit 1
  fi

  local prefix="$installed/$triplet"
  test -f "$prefix/include/punctual/scheduler.hpp"
  test -f "$prefix/share/punctual/punctualConfig.cmake"
  test -f "$prefix/share/punctual/copyright"
  test -f "$prefix/share/punctual/usage"
  echo "installed: $(cd "$prefix" && find include/punctual -name '*.hpp' | wc -l) headers," \
    "share/punctual: $(cd "$prefix/share/punctual" && echo *)"

  step "vcpkg: the consumer with vcpkg's toolchain file"
  cmake -S "$here/consumer" -B "$out/vcpkg-consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$VCPKG_ROOT/scripts/buildsystems/vcpkg.cmake" \
    -DVCPKG_MANIFEST_MODE=OFF -DVCPKG_INSTALLED_DIR="$installed" -DVCPKG_TARGET_TRIPLET="$triplet" \
    "${cmake_flags[@]}"
  cmake --build "$out/vcpkg-consumer" -j "$jobs"
  "$out/vcpkg-consumer/punctual-package-consumer"

  step "vcpkg: the port's pkg-config modules"
  local module pc_path="$prefix/lib/pkgconfig:$prefix/share/pkgconfig"
  for module in punctual ${stores:+$(for s in $stores; do echo "punctual-$s"; done)}; do
    PKG_CONFIG_PATH=$pc_path pkg-config --print-errors --exists "$module"
    echo "$module.pc: $(PKG_CONFIG_PATH=$pc_path pkg-config --modversion "$module"):" \
      "$(PKG_CONFIG_PATH=$pc_path pkg-config --cflags --libs "$module")"
  done
  for s in sqlite postgres; do
    if ! has_store $s && [ -e "$prefix/lib/pkgconfig/punctual-$s.pc" ]; then
      echo "punctual-$s.pc installed without the $s feature" >&2
      exit 1
    fi
  done
}

# run_tool <name> <function>: runs one tool's function in a subshell with errexit in force (an
# `if` or `||` around it would switch errexit off inside it) and records the outcome.
run_tool() {
  local rc
  set +e
  (
    set -e
    "$2"
  )
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then ran+=("$1: passed"); else ran+=("$1: FAILED (exit status $rc)"); failed=1; fi
}

failed=0
if command -v conan >/dev/null 2>&1; then
  run_tool Conan run_conan
else
  skipped+=("Conan: skipped, no 'conan' command on PATH")
fi
if [ -n "${VCPKG_ROOT:-}" ] && [ -x "$VCPKG_ROOT/vcpkg" ]; then
  run_tool vcpkg run_vcpkg
elif [ -n "${VCPKG_ROOT:-}" ]; then
  skipped+=("vcpkg: skipped, VCPKG_ROOT=$VCPKG_ROOT has no vcpkg executable")
else
  skipped+=("vcpkg: skipped, VCPKG_ROOT is not set")
fi

printf '\n=== packaging summary\n'
for line in "${ran[@]}" "${skipped[@]}"; do echo "$line"; done
exit $failed
