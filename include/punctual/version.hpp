/// @file version.hpp
/// punctual's version, as macros and as a constexpr value.
#pragma once

#define PUNCTUAL_VERSION_MAJOR 0
#define PUNCTUAL_VERSION_MINOR 1
#define PUNCTUAL_VERSION_PATCH 0
/// Version as one number: major * 10000 + minor * 100 + patch.
#define PUNCTUAL_VERSION \
  (PUNCTUAL_VERSION_MAJOR * 10000 + PUNCTUAL_VERSION_MINOR * 100 + PUNCTUAL_VERSION_PATCH)
/// Version as a string literal, "major.minor.patch", made from the three numbers above: they are
/// the only place the version is written (CMake and Meson read it from them too).
#define PUNCTUAL_VERSION_STRING                     \
  PUNCTUAL_DETAIL_STRINGIZE(PUNCTUAL_VERSION_MAJOR) \
  "." PUNCTUAL_DETAIL_STRINGIZE(PUNCTUAL_VERSION_MINOR) "." PUNCTUAL_DETAIL_STRINGIZE(PUNCTUAL_VERSION_PATCH)
#define PUNCTUAL_DETAIL_STRINGIZE(x) PUNCTUAL_DETAIL_STRINGIZE_(x)
#define PUNCTUAL_DETAIL_STRINGIZE_(x) #x
