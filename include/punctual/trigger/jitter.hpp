/// @file trigger/jitter.hpp
/// Random delay added to fire times so that many schedules sharing a fire time do not all
/// start in the same microsecond.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>

#include "punctual/config.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

/// High 64 bits of the 128-bit product a * b, in portable C++.
constexpr std::uint64_t mul_high(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo;
  const std::uint64_t hi_lo = a_hi * b_lo;
  const std::uint64_t lo_hi = a_lo * b_hi;
  const std::uint64_t hi_hi = a_hi * b_hi;
  const std::uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;
  return hi_hi + (hi_lo >> 32) + (cross >> 32);
}

}  // namespace detail

/// Delays `fire` by a jitter taken uniformly from [0, max_jitter] (microsecond steps), never
/// reaching `next_fire`: the result is at most `next_fire - 1us`, so jitter never reorders or
/// merges fires. `random` is any 64-bit value from the caller's generator; the result is a
/// pure function of the arguments (the same `random` gives the same delay), and a uniform
/// `random` gives a uniform delay. A `max_jitter` <= 0, or a `next_fire` at or before
/// `fire + 1us`, returns `fire` unchanged.
constexpr time_point apply_jitter(time_point fire, std::optional<time_point> next_fire, duration max_jitter,
                                  std::uint64_t random) noexcept {
  if (max_jitter.count() <= 0) return fire;
  std::int64_t limit = max_jitter.count();  // largest delay allowed, inclusive
  if (next_fire) {
    if (*next_fire <= fire) return fire;
    // next_fire - fire may not fit in int64 for extreme arguments: compare unsigned.
    const auto gap = static_cast<std::uint64_t>(next_fire->time_since_epoch().count()) -
                     static_cast<std::uint64_t>(fire.time_since_epoch().count());
    if (gap - 1 < static_cast<std::uint64_t>(limit)) limit = static_cast<std::int64_t>(gap - 1);
  }
  if (limit <= 0) return fire;
  const auto room = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) -
                    static_cast<std::uint64_t>(fire.time_since_epoch().count());
  if (static_cast<std::uint64_t>(limit) > room) limit = static_cast<std::int64_t>(room);
  // Maps random in [0, 2^64) onto [0, limit] by multiply-shift (bias < (limit+1) / 2^64).
  const auto delay = detail::mul_high(random, static_cast<std::uint64_t>(limit) + 1);
  return fire + duration{static_cast<std::int64_t>(delay)};
}

/// As above, drawing the random value from `gen` (any uniform random bit generator, e.g.
/// std::mt19937_64). Deterministic for a given generator state.
template <std::uniform_random_bit_generator Gen>
time_point apply_jitter(time_point fire, std::optional<time_point> next_fire, duration max_jitter, Gen& gen) {
  if (max_jitter.count() <= 0) return fire;
  std::uniform_int_distribution<std::uint64_t> dist;  // full 64-bit range
  return apply_jitter(fire, next_fire, max_jitter, dist(gen));
}

PUNCTUAL_END_NAMESPACE
