// After a store outage (issue 14, items 1 and 2), on a manual clock with the fault store: one
// successful store call tells every loop that the store is back, so the first run starts within
// a second of it and no loop sleeps out a stale backoff; the catch-up rule (one run per schedule
// with coalesce=latest) holds however the loops interleave, also when the job loop finds several
// runs of one schedule due together; and health() is unhealthy, naming the failing loop, for as
// long as any loop's store calls fail, with one store_recovered per outage.
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "../support/fault_store.hpp"
#include "../support/scheduler_harness.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/memory_store.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

struct started_run {
  time_point fire;
  time_point started;
};

// Every run of the "record" task, per schedule, in the order they started.
struct run_log {
  std::map<std::string, std::vector<started_run>> runs;
  void install(harness& h) {
    h.sched->tasks().add("record", [this](job_context& job) -> asio::awaitable<void> {
      runs[job.schedule_id()].push_back({job.fire_time(), job.started()});
      co_return;
    });
  }
};

// The scheduler's default backoff (100 ms, doubling up to 30 s), as punctual-cron runs it.
void default_backoff(scheduler_options& o) {
  o.backoff_initial = 100ms;
  o.backoff_max = 30s;
  o.store_timeout = 5s;
}

void fail_everything(fault_store& db) {
  for (auto& op : fault_store::operations()) db.inject_next(op, fault_mode::fail, 0);
}

// Store calls that succeeded so far.
std::uint64_t successes(const fault_store& db) {
  std::uint64_t n = 0;
  for (auto& op : fault_store::operations()) n += db.calls(op) - db.faults(op);
  return n;
}

// A run is late when it started more than this after its fire time (the clock moves in 100 ms
// steps: a run on time starts within one step).
constexpr duration late = 500ms;

struct recovery_figures {
  std::size_t late_runs = 0;                // runs started later than `late`
  duration max_lateness{0};                 // of those
  std::optional<duration> first_run_delay;  // from `back` to the first run started at or after it
  std::size_t burst = 0;                    // runs started within 1 s from that first run
};

recovery_figures figures(const std::vector<started_run>& runs, time_point back) {
  recovery_figures f;
  std::optional<time_point> first;
  for (auto& r : runs) {
    if (r.started - r.fire > late) {
      ++f.late_runs;
      f.max_lateness = std::max(f.max_lateness, r.started - r.fire);
    }
    if (r.started >= back && (!first || r.started < *first)) first = r.started;
  }
  if (first) {
    f.first_run_delay = *first - back;
    for (auto& r : runs) f.burst += r.started >= *first && r.started - *first < 1s;
  }
  return f;
}

std::string describe(const recovery_figures& f) {
  return std::to_string(f.late_runs) + " late run(s) (latest " + format_duration(f.max_lateness) +
         " late), first run " + (f.first_run_delay ? format_duration(*f.first_run_delay) : "never") +
         " after the store came back, " + std::to_string(f.burst) + " run(s) within 1 s of it";
}

}  // namespace

TEST_CASE(
    "after an outage the schedule loop survives first: the job loop starts one catch-up run per "
    "schedule, within a second of the store coming back",
    "[scheduler][faults][recovery]") {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{100000}));
  harness h(faulty, default_backoff);
  run_log log;
  log.install(h);
  const std::vector<std::string> ids = {"a", "b", "c"};
  for (auto& id : ids) REQUIRE(h.add({.id = id, .task = "record", .trigger = every(1s)}));
  h.start();
  h.advance(5s, 100ms);
  const auto down = h.clock.now();
  fail_everything(*faulty);
  h.advance(12s, 100ms);
  // Every operation works again but the job loop's (acquire_jobs, release_jobs): the schedule
  // loop recovers first and creates a pending run a second, until 4 of each have piled up.
  for (auto& op : fault_store::operations())
    if (op != "acquire_jobs" && op != "release_jobs") faulty->heal(op);
  auto pending = [&](const std::string& id) {
    std::size_t n = 0;
    for (auto& j : h.jobs(id)) n += j.state == job_state::pending;
    return n;
  };
  for (int step = 0; step < 400 && pending("a") < 4; ++step) h.advance(100ms, 100ms);
  REQUIRE(pending("a") >= 4);
  const auto back = h.clock.now();
  faulty->heal();
  h.advance(10s, 100ms);

  for (auto& id : ids) {
    const auto f = figures(log.runs[id], back);
    INFO("schedule " << id << ": " << describe(f));
    CHECK(f.late_runs <= 1);  // one catch-up run (coalesce=latest)
    REQUIRE(f.first_run_delay);
    CHECK(*f.first_run_delay <= 1s);
    CHECK(f.burst <= 2);  // the catch-up run, and the next one on time
    // From the second after the store came back, every fire time ran once.
    for (int k = 1; k <= 9; ++k) {
      INFO("fire time back + " << k << " s");
      CHECK(std::count_if(log.runs[id].begin(), log.runs[id].end(),
                          [&](const started_run& r) { return r.fire == back + k * 1s; }) == 1);
    }
    // The runs created during the outage: at most one ran; the others are recorded as missed,
    // coalesced into the newest one. Nothing is left pending or running.
    std::size_t ran = 0, coalesced = 0;
    for (auto& j : h.jobs(id)) {
      INFO("job for " << format_iso(j.fire_time) << ": " << to_string(j.state) << " " << j.error);
      CHECK(is_final(j.state));
      if (j.fire_time <= down || j.fire_time > back) continue;
      if (j.state == job_state::succeeded)
        ++ran;
      else if (j.state == job_state::missed && j.error.find("coalesced") != std::string::npos)
        ++coalesced;
      else
        FAIL_CHECK("a run of the outage that neither ran nor was coalesced");
    }
    CHECK(ran <= 1);
    CHECK(coalesced >= 1);
  }
  CHECK(h.count(event_kind::loop_restarted) == 0);
  CHECK(h.sched->health().healthy);
}

TEST_CASE(
    "after an outage of every store call, one success tells every loop: the first run starts "
    "within a second of it",
    "[scheduler][faults][recovery]") {
  duration worst_after_success{0}, worst_after_healing{0};
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{100000}));
    harness h(faulty, [&](scheduler_options& o) {
      default_backoff(o);
      o.seed = seed;  // the backoff's jitter
    });
    run_log log;
    log.install(h);
    REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(1s)}));
    h.start();
    h.advance(5s, 100ms);
    fail_everything(*faulty);
    h.advance(12s, 100ms);
    const auto healed = h.clock.now();
    const auto ok_before = successes(*faulty);
    faulty->heal();
    std::optional<time_point> first_success;
    for (int step = 0; step < 400; ++step) {  // 40 s: past the longest backoff
      h.advance(100ms, 100ms);
      if (!first_success && successes(*faulty) > ok_before) first_success = h.clock.now();
    }
    REQUIRE(first_success);
    const auto f = figures(log.runs["s"], *first_success);
    INFO("seed " << seed << ": first successful call " << format_duration(*first_success - healed)
                 << " after healing; " << describe(f));
    REQUIRE(f.first_run_delay);
    CHECK(*f.first_run_delay <= 1s);
    CHECK(f.late_runs <= 1);
    worst_after_success = std::max(worst_after_success, *f.first_run_delay);
    worst_after_healing = std::max(worst_after_healing, *f.first_run_delay + (*first_success - healed));
    CHECK(h.count(event_kind::store_recovered) == 1);
  }
  INFO("worst: first run " << format_duration(worst_after_success) << " after the first success, "
                           << format_duration(worst_after_healing) << " after healing");
  CHECK(worst_after_success <= 1s);
}

TEST_CASE(
    "runs of one schedule that the job loop finds due together follow the schedule's coalesce "
    "option; triggered runs always run",
    "[scheduler][faults][recovery]") {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{100000}));
  harness h(faulty);
  run_log log;
  log.install(h);
  schedule_options earliest, all;
  earliest.coalesce = coalesce_policy::earliest;
  all.coalesce = coalesce_policy::all;
  REQUIRE(h.add({.id = "latest", .task = "record", .trigger = every(1s)}));
  REQUIRE(h.add({.id = "earliest", .task = "record", .trigger = every(1s), .options = earliest}));
  REQUIRE(h.add({.id = "all", .task = "record", .trigger = every(1s), .options = all}));
  h.start();
  h.advance(3500ms, 100ms);
  // Only the job loop's acquire fails: the schedule loop creates a run a second meanwhile.
  faulty->inject_next("acquire_jobs", fault_mode::fail, 0);
  h.advance(4s, 100ms);
  auto trigger = h.sched->async_run_now("latest", asio::use_future);
  h.run_until([&] { return trigger.wait_for(0s) == std::future_status::ready; });
  const auto triggered = h.jobs("latest").back().fire_time;
  REQUIRE(triggered == t0() + 7500ms);
  h.advance(1s, 100ms);
  faulty->heal();
  h.advance(4s, 100ms);

  auto state_of = [&](const std::string& id) {
    std::map<time_point, job_record> m;
    for (auto& j : h.jobs(id)) m[j.fire_time] = j;
    return m;
  };
  auto coalesced = [](const job_record& j) {
    return j.state == job_state::missed && j.error.find("coalesced") != std::string::npos;
  };
  {
    INFO("coalesce=latest");
    auto jobs = state_of("latest");
    // The backlog: fire times 4..8 s (and maybe 9 s). The newest acquired ran, the older ones
    // were coalesced into it, and the triggered run ran too.
    CHECK(jobs.at(triggered).state == job_state::succeeded);
    CHECK(coalesced(jobs.at(t0() + 4s)));
    CHECK(coalesced(jobs.at(t0() + 7s)));
    std::size_t late_runs = 0;
    for (auto& r : log.runs["latest"]) late_runs += r.fire != triggered && r.started - r.fire > late;
    CHECK(late_runs <= 1);
    for (auto& [fire, j] : jobs) {
      INFO(format_iso(fire) << ": " << to_string(j.state) << " " << j.error);
      CHECK((j.state == job_state::succeeded || coalesced(j)));
    }
    CHECK(h.count(event_kind::fires_dropped, "latest") >= 1);
  }
  {
    INFO("coalesce=earliest");
    auto jobs = state_of("earliest");
    CHECK(jobs.at(t0() + 4s).state == job_state::succeeded);  // the oldest of the backlog ran
    CHECK(coalesced(jobs.at(t0() + 5s)));
    CHECK(coalesced(jobs.at(t0() + 8s)));
  }
  {
    INFO("coalesce=all");
    auto jobs = state_of("all");
    for (auto& [fire, j] : jobs) {
      INFO(format_iso(fire) << ": " << to_string(j.state) << " " << j.error);
      CHECK(j.state == job_state::succeeded);
    }
    CHECK(jobs.size() == 12);  // 1 s .. 12 s, each once
  }
}

TEST_CASE(
    "while one kind of store call keeps failing, health is unhealthy naming the loop, and "
    "store_recovered comes once",
    "[scheduler][faults][health]") {
  struct failing {
    const char* op;
    const char* loop;
  };
  const failing cases[] = {
      {"release_schedules", "schedule loop"},  // a full disk: inserts fail, reads still work
      {"acquire_jobs", "job loop"},
      {"update_jobs", "flush loop"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.op << " fails") {
      auto faulty =
          std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{100000}));
      harness h(faulty, default_backoff);
      run_log log;
      log.install(h);
      REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(1s)}));
      h.start();
      h.advance(3s, 100ms);
      REQUIRE(h.sched->health().healthy);
      faulty->inject_next(c.op, fault_mode::fail, 0);
      std::size_t samples = 0, healthy = 0, named = 0;
      for (int step = 0; step < 300; ++step) {  // 30 s
        h.advance(100ms, 100ms);
        if (h.count(event_kind::store_error) == 0) continue;  // not failed yet
        ++samples;
        const auto r = h.sched->health();
        if (r.healthy) ++healthy;
        named += r.reason.find(c.loop) != std::string::npos && r.reason.find(c.op) != std::string::npos;
      }
      const auto r = h.sched->health();
      INFO(samples << " samples while " << c.op << " failed: " << healthy << " healthy; "
                   << h.count(event_kind::store_recovered) << " store_recovered; reason: " << r.reason);
      CHECK(samples >= 280);
      CHECK(healthy == 0);
      CHECK(named == samples);
      CHECK(h.count(event_kind::store_recovered) == 0);
      bool listed = false;
      for (auto& l : r.loops) {
        if (l.name + " loop" != c.loop) continue;
        listed = true;
        CHECK(l.failing);
        CHECK(l.last_error_op == c.op);
        CHECK(l.error_streak >= 10);
      }
      CHECK(listed);
      faulty->heal();
      h.advance(5s, 100ms);
      const auto after = h.sched->health();
      INFO("after healing: " << after.reason);
      CHECK(after.healthy);
      CHECK(after.error_streak == 0);
      for (auto& l : after.loops) CHECK_FALSE(l.failing);
      CHECK(h.count(event_kind::store_recovered) == 1);
      // Every store_error counts the outage's failed calls: one of them began it (punctual-cron
      // logs that one).
      std::size_t began = 0;
      for (auto& e : h.events) began += e.kind == event_kind::store_error && e.count == 1;
      CHECK(began == 1);
    }
  }
}
