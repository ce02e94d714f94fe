// Scheduler core on the memory store: sustained fires per second, lateness, memory per
// schedule, time to add schedules — and APScheduler 3.9 on the same workload in the same run.
//
//   scheduler_bench [--quick] [--no-peer] [--out FILE]
//
// Workload: N schedules, each an interval trigger every second, their start times spread
// evenly over the second; a no-op coroutine task; one io thread.
// - throughput: a manual clock is advanced one second at a time and the io_context is run
//   until every due fire has run; fires/s = fires / wall time. This is the scheduler's own
//   cost per fire with no waiting in between.
// - lateness: the system clock, real time; lateness = task start - fire time.
// - memory: heap bytes (mallinfo2) per schedule held by the memory store, minus the bytes of
//   the trigger itself (measured the same way), with cron triggers.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
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

double seconds_since(wall::time_point t) { return std::chrono::duration<double>(wall::now() - t).count(); }

std::size_t heap_bytes() { return mallinfo2().uordblks; }

// Adds n staggered every-second schedules straight to the store.
void fill(memory_store& db, std::size_t n, time_point base) {
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i) {
          schedule_record r;
          const auto start = base + duration{static_cast<std::int64_t>(i * 1'000'000 / n)};
          r.spec = {.id = "s" + std::to_string(i), .task = "noop", .trigger = interval_trigger(1s, start)};
          r.next_fire = start;
          co_await db.add_schedule(std::move(r), conflict_policy::error);
        }
      },
      asio::detached);
  io.run();
}

struct throughput_result {
  std::size_t schedules;
  std::uint64_t fires;
  double seconds;
  double fires_per_second() const { return static_cast<double>(fires) / seconds; }
};

throughput_result throughput(std::size_t n, int simulated_seconds) {
  const auto base = parse_iso("2026-01-01T00:00:00Z");
  auto db = std::make_shared<memory_store>(memory_store_options{0});
  fill(*db, n, base);
  manual_clock clock(base - 1us);  // after each 1 s step every offset in [0, 1 s) is due
  asio::io_context io;
  scheduler_options o;
  o.job_store = db;
  o.time_source = &clock;
  o.batch = 4096;
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
  const auto fires = runs;
  auto f = sched.async_stop(stop_mode::cancel, 0s, asio::use_future);
  while (f.wait_for(0s) != std::future_status::ready) {
    io.restart();
    io.run_for(1ms);
  }
  return {n, fires, secs};
}

struct lateness_result {
  double rate;
  std::size_t samples;
  double p50_ms, p99_ms, max_ms;
};

lateness_result lateness(std::size_t n, double run_seconds) {
  auto db = std::make_shared<memory_store>(memory_store_options{0});
  const auto base = system_clock::instance().now() + 1s;
  fill(*db, n, base);
  asio::io_context io;
  scheduler_options o;
  o.job_store = db;
  scheduler sched(io.get_executor(), o);
  std::vector<double> late;
  late.reserve(static_cast<std::size_t>(static_cast<double>(n) * (run_seconds + 2)));
  const auto measure_from = base + 1s;  // skip the first second (warm-up)
  sched.tasks().add("noop", [&](job_context& job) -> asio::awaitable<void> {
    if (job.fire_time() >= measure_from)
      late.push_back(static_cast<double>((system_clock::instance().now() - job.fire_time()).count()) /
                     1000.0);
    co_return;
  });
  sched.start();
  io.run_for(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(run_seconds + 2)));
  auto f = sched.async_stop(stop_mode::cancel, 0s, asio::use_future);
  io.restart();
  while (f.wait_for(0s) != std::future_status::ready) io.run_for(1ms);
  std::sort(late.begin(), late.end());
  auto pct = [&](double p) {
    return late.empty() ? 0.0 : late[std::min(late.size() - 1, static_cast<std::size_t>(p * late.size()))];
  };
  return {static_cast<double>(n), late.size(), pct(0.5), pct(0.99), late.empty() ? 0.0 : late.back()};
}

struct memory_result {
  std::size_t schedules;
  double bytes_per_schedule;
  double trigger_bytes;
};

memory_result memory(std::size_t n) {
  const char* exprs[] = {"*/5 * * * *", "0 9 * * MON-FRI", "30 2 * * *", "0 0 1 * *"};
  // The triggers alone.
  malloc_trim(0);
  const auto h0 = heap_bytes();
  {
    std::vector<trigger> v;
    v.reserve(n);
    const auto h1 = heap_bytes();
    for (std::size_t i = 0; i < n; ++i) v.push_back(cron_trigger(exprs[i % 4]));
    const double trig = static_cast<double>(heap_bytes() - h1) / static_cast<double>(n);
    (void)h0;
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
    return {n, total - trig, trig};
  }
}

double add_time(std::size_t n) {
  asio::io_context io;
  manual_clock clock(parse_iso("2026-01-01T00:00:00Z"));
  scheduler_options o;
  o.job_store = std::make_shared<memory_store>(memory_store_options{0});
  o.time_source = &clock;
  scheduler sched(io.get_executor(), o);
  const auto t = wall::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i) {
          // Built in a statement of its own: GCC 12 miscompiles a braced temporary inside a
          // co_await expression (destroys it twice).
          schedule_spec spec{
              .id = "s" + std::to_string(i), .task = "noop", .trigger = cron_trigger("*/5 * * * *")};
          co_await sched.add_schedule(std::move(spec), asio::use_awaitable);
        }
      },
      asio::detached);
  io.run();
  return seconds_since(t);
}

std::string run_peer(std::size_t n, int seconds) {
  const std::string cmd = "/usr/bin/python3 " PUNCTUAL_BENCH_DIR "/apscheduler_fires.py " +
                          std::to_string(n) + " " + std::to_string(seconds) + " 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

double field(const std::string& line, const std::string& key) {
  auto at = line.find(key + "=");
  return at == std::string::npos ? 0.0 : std::atof(line.c_str() + at + key.size() + 1);
}

}  // namespace

#ifndef PUNCTUAL_BENCH_DIR
#define PUNCTUAL_BENCH_DIR "tests/benchmarks"
#endif

int main(int argc, char** argv) {
  bool quick = false, peer = true;
  std::string out_file = "scheduler_bench.md";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick"))
      quick = true;
    else if (!std::strcmp(argv[i], "--no-peer"))
      peer = false;
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc)
      out_file = argv[++i];
  }
  std::ostringstream md;
  md << "## Scheduler core (memory store, one io thread, no-op coroutine task)\n\n";
  md << "| schedules | fires | wall s | fires/s | target | APScheduler 3.9 fires/s | ratio "
        "|\n|---|---|---|---|---|---|---|\n";
  std::vector<std::size_t> sizes = quick ? std::vector<std::size_t>{10'000, 100'000}
                                         : std::vector<std::size_t>{10'000, 100'000, 1'000'000};
  for (auto n : sizes) {
    auto r = throughput(n, n >= 1'000'000 ? 3 : 5);
    std::string peer_cell = "-", ratio = "-";
    if (peer && n <= 100'000) {
      auto line = run_peer(n, quick ? 5 : 10);
      const double f = field(line, "fires_per_second");
      if (f > 0) {
        peer_cell = std::to_string(static_cast<long>(f));
        ratio = std::to_string(static_cast<long>(r.fires_per_second() / f)) + "x";
      }
    }
    md << "| " << n << " | " << r.fires << " | " << r.seconds << " | "
       << static_cast<long>(r.fires_per_second()) << " | >= 1,000,000 | " << peer_cell << " | " << ratio
       << " |\n";
    std::cerr << "throughput " << n << ": " << static_cast<long>(r.fires_per_second()) << " fires/s\n";
  }
  md << "\n### Lateness (fire time -> task start), system clock, real time\n\n";
  md << "| fires/s | samples | p50 ms | p99 ms | max ms | target p99 | APScheduler p50 / p99 ms "
        "|\n|---|---|---|---|---|---|---|\n";
  for (std::size_t rate : {std::size_t{1'000}, std::size_t{100'000}}) {
    auto l = lateness(rate, quick ? 2.0 : 5.0);
    std::string peer_cell = "-";
    if (peer && rate == 1'000) {
      auto line = run_peer(rate, quick ? 3 : 5);
      if (field(line, "fires_per_second") > 0)
        peer_cell = std::to_string(field(line, "lateness_p50_ms")) + " / " +
                    std::to_string(field(line, "lateness_p99_ms"));
    }
    md << "| " << rate << " | " << l.samples << " | " << l.p50_ms << " | " << l.p99_ms << " | " << l.max_ms
       << " | <= 1 ms | " << peer_cell << " |\n";
    std::cerr << "lateness at " << rate << "/s: p99 " << l.p99_ms << " ms\n";
  }
  md << "\n### Memory per schedule (cron trigger), memory store\n\n| schedules | bytes/schedule beyond the "
        "trigger | trigger bytes | target |\n|---|---|---|---|\n";
  for (std::size_t n :
       quick ? std::vector<std::size_t>{100'000} : std::vector<std::size_t>{100'000, 1'000'000}) {
    auto m = memory(n);
    md << "| " << n << " | " << static_cast<long>(m.bytes_per_schedule) << " | "
       << static_cast<long>(m.trigger_bytes) << " | <= 256 |\n";
  }
  const std::size_t add_n = quick ? 100'000 : 1'000'000;
  const double add_s = add_time(add_n);
  md << "\n### Adding schedules through scheduler::add_schedule\n\n| schedules | seconds | per schedule µs "
        "|\n|---|---|---|\n";
  md << "| " << add_n << " | " << add_s << " | " << add_s * 1e6 / static_cast<double>(add_n) << " |\n";
  std::cout << md.str();
  std::ofstream(out_file) << md.str();
  return 0;
}
