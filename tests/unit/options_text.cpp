// The text form of schedule_options (options_text.hpp): round trips and every error.
#include "punctual/options_text.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "punctual/schedule.hpp"
#include "punctual/time.hpp"

using namespace std::chrono_literals;
using punctual::parse_error;
using punctual::parse_schedule_options;
using punctual::schedule_options;

namespace {

// A random duration in [min_us, 10 days], in one of several granularities so that texts like
// "3d", "1h30m", "250ms" and "17us" all occur.
punctual::duration random_duration(std::mt19937_64& rng, std::int64_t min_us) {
  static constexpr std::int64_t grains[] = {1,          1'000,           1'000'000,
                                            60'000'000, 3'600'000'000LL, 86'400'000'000LL};
  const auto grain = grains[rng() % std::size(grains)];
  const auto max_units = 864'000'000'000LL / grain;
  auto v = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(max_units + 1)) * grain;
  if (v < min_us) v = min_us;
  return punctual::duration{v};
}

punctual::time_point random_instant(std::mt19937_64& rng) {
  // 1900 .. 2200, any microsecond.
  const std::int64_t lo = -2'208'988'800'000'000LL, hi = 7'258'118'400'000'000LL;
  return punctual::time_point{
      punctual::duration{lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo))}};
}

schedule_options random_options(std::mt19937_64& rng) {
  schedule_options o;
  auto coin = [&] { return rng() % 2 == 0; };
  if (coin()) o.misfire_grace = random_duration(rng, 0);
  if (coin()) o.coalesce = static_cast<punctual::coalesce_policy>(rng() % 3);
  if (coin()) o.max_catch_up = static_cast<std::uint32_t>(rng());
  if (coin()) o.max_running = static_cast<std::uint32_t>(rng() % 0xFFFFFFFFULL) + 1;
  if (coin()) o.overlap = static_cast<punctual::overlap_policy>(rng() % 3);
  if (coin()) o.max_jitter = random_duration(rng, 0);
  if (coin()) o.timeout = random_duration(rng, 1);
  if (coin()) o.retries = static_cast<std::uint32_t>(rng() % 20);
  if (coin()) o.retry_backoff = random_duration(rng, 0);
  if (coin()) o.retry_backoff_max = random_duration(rng, 0);
  if (coin()) o.start = random_instant(rng);
  if (coin()) {
    o.end = random_instant(rng);
    if (o.start && *o.end < *o.start) std::swap(*o.start, *o.end);
  }
  if (coin()) o.on_abandoned = punctual::abandoned_policy::rerun;
  return o;
}

// The parse_error thrown by parse_schedule_options(text).
parse_error error_of(const std::string& text) {
  try {
    (void)parse_schedule_options(text);
  } catch (const parse_error& e) {
    return e;
  }
  FAIL("\"" << text << "\" parsed without an error");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("default options have an empty text form and parse back from blank text", "[options_text]") {
  CHECK(punctual::to_string(schedule_options{}).empty());
  CHECK(parse_schedule_options("") == schedule_options{});
  CHECK(parse_schedule_options("  \t ") == schedule_options{});
}

TEST_CASE("option text lists only non-default values, in canonical order", "[options_text]") {
  schedule_options o;
  o.on_abandoned = punctual::abandoned_policy::rerun;
  o.timeout = 5min;
  o.misfire_grace = 30s;
  o.coalesce = punctual::coalesce_policy::all;
  o.max_catch_up = 10;
  o.start = punctual::parse_iso("2026-01-01T00:00:00Z");
  CHECK(punctual::to_string(o) ==
        "misfire=30s coalesce=all max_catch_up=10 timeout=5m start=2026-01-01T00:00:00Z on_abandoned=rerun");

  schedule_options all;
  all.max_running = 3;
  all.overlap = punctual::overlap_policy::queue;
  all.max_jitter = 1500ms;
  all.retries = 2;
  all.retry_backoff = 2s;
  all.retry_backoff_max = 1h;
  all.end = punctual::parse_iso("2027-06-30T12:00:00.5+02:00");
  CHECK(punctual::to_string(all) ==
        "max_running=3 overlap=queue jitter=1s500ms retries=2 retry_backoff=2s retry_backoff_max=1h "
        "end=2027-06-30T10:00:00.500Z");
}

TEST_CASE("every option parses from its text, in any order", "[options_text]") {
  const auto o = parse_schedule_options(
      "on_abandoned=rerun end=2026-12-31T23:59:59+01:00 start=2026-01-01T00:00:00Z timeout=none misfire=1.5h "
      "coalesce=earliest\tmax_catch_up=0 max_running=4 overlap=replace jitter=250ms retries=7 "
      "retry_backoff=10s retry_backoff_max=2m");
  CHECK(o.on_abandoned == punctual::abandoned_policy::rerun);
  CHECK(o.end == punctual::parse_iso("2026-12-31T22:59:59Z"));
  CHECK(o.start == punctual::parse_iso("2026-01-01T00:00:00Z"));
  CHECK(!o.timeout);
  CHECK(o.misfire_grace == punctual::duration{90min});
  CHECK(o.coalesce == punctual::coalesce_policy::earliest);
  CHECK(o.max_catch_up == 0);
  CHECK(o.max_running == 4);
  CHECK(o.overlap == punctual::overlap_policy::replace);
  CHECK(o.max_jitter == punctual::duration{250ms});
  CHECK(o.retries == 7);
  CHECK(o.retry_backoff == punctual::duration{10s});
  CHECK(o.retry_backoff_max == punctual::duration{2min});
  CHECK(parse_schedule_options("misfire=none").misfire_grace == std::nullopt);
  CHECK(parse_schedule_options("misfire=0").misfire_grace == punctual::duration{0});
}

TEST_CASE("a start without an offset is an error: instants need one", "[options_text]") {
  const auto e = error_of("start=2026-01-01");
  CHECK(e.field() == "option start");
  CHECK(std::string(e.what()).find("offset") != std::string::npos);
}

TEST_CASE("random option sets round-trip through their text form", "[options_text]") {
  std::mt19937_64 rng(20260101);
  for (int i = 0; i < 5000; ++i) {
    const auto o = random_options(rng);
    const auto text = punctual::to_string(o);
    INFO(text);
    REQUIRE(parse_schedule_options(text) == o);
    REQUIRE(punctual::to_string(parse_schedule_options(text)) == text);
  }
}

TEST_CASE("apply_schedule_option sets one option and leaves the others", "[options_text]") {
  schedule_options o;
  punctual::apply_schedule_option(o, "retries", "3");
  punctual::apply_schedule_option(o, "timeout", "90s");
  CHECK(o.retries == 3);
  CHECK(o.timeout == punctual::duration{90s});
  schedule_options expected;
  expected.retries = 3;
  expected.timeout = 90s;
  CHECK(o == expected);

  punctual::apply_schedule_option(o, "timeout", "none");
  CHECK(!o.timeout);

  const auto before = o;
  try {
    punctual::apply_schedule_option(o, "bogus", "1");
    FAIL("no error");
  } catch (const parse_error& e) {
    CHECK(e.field() == "schedule option");
    CHECK(e.text() == "bogus");
    CHECK(e.column() == 0);
  }
  try {
    punctual::apply_schedule_option(o, "retries", "x");
    FAIL("no error");
  } catch (const parse_error& e) {
    CHECK(e.field() == "option retries");
    CHECK(e.column() == 1);
  }
  CHECK(o == before);
}

TEST_CASE("option text errors name the key and the column", "[options_text]") {
  struct bad {
    const char* text;
    const char* field;
    std::size_t column;
    const char* reason_part;
  };
  const bad cases[] = {
      {"colour=blue", "schedule option", 1, "unknown option"},
      {"retries=1 Timeout=5s", "schedule option", 11, "unknown option"},
      {"retries", "schedule option", 1, "expected key=value"},
      {"retries=1 =5", "schedule option", 11, "expected key=value"},
      {"retries=1 retries=2", "schedule option", 11, "more than once"},
      {"misfire=soon", "option misfire", 9, "not a duration"},
      {"misfire=-5s", "option misfire", 9, "must not be negative"},
      {"misfire=", "option misfire", 9, "not a duration"},
      {"coalesce=newest", "option coalesce", 10, "latest, earliest or all"},
      {"max_catch_up=-1", "option max_catch_up", 14, "whole number"},
      {"max_catch_up=4294967296", "option max_catch_up", 14, "too large"},
      {"max_catch_up=99999999999999999999999", "option max_catch_up", 14, "too large"},
      {"max_running=0", "option max_running", 13, "at least 1"},
      {"max_running=2x", "option max_running", 13, "whole number"},
      {"max_running=", "option max_running", 13, "whole number"},
      {"overlap=wait", "option overlap", 9, "skip, queue or replace"},
      {"jitter=5", "option jitter", 9, "missing unit"},
      {"jitter=-1s", "option jitter", 8, "must not be negative"},
      {"timeout=0s", "option timeout", 9, "longer than 0"},
      {"timeout=5 sec", "option timeout", 10, "missing unit"},
      {"retries=1.5", "option retries", 9, "whole number"},
      {"retry_backoff=1q", "option retry_backoff", 16, "unknown unit"},
      {"retry_backoff_max=-1m", "option retry_backoff_max", 19, "must not be negative"},
      {"start=yesterday", "option start", 7, "ISO 8601"},
      {"end=2026-13-01T00:00:00Z", "option end", 10, "no such month"},
      {"on_abandoned=retry", "option on_abandoned", 14, "record or rerun"},
      {"start=2026-02-01T00:00:00Z end=2026-01-01T00:00:00Z", "option end", 32, "before start"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto e = error_of(c.text);
    CHECK(e.field() == c.field);
    CHECK(e.column() == c.column);
    const std::string what = e.what();
    CHECK(what.find(c.reason_part) != std::string::npos);
    CHECK(what.find(std::string("\"") + c.text + "\"") != std::string::npos);  // quotes the whole text
  }
}
