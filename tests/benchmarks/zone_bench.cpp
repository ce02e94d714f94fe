// Cost of time-zone lookups in Europe/Berlin: segment(), to_local() and resolve() near now (a
// binary search over the transition table) and in 2100-2200 (the footer rule, computed on
// demand), plus a cached locate_zone().
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "punctual/time.hpp"
#include "punctual/zone.hpp"

namespace {

// 1024 random instants in [from, from + span), so branch predictors cannot learn one answer
std::vector<punctual::time_point> instants(const char* from, std::chrono::hours span) {
  std::mt19937_64 rng(42);
  const auto base = punctual::parse_iso(from);
  std::vector<punctual::time_point> out(1024);
  for (auto& t : out)
    t = base + punctual::duration{static_cast<std::int64_t>(
                   rng() %
                   static_cast<std::uint64_t>(std::chrono::duration_cast<punctual::duration>(span).count()))};
  return out;
}

constexpr auto ten_years = std::chrono::hours{24 * 3652};

void segment_bench(benchmark::State& state, const char* from) {
  const auto& z = punctual::locate_zone("Europe/Berlin");
  const auto ts = instants(from, ten_years);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(z.segment(ts[i++ & 1023]));
  }
}

void to_local_bench(benchmark::State& state, const char* from) {
  const auto& z = punctual::locate_zone("Europe/Berlin");
  const auto ts = instants(from, ten_years);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(z.to_local(ts[i++ & 1023]));
  }
}

void resolve_bench(benchmark::State& state, const char* from) {
  const auto& z = punctual::locate_zone("Europe/Berlin");
  std::vector<punctual::local_time> ls;
  for (const auto t : instants(from, ten_years)) ls.push_back(punctual::local_time{t.time_since_epoch()});
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(z.resolve(ls[i++ & 1023]));
  }
}

void locate_cached(benchmark::State& state) {
  (void)punctual::locate_zone("Europe/Berlin");
  for (auto _ : state) {
    benchmark::DoNotOptimize(&punctual::locate_zone("Europe/Berlin"));
  }
}

}  // namespace

BENCHMARK_CAPTURE(segment_bench, berlin_2020s_table, "2020-01-01T00:00:00Z");
BENCHMARK_CAPTURE(segment_bench, berlin_2100s_rule, "2100-01-01T00:00:00Z");
BENCHMARK_CAPTURE(to_local_bench, berlin_2020s_table, "2020-01-01T00:00:00Z");
BENCHMARK_CAPTURE(to_local_bench, berlin_2100s_rule, "2100-01-01T00:00:00Z");
BENCHMARK_CAPTURE(resolve_bench, berlin_2020s_table, "2020-01-01T00:00:00Z");
BENCHMARK_CAPTURE(resolve_bench, berlin_2100s_rule, "2100-01-01T00:00:00Z");
BENCHMARK(locate_cached);
