// Steps of the wall clock, on a manual clock whose step() moves the wall time and not the steady
// time: backward steps re-plan schedules (wildcard ones run on the new time, fixed-time ones do
// not run a fire time twice), forward steps keep the catch-up rules, and store timeouts and
// backoffs are measured on the steady clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <asio.hpp>

#include "../support/fault_store.hpp"
#include "../support/scheduler_harness.hpp"
#include "punctual/detail/clock_step.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/trigger/combine.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/once.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

// Registers a task "record" that notes, per schedule, the wall time each run started at.
void add_recorder(harness& h, std::map<std::string, std::vector<time_point>>& runs) {
  h.sched->tasks().add("record", [&runs, &h](job_context& job) -> asio::awaitable<void> {
    runs[job.schedule_id()].push_back(h.clock.now());
    co_return;
  });
}

// How many runs each schedule had so far.
std::map<std::string, std::size_t> counts(const std::map<std::string, std::vector<time_point>>& runs) {
  std::map<std::string, std::size_t> n;
  for (const auto& [id, v] : runs) n[id] = v.size();
  return n;
}

// A daily 02:30 schedule "daily" on a running scheduler whose clock reads 02:40: today's run is done.
struct daily_that_ran {
  harness h;
  std::map<std::string, std::vector<time_point>> runs;
  daily_that_ran() {
    add_recorder(h, runs);
    REQUIRE(h.add({.id = "daily", .task = "record", .trigger = cron_trigger("30 2 * * *")}));
    h.start();
    h.advance(2h + 40min, 1min);
    REQUIRE(runs["daily"].size() == 1);
  }
};

}  // namespace

TEST_CASE("after a backward step of the wall clock, wildcard and interval schedules keep their rhythm",
          "[scheduler][clock]") {
  const duration back = GENERATE(duration{1h}, duration{2min});
  harness h;
  std::map<std::string, std::vector<time_point>> runs;
  add_recorder(h, runs);
  // `@every 1s`: an interval aligned to the Unix epoch (every(1s) starts at t0(), and an interval
  // never fires before its start)
  REQUIRE(h.add({.id = "every-second", .task = "record", .trigger = interval_trigger(1s)}));
  REQUIRE(h.add({.id = "every-10s", .task = "record", .trigger = cron_trigger("*/10 * * * * *")}));
  REQUIRE(h.add({.id = "every-minute", .task = "record", .trigger = cron_trigger("* * * * *")}));
  h.start();
  h.advance(5min);
  REQUIRE(runs["every-second"].size() == 300);
  const auto jobs_before = h.jobs("every-second").size();
  const auto before = counts(runs);

  h.clock.step(-back);
  h.settle();
  const auto stepped = h.clock.now();
  // status: the next fire is on the new time, not `back` ahead
  const auto rec = h.await(h.db->get_schedule("every-second"));
  REQUIRE(rec->next_fire);
  CHECK(*rec->next_fire <= stepped + 1s);
  h.advance(100s);
  INFO("stepped back " << format_duration(back));
  auto after = counts(runs);
  CHECK(after["every-second"] - before.at("every-second") == 100);
  CHECK(after["every-10s"] - before.at("every-10s") == 10);
  CHECK(after["every-minute"] - before.at("every-minute") == 1);
  // one run a second, on the second
  const auto& sec = runs["every-second"];
  REQUIRE(sec.size() == 400);
  CHECK(sec[300] == stepped + 1s);
  for (std::size_t i = 301; i < sec.size(); ++i) CHECK(sec[i] - sec[i - 1] == 1s);
  CHECK(h.jobs("every-second").size() == jobs_before + 100);
  CHECK(h.count(event_kind::clock_stepped) == 1);
  CHECK(h.count(event_kind::job_failed) == 0);
  if (back == 2min) {
    // These fire times ran before the step: the repeated runs are stored 1 us after them.
    auto jobs = h.jobs("every-second");
    std::size_t repeated = 0;
    for (const auto& j : jobs) repeated += (j.fire_time - t0()) % 1s == 1us;
    CHECK(repeated == 100);
  }
}

TEST_CASE("a daily job does not run twice for the same local time across a backward step",
          "[scheduler][clock]") {
  daily_that_ran f;
  auto& [h, runs] = f;
  h.clock.step(-20min);  // back to 02:20
  h.settle();
  h.advance(30min, 10s);  // to 02:50, through 02:30 again
  CHECK(runs["daily"].size() == 1);
  CHECK(h.jobs("daily").size() == 1);
  CHECK(*h.await(h.db->get_schedule("daily"))->next_fire == t0() + 24h + 2h + 30min);
  // the next day it runs again
  h.advance(24h, 1min);
  CHECK(runs["daily"].size() == 2);
}

TEST_CASE("a backward step of 3 hours or more is a correction: fixed-time jobs run on the new time too",
          "[scheduler][clock]") {
  daily_that_ran f;
  auto& [h, runs] = f;
  h.clock.step(-4h);  // 22:40 the day before
  h.settle();
  CHECK(*h.await(h.db->get_schedule("daily"))->next_fire == t0() + 2h + 30min);
  h.advance(4h, 1min);
  CHECK(runs["daily"].size() == 2);
  const auto jobs = h.jobs("daily");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].fire_time == t0() + 2h + 30min);
  CHECK(jobs[1].fire_time == t0() + 2h + 30min + 1us);  // the repeat, as a new run
}

TEST_CASE("a forward step of the wall clock keeps the catch-up rules: one catch-up run",
          "[scheduler][clock]") {
  harness h;
  std::map<std::string, std::vector<time_point>> runs;
  add_recorder(h, runs);
  REQUIRE(h.add({.id = "every-second", .task = "record", .trigger = every(1s)}));
  h.start();
  h.advance(10s);
  REQUIRE(runs["every-second"].size() == 10);
  h.clock.step(1h);
  h.settle();
  CHECK(runs["every-second"].size() == 11);  // coalesce=latest: one run for the latest fire time
  CHECK(runs["every-second"].back() == t0() + 1h + 10s);
  CHECK(h.count(event_kind::fires_dropped) == 1);
  h.advance(5s);
  CHECK(runs["every-second"].size() == 16);
  CHECK(h.count(event_kind::clock_stepped) == 0);
  CHECK(h.count(event_kind::store_error) == 0);
}

TEST_CASE("a forward step of the wall clock during a store call is no store timeout", "[scheduler][clock]") {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>());
  harness h(faulty);  // store_timeout 5 s
  h.start();
  faulty->inject_next("acquire_jobs", fault_mode::hang);
  h.advance(1s);                                 // the job loop wakes and calls acquire_jobs
  REQUIRE(faulty->faults("acquire_jobs") == 1);  // the call hangs
  h.clock.step(1h);
  h.settle();
  CHECK(h.count(event_kind::store_error) == 0);
  h.advance(4s);
  CHECK(h.count(event_kind::store_error) == 0);
  h.advance(2s);  // 6 s of steady time: now it is a timeout
  REQUIRE(h.count(event_kind::store_error) == 1);
  auto it = std::find_if(h.events.begin(), h.events.end(),
                         [](auto& e) { return e.kind == event_kind::store_error; });
  CHECK(it->op == "acquire_jobs");
  CHECK(it->message == "timed out after 5s");
}

TEST_CASE("a backward step of the wall clock during a store backoff does not lengthen it",
          "[scheduler][clock]") {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>());
  harness h(faulty);  // backoff 1 s to 8 s
  h.start();
  faulty->inject_next("acquire_due_schedules", fault_mode::fail);
  h.advance(1s);
  REQUIRE(h.count(event_kind::store_error) == 1);
  const auto calls = faulty->calls("acquire_due_schedules");
  h.clock.step(-1h);
  h.settle();
  h.advance(2s);                                          // the first backoff is at most 1 s
  CHECK(faulty->calls("acquire_due_schedules") > calls);  // retried
}

TEST_CASE("the clock-step rule by name: which schedules run on the new time", "[clock]") {
  using detail::cron_is_wildcard;
  CHECK(cron_is_wildcard("* * * * *"));
  CHECK(cron_is_wildcard("*/5 * * * *"));
  CHECK(cron_is_wildcard("0 * * * *"));
  CHECK(cron_is_wildcard("@hourly"));
  CHECK(cron_is_wildcard("@HOURLY"));
  CHECK_FALSE(cron_is_wildcard("@hourlyx"));
  CHECK(cron_is_wildcard("*/10 * * * * *"));
  CHECK(cron_is_wildcard("0 */2 * * * *"));
  CHECK_FALSE(cron_is_wildcard("30 2 * * *"));
  CHECK_FALSE(cron_is_wildcard("0 9 * * MON-FRI"));
  CHECK_FALSE(cron_is_wildcard("*/10 0 9 * * *"));  // seconds do not count (cronie has none)
  CHECK_FALSE(cron_is_wildcard("@daily"));
  CHECK(detail::runs_on_new_time(every(1s)));
  CHECK(detail::runs_on_new_time(cron_trigger("* * * * *")));
  CHECK_FALSE(detail::runs_on_new_time(cron_trigger("30 2 * * *")));
  CHECK_FALSE(detail::runs_on_new_time(once_trigger(t0())));
  CHECK(detail::runs_on_new_time(any_of_trigger({every(1s), cron_trigger("* * * * *")})));
  CHECK_FALSE(detail::runs_on_new_time(any_of_trigger({every(1s), cron_trigger("30 2 * * *")})));

  schedule_record s;
  s.spec.trigger = cron_trigger("30 2 * * *");
  s.last_fire = t0() + 2h + 30min;
  s.next_fire = t0() + 26h + 30min;
  CHECK_FALSE(detail::next_after_backward_step(s, t0() + 2h + 20min, 20min));  // ran: stays tomorrow
  CHECK(detail::next_after_backward_step(s, t0() - 1h, 3h + 30min) == t0() + 2h + 30min);  // correction
  s.last_fire.reset();  // added after 02:30 and never ran: today's 02:30 is a new fire time
  CHECK(detail::next_after_backward_step(s, t0() + 2h + 20min, 20min) == t0() + 2h + 30min);
  s.spec.trigger = every(1s);
  s.last_fire = t0() + 1h;
  s.next_fire = t0() + 1h + 1s;
  CHECK(detail::next_after_backward_step(s, t0(), 1h) == t0() + 1s);
  s.next_fire.reset();  // exhausted
  CHECK_FALSE(detail::next_after_backward_step(s, t0(), 1h));

  CHECK(detail::stored_fire_time(t0() + 1s, t0() + 1h) == t0() + 1s + 1us);
  CHECK(detail::stored_fire_time(t0() + 2h, t0() + 1h) == t0() + 2h);
  CHECK(detail::stored_fire_time(t0(), std::nullopt) == t0());

  detail::step_detector d;
  CHECK_FALSE(d.observe(t0(), 0s));
  CHECK_FALSE(d.observe(t0() + 10s, 10s));
  CHECK_FALSE(d.observe(t0() + 10s + 500ms, 11s));  // 0.5 s: below the threshold
  CHECK(d.observe(t0() - 1h, 12s) == 1h + 11s + 500ms);
  CHECK_FALSE(d.observe(t0() + 1h, 13s));  // forward: not a backward step
}
