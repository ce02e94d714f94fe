// The scheduler's public operations as a user writes them: errors, the cancellation-safe stop,
// what a task can read of its run, and the braced-temporary form inside co_await.
#include <catch2/catch.hpp>

#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include "../support/fault_store.hpp"
#include "../support/scheduler_harness.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/trigger/interval.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

void add_noop(harness& h, const std::string& name = "noop") {
  h.sched->tasks().add(name, [](job_context&) -> asio::awaitable<void> { co_return; });
}

// Runs `body` as a coroutine on the harness's io_context to its end (real time, bounded).
void run_coroutine(harness& h, std::function<asio::awaitable<void>()> body) {
  auto f = asio::co_spawn(h.io, std::move(body), asio::use_future);
  REQUIRE(h.run_until([&] { return f.wait_for(0s) == std::future_status::ready; }));
  f.get();
}

}  // namespace

TEST_CASE("every operation on an unknown schedule id fails the same way: schedule_not_found",
          "[scheduler][api]") {
  harness h;
  add_noop(h);
  auto expect_not_found = [&](auto&& op) {
    try {
      h.call<void>(op);
      FAIL("no exception");
    } catch (const schedule_not_found& e) {
      CHECK(e.id() == "nope");
      CHECK(std::string(e.what()) == "no schedule \"nope\"");
    }
  };
  expect_not_found([&](auto tok) { return h.sched->async_remove_schedule("nope", tok); });
  expect_not_found([&](auto tok) { return h.sched->async_pause_schedule("nope", tok); });
  expect_not_found([&](auto tok) { return h.sched->async_resume_schedule("nope", tok); });
  expect_not_found([&](auto tok) { return h.sched->async_run_now("nope", tok); });
  expect_not_found([&](auto tok) {
    return h.sched->async_modify_schedule({.id = "nope", .task = "noop", .trigger = every(1s)}, tok);
  });
  // The library's errors share one base, apart from other exceptions.
  CHECK_THROWS_AS(h.call<void>([&](auto tok) { return h.sched->async_pause_schedule("nope", tok); }),
                  punctual::error);
  CHECK_THROWS_AS(h.add({.id = "", .task = "noop", .trigger = every(1s)}), punctual::error);
  REQUIRE(h.add({.id = "s", .task = "noop", .trigger = every(1s)}));
  CHECK_THROWS_AS(h.add({.id = "s", .task = "noop", .trigger = every(1s)}), punctual::error);
  // A query is not an error: an unknown id reads as nullopt.
  CHECK_FALSE(h.call<std::optional<schedule_record>>([&](auto tok) {
                 return h.sched->async_get_schedule("nope", tok);
               }).has_value());
}

TEST_CASE("resume defaults to catching up what was missed while paused", "[scheduler][api]") {
  harness h;
  add_noop(h);
  REQUIRE(h.add({.id = "s", .task = "noop", .trigger = every(10s)}));
  h.start();
  h.call<void>([&](auto tok) { return h.sched->async_pause_schedule("s", tok); });
  h.advance(35s);
  CHECK(h.jobs("s").empty());
  h.call<void>([&](auto tok) { return h.sched->async_resume_schedule("s", tok); });
  h.settle();
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);  // coalesce=latest: one catch-up run
  CHECK(jobs[0].fire_time == t0() + 30s);
}

TEST_CASE("cancelling the wait for async_stop does not cancel the stop: it completes and releases the leases",
          "[scheduler][api][stop]") {
  using namespace asio::experimental::awaitable_operators;
  harness h;
  bool task_cancelled = false;
  h.sched->tasks().add("long", [&](job_context&) -> asio::awaitable<void> {
    asio::steady_timer forever(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
    asio::error_code ec;
    co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    task_cancelled = ec == asio::error::operation_aborted;
  });
  REQUIRE(h.add({.id = "s", .task = "long", .trigger = every(10s)}));
  h.start();
  h.advance(10s);
  REQUIRE(h.sched->metrics().running == 1);
  // The waiter gives up after 20 ms of real time; the stop (wait, 60 s of the manual clock) goes on.
  std::size_t winner = 99;
  run_coroutine(h, [&]() -> asio::awaitable<void> {
    asio::steady_timer impatience(co_await asio::this_coro::executor, 20ms);
    auto r = co_await (h.sched->async_stop(stop_mode::wait, 60s, asio::use_awaitable) ||
                       impatience.async_wait(asio::use_awaitable));
    winner = r.index();
  });
  CHECK(winner == 1);
  CHECK(h.sched->state() == scheduler_state::stopping);
  CHECK(h.await(h.db->get_schedule("s"))->spec.id == "s");
  // The stop carries on by itself: after the grace the run is cancelled and the stop ends.
  for (int i = 0; i < 200 && h.sched->state() != scheduler_state::stopped; ++i) h.advance(1s);
  CHECK(h.sched->state() == scheduler_state::stopped);
  CHECK(task_cancelled);
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == job_state::cancelled);
  CHECK(h.await(h.db->get_schedule("s"))->lease_owner.empty());  // leases released
  CHECK(h.count(event_kind::scheduler_stopped) == 1);
  // A later async_stop completes at once.
  h.stop(stop_mode::wait, 1s);
}

TEST_CASE(
    "a task reads its start time, lateness and attempt from its job_context; the lateness histogram counts "
    "first attempts only",
    "[scheduler][api]") {
  harness h;
  struct seen {
    time_point started;
    duration lateness;
    std::uint32_t attempt;
  };
  std::vector<seen> runs;
  h.sched->tasks().add("flaky", [&](job_context& job) -> asio::awaitable<void> {
    runs.push_back({job.started(), job.lateness(), job.attempt()});
    if (job.attempt() == 1) throw std::runtime_error("first attempt fails");
    co_return;
  });
  schedule_options o;
  o.retries = 1;
  o.retry_backoff = 4s;
  o.retry_backoff_max = 4s;
  REQUIRE(h.add({.id = "s", .task = "flaky", .trigger = every(10s), .options = o}));
  h.start();
  h.clock.advance(13s);  // the 10 s fire starts 3 s late
  h.settle();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].started == t0() + 13s);
  CHECK(runs[0].lateness == 3s);
  CHECK(runs[0].attempt == 1);
  h.advance(6s, 1s);  // the retry: after a backoff drawn in [2 s, 4 s]
  REQUIRE(runs.size() == 2);
  CHECK(runs[1].attempt == 2);
  CHECK(runs[1].started >= t0() + 15s);
  CHECK(runs[1].started <= t0() + 17s);
  CHECK(runs[1].lateness == runs[1].started - (t0() + 10s));
  const auto m = h.sched->metrics();
  CHECK(m.lateness_count == 1);  // the retry's start is not lateness of the fire
  CHECK(m.lateness_sum_seconds == Approx(3.0));
}

// GCC 12 destroys a class temporary written in braces inside a co_await expression twice (see
// schedule_args). The operations that take an aggregate take trivially copyable views for the
// braced form; this uses exactly that form for each of them (with strings long enough to be on
// the heap, and a short one), and the ASan stage runs it.
TEST_CASE("operations take braced temporaries inside co_await", "[scheduler][api][gcc12]") {
  harness h;
  add_noop(h);
  h.start();
  std::vector<job_record> jobs;
  std::optional<schedule_record> modified;
  run_coroutine(h, [&]() -> asio::awaitable<void> {
    co_await h.sched->async_add_schedule(
        {.id = "b", .task = "noop", .trigger = every(10s), .payload = std::string(100, 'p')},
        asio::use_awaitable);
    co_await h.sched->async_add_schedule(
        {.id = "c", .task = "noop", .trigger = every(10s), .options = {.max_running = 2, .retries = 3}},
        conflict_policy::replace, asio::use_awaitable);
    modified = co_await h.sched->async_modify_schedule(
        {.id = "c", .task = "noop", .trigger = every(20s), .payload = std::string(100, 'q')},
        asio::use_awaitable);
    co_await h.sched->async_run_now(std::string("b"), asio::use_awaitable);
    jobs = co_await h.sched->async_list_jobs({.schedule_id = "b", .limit = 10}, asio::use_awaitable);
  });
  REQUIRE(modified);
  CHECK(modified->spec.payload == std::string(100, 'q'));
  CHECK(modified->spec.options == schedule_options{});
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].schedule_id == "b");
}

namespace {
// A store whose next_due always says "due long ago" while nothing can be acquired, as a store
// that judges leases by its own clock reports another node's lease when this node's clock runs
// ahead of the store's.
struct stale_due_store : fault_store {
  using fault_store::fault_store;
  asio::awaitable<due_times> next_due() override { co_return due_times{time_point{}, time_point{}}; }
};
}  // namespace

TEST_CASE("a due time that cannot be acquired yet makes the loops pause, not spin", "[scheduler][api]") {
  auto db = std::make_shared<stale_due_store>(std::make_shared<memory_store>());
  harness h(db);
  h.start();  // settle() fails the test if the loops keep the io_context busy at one instant
  const auto acquires = db->calls("acquire_due_schedules") + db->calls("acquire_jobs");
  h.settle();
  CHECK(db->calls("acquire_due_schedules") + db->calls("acquire_jobs") == acquires);
  CHECK(h.sched->health().healthy);
}

TEST_CASE("async_cancel_job cancels a run running here, and answers false for any other id",
          "[scheduler][api][cancel]") {
  harness h;
  h.sched->tasks().add("wait", [](job_context&) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours{1});
    co_await t.async_wait(asio::use_awaitable);  // until cancelled
  });
  REQUIRE(h.add({.id = "s", .task = "wait", .trigger = every(10s)}));
  h.start();
  h.advance(10s);
  auto jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  REQUIRE(jobs[0].state == job_state::running);
  const auto id = jobs[0].id;
  const auto cancel = [&](std::int64_t job) {
    return h.call<bool>([&](auto tok) { return h.sched->async_cancel_job(job, tok); });
  };
  CHECK_FALSE(cancel(id + 1000));  // no such run
  CHECK(cancel(id));
  h.advance(2s);
  jobs = h.jobs("s");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == job_state::cancelled);
  CHECK(jobs[0].error == "cancelled by request");
  CHECK_FALSE(cancel(id));  // it has ended
}
