# Finds standalone Asio (header-only) for punctual. Used by the top-level CMakeLists.txt and,
# installed next to it, by punctualConfig.cmake, so the build and the consumer find it alike.
#
# Two ways, the first that works:
#   1. a CMake package providing the target asio::asio, as vcpkg's and Conan's asio packages do
#      (find_package(asio CONFIG)); a target asio::asio the project already defined counts too.
#      Sets PUNCTUAL_ASIO_TARGET to asio::asio.
#   2. the header itself (Debian's libasio-dev and the upstream tarball ship no CMake package),
#      found with find_path: sets the cache variable PUNCTUAL_ASIO_INCLUDE_DIR (set it yourself,
#      or the ASIO_ROOT environment variable, to use another Asio; setting it skips way 1).
# Sets PUNCTUAL_ASIO_FOUND, PUNCTUAL_ASIO_VERSION (when known) and, on failure, PUNCTUAL_ASIO_MESSAGE.
#
# No ASIO_STANDALONE define is needed: standalone Asio defines it itself whenever it is not built
# with ASIO_ENABLE_BOOST (vcpkg's port forces it on).

set(PUNCTUAL_ASIO_TARGET "")
set(PUNCTUAL_ASIO_VERSION "")
if(NOT PUNCTUAL_ASIO_INCLUDE_DIR)
  if(NOT TARGET asio::asio)
    find_package(asio CONFIG QUIET)
  endif()
  if(TARGET asio::asio)
    set(PUNCTUAL_ASIO_TARGET asio::asio)
    if(DEFINED asio_VERSION)
      set(PUNCTUAL_ASIO_VERSION "${asio_VERSION}")
    endif()
  endif()
endif()

if(NOT PUNCTUAL_ASIO_TARGET)
  find_path(PUNCTUAL_ASIO_INCLUDE_DIR
    NAMES asio.hpp
    HINTS ENV ASIO_ROOT
    PATH_SUFFIXES include
    DOC "Directory containing standalone Asio's asio.hpp (Asio 1.22 or newer)")
  mark_as_advanced(PUNCTUAL_ASIO_INCLUDE_DIR)
  if(PUNCTUAL_ASIO_INCLUDE_DIR AND EXISTS "${PUNCTUAL_ASIO_INCLUDE_DIR}/asio/version.hpp")
    file(STRINGS "${PUNCTUAL_ASIO_INCLUDE_DIR}/asio/version.hpp" _punctual_asio_version_line
         REGEX "^#define ASIO_VERSION [0-9]+")
    string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" _punctual_asio_version
           "${_punctual_asio_version_line}")
    # ASIO_VERSION is major * 100000 + minor * 100 + patch.
    math(EXPR _punctual_asio_major "${_punctual_asio_version} / 100000")
    math(EXPR _punctual_asio_minor "${_punctual_asio_version} / 100 % 1000")
    math(EXPR _punctual_asio_patch "${_punctual_asio_version} % 100")
    set(PUNCTUAL_ASIO_VERSION "${_punctual_asio_major}.${_punctual_asio_minor}.${_punctual_asio_patch}")
  endif()
endif()

if(PUNCTUAL_ASIO_TARGET OR PUNCTUAL_ASIO_VERSION)
  set(PUNCTUAL_ASIO_FOUND TRUE)
  if(PUNCTUAL_ASIO_VERSION AND PUNCTUAL_ASIO_VERSION VERSION_LESS 1.22)
    set(PUNCTUAL_ASIO_FOUND FALSE)
    set(PUNCTUAL_ASIO_MESSAGE "punctual needs standalone Asio 1.22 or newer; found ${PUNCTUAL_ASIO_VERSION}"
                              " (${PUNCTUAL_ASIO_TARGET}${PUNCTUAL_ASIO_INCLUDE_DIR})")
  endif()
else()
  set(PUNCTUAL_ASIO_FOUND FALSE)
  set(PUNCTUAL_ASIO_MESSAGE
      "punctual needs standalone Asio (asio.hpp), e.g. Debian's libasio-dev, or a CMake package "
      "providing asio::asio (vcpkg, Conan); set PUNCTUAL_ASIO_INCLUDE_DIR (or the ASIO_ROOT "
      "environment variable) to its include directory")
endif()
