// "The database dropped inside update_job", reproduced at every call site: faults are
// injected into every store operation the loops call, at calls #1..#5, in four modes (throw,
// hang until timed out, throw after the store committed, hang after it committed). After
// the faults stop, every schedule keeps firing, no fire time is lost or duplicated, and the
// events tell the story.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <asio.hpp>

#include "../support/fault_store.hpp"
#include "../support/scheduler_harness.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/memory_store.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

const char* mode_name(fault_mode m) {
  switch (m) {
    case fault_mode::fail: return "fail";
    case fault_mode::hang: return "hang";
    case fault_mode::fail_after_commit: return "fail_after_commit";
    case fault_mode::hang_after_commit: return "hang_after_commit";
  }
  return "?";
}

void tight_timing(scheduler_options& o) {
  o.lease = 12s;  // the lease loop runs every 4 s
  o.store_timeout = 3s;
  o.backoff_initial = 1s;
  o.backoff_max = 4s;
}

struct fire_log {
  std::map<std::string, std::map<time_point, int>> runs;  // schedule -> fire time -> runs
  void install(harness& h) {
    h.sched->tasks().add("record", [this](job_context& job) -> asio::awaitable<void> {
      ++runs[job.schedule_id()][job.fire_time()];
      co_return;
    });
  }
};

}  // namespace

TEST_CASE("store faults at every loop call site lose and duplicate no fire time", "[scheduler][faults]") {
  const std::vector<std::string> ops = {"acquire_due_schedules", "release_schedules", "acquire_jobs",
                                        "update_jobs",           "next_due",          "extend_leases",
                                        "recover_abandoned"};
  const fault_mode modes[] = {fault_mode::fail, fault_mode::hang, fault_mode::fail_after_commit,
                              fault_mode::hang_after_commit};
  int combinations = 0;
  for (const auto& op : ops) {
    for (std::uint64_t n = 1; n <= 5; ++n) {
      for (auto mode : modes) {
        INFO("fault: " << op << " calls #" << n << "..#" << n + 2 << ", " << mode_name(mode));
        auto faulty =
            std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{1000}));
        harness h(faulty, tight_timing);
        fire_log log;
        log.install(h);
        schedule_options o;
        o.coalesce = coalesce_policy::all;  // every fire time must become a run
        o.max_catch_up = 1000;
        for (const char* id : {"a", "b", "c"})
          REQUIRE(h.add({.id = id, .task = "record", .trigger = every(10s), .options = o}));
        faulty->inject(op, mode, n, 3);
        h.start();
        h.advance(120s);
        CHECK(faulty->faults(op) == 3);
        faulty->heal();
        h.advance(60s);

        for (const char* id : {"a", "b", "c"}) {
          INFO("schedule " << id);
          const auto& runs = log.runs[id];
          CHECK(runs.size() == 18);  // 10 s, 20 s, ... 180 s
          for (int k = 1; k <= 18; ++k) {
            auto it = runs.find(t0() + k * 10s);
            CHECK((it != runs.end() && it->second == 1));
          }
          auto jobs = h.jobs(id);
          std::set<time_point> fire_times;
          for (auto& j : jobs) {
            fire_times.insert(j.fire_time);
            CHECK(j.state == job_state::succeeded);
          }
          CHECK(jobs.size() == 18);
          CHECK(fire_times.size() == jobs.size());  // one job per (schedule, fire time)
        }
        // The events tell the story: errors on that operation, then recovery.
        std::size_t errors = 0, recovered = 0;
        for (auto& e : h.events) {
          errors += e.kind == event_kind::store_error && e.op == op;
          recovered += e.kind == event_kind::store_recovered &&
                       e.message.find("(last: " + op + ": ") != std::string::npos;
        }
        CHECK(errors == 3);
        CHECK(recovered >= 1);
        CHECK(h.count(event_kind::loop_restarted) == 0);
        auto health = h.sched->health();
        CHECK(health.healthy);
        CHECK(health.error_streak == 0);
        const bool throws = mode == fault_mode::fail || mode == fault_mode::fail_after_commit;
        CAPTURE(health.last_error);
        CHECK(health.last_error_op == op);
        CHECK(health.last_error.find(throws ? "injected fault: " + op : "timed out after 3s") !=
              std::string::npos);
        ++combinations;
      }
    }
  }
  CHECK(combinations == 7 * 5 * 4);
}

TEST_CASE("a store that is down for a minute: the scheduler reports it, stays alive and catches up",
          "[scheduler][faults]") {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{1000}));
  harness h(faulty, tight_timing);
  fire_log log;
  log.install(h);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(20s);
  REQUIRE(log.runs["s"].size() == 2);
  for (auto& op : fault_store::operations())
    faulty->inject_next(op, fault_mode::fail, 0);  // everything fails
  h.advance(60s);
  auto health = h.sched->health();
  CHECK_FALSE(health.healthy);
  CHECK(health.state == scheduler_state::running);
  CHECK(health.error_streak > 5);
  CHECK(health.reason.find("store error streak") != std::string::npos);
  CHECK(health.last_error.find("injected fault") != std::string::npos);
  CHECK(log.runs["s"].size() == 2);  // nothing ran while the store was down
  faulty->heal();
  h.advance(10s);
  // Back: the missed fire times coalesce into one run (coalesce=latest), then on schedule again.
  CHECK(log.runs["s"].size() == 4);
  CHECK(log.runs["s"].count(t0() + 80s) == 1);
  CHECK(log.runs["s"].count(t0() + 90s) == 1);
  CHECK(h.sched->health().healthy);
  CHECK(h.count(event_kind::store_recovered) >= 1);
  CHECK(h.count(event_kind::fires_dropped, "s") == 1);
  CHECK(h.count(event_kind::loop_restarted) == 0);
}

TEST_CASE("after failed acquires the schedule loop plans with the time of the call that worked",
          "[scheduler][faults]") {
  // A retried acquire must read the clock again: with the time of the first, failed attempt it
  // would fire the first missed time, and the coalesced latest one after it (two runs, one of
  // them 30 s late), instead of one run for the latest.
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>(memory_store_options{1000}));
  harness h(faulty, tight_timing);
  fire_log log;
  log.install(h);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(29s);
  REQUIRE(log.runs["s"].size() == 2);
  // From the iteration at 30 s on — the one that finds fire time 30 due — every acquire fails.
  faulty->inject_next("acquire_due_schedules", fault_mode::fail, 0);
  h.advance(31s);  // fire times 30, 40, 50 and 60 are due by now
  CHECK(log.runs["s"].size() == 2);
  faulty->heal();
  h.advance(5s);  // the next retry (backoff at most 4 s) works
  CHECK(log.runs["s"].size() == 3);
  CHECK(log.runs["s"].count(t0() + 30s) == 0);
  CHECK(log.runs["s"].count(t0() + 60s) == 1);
  CHECK(h.count(event_kind::fires_dropped, "s") == 1);
}

namespace {

// The times at which the schedule loop's acquire_due_schedules failed, over `span` after it
// (and, with `everything`, every other call) began to fail for good; backoff from 1 s to 16 s.
std::vector<time_point> acquire_failures(bool everything, duration span) {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>());
  harness h(faulty, [](scheduler_options& o) {
    o.backoff_initial = 1s;
    o.backoff_max = 16s;
  });
  h.start();
  for (auto& op : fault_store::operations())
    if (everything || op == "acquire_due_schedules")  // only the schedule loop calls it
      faulty->inject_next(op, fault_mode::fail, 0);
  std::vector<time_point> at;
  auto sub = h.sched->events().subscribe(
      [&](const event& e) {
        if (e.op == "acquire_due_schedules") at.push_back(e.at);
      },
      {event_kind::store_error});
  h.advance(span, 100ms);
  CHECK_FALSE(h.sched->health().healthy);
  return at;
}

}  // namespace

TEST_CASE("backoff between retries grows exponentially up to the cap", "[scheduler][faults]") {
  // Every call fails: a success of another loop's call would end the backoff early (below).
  const auto at = acquire_failures(true, 120s);
  REQUIRE(at.size() >= 8);
  // attempt k waits base*2^(k-1) jittered into [d/2, d], capped at 16 s
  for (std::size_t k = 1; k < at.size(); ++k) {
    const duration d = std::min<duration>(std::chrono::seconds{1LL << std::min<std::size_t>(k - 1, 10)}, 16s);
    INFO("retry " << k);
    CHECK(at[k] - at[k - 1] >= d / 2);
    CHECK(at[k] - at[k - 1] <= d + 100ms);  // + one clock step
  }
}

TEST_CASE("while other calls succeed, a loop whose own call keeps failing retries once per max_wait",
          "[scheduler][faults]") {
  // The store is back as far as anyone can tell: a backoff that grew meanwhile is cut short,
  // but the failing call is not hammered either (max_wait is 1 s in the harness).
  const auto at = acquire_failures(false, 60s);
  REQUIRE(at.size() >= 50);
  for (std::size_t k = 1; k < at.size(); ++k) {
    INFO("retry " << k);
    CHECK(at[k] - at[k - 1] >= 500ms);  // the first backoff: [0.5 s, 1 s]
    CHECK(at[k] - at[k - 1] <= 1100ms);
  }
}

TEST_CASE("a retried acquire_jobs does not hand out again a run that ended but is not written back yet",
          "[scheduler][faults]") {
  // Found on PostgreSQL (backends terminated at random): a lost acquire_jobs reply made the
  // retry release every job of this node it did not hold — including one that had ended and
  // was waiting for update_jobs, still `running` in the store — and that run started again.
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>());
  harness h(faulty);
  std::map<time_point, int> runs;
  h.sched->tasks().add("record", [&](job_context& job) -> asio::awaitable<void> {
    ++runs[job.fire_time()];
    co_return;
  });
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  faulty->inject_next("update_jobs", fault_mode::fail, 0);  // the outcome cannot be written yet
  h.start();
  h.advance(10s);
  REQUIRE(runs[t0() + 10s] == 1);
  faulty->inject_next("acquire_jobs", fault_mode::fail_after_commit, 1);
  h.advance(3s);
  REQUIRE(faulty->calls("release_jobs") >= 1);  // the retry handed back what it did not hold
  faulty->heal();
  h.advance(5s);
  CHECK(runs[t0() + 10s] == 1);
  CHECK(h.jobs("s").front().state == job_state::succeeded);
}

namespace {

struct stop_with_failing_writes {
  duration took{};  // from the stop's start to its end (manual clock)
  bool stopped = false;
  std::vector<job_record> jobs;  // oldest first, read from the inner store after the stop
  std::size_t update_errors = 0;
};

// Issue 14, item 5 ("a small disk"): the outcome of a run cannot be written (update_jobs fails,
// as on a full disk) and the flush loop's backoff has grown to its cap when the scheduler is
// told to stop; the run that is still running ends 2 s into the stop. `heal_after`, if set, is
// when (from the stop's start) the store works again.
stop_with_failing_writes stop_while_writes_fail(std::optional<duration> heal_after) {
  auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>());
  harness h(faulty, [](scheduler_options& o) {
    o.backoff_initial = 1s;
    o.backoff_max = 30s;  // the default
  });
  asio::steady_timer gate(h.io, std::chrono::steady_clock::time_point::max());
  h.sched->tasks().add("work", [&](job_context& job) -> asio::awaitable<void> {
    if (job.fire_time() != t0() + 20s) co_return;
    asio::error_code ec;
    co_await gate.async_wait(asio::redirect_error(asio::use_awaitable, ec));  // until the test opens it
  });
  REQUIRE(h.add({.id = "a", .task = "work", .trigger = every(10s)}));
  faulty->inject_next("update_jobs", fault_mode::fail, 0);  // from now on no outcome can be written
  h.start();
  h.advance(80s);  // the run for t0+10s ended at once; the one for t0+20s is still running
  REQUIRE(h.sched->metrics().running == 1);
  REQUIRE(faulty->faults("update_jobs") >= 5);  // the flush loop's backoff is at its 30 s cap

  stop_with_failing_writes r;
  const auto stop_at = h.clock.now();
  auto f = h.sched->async_stop(stop_mode::wait, 30s, asio::use_future);
  bool ended = false, healed = false;
  for (int i = 0; i < 1200; ++i) {
    h.settle();
    if (f.wait_for(0s) == std::future_status::ready) {
      r.stopped = true;
      break;
    }
    const auto t = h.clock.now() - stop_at;
    if (!ended && t >= 2s) {
      gate.cancel();  // the running job ends
      ended = true;
    }
    if (heal_after && !healed && t >= *heal_after) {
      faulty->heal();
      healed = true;
    }
    h.clock.advance(100ms);
    h.io.restart();
    h.io.run_for(1ms);
  }
  if (r.stopped) f.get();
  r.took = h.clock.now() - stop_at;
  r.jobs = h.jobs("a");
  for (auto& e : h.events) r.update_errors += e.kind == event_kind::store_error && e.op == "update_jobs";
  return r;
}

}  // namespace

TEST_CASE("stopping while outcomes cannot be written: no wait past the job's end, writes retried promptly",
          "[scheduler][faults][stop]") {
  SECTION("the store works again 5 s into the stop: the outcomes are written and the stop ends then") {
    const auto r = stop_while_writes_fail(5s);
    REQUIRE(r.stopped);
    INFO("the stop took " << format_duration(r.took));
    CHECK(r.took <= 6500ms);  // the write is retried at least every second while stopping
    REQUIRE(r.jobs.size() >= 2);
    for (auto& j : r.jobs) {
      INFO("run for " << format_iso(j.fire_time));
      CHECK(j.state != job_state::running);  // every outcome was kept until it was written
    }
    CHECK(r.jobs[0].state == job_state::succeeded);
    CHECK(r.jobs[1].fire_time == t0() + 20s);
    CHECK(r.jobs[1].state == job_state::succeeded);  // ended 2 s into the stop
  }
  SECTION("the store stays down: the stop retries until the grace (counted from its start) is over") {
    const auto r = stop_while_writes_fail(std::nullopt);
    REQUIRE(r.stopped);
    INFO("the stop took " << format_duration(r.took));
    CHECK(r.took >= 29s);          // it kept trying to write the outcomes ...
    CHECK(r.took <= 31s);          // ... for the grace period from the stop's start, not from the job's end
    CHECK(r.update_errors >= 25);  // about once a second
  }
}
