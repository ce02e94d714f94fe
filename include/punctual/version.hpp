/// @file version.hpp
/// punctual's version, as macros and as a constexpr value.
#pragma once

#define PUNCTUAL_VERSION_MAJOR 0
#define PUNCTUAL_VERSION_MINOR 1
#define PUNCTUAL_VERSION_PATCH 0
/// Version as one number: major * 10000 + minor * 100 + patch.
#define PUNCTUAL_VERSION \
  (PUNCTUAL_VERSION_MAJOR * 10000 + PUNCTUAL_VERSION_MINOR * 100 + PUNCTUAL_VERSION_PATCH)
#define PUNCTUAL_VERSION_STRING "0.1.0"
