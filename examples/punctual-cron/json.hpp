// punctual-cron's JSON: nlohmann/json (Debian's nlohmann-json3-dev) for `status --json`,
// `history --json` and the HTTP API, with two rules of its own: optional values are null when
// empty, and text that is not valid UTF-8 (a job's Latin-1 output, say) never makes the
// document invalid — each such byte becomes U+FFFD. Times are ISO 8601 in the host's zone.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "punctual/crontab.hpp"
#include "punctual/job.hpp"
#include "punctual/options_text.hpp"
#include "punctual/schedule.hpp"
#include "punctual/zone.hpp"

namespace punctual_cron {

using json = nlohmann::json;

/// The zone times are shown in: the host's.
inline const punctual::time_zone& display_zone() {
  static const punctual::time_zone& z = punctual::host_zone();
  return z;
}

/// ISO 8601 with the host's UTC offset, to the millisecond.
inline std::string iso(punctual::time_point t) {
  return punctual::format_iso(std::chrono::floor<std::chrono::milliseconds>(t), display_zone());
}
inline std::optional<std::string> iso(const std::optional<punctual::time_point>& t) {
  if (!t) return std::nullopt;
  return iso(*t);
}

/// `value` as JSON, or null when empty.
template <class T>
json or_null(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

/// Seconds (fractional) as a JSON number.
inline double seconds(punctual::duration d) { return std::chrono::duration<double>(d).count(); }

/// One run, as `history --json` and the HTTP API show it. `output` is the output tail.
inline json run_json(const punctual::job_record& j) {
  json r = {{"job", j.id},
            {"schedule", j.schedule_id},
            {"fire_time", iso(j.fire_time)},
            {"started", or_null(iso(j.started))},
            {"finished", or_null(iso(j.finished))},
            {"outcome", punctual::to_string(j.state)},
            {"exit_code", or_null(j.exit_code)},
            {"signal", or_null(j.signal)},
            {"attempt", j.attempt},
            {"node", j.node},
            {"error", j.error},
            {"output", j.output},
            {"lateness_seconds", nullptr},
            {"duration_seconds", nullptr}};
  if (j.started) r["lateness_seconds"] = seconds(*j.started - j.fire_time);
  if (j.started && j.finished) r["duration_seconds"] = seconds(*j.finished - *j.started);
  return r;
}

/// One schedule, as `status --json` and the HTTP API show it; `last_outcome` is its newest
/// run's state, if it has runs.
inline json schedule_json(const punctual::schedule_record& r, std::optional<std::string> last_outcome) {
  return {{"id", r.spec.id},
          {"trigger", r.trigger_text},
          {"next_fire", or_null(iso(r.next_fire))},
          {"last_fire", or_null(iso(r.last_fire))},
          {"last_outcome", or_null(last_outcome)},
          {"paused", r.spec.paused},
          {"task", r.spec.task},
          {"command", punctual::decode_crontab_payload(r.spec.payload).command},
          {"options", punctual::to_string(r.spec.options)},
          {"quarantine", r.quarantine}};
}

/// `document` as text: valid JSON (UTF-8) whatever bytes its strings hold — a byte that is not
/// part of a valid UTF-8 sequence is written as U+FFFD. `indent` as in json::dump (-1: one line).
inline std::string to_json_text(const json& document, int indent = -1) {
  return document.dump(indent, ' ', false, json::error_handler_t::replace);
}

/// An array as text, one element a line: "[\n {...},\n {...}\n]\n" ("[]\n" when empty).
inline std::string to_json_lines(const json& array) {
  if (array.empty()) return "[]\n";
  std::string out = "[";
  for (std::size_t i = 0; i < array.size(); ++i) out += (i ? ",\n " : "\n ") + to_json_text(array[i]);
  return out + "\n]\n";
}

}  // namespace punctual_cron
