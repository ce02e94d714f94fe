// The io_context run by several threads, and several schedulers (nodes) sharing one store:
// every fire time runs exactly once. Built into the TSan run of CI.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "../support/scheduler_harness.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/memory_store.hpp"
#include "punctual/trigger/interval.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

struct run_counter {
  std::mutex mutex;
  std::map<std::pair<std::string, time_point>, int> runs;
  std::map<std::string, int> by_node;
  std::atomic<int> total{0};
  void note(const job_context& job, const std::string& node) {
    {
      std::lock_guard lock(mutex);
      ++runs[{job.schedule_id(), job.fire_time()}];
      ++by_node[node];
    }
    ++total;
  }
};

// Runs recorded as succeeded by the scheduler: counted when it processes a run's completion on
// its strand, i.e. after the task body returned. A test that advances the clock as soon as the
// task bodies have run races that completion: the next fire of a schedule whose previous run is
// still registered as running is skipped (max_running 1, overlap skip), and never runs.
std::uint64_t succeeded(const scheduler& s) {
  return s.metrics().outcomes[static_cast<std::size_t>(job_state::succeeded)];
}

// Threads running an io_context; on the way out (a failed REQUIRE too) stops it and joins them.
struct io_threads {
  asio::io_context& io;
  std::vector<std::thread> threads;
  io_threads(asio::io_context& c, int n) : io(c) {
    for (int i = 0; i < n; ++i) threads.emplace_back([this] { io.run(); });
  }
  void join() {
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  ~io_threads() {
    if (std::uncaught_exceptions() > 0) io.stop();
    join();
  }
};

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

static void run_every_fire_once(int io_thread_count, bool with_blocking_tasks) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  manual_clock clock{t0()};
  scheduler_options o;
  o.time_source = &clock;
  o.node = "threads";
  o.blocking_threads = 3;
  scheduler sched(io.get_executor(), o);
  run_counter counter;
  sched.tasks().add("co", [&](job_context& job) -> asio::awaitable<void> {
    counter.note(job, "threads");
    co_return;
  });
  sched.tasks().add_blocking("block", [&](job_context& job) { counter.note(job, "threads"); });
  std::mutex problems_mutex;
  std::vector<std::string> problems;  // anything that should not happen, with its message
  auto sub = sched.events().subscribe(
      [&](const event& e) {
        std::lock_guard lock(problems_mutex);
        problems.push_back(std::string(to_string(e.kind)) + " " + e.op + ": " + e.message);
      },
      {event_kind::loop_restarted, event_kind::store_error, event_kind::job_failed, event_kind::job_skipped});
  io_threads threads(io, io_thread_count);

  constexpr int schedules = 40;
  for (int i = 0; i < schedules; ++i) {
    auto f = sched.async_add_schedule({.id = "s" + std::to_string(i),
                                       .task = (with_blocking_tasks && i % 2 == 0) ? "block" : "co",
                                       .trigger = every(1s)},
                                      asio::use_future);
    f.get();
  }
  sched.start();
  constexpr int seconds = 15;
  // What the scheduler says, read when a wait fails (INFO would evaluate it before the wait).
  auto state = [&](int s) {
    auto m = sched.metrics();
    auto h = sched.health();
    std::string all = "second " + std::to_string(s) + ": " + std::to_string(counter.total.load()) +
                      " runs; submitted " + std::to_string(m.submitted) + ", running " +
                      std::to_string(m.running) + ", succeeded " +
                      std::to_string(m.outcomes[static_cast<int>(job_state::succeeded)]) + ", skipped " +
                      std::to_string(m.outcomes[static_cast<int>(job_state::skipped)]) + ", last tick " +
                      (h.last_tick ? format_iso(*h.last_tick) : "none") + ", clock " +
                      format_iso(clock.now()) + "; problems: ";
    std::lock_guard lock(problems_mutex);
    for (auto& p : problems) all += p + "; ";
    return all;
  };
  for (int s = 1; s <= seconds; ++s) {
    clock.advance(1s);
    // Every task body ran, and the scheduler has recorded every run, before the clock moves on.
    const auto expected = static_cast<std::uint64_t>(schedules * s);
    if (!wait_for([&] { return counter.total.load() >= schedules * s && succeeded(sched) >= expected; }))
      FAIL(state(s));
    // Events and health are read from another thread while the loops run.
    CHECK(sched.health().state == scheduler_state::running);
  }
  sched.async_stop(stop_mode::wait, 5s, asio::use_future).get();
  guard.reset();
  threads.join();
  CHECK(problems.empty());
  CHECK(counter.total.load() == schedules * seconds);
  CHECK(counter.runs.size() == static_cast<std::size_t>(schedules * seconds));
  for (auto& [key, n] : counter.runs) CHECK(n == 1);
}

TEST_CASE("an io_context run by four threads runs every fire time exactly once", "[scheduler][threads]") {
  run_every_fire_once(4, false);
}

TEST_CASE("blocking tasks on the pool with the io_context on one thread run every fire time once",
          "[scheduler][threads]") {
  run_every_fire_once(1, true);
}

TEST_CASE("blocking tasks with an io_context on four threads run every fire time once",
          "[scheduler][threads]") {
  run_every_fire_once(4, true);
}

TEST_CASE("three nodes sharing one store run every fire time exactly once between them",
          "[scheduler][threads][nodes]") {
  auto db = std::make_shared<memory_store>(memory_store_options{1000});
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  manual_clock clock{t0()};
  run_counter counter;
  std::vector<std::unique_ptr<scheduler>> nodes;
  for (const char* name : {"node-a", "node-b", "node-c"}) {
    scheduler_options o;
    o.job_store = db;
    o.time_source = &clock;
    o.node = name;
    o.batch = 7;  // small batches so the nodes interleave
    auto s = std::make_unique<scheduler>(io.get_executor(), o);
    s->tasks().add("co", [&counter, node = std::string(name)](job_context& job) -> asio::awaitable<void> {
      counter.note(job, node);
      co_return;
    });
    nodes.push_back(std::move(s));
  }
  constexpr int schedules = 60;
  for (int i = 0; i < schedules; ++i) {
    asio::co_spawn(
        io,
        nodes[0]->async_add_schedule({.id = "s" + std::to_string(i), .task = "co", .trigger = every(1s)},
                                     asio::use_awaitable),
        asio::detached);
  }
  io.poll();
  io_threads threads(io, 3);
  for (auto& n : nodes) n->start();
  auto all_succeeded = [&] {
    std::uint64_t n = 0;
    for (auto& node : nodes) n += succeeded(*node);
    return n;
  };
  auto state = [&](int s) {
    std::string all = "second " + std::to_string(s) + ": " + std::to_string(counter.total.load()) + " runs;";
    for (auto& node : nodes) {
      auto m = node->metrics();
      all += " " + node->node() + ": succeeded " +
             std::to_string(m.outcomes[static_cast<std::size_t>(job_state::succeeded)]) + ", skipped " +
             std::to_string(m.outcomes[static_cast<std::size_t>(job_state::skipped)]) + ", running " +
             std::to_string(m.running) + ", last tick " + (m.last_tick ? format_iso(*m.last_tick) : "none") +
             ";";
    }
    return all + " clock " + format_iso(clock.now());
  };
  constexpr int seconds = 10;
  for (int s = 1; s <= seconds; ++s) {
    clock.advance(1s);
    // As above: the clock moves on only once every run is recorded by the node that ran it.
    const auto expected = static_cast<std::uint64_t>(schedules * s);
    if (!wait_for([&] { return counter.total.load() >= schedules * s && all_succeeded() >= expected; }))
      FAIL(state(s));
  }
  for (auto& n : nodes) n->async_stop(stop_mode::wait, 5s, asio::use_future).get();
  guard.reset();
  threads.join();
  CHECK(counter.runs.size() == static_cast<std::size_t>(schedules * seconds));
  for (auto& [key, n] : counter.runs) CHECK(n == 1);
  CHECK(counter.by_node.size() >= 2);  // the work was shared
  // One job per (schedule, fire time) in the store, too.
  asio::io_context check;
  auto jobs = asio::co_spawn(check, db->list_jobs({.schedule_id = "s0", .limit = 1000}), asio::use_future);
  check.run();
  CHECK(jobs.get().size() == static_cast<std::size_t>(seconds));
}
