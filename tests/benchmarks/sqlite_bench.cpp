// SQLite store figures (reported, never asserted):
//  1. durable fires per second: acquire_due_schedules + release_schedules with one job row per
//     fire, every commit durable (synchronous = FULL), with 10k and 100k schedules;
//  2. open-to-first-fire with 1M stored schedules: construct the store on an existing 1M-row
//     database, acquire the first due batch and release it with its jobs (committed).
// Targets: >= 50,000 fires/s; <= 1 s open-to-first-fire.
//
// Usage: punctual-bench-sqlite_bench [work-dir [part]]   (part: fires-10k, fires-100k,
// fires-100k-normal or open-1m; default all. Default work dir: $TMPDIR or /tmp, under
// punctual-sqlite-bench/). The 1M-schedule database is built once there and reused; the other
// databases are rebuilt on every run.
//        punctual-bench-sqlite_bench work-dir fires N ROUNDS [full|normal]
// runs part 1 with N schedules for ROUNDS rounds per batch size (default FULL).
// Every figure is printed as one JSON line.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/store/sqlite_store.hpp"
#include "punctual/trigger/interval.hpp"
#include "store_bench.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::time_point;
using punctual_bench::clk;
using punctual_bench::cpu_seconds;
using punctual_bench::fire_batch;
using punctual_bench::seconds_since;
using punctual_bench::t0;

/// Runs `f` (a coroutine returning void) to completion on a private io_context.
template <class F>
void drive(F f) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(io, f(), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

void remove_db(const std::string& path) {
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

void fires_per_second(const std::string& dir, int schedules, int rounds, punctual::sqlite_synchronous sync,
                      const char* sync_name) {
  const auto path = dir + "/fires-" + std::to_string(schedules) + ".db";
  remove_db(path);
  {
    // Setup through the store itself, without fsync.
    punctual::sqlite_store_options fast;
    fast.synchronous = punctual::sqlite_synchronous::off;
    auto st = punctual::sqlite_store::open(path, fast);
    drive([&]() -> asio::awaitable<void> {
      for (int k = 0; k < schedules; ++k) {
        punctual::schedule_record r;
        r.spec.id = "s" + std::to_string(k);
        r.spec.task = "task";
        r.spec.trigger = punctual::interval_trigger(1s, t0());
        r.next_fire = t0();
        co_await st->add_schedule(std::move(r), punctual::conflict_policy::error);
      }
    });
  }
  punctual::sqlite_store_options o;
  o.synchronous = sync;
  if (const char* level = std::getenv("PUNCTUAL_BENCH_SYNC"); level && std::string(level) == "off") {
    o.synchronous = punctual::sqlite_synchronous::off;  // experiments: the CPU-bound ceiling
    sync_name = "OFF";
  }
  if (const char* extra = std::getenv("PUNCTUAL_BENCH_SQL"))  // experiments: extra pragmas at open
    o.on_open = [sql = std::string(extra)](sqlite3* db) {
      sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    };
  auto st = punctual::sqlite_store::open(path, o);
  int next_round = 0;
  for (std::size_t batch : {std::size_t{512}, std::size_t{4096}}) {
    std::size_t fires = 0;
    const auto start = clk::now();
    const double cpu_start = cpu_seconds();
    drive([&]() -> asio::awaitable<void> {
      for (int r = 0; r < rounds; ++r) {
        const auto now = t0() + std::chrono::seconds(next_round++);
        for (;;) {
          const auto n = co_await fire_batch(*st, "bench", now, batch);
          fires += n;
          if (n == 0) break;
        }
      }
    });
    const double s = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    std::printf(
        "{\"part\": \"fires\", \"synchronous\": \"%s\", \"schedules\": %d, \"rounds\": %d, "
        "\"batch\": %zu, \"fires\": %zu, \"seconds\": %.4f, \"fires_per_second\": %.1f, "
        "\"cpu_seconds\": %.3f, \"cpu_us_per_fire\": %.2f}\n",
        sync_name, schedules, rounds, batch, fires, s, static_cast<double>(fires) / s, cpu,
        cpu * 1e6 / static_cast<double>(fires));
  }
}

void open_to_first_fire(const std::string& dir) {
  const auto path = dir + "/one-million.db";
  constexpr int count = 1'000'000;
  bool build = !std::filesystem::exists(path);
  if (!build) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_stmt* s = nullptr;
    build = sqlite3_prepare_v2(db, "SELECT count(*) FROM schedules", -1, &s, nullptr) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_ROW || sqlite3_column_int64(s, 0) != count;
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  if (build) {
    const auto start = clk::now();
    remove_db(path);
    { punctual::sqlite_store::open(path); }  // the store creates its schema
    // Bulk rows straight into that schema (one transaction): 1M add_schedule calls would only
    // measure the setup. Fire times spread over an hour from t0; triggers every 10 s.
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    const auto base = std::to_string(t0().time_since_epoch().count());
    const std::string sql =
        "PRAGMA synchronous = OFF; BEGIN;"
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < " +
        std::to_string(count - 1) +
        ") INSERT INTO schedules(id, task, trigger_text, payload, options_text, paused, next_fire_us, "
        "last_fire_us,"
        " lease_owner, lease_until_us, quarantine, created_us, updated_us)"
        " SELECT printf('s%07d', x), 'task', 'interval:10s', '', '', 0, " +
        base + " + (x % 3600) * 1000000, NULL, '', 0, NULL, 0, 0 FROM c; COMMIT;";
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::fprintf(stderr, "building the 1M database failed: %s\n", err ? err : "?");
      std::exit(1);
    }
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    std::fprintf(stderr, "built %s with %d schedules in %.1f s\n", path.c_str(), count, seconds_since(start));
  }
  for (int run = 0; run < 3; ++run) {
    const auto start = clk::now();
    auto st = punctual::sqlite_store::open(path);
    const double opened = seconds_since(start);
    std::size_t fired = 0;
    double first_acquire = 0;
    drive([&]() -> asio::awaitable<void> {
      const auto due = co_await st->next_due();
      const auto now = due.schedule.value_or(t0()) + std::chrono::seconds(run);
      const auto a = clk::now();
      fired = co_await fire_batch(*st, "bench", now, 512);
      first_acquire = seconds_since(a);
    });
    const double total = seconds_since(start);
    std::printf(
        "{\"part\": \"open\", \"schedules\": %d, \"open_ms\": %.2f, \"first_batch\": %zu, "
        "\"first_batch_ms\": %.2f, \"open_to_first_fire_ms\": %.2f}\n",
        count, opened * 1e3, fired, first_acquire * 1e3, total * 1e3);
  }
  // Undo the fires so the next run starts from the same state.
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               ("DELETE FROM jobs; UPDATE schedules SET next_fire_us = " +
                std::to_string(t0().time_since_epoch().count()) +
                " + (CAST(substr(id, 2) AS INTEGER) % 3600) * 1000000, last_fire_us = NULL WHERE "
                "last_fire_us IS NOT NULL")
                   .c_str(),
               nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

}  // namespace

int main(int argc, char** argv) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir =
      (argc > 1 ? std::string(argv[1]) : std::string(tmp && *tmp ? tmp : "/tmp")) + "/punctual-sqlite-bench";
  std::filesystem::create_directories(dir);
  std::printf("{\"part\": \"version\", \"sqlite\": \"%s\"}\n", sqlite3_libversion());
  const std::string only = argc > 2 ? argv[2] : "";  // run only the parts whose name contains this
  auto want = [&](const char* part) {
    return only.empty() || std::string(part).find(only) != std::string::npos;
  };
  try {
    if (only == "fires") {
      const int schedules = argc > 3 ? std::atoi(argv[3]) : 10'000;
      const int rounds = argc > 4 ? std::atoi(argv[4]) : 1;
      if (argc > 5 && std::string(argv[5]) == "normal")
        fires_per_second(dir, schedules, rounds, punctual::sqlite_synchronous::normal, "NORMAL");
      else
        fires_per_second(dir, schedules, rounds, punctual::sqlite_synchronous::full, "FULL");
      return 0;
    }
    if (want("fires-10k")) fires_per_second(dir, 10'000, 5, punctual::sqlite_synchronous::full, "FULL");
    if (want("fires-100k")) fires_per_second(dir, 100'000, 1, punctual::sqlite_synchronous::full, "FULL");
    if (want("fires-100k-normal"))
      fires_per_second(dir, 100'000, 1, punctual::sqlite_synchronous::normal, "NORMAL");
    if (want("open-1m")) open_to_first_fire(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
