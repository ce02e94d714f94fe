// The Prometheus text form of the scheduler's metrics and health (prometheus.hpp).
#include "punctual/prometheus.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <sstream>
#include <string>

#include "punctual/job.hpp"
#include "punctual/scheduler.hpp"

namespace {

// Every sample line "name{labels} value" of a Prometheus text, keyed by "name{labels}".
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("prometheus text carries outcome counters, gauges and health", "[prometheus]") {
  punctual::scheduler_metrics m;
  m.outcomes[static_cast<std::size_t>(punctual::job_state::succeeded)] = 7;
  m.outcomes[static_cast<std::size_t>(punctual::job_state::failed)] = 2;
  m.submitted = 9;
  m.fires_dropped = 3;
  m.store_errors = 4;
  m.loop_restarts = 1;
  m.running = 5;
  m.last_tick = punctual::time_point{std::chrono::seconds{1'700'000'000} + std::chrono::milliseconds{250}};
  punctual::health_report h;
  h.healthy = true;
  h.error_streak = 2;
  const auto s = samples(punctual::to_prometheus(m, h));
  CHECK(s.at("punctual_runs_total{outcome=\"succeeded\"}") == "7");
  CHECK(s.at("punctual_runs_total{outcome=\"failed\"}") == "2");
  CHECK(s.at("punctual_runs_total{outcome=\"abandoned\"}") == "0");
  CHECK(s.count("punctual_runs_total{outcome=\"pending\"}") == 0);  // not an outcome
  CHECK(s.count("punctual_runs_total{outcome=\"running\"}") == 0);
  CHECK(s.at("punctual_jobs_submitted_total") == "9");
  CHECK(s.at("punctual_fires_dropped_total") == "3");
  CHECK(s.at("punctual_store_errors_total") == "4");
  CHECK(s.at("punctual_store_error_streak") == "2");
  CHECK(s.at("punctual_loop_restarts_total") == "1");
  CHECK(s.at("punctual_running_jobs") == "5");
  CHECK(s.at("punctual_last_tick_timestamp_seconds") == "1700000000.25");
  CHECK(s.at("punctual_healthy") == "1");
  h.healthy = false;
  CHECK(samples(punctual::to_prometheus(m, h)).at("punctual_healthy") == "0");
}

TEST_CASE("prometheus lateness histogram buckets are cumulative and end with +Inf", "[prometheus]") {
  punctual::scheduler_metrics m;
  m.lateness_buckets[0] = 1;   // <= 1 ms
  m.lateness_buckets[2] = 2;   // <= 10 ms
  m.lateness_buckets[11] = 4;  // beyond 300 s
  m.lateness_count = 7;
  m.lateness_sum_seconds = 1234.5;
  const auto text = punctual::to_prometheus(m, {});
  const auto s = samples(text);
  CHECK(s.at("punctual_lateness_seconds_bucket{le=\"0.001\"}") == "1");
  CHECK(s.at("punctual_lateness_seconds_bucket{le=\"0.005\"}") == "1");
  CHECK(s.at("punctual_lateness_seconds_bucket{le=\"0.01\"}") == "3");
  CHECK(s.at("punctual_lateness_seconds_bucket{le=\"300\"}") == "3");
  CHECK(s.at("punctual_lateness_seconds_bucket{le=\"+Inf\"}") == "7");
  CHECK(s.at("punctual_lateness_seconds_count") == "7");
  CHECK(s.at("punctual_lateness_seconds_sum") == "1234.5");
  CHECK(text.find("# TYPE punctual_lateness_seconds histogram\n") != std::string::npos);
  CHECK(text.find("# TYPE punctual_runs_total counter\n") != std::string::npos);
  // No tick yet: the gauge is absent rather than 0 (which would read as 1970).
  CHECK(s.count("punctual_last_tick_timestamp_seconds") == 0);
}

TEST_CASE("prometheus metric names take the given prefix", "[prometheus]") {
  const auto s = samples(punctual::to_prometheus({}, {}, "cron"));
  CHECK(s.count("cron_healthy") == 1);
  CHECK(s.count("punctual_healthy") == 0);
}
