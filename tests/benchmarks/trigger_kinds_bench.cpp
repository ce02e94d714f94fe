// Benchmarks (Google Benchmark) of next() for the non-cron trigger kinds — interval, calendar
// interval, combinators — plus parse_trigger/to_string of their canonical texts and jitter.
// Build with optimisation; figures from a debug build mean nothing:
//
//   g++ -std=c++20 -O2 -DNDEBUG -Iinclude tests/benchmarks/trigger_kinds_bench.cpp -lbenchmark_main
//   -lbenchmark -lpthread
//
// next() is measured from 1024 pseudo-random instants over 2020-2030 (so calendar figures
// include the arithmetic jump to the right period, not one lucky path) and, for the "far"
// variants, from instants near 2290 with the anchor in 2000 — the cost must not grow with the
// distance from the anchor.

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "punctual/time.hpp"
#include "punctual/trigger/calendar_interval.hpp"
#include "punctual/trigger/combine.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/jitter.hpp"
#include "punctual/trigger/once.hpp"
#include "punctual/trigger/parse.hpp"
#include "punctual/trigger/trigger.hpp"

namespace {

using namespace std::chrono_literals;

// Deterministic pseudo-random instants in [begin, begin + ten years).
std::array<punctual::time_point, 1024> make_instants(std::int64_t begin_seconds) {
  std::array<punctual::time_point, 1024> a{};
  const std::int64_t begin = begin_seconds * 1'000'000;
  const std::int64_t span = 315'532'800LL * 1'000'000;
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& t : a) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t = punctual::time_point{
        punctual::duration{begin + static_cast<std::int64_t>(x % static_cast<std::uint64_t>(span))}};
  }
  return a;
}

const std::array<punctual::time_point, 1024>& near_instants() {
  static const auto a = make_instants(1'577'836'800LL);  // 2020-01-01
  return a;
}

const std::array<punctual::time_point, 1024>& far_instants() {
  static const auto a = make_instants(10'099'008'000LL);  // 2290-01-01
  return a;
}

template <class T>
void run_next(benchmark::State& state, const T& trigger,
              const std::array<punctual::time_point, 1024>& instants) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto n = trigger.next(instants[i++ & 1023]);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

constexpr auto ymd = [](int y, unsigned m, unsigned d) {
  return std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d};
};

void BM_interval_next(benchmark::State& state) {
  const punctual::interval_trigger t{37s, punctual::parse_iso("2000-01-01T00:00:00Z")};
  run_next(state, t, near_instants());
}
BENCHMARK(BM_interval_next);

void BM_interval_next_far(benchmark::State& state) {
  const punctual::interval_trigger t{1us * 7, punctual::parse_iso("2000-01-01T00:00:00Z")};
  run_next(state, t, far_instants());
}
BENCHMARK(BM_interval_next_far);

void BM_calendar_monthly_utc(benchmark::State& state) {
  const punctual::calendar_interval_trigger t{{.months = 1}, ymd(2000, 1, 31), 9h};
  run_next(state, t, near_instants());
}
BENCHMARK(BM_calendar_monthly_utc);

void BM_calendar_monthly_utc_far(benchmark::State& state) {
  const punctual::calendar_interval_trigger t{{.months = 1}, ymd(2000, 1, 31), 9h};
  run_next(state, t, far_instants());
}
BENCHMARK(BM_calendar_monthly_utc_far);

void BM_calendar_daily_berlin(benchmark::State& state) {
  const punctual::calendar_interval_trigger t{{.days = 1}, ymd(2000, 1, 1), 2h + 30min, "Europe/Berlin"};
  run_next(state, t, near_instants());
}
BENCHMARK(BM_calendar_daily_berlin);

void BM_calendar_daily_berlin_far(benchmark::State& state) {
  const punctual::calendar_interval_trigger t{{.days = 1}, ymd(2000, 1, 1), 2h + 30min, "Europe/Berlin"};
  run_next(state, t, far_instants());
}
BENCHMARK(BM_calendar_daily_berlin_far);

void BM_calendar_biweekly_new_york_twice(benchmark::State& state) {
  const punctual::calendar_interval_trigger t{{.weeks = 2},
                                              ymd(2000, 1, 2),
                                              1h + 30min,
                                              "America/New_York",
                                              {.overlap = punctual::dst_overlap::twice}};
  run_next(state, t, near_instants());
}
BENCHMARK(BM_calendar_biweekly_new_york_twice);

void BM_any_of_3(benchmark::State& state) {
  const punctual::trigger t = punctual::parse_trigger(
      "any_of(interval:45m; calendar:days=1 at=09:00 start=2000-01-01 tz=Europe/Berlin; "
      "once:2025-01-01T00:00:00Z)");
  run_next(state, t, near_instants());
}
BENCHMARK(BM_any_of_3);

void BM_all_of_2h_3h(benchmark::State& state) {
  const punctual::trigger t = punctual::parse_trigger("all_of(interval:2h; interval:3h)");
  run_next(state, t, near_instants());
}
BENCHMARK(BM_all_of_2h_3h);

void BM_all_of_monthly_weekly(benchmark::State& state) {
  // Fires rarely: the 13th of a month that is also on a 7-day grid from a Friday.
  const punctual::trigger t = punctual::parse_trigger(
      "all_of(calendar:months=1 start=2000-01-13; calendar:weeks=1 start=2000-01-14)");
  run_next(state, t, near_instants());
}
BENCHMARK(BM_all_of_monthly_weekly);

void BM_parse_calendar(benchmark::State& state) {
  const std::string text =
      "calendar:months=1 at=09:00:00 start=2026-01-31 end=2027-01-01 tz=Europe/Berlin gap=skip";
  for (auto _ : state) {
    auto t = punctual::parse_trigger(text);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_parse_calendar);

void BM_parse_nested(benchmark::State& state) {
  const std::string text =
      "any_of(all_of(interval:2h; interval:3h); interval:1h30m start=2026-01-01T00:00:00Z; "
      "once:2030-01-01T00:00:00Z)";
  for (auto _ : state) {
    auto t = punctual::parse_trigger(text);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_parse_nested);

void BM_to_string_calendar(benchmark::State& state) {
  const punctual::calendar_interval_trigger t{{.months = 1}, ymd(2026, 1, 31), 9h, "Europe/Berlin"};
  for (auto _ : state) {
    auto s = t.to_string();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_to_string_calendar);

void BM_apply_jitter(benchmark::State& state) {
  const auto fire = punctual::parse_iso("2026-01-01T00:00:00Z");
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    auto j = punctual::apply_jitter(fire, fire + 30s, 1min, x);
    benchmark::DoNotOptimize(j);
  }
}
BENCHMARK(BM_apply_jitter);

}  // namespace
