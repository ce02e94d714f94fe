# Finds standalone Asio (header-only) for punctual. Used by the top-level CMakeLists.txt and,
# installed next to it, by punctualConfig.cmake.
#
# Sets the cache variable PUNCTUAL_ASIO_INCLUDE_DIR (the directory holding asio.hpp; set it
# yourself to use another Asio) and PUNCTUAL_ASIO_FOUND.
#
# No ASIO_STANDALONE define is needed: standalone Asio (Debian's libasio-dev, the upstream
# "asio" tarball) defines it itself whenever it is not built with ASIO_ENABLE_BOOST.
#
# Asio ships neither a CMake package nor a pkg-config file, hence a plain find_path.

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
  if(PUNCTUAL_ASIO_VERSION VERSION_LESS 1.22)
    set(PUNCTUAL_ASIO_FOUND FALSE)
    set(PUNCTUAL_ASIO_MESSAGE
        "punctual needs standalone Asio 1.22 or newer; found ${PUNCTUAL_ASIO_VERSION} in ${PUNCTUAL_ASIO_INCLUDE_DIR}")
  else()
    set(PUNCTUAL_ASIO_FOUND TRUE)
  endif()
else()
  set(PUNCTUAL_ASIO_FOUND FALSE)
  set(PUNCTUAL_ASIO_MESSAGE
      "punctual needs standalone Asio (asio.hpp), e.g. Debian's libasio-dev; "
      "set PUNCTUAL_ASIO_INCLUDE_DIR (or the ASIO_ROOT environment variable) to its include directory")
endif()
