// The scheduler's documented behaviour, each rule by name, on a manual clock.
#include "punctual/scheduler.hpp"

#include <catch2/catch.hpp>

#include <asio.hpp>

#include "../support/scheduler_harness.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/once.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

// Registers a coroutine task "record" that appends each run's fire time.
void add_recorder(harness& h, std::vector<time_point>& fires, const std::string& name = "record") {
  h.sched->tasks().add(name, [&fires](job_context& job) -> asio::awaitable<void> {
    fires.push_back(job.fire_time());
    co_return;
  });
}

std::vector<time_point> every_n(time_point from, duration step, int n) {
  std::vector<time_point> v;
  for (int i = 1; i <= n; ++i) v.push_back(from + i * step);
  return v;
}

std::map<job_state, int> states(const std::vector<job_record>& jobs) {
  std::map<job_state, int> m;
  for (auto& j : jobs) ++m[j.state];
  return m;
}

}  // namespace

TEST_CASE("an interval schedule fires once at each fire time as the manual clock advances", "[scheduler]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(50s);
  CHECK(fires == every_n(t0(), 10s, 5));
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 5);
  for (auto& j : jobs) CHECK(j.state == job_state::succeeded);
  CHECK(h.count(event_kind::job_succeeded, "s") == 5);
  CHECK(h.sched->health().healthy);
}

TEST_CASE("a schedule whose task is not registered is refused by add and modify", "[scheduler]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  try {
    h.add({.id = "bad", .task = "no-such-task", .trigger = every(10s)});
    FAIL("the schedule was accepted");
  } catch (const invalid_schedule& e) {
    CHECK(e.id() == "bad");
    CHECK(std::string(e.what()).find("task \"no-such-task\" is not registered (registered: record)") !=
          std::string::npos);
  }
  CHECK_FALSE(h.await(h.db->get_schedule("bad")).has_value());  // nothing stored
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  CHECK_THROWS_AS(h.call<schedule_record>([&](auto tok) {
    return h.sched->async_modify_schedule({.id = "s", .task = "no-such-task", .trigger = every(10s)}, tok);
  }),
                  invalid_schedule);
  CHECK(h.await(h.db->get_schedule("s"))->spec.task == "record");  // unchanged
}

TEST_CASE(
    "with allow_unknown_tasks, a run for an unknown task fails with a clear error and other schedules "
    "keep firing",
    "[scheduler]") {
  harness h(std::make_shared<memory_store>(), [](scheduler_options& o) { o.allow_unknown_tasks = true; });
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "good", .task = "record", .trigger = every(10s)}));
  REQUIRE(h.add({.id = "bad", .task = "no-such-task", .trigger = every(10s)}));
  h.start();
  h.advance(30s);
  CHECK(fires.size() == 3);
  auto bad = h.jobs("bad");
  REQUIRE(bad.size() == 3);
  CHECK(bad[0].state == job_state::failed);
  CHECK(bad[0].error.find("unknown task \"no-such-task\"") != std::string::npos);
  CHECK(bad[0].error.find("record") != std::string::npos);  // lists what is registered
  CHECK(h.count(event_kind::job_failed, "bad") == 3);
}

TEST_CASE("coalesce latest turns a backlog into one run for the latest fire time", "[scheduler][catch-up]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.clock.advance(95s);  // one jump: 9 fire times due at once
  h.settle();
  REQUIRE(fires == std::vector<time_point>{t0() + 90s});
  CHECK(h.count(event_kind::fires_dropped, "s") == 1);
  auto it = std::find_if(h.events.begin(), h.events.end(),
                         [](auto& e) { return e.kind == event_kind::fires_dropped; });
  CHECK(it->count == 8);
  h.advance(10s);
  CHECK(fires.back() == t0() + 100s);
}

TEST_CASE("coalesce earliest runs the first missed fire time only", "[scheduler][catch-up]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  schedule_options o;
  o.coalesce = coalesce_policy::earliest;
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s), .options = o}));
  h.start();
  h.clock.advance(95s);
  h.settle();
  CHECK(fires == std::vector<time_point>{t0() + 10s});
  h.advance(10s);
  CHECK(fires.back() == t0() + 100s);  // then on schedule again, no second catch-up
  CHECK(fires.size() == 2);
}

TEST_CASE("coalesce all runs every missed fire time up to max_catch_up and reports the rest",
          "[scheduler][catch-up]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  schedule_options o;
  o.coalesce = coalesce_policy::all;
  o.max_catch_up = 4;
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s), .options = o}));
  h.start();
  h.clock.advance(95s);
  h.settle();
  CHECK(fires == std::vector<time_point>{t0() + 60s, t0() + 70s, t0() + 80s, t0() + 90s});
  auto it = std::find_if(h.events.begin(), h.events.end(),
                         [](auto& e) { return e.kind == event_kind::fires_dropped; });
  REQUIRE(it != h.events.end());
  CHECK(it->count == 5);
}

TEST_CASE("coalesce all: catch-up runs queue behind each other even when they span several job batches",
          "[scheduler][catch-up]") {
  // More catch-up runs of one schedule than the job loop takes per store call: the header
  // promises they queue "whatever the overlap policy", so none may be recorded skipped.
  harness h(std::make_shared<memory_store>(memory_store_options{1000}),
            [](scheduler_options& o) { o.batch = 3; });
  std::vector<time_point> fires;
  add_recorder(h, fires);
  schedule_options o;
  o.coalesce = coalesce_policy::all;
  o.max_catch_up = 10;
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s), .options = o}));
  h.start();
  h.clock.advance(105s);
  h.settle();
  CHECK(h.count(event_kind::job_skipped, "s") == 0);
  CHECK(fires.size() == 10);
}

TEST_CASE("catch-up after years of downtime is bounded and still finds the latest fire time",
          "[scheduler][catch-up]") {
  schedule_options o;
  const auto trig = every(1s);
  const auto now = t0() + std::chrono::hours{24 * 365 * 3} + 500ms;
  auto p = detail::plan_fires(trig, o, t0() + 1s, now);
  REQUIRE(p.fires.size() == 1);
  CHECK(p.fires[0].fire == t0() + std::chrono::hours{24 * 365 * 3});
  CHECK(p.dropped_is_lower_bound);
  CHECK(p.next_fire == t0() + std::chrono::hours{24 * 365 * 3} + 1s);
  o.coalesce = coalesce_policy::all;
  o.max_catch_up = 3;
  p = detail::plan_fires(trig, o, t0() + 1s, now);
  REQUIRE(p.fires.size() == 3);
  CHECK(p.fires[2].fire == t0() + std::chrono::hours{24 * 365 * 3});
  CHECK(p.fires[0].fire == p.fires[2].fire - 2s);
}

TEST_CASE("misfire grace: a run later than the grace is recorded missed, not run", "[scheduler][misfire]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  schedule_options o;
  o.misfire_grace = 3s;
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s), .options = o}));
  h.start();
  h.clock.advance(15s);  // fire time 10s is 5s late
  h.settle();
  CHECK(fires.empty());
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == job_state::missed);
  CHECK(jobs[0].error.find("5s late") != std::string::npos);
  CHECK(h.count(event_kind::job_missed, "s") == 1);
  h.advance(5s);  // 20s on time
  CHECK(fires == std::vector<time_point>{t0() + 20s});
}

TEST_CASE("without a misfire grace late runs still run, however late", "[scheduler][misfire]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(std::chrono::hours{1})}));
  h.start();
  h.clock.advance(std::chrono::hours{1} + std::chrono::minutes{59});
  h.settle();
  CHECK(fires == std::vector<time_point>{t0() + std::chrono::hours{1}});
}

namespace {
// A task that runs until released (or cancelled).
struct gate {
  std::vector<std::shared_ptr<asio::steady_timer>> waiting;
  int started = 0, finished = 0, cancelled = 0;
  void install(harness& h, const std::string& name) {
    h.sched->tasks().add(name, [this](job_context& job) -> asio::awaitable<void> {
      ++started;
      auto t = std::make_shared<asio::steady_timer>(job.executor(), asio::steady_timer::time_point::max());
      waiting.push_back(t);
      asio::error_code ec;
      co_await t->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) {
        ++cancelled;
        throw std::system_error(asio::error::operation_aborted);
      }
      ++finished;
    });
  }
  void release_all() {
    for (auto& t : waiting) t->cancel();
    waiting.clear();
  }
};
}  // namespace

TEST_CASE("max_running 1 with overlap skip records overlapping runs as skipped", "[scheduler][overlap]") {
  harness h;
  gate g;
  g.install(h, "slow");
  REQUIRE(h.add({.id = "s", .task = "slow", .trigger = every(10s)}));
  h.start();
  h.advance(30s);
  CHECK(g.started == 1);
  auto m = states(h.jobs("s"));
  CHECK(m[job_state::running] == 1);
  CHECK(m[job_state::skipped] == 2);
  CHECK(h.count(event_kind::job_skipped, "s") == 2);
  g.release_all();
  h.settle();
  h.advance(10s);
  CHECK(g.started == 2);
}

TEST_CASE("overlap queue starts a waiting run when the running one ends", "[scheduler][overlap]") {
  harness h;
  gate g;
  g.install(h, "slow");
  schedule_options o;
  o.overlap = overlap_policy::queue;
  REQUIRE(h.add({.id = "s", .task = "slow", .trigger = every(10s), .options = o}));
  h.start();
  h.advance(20s);
  CHECK(g.started == 1);
  g.release_all();
  h.settle();
  CHECK(g.started == 2);
  CHECK(g.finished == 1);
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].state == job_state::succeeded);
  CHECK(jobs[1].fire_time == t0() + 20s);
}

TEST_CASE("overlap replace cancels the oldest running run and starts the new one", "[scheduler][overlap]") {
  harness h;
  gate g;
  g.install(h, "slow");
  schedule_options o;
  o.overlap = overlap_policy::replace;
  REQUIRE(h.add({.id = "s", .task = "slow", .trigger = every(10s), .options = o}));
  h.start();
  h.advance(20s);
  CHECK(g.started == 2);
  CHECK(g.cancelled == 1);
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].state == job_state::cancelled);
  CHECK(jobs[0].error.find("replaced") != std::string::npos);
  CHECK(jobs[1].state == job_state::running);
}

TEST_CASE("max_running 2 lets two runs overlap", "[scheduler][overlap]") {
  harness h;
  gate g;
  g.install(h, "slow");
  schedule_options o;
  o.max_running = 2;
  REQUIRE(h.add({.id = "s", .task = "slow", .trigger = every(10s), .options = o}));
  h.start();
  h.advance(30s);
  CHECK(g.started == 2);
  CHECK(states(h.jobs("s"))[job_state::skipped] == 1);
}

TEST_CASE("a failed run is retried with exponential backoff up to `retries` times", "[scheduler][retries]") {
  harness h;
  std::vector<time_point> attempts;
  h.sched->tasks().add("flaky", [&](job_context&) -> asio::awaitable<void> {
    attempts.push_back(h.clock.now());
    throw std::runtime_error("boom");
    co_return;
  });
  schedule_options o;
  o.retries = 3;
  o.retry_backoff = 10s;
  o.retry_backoff_max = 15s;
  REQUIRE(h.add({.id = "s", .task = "flaky", .trigger = once_trigger(t0() + 5s), .options = o}));
  h.start();
  h.advance(2min, 500ms);
  REQUIRE(attempts.size() == 4);
  // delays are jittered into [d/2, d]: d = 10s, 15s (capped), 15s
  const duration d1 = attempts[1] - attempts[0], d2 = attempts[2] - attempts[1],
                 d3 = attempts[3] - attempts[2];
  CHECK(d1 >= 5s);
  CHECK(d1 <= 10s + 1s);
  CHECK(d2 >= 7500ms);
  CHECK(d2 <= 15s + 1s);
  CHECK(d3 <= 15s + 1s);
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);  // one job per (schedule, fire time), however many attempts
  CHECK(jobs[0].attempt == 4);
  CHECK(jobs[0].state == job_state::failed);
  CHECK(jobs[0].error == "boom");
  CHECK(h.count(event_kind::job_retry_scheduled) == 3);
  CHECK(h.count(event_kind::job_failed) == 4);
}

TEST_CASE("a timeout cancels a coroutine task and records timed_out", "[scheduler][timeout]") {
  harness h;
  gate g;
  g.install(h, "slow");
  schedule_options o;
  o.timeout = 5s;
  REQUIRE(h.add({.id = "s", .task = "slow", .trigger = once_trigger(t0() + 10s), .options = o}));
  h.start();
  h.advance(14s);
  CHECK(g.started == 1);
  CHECK(g.cancelled == 0);
  h.advance(2s);
  CHECK(g.cancelled == 1);
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == job_state::timed_out);
  CHECK(jobs[0].error == "timed out after 5s");
  CHECK(h.count(event_kind::job_timed_out) == 1);
}

TEST_CASE("a coroutine task that suspends does not hold up the runs started after it",
          "[scheduler][runners]") {
  harness h;
  gate g;
  g.install(h, "slow");
  std::vector<time_point> fires;
  add_recorder(h, fires);
  // Same fire times: in each batch the slow runs come first and suspend.
  for (int i = 0; i < 3; ++i)
    REQUIRE(h.add({.id = "slow" + std::to_string(i), .task = "slow", .trigger = once_trigger(t0() + 10s)}));
  for (int i = 0; i < 3; ++i)
    REQUIRE(h.add({.id = "quick" + std::to_string(i), .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(20s);
  CHECK(g.started == 3);
  CHECK(g.finished == 0);
  CHECK(fires.size() == 6);
  CHECK(states(h.jobs("quick0"))[job_state::succeeded] == 2);
  g.release_all();
  h.settle();
  CHECK(g.finished == 3);
  CHECK(states(h.jobs("slow2"))[job_state::succeeded] == 1);
}

TEST_CASE("a cancelled run leaves no cancellation behind for the runs that come after it",
          "[scheduler][runners][timeout]") {
  harness h;
  gate g;
  g.install(h, "slow");
  int steps_done = 0;
  // Awaits the executor a few times: a cancellation left over from an earlier run on the
  // same coroutine would make one of these awaits throw.
  h.sched->tasks().add("steps", [&steps_done](job_context& job) -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) co_await asio::post(job.executor(), asio::use_awaitable);
    ++steps_done;
  });
  schedule_options o;
  o.timeout = 5s;
  REQUIRE(h.add({.id = "slow", .task = "slow", .trigger = every(10s), .options = o}));
  // Due when the slow runs time out (t0 + 15s, 25s, ...) and right after.
  REQUIRE(h.add({.id = "steps", .task = "steps", .trigger = interval_trigger(10s, t0() + 5s)}));
  REQUIRE(h.add({.id = "steps2", .task = "steps", .trigger = interval_trigger(1s, t0())}));
  h.start();
  h.advance(60s);
  CHECK(g.cancelled >= 5);
  CHECK(states(h.jobs("slow"))[job_state::timed_out] == g.cancelled);
  CHECK(states(h.jobs("steps"))[job_state::succeeded] == 6);
  CHECK(states(h.jobs("steps2"))[job_state::succeeded] == 60);
  CHECK(steps_done == 66);
}

TEST_CASE("a blocking task runs on the pool and is reported timed out when it overruns",
          "[scheduler][timeout][blocking]") {
  harness h;
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  h.sched->tasks().add_blocking("block", [&](job_context& job) {
    ++ran;
    while (!release && !job.stop_requested()) std::this_thread::sleep_for(1ms);
  });
  schedule_options o;
  o.timeout = 5s;
  REQUIRE(h.add({.id = "s", .task = "block", .trigger = once_trigger(t0() + 1s), .options = o}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] { return ran.load() == 1; }));
  h.advance(6s);
  REQUIRE(h.run_until([&] { return h.count(event_kind::job_timed_out) == 1; }));
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == job_state::timed_out);
  release = true;
}

TEST_CASE("a blocking task that throws fails the run with its message", "[scheduler][blocking]") {
  harness h;
  h.sched->tasks().add_blocking("block", [&](job_context& job) {
    job.set_output("partial");
    throw std::runtime_error("disk on fire");
  });
  REQUIRE(h.add({.id = "s", .task = "block", .trigger = once_trigger(t0() + 1s)}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] { return h.count(event_kind::job_failed) == 1; }));
  h.settle();
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].error == "disk on fire");
}

TEST_CASE("jitter delays each run within [fire, fire + max_jitter] and before the next fire",
          "[scheduler][jitter]") {
  harness h;
  std::vector<std::pair<time_point, time_point>> runs;  // fire, start
  h.sched->tasks().add("j", [&](job_context& job) -> asio::awaitable<void> {
    runs.emplace_back(job.fire_time(), h.clock.now());
    co_return;
  });
  schedule_options o;
  o.max_jitter = 30s;  // larger than the period: clamped below the next fire
  REQUIRE(h.add({.id = "s", .task = "j", .trigger = every(10s), .options = o}));
  h.start();
  h.advance(200s, 250ms);
  REQUIRE(runs.size() >= 15);
  std::set<duration> delays;
  for (auto& [fire, start] : runs) {
    CHECK(start >= fire);
    CHECK(start < fire + 10s + 250ms);  // before the next fire (plus one clock step)
    delays.insert(start - fire);
  }
  CHECK(delays.size() > 3);  // it does vary
}

TEST_CASE("pause stops new runs; resume from missed catches up, resume from now skips",
          "[scheduler][pause]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(10s);
  REQUIRE(fires.size() == 1);
  h.call<void>([&](auto tok) { return h.sched->async_pause_schedule("s", tok); });
  h.advance(30s);
  CHECK(fires.size() == 1);
  h.call<void>([&](auto tok) { return h.sched->async_resume_schedule("s", resume_from::missed, tok); });
  h.settle();
  CHECK(fires.size() == 2);  // one catch-up run (coalesce latest)
  CHECK(fires.back() == t0() + 40s);
  h.call<void>([&](auto tok) { return h.sched->async_pause_schedule("s", tok); });
  h.advance(30s);
  h.call<void>([&](auto tok) { return h.sched->async_resume_schedule("s", resume_from::now, tok); });
  h.settle();
  CHECK(fires.size() == 2);  // nothing caught up
  h.advance(10s);
  CHECK(fires.back() == t0() + 80s);
  CHECK(h.count(event_kind::schedule_paused) == 2);
  CHECK(h.count(event_kind::schedule_resumed) == 2);
  CHECK_THROWS_AS(h.call<void>([&](auto tok) { return h.sched->async_pause_schedule("nope", tok); }),
                  schedule_not_found);
}

TEST_CASE("run_now creates a run immediately, outside the trigger", "[scheduler]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(std::chrono::hours{1})}));
  h.start();
  h.clock.advance(5s);
  auto id = h.call<std::int64_t>([&](auto tok) { return h.sched->async_run_now("s", tok); });
  CHECK(id > 0);
  h.settle();
  CHECK(fires == std::vector<time_point>{t0() + 5s});
}

TEST_CASE("add_schedule conflict policies: error, replace, keep", "[scheduler]") {
  harness h;
  for (const char* name : {"a", "b"})
    h.sched->tasks().add(name, [](job_context&) -> asio::awaitable<void> { co_return; });
  REQUIRE(h.add({.id = "s", .task = "a", .trigger = every(10s)}));
  CHECK_THROWS_AS(h.add({.id = "s", .task = "b", .trigger = every(10s)}), schedule_conflict);
  CHECK_FALSE(h.add({.id = "s", .task = "b", .trigger = every(10s)}, conflict_policy::keep));
  auto s = h.await(h.db->get_schedule("s"));
  CHECK(s->spec.task == "a");
  CHECK(h.add({.id = "s", .task = "b", .trigger = every(20s)}, conflict_policy::replace));
  s = h.await(h.db->get_schedule("s"));
  CHECK(s->spec.task == "b");
  CHECK(s->next_fire == t0() + 20s);
  CHECK(h.count(event_kind::schedule_added) == 1);
  CHECK(h.count(event_kind::schedule_modified) == 1);
  CHECK_THROWS_AS(h.add({.id = "", .task = "b", .trigger = every(20s)}), invalid_schedule);
  CHECK_THROWS_AS(h.add({.id = "x", .task = "b"}), invalid_schedule);
}

TEST_CASE("add_schedules adds a batch: checked first, all or nothing, events per schedule, then fires",
          "[scheduler][batch]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  const auto batch = [](std::vector<std::string> ids, duration every_time = 10s) {
    std::vector<schedule_spec> out;
    for (auto& id : ids) out.push_back({.id = id, .task = "record", .trigger = every(every_time)});
    return out;
  };
  using outcomes = std::vector<add_outcome>;
  CHECK(h.call<outcomes>([&](auto tok) {
    return h.sched->async_add_schedules(batch({"a", "b", "c"}), tok);
  }) == outcomes(3, add_outcome::added));
  CHECK(h.count(event_kind::schedule_added) == 3);
  // A bad spec anywhere in the batch: invalid_schedule naming it, and nothing of the batch stored.
  auto bad = batch({"d", "e"});
  bad[1].task = "not-registered";
  try {
    h.call<outcomes>([&](auto tok) { return h.sched->async_add_schedules(bad, tok); });
    FAIL("no invalid_schedule thrown");
  } catch (const invalid_schedule& e) {
    CHECK(std::string(e.what()).find("\"e\"") != std::string::npos);
  }
  CHECK_FALSE(h.await(h.db->get_schedule("d")));
  // An existing id with the default policy: schedule_conflict naming it, nothing stored.
  try {
    h.call<outcomes>([&](auto tok) { return h.sched->async_add_schedules(batch({"d", "b"}), tok); });
    FAIL("no schedule_conflict thrown");
  } catch (const schedule_conflict& e) {
    CHECK(e.id() == "b");
  }
  CHECK_FALSE(h.await(h.db->get_schedule("d")));
  CHECK(h.count(event_kind::schedule_added) == 3);
  // replace: new ids added, existing ones replaced (next fire recomputed from the new trigger).
  CHECK(h.call<outcomes>([&](auto tok) {
    return h.sched->async_add_schedules(batch({"c", "d"}, 20s), conflict_policy::replace, tok);
  }) == outcomes{add_outcome::replaced, add_outcome::added});
  CHECK(h.count(event_kind::schedule_modified, "c") == 1);
  CHECK(h.count(event_kind::schedule_added, "d") == 1);
  h.start();
  h.advance(20s);
  // a and b fire at 10 s and 20 s, c and d (every 20 s now) at 20 s.
  CHECK(fires.size() == 6);
  CHECK(h.jobs("c").size() == 1);
  CHECK(h.jobs("d").size() == 1);
}

TEST_CASE("modify_schedule changes the trigger and keeps history; remove cancels pending runs",
          "[scheduler]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(10s);
  h.call<schedule_record>([&](auto tok) {
    return h.sched->async_modify_schedule({.id = "s", .task = "record", .trigger = every(30s)}, tok);
  });
  h.advance(30s);
  CHECK(fires == std::vector<time_point>{t0() + 10s, t0() + 30s});
  h.call<void>([&](auto tok) { return h.sched->async_remove_schedule("s", tok); });
  h.advance(60s);
  CHECK(fires.size() == 2);
  CHECK(h.jobs("s").size() == 2);  // history stays
  CHECK_THROWS_AS(h.call<schedule_record>([&](auto tok) {
    return h.sched->async_modify_schedule({.id = "nope", .task = "record", .trigger = every(30s)}, tok);
  }),
                  schedule_not_found);
}

TEST_CASE("start and end bound the fire times", "[scheduler]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  schedule_options o;
  o.start = t0() + 25s;
  o.end = t0() + 50s;
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s), .options = o}));
  h.start();
  h.advance(100s);
  CHECK(fires == std::vector<time_point>{t0() + 30s, t0() + 40s, t0() + 50s});
  CHECK(h.count(event_kind::schedule_finished, "s") == 1);
}

TEST_CASE("a throwing listener is reported and never stops anything", "[scheduler][events]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  auto bad = h.sched->events().subscribe([](const event&) { throw std::runtime_error("listener bug"); },
                                         {event_kind::job_started});
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(30s);
  CHECK(fires.size() == 3);
  CHECK(h.count(event_kind::listener_error) == 3);
  auto it = std::find_if(h.events.begin(), h.events.end(),
                         [](auto& e) { return e.kind == event_kind::listener_error; });
  CHECK(it->message.find("listener bug") != std::string::npos);
}

TEST_CASE("events can be awaited as a stream, filtered by kind", "[scheduler][events]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  auto stream = h.sched->events().stream(h.io.get_executor(), {event_kind::job_succeeded});
  std::vector<event> got;
  asio::co_spawn(
      h.io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) got.push_back(co_await stream.async_next(asio::use_awaitable));
      },
      asio::detached);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(20s);
  REQUIRE(got.size() == 2);
  CHECK(got[0].kind == event_kind::job_succeeded);
  CHECK(got[1].fire_time == t0() + 20s);
}

TEST_CASE("a loop that ends unexpectedly is restarted by the supervisor", "[scheduler][supervision]") {
  int failures_left = 2;
  harness h(std::make_shared<memory_store>(memory_store_options{1000}), [&](scheduler_options& o) {
    o.on_loop_iteration = [&](std::string_view loop) {
      if (loop == "schedule" && failures_left > 0) {
        --failures_left;
        throw std::logic_error("bug in the schedule loop");
      }
    };
  });
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = every(10s)}));
  h.start();
  h.advance(30s);
  CHECK(h.count(event_kind::loop_restarted) == 2);
  auto it = std::find_if(h.events.begin(), h.events.end(),
                         [](auto& e) { return e.kind == event_kind::loop_restarted; });
  CHECK(it->op == "schedule");
  CHECK(it->message == "bug in the schedule loop");
  CHECK(fires.size() == 3);
  CHECK(h.sched->health().loop_restarts == 2);
}

TEST_CASE("stop(wait) lets a running run finish; stop(cancel) cancels it; leases are released",
          "[scheduler][stop]") {
  SECTION("wait") {
    harness h;
    gate g;
    g.install(h, "slow");
    REQUIRE(h.add({.id = "s", .task = "slow", .trigger = every(10s)}));
    h.start();
    h.advance(10s);
    REQUIRE(g.started == 1);
    auto f = h.sched->async_stop(stop_mode::wait, 60s, asio::use_future);
    h.settle();
    CHECK(f.wait_for(0s) != std::future_status::ready);
    g.release_all();
    h.settle();
    h.advance(1s);
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    CHECK(h.jobs("s")[0].state == job_state::succeeded);
    CHECK(h.sched->state() == scheduler_state::stopped);
  }
  SECTION("cancel") {
    harness h;
    gate g;
    g.install(h, "slow");
    REQUIRE(h.add({.id = "s", .task = "slow", .trigger = every(10s)}));
    h.start();
    h.advance(10s);
    h.stop(stop_mode::cancel, 0s);
    CHECK(g.cancelled == 1);
    auto jobs = h.jobs("s");
    CHECK(jobs[0].state == job_state::cancelled);
    CHECK(jobs[0].error == "scheduler stopping");
    auto s = h.await(h.db->get_schedule("s"));
    CHECK(s->lease_owner.empty());
    CHECK(h.count(event_kind::scheduler_stopped) == 1);
  }
}

TEST_CASE("health reports the state, last tick and error streak", "[scheduler][health]") {
  harness h;
  CHECK_FALSE(h.sched->health().healthy);
  CHECK(h.sched->health().reason == "scheduler is stopped");
  h.start();
  auto r = h.sched->health();
  CHECK(r.healthy);
  CHECK(r.last_tick == t0());
  CHECK(r.error_streak == 0);
}

TEST_CASE("a clock step forward wakes a sleeping scheduler at once", "[scheduler][clock]") {
  harness h;
  std::vector<time_point> fires;
  add_recorder(h, fires);
  REQUIRE(h.add({.id = "s", .task = "record", .trigger = once_trigger(t0() + std::chrono::hours{5})}));
  h.start();
  h.clock.set(t0() + std::chrono::hours{5});
  h.settle();  // no real time passes: the jump notification alone wakes it
  CHECK(fires.size() == 1);
}

TEST_CASE("abandoned runs of a previous incarnation are recorded, or rerun, at start",
          "[scheduler][recovery]") {
  auto db = std::make_shared<memory_store>(memory_store_options{1000});
  {
    harness h(db);
    gate g;
    g.install(h, "slow");
    schedule_options rerun;
    rerun.on_abandoned = abandoned_policy::rerun;
    REQUIRE(h.add({.id = "rec", .task = "slow", .trigger = once_trigger(t0() + 1s)}));
    REQUIRE(h.add({.id = "re", .task = "slow", .trigger = once_trigger(t0() + 1s), .options = rerun}));
    h.start();
    h.advance(1s);
    REQUIRE(g.started == 2);
    h.sched.reset();  // the host "dies": nothing is recorded, the jobs stay running in the store
  }
  harness h(db);
  std::vector<time_point> fires;
  add_recorder(h, fires, "slow");
  h.start();
  h.settle();
  CHECK(h.count(event_kind::job_abandoned) == 2);
  CHECK(h.count(event_kind::job_recovered) == 1);
  CHECK(fires == std::vector<time_point>{t0() + 1s});  // only the rerun one ran again
  auto rec = h.jobs("rec");
  REQUIRE(rec.size() == 1);
  CHECK(rec[0].state == job_state::abandoned);
  auto re = h.jobs("re");
  REQUIRE(re.size() == 1);
  CHECK(re[0].state == job_state::succeeded);
  CHECK(re[0].attempt == 2);
}

TEST_CASE("a job context's stop request reaches stop tokens taken before and after it",
          "[scheduler][context]") {
  asio::io_context io;
  job_context ctx(job_record{}, io.get_executor());
  auto before = ctx.stop_token();
  CHECK_FALSE(before.stop_requested());
  CHECK_FALSE(ctx.stop_requested());
  ctx.request_stop();
  CHECK(ctx.stop_requested());
  CHECK(before.stop_requested());
  CHECK(ctx.stop_token().stop_requested());

  job_context fresh(job_record{}, io.get_executor());
  fresh.request_stop();  // before any token exists
  CHECK(fresh.stop_token().stop_requested());
}

TEST_CASE("a job context passes recorded process groups to its hook", "[scheduler][context]") {
  asio::io_context io;
  job_context ctx(job_record{}, io.get_executor());
  ctx.record_process({.pid = 7, .pgid = 7});  // no hook yet: kept, nothing called
  CHECK(ctx.process().pgid == 7);
  std::vector<std::int64_t> seen;
  ctx.on_process({[](void* target, process_identity p) {
                    static_cast<std::vector<std::int64_t>*>(target)->push_back(p.pgid);
                  },
                  &seen});
  ctx.record_process({.pid = 9, .pgid = 9});
  CHECK(seen == std::vector<std::int64_t>{9});
  CHECK(ctx.process().pgid == 9);
}

TEST_CASE("node_recycler reuses erased nodes with their new keys and default values",
          "[scheduler][context]") {
  using map = std::unordered_map<std::string, std::vector<int>>;
  map m;
  detail::node_recycler<map> nodes(1);
  auto a = nodes.insert(m, std::string("a"));
  a->second.push_back(1);
  auto b = nodes.insert(m, std::string("b"));
  b->second.push_back(2);
  nodes.erase(m, m.find("a"));  // kept as a spare
  nodes.erase(m, m.find("b"));  // over the limit: freed
  CHECK(m.empty());
  auto c = nodes.insert(m, std::string("c"));
  CHECK(c->first == "c");
  CHECK(c->second.empty());
  CHECK(m.size() == 1);
  CHECK(m.count("a") == 0);
}

TEST_CASE("a task registered again or removed while the scheduler runs takes effect at the next run",
          "[scheduler]") {
  harness h;
  std::vector<std::string> ran;
  h.sched->tasks().add("t", [&](job_context&) -> asio::awaitable<void> {
    ran.push_back("first");
    co_return;
  });
  REQUIRE(h.add({.id = "s", .task = "t", .trigger = every(10s)}));
  h.start();
  h.advance(10s);
  h.sched->tasks().add("t", [&](job_context&) -> asio::awaitable<void> {
    ran.push_back("second");
    co_return;
  });
  h.advance(10s);
  REQUIRE(h.sched->tasks().remove("t"));
  h.advance(10s);
  CHECK(ran == std::vector<std::string>{"first", "second"});
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[2].state == job_state::failed);
  CHECK(jobs[2].error.find("unknown task \"t\"") != std::string::npos);
}
