// The fault-injecting store wrapper used to test the scheduler against store failures.
#include "../support/fault_store.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/store/memory_store.hpp"
#include "punctual/trigger/interval.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::testing::fault_mode;
using punctual::testing::fault_store;

// Runs one operation to completion on a private io_context (at most 10 s, so that a wrongly
// hanging operation fails the test instead of blocking it).
template <class T>
T run(asio::awaitable<T> op) {
  asio::io_context io;
  std::exception_ptr error;
  bool done = false;
  [[maybe_unused]] std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
  if constexpr (std::is_void_v<T>) {
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e) {
      error = e;
      done = true;
    });
  } else {
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T v) {
      error = e;
      if (!e) value.emplace(std::move(v));
      done = true;
    });
  }
  io.run_for(10s);
  if (!done) throw std::runtime_error("operation did not complete within 10 s");
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*value);
}

punctual::time_point at(std::chrono::seconds s) { return punctual::parse_iso("2026-01-01T00:00:00Z") + s; }

punctual::schedule_record schedule(const std::string& id) {
  punctual::schedule_record r;
  r.spec.id = id;
  r.spec.task = "t";
  r.spec.trigger = punctual::interval_trigger{10s};
  r.next_fire = at(10s);
  return r;
}

punctual::job_record job(const std::string& schedule_id, punctual::time_point fire) {
  punctual::job_record j;
  j.schedule_id = schedule_id;
  j.fire_time = fire;
  j.run_at = fire;
  return j;
}

// Message of the exception `f` throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Races `op` against a 50 ms timer; returns true when the timer won.
template <class T>
bool times_out(asio::awaitable<T> op) {
  using namespace asio::experimental::awaitable_operators;
  return run([](asio::awaitable<T> op) -> asio::awaitable<bool> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);
    auto result = co_await (std::move(op) || timer.async_wait(asio::use_awaitable));
    co_return result.index() == 1;
  }(std::move(op)));
}

}  // namespace

TEST_CASE("fault_store names every store operation and rejects unknown ones", "[store][fault]") {
  const auto& ops = fault_store::operations();
  CHECK(ops.size() == 18);  // every awaitable of punctual::store
  for (const char* op : {"acquire_due_schedules", "release_schedules", "acquire_jobs", "update_jobs",
                         "release_jobs", "extend_leases", "recover_abandoned", "next_due", "add_job",
                         "purge_jobs", "modify_schedule", "add_schedules"})
    CHECK(std::find(ops.begin(), ops.end(), op) != ops.end());
  fault_store fs(std::make_shared<punctual::memory_store>());
  CHECK_THROWS_AS(fs.inject("acquire", fault_mode::fail, 1), std::invalid_argument);
  CHECK_THROWS_AS(fs.inject("add_job", fault_mode::fail, 0), std::invalid_argument);
  CHECK_THROWS_AS(fs.calls("nope"), std::invalid_argument);
  CHECK_THROWS_AS(fault_store(nullptr), std::invalid_argument);
}

TEST_CASE("fault_store without faults passes every call through and counts it", "[store][fault]") {
  auto inner = std::make_shared<punctual::memory_store>();
  fault_store fs(inner);
  CHECK(run(fs.add_schedule(schedule("a"), punctual::conflict_policy::error)));
  CHECK(run(fs.get_schedule("a"))->spec.id == "a");
  CHECK(run(fs.add_job(job("a", at(10s)))) > 0);
  CHECK(run(fs.next_due()).job == at(10s));
  CHECK(run(fs.next_due()).schedule == at(10s));
  CHECK(fs.calls("add_schedule") == 1);
  CHECK(fs.calls("next_due") == 2);
  CHECK(fs.calls("release_schedules") == 0);
  CHECK(fs.faults("next_due") == 0);
  CHECK(inner->schedule_count() == 1);
  // notifications pass through too
  int changes = 0;
  const auto h = fs.subscribe_changes([&] { ++changes; });
  run(fs.add_job(job("a", at(20s))));
  fs.unsubscribe_changes(h);
  run(fs.add_job(job("a", at(30s))));
  CHECK(changes == 1);
}

TEST_CASE("fault_store passes acquire_jobs' options through, also after a lost reply", "[store][fault]") {
  fault_store fs(std::make_shared<punctual::memory_store>());
  auto s = schedule("a");
  s.spec.options.retries = 4;
  REQUIRE(run(fs.add_schedule(s, punctual::conflict_policy::error)));
  REQUIRE(run(fs.add_job(job("a", at(10s)))) > 0);
  REQUIRE(run(fs.add_job(job("a", at(20s)))) > 0);
  fs.inject_next("acquire_jobs", fault_mode::fail_after_commit);
  CHECK_THROWS(run(fs.acquire_jobs("n", at(20s), at(50s), 1)));
  CHECK(run(fs.release_jobs("n", {})) == 1);  // what the lost reply held goes back
  const auto got = run(fs.acquire_jobs("n", at(20s), at(50s), 10));
  REQUIRE(got.size() == 2);
  for (auto& j : got) {
    REQUIRE(j.options);
    CHECK(*j.options == s.spec.options);
  }
}

TEST_CASE("fault_store fails calls N .. N+k-1 of one operation, before touching the inner store",
          "[store][fault]") {
  auto inner = std::make_shared<punctual::memory_store>();
  fault_store fs(inner);
  fs.inject("add_job", fault_mode::fail, 2, 2);
  CHECK(run(fs.add_job(job("a", at(10s)))) > 0);
  CHECK(error_of([&] { run(fs.add_job(job("a", at(20s)))); }) == "injected fault: add_job call #2");
  CHECK(error_of([&] { run(fs.add_job(job("a", at(30s)))); }) == "injected fault: add_job call #3");
  CHECK(run(fs.add_job(job("a", at(40s)))) > 0);
  CHECK(fs.calls("add_job") == 4);
  CHECK(fs.faults("add_job") == 2);
  CHECK(inner->job_count() == 2);            // the failed calls did nothing
  CHECK(run(fs.next_due()).job == at(10s));  // other operations are not affected
  // void operations fail the same way
  fs.inject_next("update_jobs", fault_mode::fail);
  CHECK(error_of([&] { run(fs.update_jobs("n", {})); }) == "injected fault: update_jobs call #1");
  CHECK(error_of([&] { run(fs.update_jobs("n", {})); }).empty());
}

TEST_CASE("fault_store heal() removes every fault window", "[store][fault]") {
  fault_store fs(std::make_shared<punctual::memory_store>());
  fs.inject_next("next_due", fault_mode::fail, 0);  // forever
  for (int k = 0; k < 3; ++k) CHECK_THROWS_AS(run(fs.next_due()), std::runtime_error);
  fs.heal();
  CHECK_NOTHROW(run(fs.next_due()));
  CHECK(fs.calls("next_due") == 4);
  CHECK(fs.faults("next_due") == 3);
}

TEST_CASE("fault_store hang mode never completes and ends when a timeout cancels it", "[store][fault]") {
  auto counting = std::make_shared<fault_store>(std::make_shared<punctual::memory_store>());
  fault_store fs(counting);
  fs.inject("next_due", fault_mode::hang, 1);
  fs.inject("add_schedule", fault_mode::hang, 1);
  CHECK(times_out(fs.next_due()));
  CHECK(times_out(fs.add_schedule(schedule("a"), punctual::conflict_policy::error)));
  CHECK(counting->calls("next_due") == 0);  // the inner store was never reached
  CHECK(counting->calls("add_schedule") == 0);
  CHECK_FALSE(run(counting->get_schedule("a")));
  // the window is over: the next call completes before the timer
  CHECK_FALSE(times_out(fs.next_due()));
  CHECK(counting->calls("next_due") == 1);
}

TEST_CASE("fault_store hang mode cancelled through its cancellation slot throws operation_aborted",
          "[store][fault]") {
  fault_store fs(std::make_shared<punctual::memory_store>());
  fs.inject_next("acquire_jobs", fault_mode::hang);
  asio::io_context io;
  asio::cancellation_signal cancel;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, fs.acquire_jobs("n", at(0s), at(30s), 10),
                 asio::bind_cancellation_slot(cancel.slot(),
                                              [&](std::exception_ptr e, std::vector<punctual::job_record>) {
                                                error = e;
                                                done = true;
                                              }));
  io.poll();
  CHECK_FALSE(done);  // hanging
  cancel.emit(asio::cancellation_type::terminal);
  io.run_for(10s);
  REQUIRE(done);
  REQUIRE(error);
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
}

TEST_CASE("fault_store fail_after_commit commits the inner operation, then throws", "[store][fault]") {
  auto inner = std::make_shared<punctual::memory_store>();
  fault_store fs(inner);
  fs.inject_next("add_schedule", fault_mode::fail_after_commit);
  CHECK(error_of([&] { run(fs.add_schedule(schedule("a"), punctual::conflict_policy::error)); }) ==
        "injected fault: add_schedule call #1");
  CHECK(run(inner->get_schedule("a")));  // it happened

  // The nasty case: a release whose reply is lost. Its retry must not duplicate the jobs.
  REQUIRE(run(fs.acquire_due_schedules("n", at(20s), at(50s), 10)).size() == 1);
  fs.inject_next("release_schedules", fault_mode::fail_after_commit);
  const std::vector<punctual::schedule_release> rel{{"a", at(30s), at(20s)}};
  const std::vector<punctual::job_record> jobs{job("a", at(10s)), job("a", at(20s))};
  CHECK_THROWS_WITH(run(fs.release_schedules("n", rel, jobs)), "injected fault: release_schedules call #1");
  CHECK(inner->job_count() == 2);
  CHECK(run(fs.release_schedules("n", rel, jobs)) == 0);
  CHECK(inner->job_count() == 2);
  CHECK(run(fs.get_schedule("a"))->next_fire == at(30s));

  // void operations too
  fs.inject_next("update_jobs", fault_mode::fail_after_commit);
  auto taken = run(fs.acquire_jobs("n", at(20s), at(50s), 1));
  REQUIRE(taken.size() == 1);
  taken[0].state = punctual::job_state::succeeded;
  CHECK_THROWS(run(fs.update_jobs("n", taken)));
  CHECK(run(inner->list_jobs({})).at(1).state == punctual::job_state::succeeded);
}

TEST_CASE("fault_store hang_after_commit commits, then hangs until cancelled", "[store][fault]") {
  auto inner = std::make_shared<punctual::memory_store>();
  fault_store fs(inner);
  fs.inject_next("add_job", fault_mode::hang_after_commit);
  CHECK(times_out(fs.add_job(job("a", at(10s)))));
  CHECK(inner->job_count() == 1);
  CHECK(run(fs.add_job(job("a", at(10s)))) == 0);  // the retry finds it committed
}

TEST_CASE("fault_store windows: later windows win where they overlap", "[store][fault]") {
  fault_store fs(std::make_shared<punctual::memory_store>());
  fs.inject("list_schedules", fault_mode::fail, 1, 3);
  fs.inject("list_schedules", fault_mode::fail_after_commit, 2, 1);
  CHECK(error_of([&] { run(fs.list_schedules()); }) == "injected fault: list_schedules call #1");
  CHECK(error_of([&] { run(fs.list_schedules()); }) == "injected fault: list_schedules call #2");
  CHECK(error_of([&] { run(fs.list_schedules()); }) == "injected fault: list_schedules call #3");
  CHECK_NOTHROW(run(fs.list_schedules()));
  CHECK(fs.faults("list_schedules") == 3);
}

TEST_CASE("fault_store counts calls from many threads exactly", "[store][fault]") {
  fault_store fs(std::make_shared<punctual::memory_store>());
  fs.inject("next_due", fault_mode::fail, 101, 50);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int k = 0; k < 250; ++k) {
        try {
          run(fs.next_due());
        } catch (const std::runtime_error&) {
          ++failures;
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(fs.calls("next_due") == 1000);
  CHECK(fs.faults("next_due") == 50);
  CHECK(failures == 50);
}
