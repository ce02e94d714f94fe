// Trigger benchmarks (Google Benchmark): parsing and next() of each trigger kind.
// Build with optimisation (-O2); the figures of a debug build mean nothing.
//
//   g++ -std=c++20 -O2 -DNDEBUG -Iinclude tests/benchmarks/trigger_bench.cpp -lbenchmark_main -lbenchmark
//   -lpthread
//
// Cron part: BM_cron_parse/<expr> and BM_cron_next/<expr>/<zone> for common and special
// expressions, in UTC and in Europe/Berlin. next() is measured from 1024 pseudo-random
// instants spread over 2020-2030, so the figure is an average over many starting points
// (some right before a DST transition), not one lucky path.

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/zone.hpp"

namespace {

constexpr const char* cron_common[] = {"*/5 * * * *", "0 9 * * MON-FRI", "0 0 1 * *", "30 2 * * *"};
constexpr const char* cron_special[] = {"0 0 L * *", "0 0 LW * *", "0 0 15W * *", "0 0 * * 5L",
                                        "0 0 * * MON#2"};

// Deterministic pseudo-random instants in [2020-01-01, 2030-01-01), whole and fractional seconds.
const std::array<punctual::time_point, 1024>& bench_instants() {
  static const auto instants = [] {
    std::array<punctual::time_point, 1024> a{};
    const std::int64_t begin = 1'577'836'800LL * 1'000'000;  // 2020-01-01T00:00:00Z
    const std::int64_t span = 315'532'800LL * 1'000'000;     // ten years
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& t : a) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      t = punctual::time_point{
          punctual::duration{begin + static_cast<std::int64_t>(x % static_cast<std::uint64_t>(span))}};
    }
    return a;
  }();
  return instants;
}

void bm_cron_parse(benchmark::State& state, const char* expr) {
  for (auto _ : state) {
    punctual::cron_trigger t(expr);
    benchmark::DoNotOptimize(t);
  }
}

void bm_cron_next(benchmark::State& state, const char* expr, const char* zone) {
  const punctual::time_zone* z = nullptr;
  try {
    z = &punctual::locate_zone(zone);
  } catch (const punctual::parse_error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const punctual::cron_trigger t(expr, *z);
  const auto& instants = bench_instants();
  std::size_t i = 0;
  for (auto _ : state) {
    auto n = t.next(instants[i++ & 1023]);
    benchmark::DoNotOptimize(n);
  }
}

// Chained next(): what a scheduler does (each fire time from the previous one).
void bm_cron_next_chained(benchmark::State& state, const char* expr, const char* zone) {
  const punctual::time_zone* z = nullptr;
  try {
    z = &punctual::locate_zone(zone);
  } catch (const punctual::parse_error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const punctual::cron_trigger t(expr, *z);
  // start over every ten years, so the figure stays about the years schedulers live in
  const punctual::time_point start = bench_instants()[0];
  const punctual::time_point stop = start + std::chrono::hours{24 * 3653};
  punctual::time_point cur = start;
  for (auto _ : state) {
    auto n = t.next(cur);
    cur = n && *n < stop ? *n : start;
    benchmark::DoNotOptimize(cur);
  }
}

[[maybe_unused]] const bool cron_registered = [] {
  auto each = [](auto&& f) {
    for (const char* e : cron_common) f(e);
    for (const char* e : cron_special) f(e);
  };
  each([](const char* e) {
    benchmark::RegisterBenchmark((std::string("BM_cron_parse/") + e).c_str(), bm_cron_parse, e);
  });
  for (const char* zone : {"UTC", "Europe/Berlin"}) {
    each([zone](const char* e) {
      benchmark::RegisterBenchmark((std::string("BM_cron_next/") + e + "/" + zone).c_str(), bm_cron_next, e,
                                   zone);
    });
  }
  for (const char* zone : {"UTC", "Europe/Berlin"}) {
    for (const char* e : {"*/5 * * * *", "0 9 * * MON-FRI", "0 0 LW * *"})
      benchmark::RegisterBenchmark((std::string("BM_cron_next_chained/") + e + "/" + zone).c_str(),
                                   bm_cron_next_chained, e, zone);
  }
  return true;
}();

}  // namespace
