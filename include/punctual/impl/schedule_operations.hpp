/// @file impl/schedule_operations.hpp
/// Part of scheduler.hpp: what async_add_schedule, async_add_schedules, async_modify_schedule,
/// async_remove_schedule, async_pause_schedule, async_resume_schedule and async_run_now run on
/// the strand.
#pragma once

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline void scheduler_core::validate(const schedule_spec& s) const {
  if (s.id.empty()) throw invalid_schedule(s.id, "schedule id must not be empty");
  if (s.task.empty()) throw invalid_schedule(s.id, "task name must not be empty");
  if (!s.trigger) throw invalid_schedule(s.id, "trigger must not be empty");
  if (!opts_.allow_unknown_tasks && !tasks_.contains(s.task)) {
    std::string known;
    for (auto& n : tasks_.names()) known += (known.empty() ? "" : ", ") + n;
    throw invalid_schedule(s.id, "task \"" + s.task +
                                     "\" is not registered (registered: " + (known.empty() ? "none" : known) +
                                     "); register it with tasks() first, or set "
                                     "scheduler_options::allow_unknown_tasks");
  }
  if (s.options.max_running == 0) throw invalid_schedule(s.id, "max_running must be >= 1");
  if (s.options.max_jitter.count() < 0 || (s.options.timeout && s.options.timeout->count() <= 0) ||
      (s.options.misfire_grace && s.options.misfire_grace->count() < 0))
    throw invalid_schedule(s.id, "jitter, timeout and misfire grace must be positive");
  if (s.options.start && s.options.end && *s.options.end < *s.options.start)
    throw invalid_schedule(s.id, "end is before start");
}

inline asio::awaitable<bool> scheduler_core::add(schedule_spec spec, conflict_policy policy) {
  validate(spec);
  schedule_record r;
  r.next_fire = next_within(spec.trigger, now(), spec.options);
  r.trigger_text = spec.trigger.to_string();
  r.spec = std::move(spec);
  const auto id = r.spec.id;
  const bool existed = (co_await db().get_schedule(id)).has_value();
  const bool stored = co_await db().add_schedule(std::move(r), policy);
  if (stored) {
    events_.emit(make_event(existed ? event_kind::schedule_modified : event_kind::schedule_added, id));
    sleep_.wake(schedule_waker_);
  }
  co_return stored;
}

inline asio::awaitable<std::vector<add_outcome>> scheduler_core::add_many(std::vector<schedule_spec> specs,
                                                                          conflict_policy policy) {
  for (const auto& s : specs) validate(s);  // every spec before the store sees any
  const auto t = now();
  std::vector<schedule_record> records(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    records[i].next_fire = next_within(specs[i].trigger, t, specs[i].options);
    records[i].trigger_text = specs[i].trigger.to_string();
    records[i].spec = std::move(specs[i]);
  }
  std::vector<std::string> ids;
  ids.reserve(records.size());
  for (const auto& r : records) ids.push_back(r.spec.id);
  auto outcomes = co_await db().add_schedules(std::move(records), policy);
  bool stored = false;
  for (std::size_t i = 0; i < outcomes.size() && i < ids.size(); ++i) {
    if (outcomes[i] == add_outcome::kept) continue;
    stored = true;
    events_.emit(make_event(
        outcomes[i] == add_outcome::added ? event_kind::schedule_added : event_kind::schedule_modified,
        ids[i]));
  }
  if (stored) sleep_.wake(schedule_waker_);
  co_return outcomes;
}

inline asio::awaitable<schedule_record> scheduler_core::modify(schedule_spec spec) {
  validate(spec);
  const auto t = now();
  auto r = co_await db().modify_schedule(spec.id, [&](schedule_record& s) {
    const bool paused = s.spec.paused;
    s.spec = spec;
    s.spec.paused = paused;
    s.next_fire = next_within(spec.trigger, t, spec.options);
    s.trigger_text = spec.trigger.to_string();
  });
  if (!r) throw schedule_not_found(spec.id);
  events_.emit(make_event(event_kind::schedule_modified, spec.id));
  sleep_.wake(schedule_waker_);
  co_return *r;
}

inline asio::awaitable<void> scheduler_core::remove(std::string id) {
  const bool removed = co_await db().remove_schedule(id);  // (GCC 12 miscompiles `if (!co_await ...)`)
  if (!removed) throw schedule_not_found(id);
  events_.emit(make_event(event_kind::schedule_removed, id));
}

inline asio::awaitable<void> scheduler_core::pause(std::string id) {
  auto r = co_await db().modify_schedule(id, [](schedule_record& s) { s.spec.paused = true; });
  if (!r) throw schedule_not_found(id);
  events_.emit(make_event(event_kind::schedule_paused, id));
}

inline asio::awaitable<void> scheduler_core::resume(std::string id, resume_from from) {
  const auto t = now();
  auto r = co_await db().modify_schedule(id, [&](schedule_record& s) {
    s.spec.paused = false;
    if (from == resume_from::now && s.spec.trigger)
      s.next_fire = next_within(s.spec.trigger, t, s.spec.options);
  });
  if (!r) throw schedule_not_found(id);
  events_.emit(make_event(event_kind::schedule_resumed, id));
  sleep_.wake(schedule_waker_);
}

inline asio::awaitable<std::int64_t> scheduler_core::run_now(std::string id) {
  auto s = co_await db().get_schedule(id);
  if (!s) throw schedule_not_found(id);
  job_record j;
  j.schedule_id = id;
  j.task = s->spec.task;
  j.payload = s->spec.payload;
  auto t = now();
  std::int64_t job_id = 0;
  for (int k = 0; k < 1000 && job_id == 0; ++k, t += duration{1}) {  // same-microsecond duplicates
    j.fire_time = j.run_at = t;
    job_id = co_await db().add_job(j);
  }
  event e = make_event(event_kind::job_submitted, id);
  e.job_id = job_id;
  e.fire_time = j.fire_time;
  events_.emit(e);
  sleep_.wake(job_waker_);
  co_return job_id;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
