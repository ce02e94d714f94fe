/// @file config.hpp
/// Compile-time configuration. Every macro here can be set by the user before the first
/// punctual include (or with -D); the user's value always wins.
#pragma once

#include "punctual/version.hpp"

/// Opens punctual's versioned inline namespace (`punctual::v0`), so that two builds with
/// different ABIs cannot be linked together silently.
#if !defined(PUNCTUAL_BEGIN_NAMESPACE)
#define PUNCTUAL_BEGIN_NAMESPACE \
  namespace punctual {           \
  inline namespace v0 {
#define PUNCTUAL_END_NAMESPACE \
  }                            \
  }
#endif

/// Directory that holds the compiled IANA time-zone database (TZif files).
#if !defined(PUNCTUAL_ZONEINFO_DIR)
#define PUNCTUAL_ZONEINFO_DIR "/usr/share/zoneinfo"
#endif

/// Latest year a cron expression may name; next() never searches past it.
#if !defined(PUNCTUAL_MAX_YEAR)
#define PUNCTUAL_MAX_YEAR 2299
#endif
