// Scheduler core on the memory store: fires per second, lateness under a real clock, memory per
// schedule, time to add schedules. Each part prints one JSON line; tests/benchmarks/run runs the
// parts and compares them with APScheduler 3.9 (apscheduler_fires.py) in the same run.
//
//   punctual-bench-scheduler_bench throughput N [SECONDS]   ceiling: N schedules every 1 s, a manual
//                                                           clock stepped 1 s at a time, SECONDS steps
//   punctual-bench-scheduler_bench realtime N RATE SECONDS  the system clock: N schedules, RATE fires/s
//                                                           in all, measured for SECONDS after 1 s warm-up
//   punctual-bench-scheduler_bench memory N                 heap bytes per schedule beyond the trigger
//   punctual-bench-scheduler_bench add N                    N scheduler::add_schedule calls
//
// Common to all: interval triggers with their start times spread evenly over one period, a no-op
// coroutine task, one io thread, the default batch (scheduler_options::batch, 512), no job
// history kept.
// - throughput: after each 1 s step every schedule is due; the io_context runs until every due
//   fire has run. fires/s = fires / wall time: the scheduler's own cost per fire, no waiting.
// - realtime: schedules are due at real instants; lateness = task start - fire time, both read
//   from the system clock, for every run that starts inside the measured window; fires/s = runs
//   started in the window / its length (below RATE when the scheduler cannot keep up).
// - memory: heap bytes (mallinfo2: uordblks + hblkhd) held by the memory store per schedule,
//   minus the bytes of the trigger itself (measured the same way), with cron triggers.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>

#include "punctual/scheduler.hpp"
#include "punctual/store/memory_store.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"

using namespace punctual;
using namespace std::chrono_literals;
using wall = std::chrono::steady_clock;

namespace {

const std::size_t batch = scheduler_options{}.batch;  // the library's default

double seconds_since(wall::time_point t) { return std::chrono::duration<double>(wall::now() - t).count(); }

// Bytes in use: small blocks (uordblks) plus the large ones glibc maps on their own (hblkhd) —
// from a few thousand schedules on, the store's bucket arrays and heaps are among those.
std::size_t heap_bytes() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Adds n schedules straight to the store, each every `period`, their starts spread over one period.
void fill(memory_store& db, std::size_t n, time_point base, duration period) {
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i) {
          schedule_record r;
          const auto offset = static_cast<std::int64_t>(static_cast<double>(period.count()) *
                                                        static_cast<double>(i) / static_cast<double>(n));
          const auto start = base + duration{offset};
          r.spec = {
              .id = "s" + std::to_string(i), .task = "noop", .trigger = interval_trigger(period, start)};
          r.next_fire = start;
          co_await db.add_schedule(std::move(r), conflict_policy::error);
        }
      },
      asio::detached);
  io.run();
}

// Stops the scheduler and runs the io_context until it has stopped.
void stop(scheduler& sched, asio::io_context& io) {
  auto f = sched.async_stop(stop_mode::cancel, 0s, asio::use_future);
  while (f.wait_for(0s) != std::future_status::ready) {
    io.restart();
    io.run_for(1ms);
  }
}

void throughput(std::size_t n, int simulated_seconds) {
  const auto base = parse_iso("2026-01-01T00:00:00Z");
  auto db = std::make_shared<memory_store>(memory_store_options{0});
  fill(*db, n, base, 1s);
  manual_clock clock(base - 1us);  // after each 1 s step every offset in [0, 1 s) is due
  asio::io_context io;
  scheduler_options o;
  o.job_store = db;
  o.time_source = &clock;
  o.batch = batch;
  scheduler sched(io.get_executor(), o);
  std::uint64_t runs = 0;
  sched.tasks().add("noop", [&runs](job_context&) -> asio::awaitable<void> {
    ++runs;
    co_return;
  });
  sched.start();
  io.poll();
  const auto t = wall::now();
  for (int s = 0; s < simulated_seconds; ++s) {
    clock.advance(1s);
    const std::uint64_t want = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(s + 1);
    while (runs < want) {
      io.restart();
      if (io.poll() == 0) io.run_one_for(1ms);
    }
  }
  const double secs = seconds_since(t);
  stop(sched, io);
  std::printf(
      "{\"part\": \"throughput\", \"schedules\": %zu, \"batch\": %zu, \"fires\": %llu, \"seconds\": %.4f, "
      "\"fires_per_second\": %.1f}\n",
      n, batch, static_cast<unsigned long long>(runs), secs, static_cast<double>(runs) / secs);
}

void realtime(std::size_t n, double rate, double run_seconds) {
  const auto period = duration{static_cast<std::int64_t>(static_cast<double>(n) / rate * 1e6)};
  auto db = std::make_shared<memory_store>(memory_store_options{0});
  // Filling costs about 3 µs per schedule; fires before the store is ready are warm-up anyway.
  const auto base = system_clock::instance().now() + 200ms + duration{static_cast<std::int64_t>(n) * 4};
  fill(*db, n, base, period);
  const auto measure_from = std::max(base, system_clock::instance().now()) + 1s;
  const auto measure_to = measure_from + duration{static_cast<std::int64_t>(run_seconds * 1e6)};
  asio::io_context io;
  scheduler_options o;
  o.job_store = db;
  o.batch = batch;
  scheduler sched(io.get_executor(), o);
  std::vector<std::int64_t> late;
  late.reserve(static_cast<std::size_t>(rate * run_seconds * 1.1) + 16);
  sched.tasks().add("noop", [&](job_context& job) -> asio::awaitable<void> {
    const auto now = system_clock::instance().now();
    if (now >= measure_from && now < measure_to) late.push_back((now - job.fire_time()).count());
    co_return;
  });
  sched.start();
  io.run_for(std::chrono::microseconds{(measure_to - system_clock::instance().now()).count()} + 5ms);
  stop(sched, io);
  std::sort(late.begin(), late.end());
  auto pct = [&](double p) {
    if (late.empty()) return 0.0;
    const auto i = std::min(late.size() - 1, static_cast<std::size_t>(p * static_cast<double>(late.size())));
    return static_cast<double>(late[i]) / 1000.0;
  };
  std::printf(
      "{\"part\": \"realtime\", \"schedules\": %zu, \"rate\": %.1f, \"seconds\": %.3f, \"runs\": %zu, "
      "\"fires_per_second\": %.1f, \"lateness_p50_ms\": %.4f, \"lateness_p99_ms\": %.4f, "
      "\"lateness_max_ms\": %.4f}\n",
      n, rate, run_seconds, late.size(), static_cast<double>(late.size()) / run_seconds, pct(0.5), pct(0.99),
      late.empty() ? 0.0 : static_cast<double>(late.back()) / 1000.0);
}

void memory(std::size_t n) {
  const char* exprs[] = {"*/5 * * * *", "0 9 * * MON-FRI", "30 2 * * *", "0 0 1 * *"};
  // The triggers alone.
  malloc_trim(0);
  std::vector<trigger> v;
  v.reserve(n);
  const auto h1 = heap_bytes();
  for (std::size_t i = 0; i < n; ++i) v.push_back(cron_trigger(exprs[i % 4]));
  const double trig = static_cast<double>(heap_bytes() - h1) / static_cast<double>(n);
  v.clear();
  v.shrink_to_fit();
  malloc_trim(0);
  // The store with one schedule per trigger.
  const auto before = heap_bytes();
  auto db = std::make_shared<memory_store>(memory_store_options{0});
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i) {
          schedule_record r;
          r.spec = {
              .id = "schedule-" + std::to_string(i), .task = "noop", .trigger = cron_trigger(exprs[i % 4])};
          r.next_fire = r.spec.trigger.next(parse_iso("2026-01-01T00:00:00Z"));
          co_await db->add_schedule(std::move(r), conflict_policy::error);
        }
      },
      asio::detached);
  io.run();
  const double total = static_cast<double>(heap_bytes() - before) / static_cast<double>(n);
  std::printf(
      "{\"part\": \"memory\", \"schedules\": %zu, \"bytes_per_schedule\": %.1f, \"trigger_bytes\": %.1f}\n",
      n, total - trig, trig);
}

void add_time(std::size_t n) {
  asio::io_context io;
  manual_clock clock(parse_iso("2026-01-01T00:00:00Z"));
  scheduler_options o;
  o.job_store = std::make_shared<memory_store>(memory_store_options{0});
  o.time_source = &clock;
  scheduler sched(io.get_executor(), o);
  sched.tasks().add("noop", [](job_context&) -> asio::awaitable<void> { co_return; });
  const trigger every_5_minutes = cron_trigger("*/5 * * * *");
  const auto t = wall::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i) {
          const std::string id = "s" + std::to_string(i);
          co_await sched.async_add_schedule({.id = id, .task = "noop", .trigger = every_5_minutes},
                                            asio::use_awaitable);
        }
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // a failed add must not look like a fast one
      });
  io.run();
  const double secs = seconds_since(t);
  std::printf("{\"part\": \"add\", \"schedules\": %zu, \"seconds\": %.4f, \"us_per_schedule\": %.3f}\n", n,
              secs, secs * 1e6 / static_cast<double>(n));
}

int usage() {
  std::fprintf(stderr,
               "usage: punctual-bench-scheduler_bench throughput N [SECONDS] | realtime N RATE SECONDS |"
               " memory N | add N\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string part = argv[1];
  const auto n = static_cast<std::size_t>(std::strtoull(argv[2], nullptr, 10));
  if (n == 0) return usage();
  if (part == "throughput")
    throughput(n, argc > 3 ? std::max(1, std::atoi(argv[3])) : 3);
  else if (part == "realtime" && argc > 4)
    realtime(n, std::atof(argv[3]), std::atof(argv[4]));
  else if (part == "memory")
    memory(n);
  else if (part == "add")
    add_time(n);
  else
    return usage();
  return 0;
}
