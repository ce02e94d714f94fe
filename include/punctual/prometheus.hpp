/// @file prometheus.hpp
/// The scheduler's metrics and health in the Prometheus text exposition format (0.0.4), for a
/// `GET /metrics` endpoint. punctual-cron serves exactly this; an embedding application can
/// append it to its own metrics page.
///
// clang-format off
/// | metric | type | meaning |
/// |---|---|---|
/// | `punctual_runs_total{outcome}` | counter | runs that ended, by final job state |
/// | `punctual_jobs_submitted_total` | counter | runs created by the schedule loop |
/// | `punctual_fires_dropped_total` | counter | due fire times dropped by coalescing |
/// | `punctual_lateness_seconds` | histogram | job start minus fire time, first attempts |
/// | `punctual_running_jobs` | gauge | runs in progress on this node |
/// | `punctual_store_errors_total` | counter | failed store calls (each retried) |
/// | `punctual_store_error_streak` | gauge | consecutive failed store calls now (0 when fine) |
/// | `punctual_loop_restarts_total` | counter | loops restarted by their supervisor |
/// | `punctual_last_tick_timestamp_seconds` | gauge | Unix time of the schedule loop's last iteration (absent before the first) |
/// | `punctual_healthy` | gauge | 1 when health().healthy, else 0 |
// clang-format on
#pragma once

#include <charconv>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/job.hpp"
#include "punctual/scheduler.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

inline void prometheus_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

inline std::string prometheus_number(double v) {
  char buf[64];  // shortest text that reads back as v
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

inline void prometheus_sample(std::string& out, std::string_view name, std::string_view labels,
                              std::string value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(value).append("\n");
}

}  // namespace detail

/// Renders `m` and `h` as Prometheus text (see the table in the file comment). Every metric
/// name starts with `prefix` + "_".
inline std::string to_prometheus(const scheduler_metrics& m, const health_report& h,
                                 std::string_view prefix = "punctual") {
  using detail::prometheus_header;
  using detail::prometheus_sample;
  const std::string p(prefix);
  std::string out;
  out.reserve(2048);

  const auto runs = p + "_runs_total";
  prometheus_header(out, runs, "counter", "Runs that ended, by outcome (final job state).");
  for (std::size_t i = 0; i < m.outcomes.size(); ++i) {
    const auto s = static_cast<job_state>(i);
    if (!is_final(s)) continue;
    prometheus_sample(out, runs, "outcome=\"" + std::string(to_string(s)) + "\"",
                      std::to_string(m.outcomes[i]));
  }

  const auto single = [&](std::string_view name, std::string_view type, std::string_view help,
                          std::string value) {
    const auto full = p + std::string(name);
    prometheus_header(out, full, type, help);
    prometheus_sample(out, full, "", std::move(value));
  };
  single("_jobs_submitted_total", "counter", "Runs created by the schedule loop.",
         std::to_string(m.submitted));
  single("_fires_dropped_total", "counter", "Due fire times dropped by coalescing.",
         std::to_string(m.fires_dropped));

  const auto late = p + "_lateness_seconds";
  prometheus_header(out, late, "histogram", "Job start time minus fire time.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < m.lateness_buckets.size(); ++i) {
    cumulative += m.lateness_buckets[i];
    const bool last = i + 1 == m.lateness_buckets.size();
    const std::string le = last ? "+Inf" : detail::prometheus_number(scheduler_metrics::lateness_bounds[i]);
    prometheus_sample(out, late + "_bucket", "le=\"" + le + "\"", std::to_string(cumulative));
  }
  prometheus_sample(out, late + "_sum", "", detail::prometheus_number(m.lateness_sum_seconds));
  prometheus_sample(out, late + "_count", "", std::to_string(m.lateness_count));

  single("_running_jobs", "gauge", "Runs in progress on this node.", std::to_string(m.running));
  single("_store_errors_total", "counter", "Failed store calls (each is retried).",
         std::to_string(m.store_errors));
  single("_store_error_streak", "gauge", "Consecutive failed store calls (0 when the store works).",
         std::to_string(h.error_streak));
  single("_loop_restarts_total", "counter", "Scheduler loops restarted by their supervisor.",
         std::to_string(m.loop_restarts));
  if (m.last_tick) {
    const double secs = std::chrono::duration<double>(m.last_tick->time_since_epoch()).count();
    single("_last_tick_timestamp_seconds", "gauge",
           "Unix time of the schedule loop's last completed iteration.", detail::prometheus_number(secs));
  }
  single("_healthy", "gauge", "1 when the scheduler is running and healthy, else 0.", h.healthy ? "1" : "0");
  return out;
}

PUNCTUAL_END_NAMESPACE
