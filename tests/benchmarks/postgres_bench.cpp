// PostgreSQL store figures (reported, never asserted; issue 13):
//  1. durable fires per second, the workload of sqlite_bench: acquire_due_schedules +
//     release_schedules with one job row per fire, every commit durable (the store never turns
//     synchronous_commit off), N schedules every 1 s on a fake clock, R rounds, batch 512 and
//     4096; on one node, or on NODES nodes at once (one store object, io_context and thread
//     each, one schema), which share the due schedules through their leases;
//  2. lateness on the real clock: NODES schedulers (one store each, one schema) running RATE
//     schedules every second, their fire times spread evenly over the second; lateness = task
//     start - fire time over SECONDS after a 1 s warm-up, and fire times run twice.
// Targets (2 cores, the server local): >= 20,000 durable fires/s on one node; p99 lateness
// <= 5 ms at 1,000 fires/s over three nodes.
//
// Usage: punctual-bench-postgres_bench URL fires N ROUNDS [NODES]
//        punctual-bench-postgres_bench URL realtime NODES RATE SECONDS
// Each run works in its own schema (punctual_bench_<pid>), dropped at the end. Every figure is
// one JSON line; server_cpu_seconds is the CPU time of the whole server (every process under
// its postmaster, read from /proc), null when the server is not local or not readable.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include "../support/pg_testing.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/postgres_store.hpp"
#include "punctual/trigger/interval.hpp"
#include "store_bench.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::time_point;
using punctual::testing::pg::admin_connection;
using punctual_bench::clk;
using punctual_bench::cpu_seconds;
using punctual_bench::fire_batch;
using punctual_bench::seconds_since;
using punctual_bench::t0;

/// The server's CPU time: every process whose parent is the postmaster (backends, WAL writer,
/// checkpointer, ...) plus what the postmaster collected from children that exited.
class server_cpu {
 public:
  explicit server_cpu(admin_connection& admin) {
    try {
      const auto dir = admin.query("SELECT current_setting('data_directory')");
      std::ifstream pidfile(dir.at(0) + "/postmaster.pid");
      pidfile >> postmaster_;
      if (postmaster_ > 0 && !read(postmaster_)) postmaster_ = 0;
    } catch (const std::exception&) {
      postmaster_ = 0;  // not local, or not allowed to read the setting
    }
  }

  /// Seconds so far, or nullopt when the server's processes cannot be read.
  std::optional<double> seconds() const {
    if (postmaster_ <= 0) return std::nullopt;
    const auto self = read(postmaster_);
    if (!self) return std::nullopt;
    double total = self->children;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const auto name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const auto s = read(std::stol(name));
      if (s && s->parent == postmaster_) total += s->own + s->children;
    }
    return total;
  }

 private:
  struct stat_line {
    long parent = 0;
    double own = 0, children = 0;
  };
  static std::optional<stat_line> read(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(f, text)) return std::nullopt;
    const auto close = text.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return std::nullopt;
    std::istringstream in(text.substr(close + 2));
    std::string field;
    std::vector<std::string> v;
    while (in >> field && v.size() < 15) v.push_back(field);
    if (v.size() < 15) return std::nullopt;
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return stat_line{std::stol(v[1]), (std::stod(v[11]) + std::stod(v[12])) / tick,
                     (std::stod(v[13]) + std::stod(v[14])) / tick};
  }
  long postmaster_ = 0;
};

/// The server's fsync setting, put into every figure ("on": commits reach the disk).
std::string server_fsync = "?";

std::string json_seconds(std::optional<double> s) {
  if (!s) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", *s);
  return buf;
}

/// One node of a run: its own io_context (run by its own thread) and store.
struct node {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::shared_ptr<punctual::postgres_store> db;
  std::thread thread;

  node(const std::string& url, const std::string& schema) {
    punctual::postgres_store_options o;
    o.schema = schema;
    db = punctual::postgres_store::open(io.get_executor(), url, o);
    thread = std::thread([this] { io.run(); });
    asio::co_spawn(io, db->connect(), asio::use_future).get();  // fails fast without a server
  }
  node(const node&) = delete;
  node& operator=(const node&) = delete;
  ~node() {
    db->close();
    work.reset();
    thread.join();
  }
};

/// Node `name`'s share of rounds [first, first + rounds): in each, fire batches until none is
/// due. A coroutine function, not a lambda: its arguments live in its frame.
asio::awaitable<void> fire_rounds(punctual::store& st, std::string name, int first, int rounds,
                                  std::size_t batch, std::size_t& count) {
  for (int r = first; r < first + rounds; ++r) {
    const auto now = t0() + std::chrono::seconds(r);
    for (;;) {
      const auto got = co_await fire_batch(st, name, now, batch);
      count += got;
      if (got == 0) break;
    }
  }
}

void fires_per_second(const std::string& url, const std::string& schema, admin_connection& admin,
                      int schedules, int rounds, int nodes) {
  const server_cpu server(admin);
  int next_round = 0;
  for (std::size_t batch : {std::size_t{512}, std::size_t{4096}}) {
    admin.query("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    std::vector<std::unique_ptr<node>> cluster;
    for (int k = 0; k < nodes; ++k) cluster.push_back(std::make_unique<node>(url, schema));
    // The schedules in one statement: add_schedule calls would only measure the setup.
    admin.query(
        "INSERT INTO " + schema +
            ".schedules(id, task, trigger_text, next_fire)"
            " SELECT 's' || g, 'task', $1, $2::bigint + $3::bigint * 1000000 FROM generate_series(0, $4::int "
            "- 1) g",
        {punctual::interval_trigger(1s, t0()).to_string(), std::to_string(t0().time_since_epoch().count()),
         std::to_string(next_round), std::to_string(schedules)});
    admin.query("VACUUM ANALYZE " + schema + ".schedules");
    const int first_round = next_round;
    next_round += rounds;
    std::vector<std::size_t> fires(static_cast<std::size_t>(nodes), 0);
    std::vector<std::future<void>> done;
    const auto server_start = server.seconds();
    const auto start = clk::now();
    const double cpu_start = cpu_seconds();
    for (int k = 0; k < nodes; ++k) {
      auto& n = *cluster[static_cast<std::size_t>(k)];
      auto& count = fires[static_cast<std::size_t>(k)];
      done.push_back(asio::co_spawn(
          n.io, fire_rounds(*n.db, "bench-" + std::to_string(k), first_round, rounds, batch, count),
          asio::use_future));
    }
    for (auto& f : done) f.get();
    const double s = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    const auto server_end = server.seconds();
    std::optional<double> server_used;
    if (server_start && server_end) server_used = *server_end - *server_start;
    std::size_t total = 0;
    std::string per_node;
    for (auto f : fires) total += f, per_node += (per_node.empty() ? "" : ", ") + std::to_string(f);
    const auto jobs = std::stoull(admin.query("SELECT count(*) FROM " + schema + ".jobs").at(0));
    std::printf(
        "{\"part\": \"fires\", \"fsync\": \"%s\", \"nodes\": %d, \"schedules\": %d, \"rounds\": %d, "
        "\"batch\": %zu, "
        "\"fires\": %zu, \"expected\": %d, \"job_rows\": %llu, \"fires_per_node\": [%s], \"seconds\": %.4f, "
        "\"fires_per_second\": %.1f, \"cpu_seconds\": %.3f, \"cpu_us_per_fire\": %.2f, "
        "\"server_cpu_seconds\": %s, \"server_cpu_us_per_fire\": %s}\n",
        server_fsync.c_str(), nodes, schedules, rounds, batch, total, schedules * rounds,
        static_cast<unsigned long long>(jobs), per_node.c_str(), s, static_cast<double>(total) / s, cpu,
        cpu * 1e6 / static_cast<double>(total), json_seconds(server_used).c_str(),
        json_seconds(server_used ? std::optional<double>(*server_used * 1e6 / static_cast<double>(total))
                                 : std::nullopt)
            .c_str());
    std::fflush(stdout);
  }
}

void realtime(const std::string& url, const std::string& schema, admin_connection& admin, int nodes, int rate,
              double run_seconds) {
  admin.query("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
  const server_cpu server(admin);
  std::vector<std::unique_ptr<node>> cluster;
  for (int k = 0; k < nodes; ++k) cluster.push_back(std::make_unique<node>(url, schema));
  // `rate` schedules every second, their starts spread over the second.
  const auto now = [] { return punctual::system_clock::instance().now(); };
  const time_point base =
      std::chrono::ceil<std::chrono::seconds>(now() + 1s + std::chrono::milliseconds(rate));
  asio::co_spawn(
      cluster[0]->io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < rate; ++i) {
          punctual::schedule_record r;
          const auto start = base + punctual::duration{static_cast<std::int64_t>(1e6 * i / rate)};
          r.spec = {.id = "s" + std::to_string(i),
                    .task = "noop",
                    .trigger = punctual::interval_trigger(1s, start)};
          r.next_fire = start;
          co_await cluster[0]->db->add_schedule(std::move(r), punctual::conflict_policy::error);
        }
      },
      asio::use_future)
      .get();
  // Statistics, as autovacuum keeps them on a table in use: the planner of a never-analysed
  // table guesses its size from its pages.
  admin.query("ANALYZE " + schema + ".schedules");
  admin.query("ANALYZE " + schema + ".jobs");
  const auto measure_from = std::max(base, now()) + 1s;
  const auto measure_to = measure_from + punctual::duration{static_cast<std::int64_t>(run_seconds * 1e6)};

  std::mutex mutex;  // guards late, seen, duplicates, per_node
  std::vector<std::int64_t> late;
  std::set<std::pair<std::string, time_point>> seen;
  std::size_t duplicates = 0;
  std::vector<std::size_t> per_node(static_cast<std::size_t>(nodes), 0);
  std::vector<std::unique_ptr<punctual::scheduler>> schedulers;
  for (int k = 0; k < nodes; ++k) {
    punctual::scheduler_options o;
    o.job_store = cluster[static_cast<std::size_t>(k)]->db;
    o.node = "bench-" + std::to_string(k);
    auto s =
        std::make_unique<punctual::scheduler>(cluster[static_cast<std::size_t>(k)]->io.get_executor(), o);
    s->tasks().add("noop", [&, k](punctual::job_context& job) -> asio::awaitable<void> {
      const auto t = now();
      std::lock_guard lock(mutex);
      if (!seen.emplace(job.schedule_id(), job.fire_time()).second) ++duplicates;
      if (t >= measure_from && t < measure_to) {
        late.push_back((t - job.fire_time()).count());
        ++per_node[static_cast<std::size_t>(k)];
      }
      co_return;
    });
    schedulers.push_back(std::move(s));
  }
  for (auto& s : schedulers) s->start();
  std::this_thread::sleep_until(std::chrono::system_clock::now() + (measure_from - now()));
  const auto server_start = server.seconds();
  const double cpu_start = cpu_seconds();
  std::this_thread::sleep_until(std::chrono::system_clock::now() + (measure_to - now()) + 5ms);
  const double cpu = cpu_seconds() - cpu_start;
  const auto server_end = server.seconds();
  for (auto& s : schedulers) s->async_stop(punctual::stop_mode::cancel, 0s, asio::use_future).get();
  std::lock_guard lock(mutex);
  std::sort(late.begin(), late.end());
  auto pct = [&](double p) {
    if (late.empty()) return 0.0;
    const auto i = std::min(late.size() - 1, static_cast<std::size_t>(p * static_cast<double>(late.size())));
    return static_cast<double>(late[i]) / 1000.0;
  };
  std::string spread;
  for (auto c : per_node) spread += (spread.empty() ? "" : ", ") + std::to_string(c);
  std::optional<double> server_used;
  if (server_start && server_end) server_used = *server_end - *server_start;
  std::printf(
      "{\"part\": \"realtime\", \"fsync\": \"%s\", \"nodes\": %d, \"schedules\": %d, \"rate\": %d, "
      "\"seconds\": %.3f, \"runs\": "
      "%zu, "
      "\"runs_per_node\": [%s], \"fires_per_second\": %.1f, \"lateness_p50_ms\": %.4f, \"lateness_p99_ms\": "
      "%.4f, "
      "\"lateness_max_ms\": %.4f, \"duplicates\": %zu, \"cpu_seconds\": %.3f, \"server_cpu_seconds\": %s}\n",
      server_fsync.c_str(), nodes, rate, rate, run_seconds, late.size(), spread.c_str(),
      static_cast<double>(late.size()) / run_seconds, pct(0.5), pct(0.99),
      late.empty() ? 0.0 : static_cast<double>(late.back()) / 1000.0, duplicates, cpu,
      json_seconds(server_used).c_str());
  std::fflush(stdout);
  schedulers.clear();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: punctual-bench-postgres_bench URL fires N ROUNDS [NODES]\n"
                 "       punctual-bench-postgres_bench URL realtime NODES RATE SECONDS\n");
    return 2;
  }
  const std::string url = argv[1], part = argv[2];
  const std::string schema = "punctual_bench_" + std::to_string(::getpid());
  admin_connection admin(url);
  server_fsync = admin.query("SHOW fsync").at(0);
  std::printf(
      "{\"part\": \"version\", \"server\": \"%s\", \"fsync\": \"%s\", \"synchronous_commit\": \"%s\"}\n",
      admin.query("SHOW server_version").at(0).c_str(), server_fsync.c_str(),
      admin.query("SHOW synchronous_commit").at(0).c_str());
  int status = 0;
  try {
    if (part == "fires" && argc > 4)
      fires_per_second(url, schema, admin, std::atoi(argv[3]), std::atoi(argv[4]),
                       argc > 5 ? std::atoi(argv[5]) : 1);
    else if (part == "realtime" && argc > 5)
      realtime(url, schema, admin, std::atoi(argv[3]), std::atoi(argv[4]), std::atof(argv[5]));
    else
      throw std::invalid_argument("unknown part or missing arguments: " + part);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "postgres_bench: %s\n", e.what());
    status = 1;
  }
  admin.query("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
  return status;
} catch (const std::exception& e) {
  std::fprintf(stderr, "postgres_bench: %s\n", e.what());
  return 1;
}
