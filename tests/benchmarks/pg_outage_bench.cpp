// Issue 13's seed failure, on punctual: the scenario of pg_outage_apscheduler.py with punctual's
// scheduler on the PostgreSQL store. Reported, never asserted.
//
// One schedule fires every second; each run is recorded (wall time, fire time). After BEFORE
// seconds a trigger BEFORE INSERT OR UPDATE on the store's schedule and job tables calls
// pg_terminate_backend(pg_backend_pid()) for the next KILLS rows written (counted by a SEQUENCE,
// whose nextval survives the backend's death), so the server drops the connection inside the
// store's own statements. The fault ends (the trigger is dropped) once KILLS writes were killed
// or after DURING seconds; then the run is watched AFTER more seconds. One JSON line:
//   fires_before / fires_during / fires_after   runs that started in each phase
//   loop_alive         health().healthy after the fault and fires_after > 0
//   reported_running   health().state == running at the end (and _during, in the fault)
//   healthy_during     false when any health() sample in the fault was unhealthy; the first
//                      unhealthy reason is in health_reason_during
//   duplicates         fire times that ran more than once
//   errors             store_error events; error_samples holds the first few
//   kills              writes the trigger terminated
// Everything lives in its own schema (punctual_outage_<pid>), dropped at the end.
//
// Usage: punctual-bench-pg_outage_bench [URL] [--before S] [--kills K] [--during S] [--after S]
// URL defaults to $PUNCTUAL_TEST_POSTGRES_URL.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include "pg_admin.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/postgres_store.hpp"
#include "punctual/trigger/interval.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::time_point;

struct arguments {
  std::string url;
  double before = 5, during = 5, after = 10;
  int kills = 3;
};

arguments parse(int argc, char** argv) {
  arguments a;
  if (const char* env = std::getenv("PUNCTUAL_TEST_POSTGRES_URL")) a.url = env;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> double {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return std::stod(argv[++i]);
    };
    if (arg == "--before")
      a.before = value();
    else if (arg == "--during")
      a.during = value();
    else if (arg == "--after")
      a.after = value();
    else if (arg == "--kills")
      a.kills = static_cast<int>(value());
    else if (!arg.starts_with("--"))
      a.url = arg;
    else
      throw std::invalid_argument("unknown argument " + arg);
  }
  if (a.url.empty()) throw std::invalid_argument("give a PostgreSQL URL or set PUNCTUAL_TEST_POSTGRES_URL");
  return a;
}

using punctual_bench::admin_connection;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out + "\"";
}

std::string json_strings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_string(v[i]);
  return out + "]";
}

time_point now() { return punctual::system_clock::instance().now(); }

double seconds_between(time_point a, time_point b) { return std::chrono::duration<double>(b - a).count(); }

void sleep_until(time_point t) {
  const auto left = t - now();
  if (left > 0us) std::this_thread::sleep_for(left);
}

/// The whole scenario, on `io` (run by another thread); prints the JSON line.
void run(const arguments& args, const std::string& schema, admin_connection& admin, asio::io_context& io) {
  punctual::postgres_store_options so;
  so.schema = schema;
  auto db = punctual::postgres_store::open(io.get_executor(), args.url, so);
  asio::co_spawn(io, db->connect(), asio::use_future).get();  // fails fast without a server

  std::mutex mutex;                                     // guards runs, errors
  std::vector<std::pair<time_point, time_point>> runs;  // (start, fire time)
  std::vector<std::string> errors;
  punctual::scheduler_options o;
  o.job_store = db;
  o.node = "pg-outage-bench";
  punctual::scheduler sched(io.get_executor(), o);
  sched.tasks().add("tick", [&](punctual::job_context& job) -> asio::awaitable<void> {
    std::lock_guard lock(mutex);
    runs.emplace_back(now(), job.fire_time());
    co_return;
  });
  auto subscription = sched.events().subscribe(
      [&](const punctual::event& e) {
        std::lock_guard lock(mutex);
        errors.push_back(e.op + ": " + e.message);
      },
      {punctual::event_kind::store_error});
  const auto start = std::chrono::ceil<std::chrono::seconds>(now());
  sched
      .async_add_schedule(
          {.id = "every_second", .task = "tick", .trigger = punctual::interval_trigger(1s, start)},
          asio::use_future)
      .get();
  sched.start();

  sleep_until(now() +
              std::chrono::duration_cast<punctual::duration>(std::chrono::duration<double>(args.before)));
  // The store's schedule and job tables (every table of the schema if none is named so).
  auto tables =
      admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = '" + schema +
                  "' AND table_type = 'BASE TABLE' AND (table_name LIKE '%schedule%' OR table_name "
                  "LIKE '%job%') ORDER BY 1");
  if (tables.empty())
    tables = admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = '" + schema +
                         "' AND table_type = 'BASE TABLE' ORDER BY 1");
  admin.query("CREATE SEQUENCE " + schema + ".kills");
  admin.query("CREATE FUNCTION " + schema +
              ".kill_writer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('" + schema +
              ".kills') <= " + std::to_string(args.kills) +
              " THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$");
  for (const auto& t : tables)
    admin.query("CREATE TRIGGER kill_writer BEFORE INSERT OR UPDATE ON " + schema + "." + t +
                " FOR EACH ROW EXECUTE FUNCTION " + schema + ".kill_writer()");
  const auto t_fault = now();
  auto kills = [&] {
    const auto v =
        admin.query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " + schema + ".kills");
    return std::min(std::stoi(v.at(0)), args.kills);
  };
  bool healthy_during = true;
  std::string reason_during;
  const auto fault_end =
      t_fault + std::chrono::duration_cast<punctual::duration>(std::chrono::duration<double>(args.during));
  while (kills() < args.kills && now() < fault_end) {
    const auto h = sched.health();
    if (!h.healthy && healthy_during) healthy_during = false, reason_during = h.reason;
    std::this_thread::sleep_for(20ms);
  }
  const auto h_during = sched.health();
  if (!h_during.healthy && healthy_during) healthy_during = false, reason_during = h_during.reason;
  const int killed = kills();
  for (const auto& t : tables) admin.query("DROP TRIGGER kill_writer ON " + schema + "." + t);
  const auto t_heal = now();
  sleep_until(t_heal +
              std::chrono::duration_cast<punctual::duration>(std::chrono::duration<double>(args.after)));
  const auto t_end = now();
  const auto h_after = sched.health();

  std::size_t before = 0, during = 0, after = 0, duplicates = 0;
  std::vector<std::string> samples;
  std::size_t error_count = 0;
  {
    std::lock_guard lock(mutex);
    std::map<time_point, int> per_fire;
    for (const auto& [t, fire] : runs) {
      if (t < t_fault)
        ++before;
      else if (t < t_heal)
        ++during;
      else if (t <= t_end)
        ++after;
      if (++per_fire[fire] == 2) ++duplicates;
    }
    error_count = errors.size();
    samples.assign(errors.begin(),
                   errors.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(3, errors.size())));
  }
  std::printf(
      "{\"scheduler\": \"punctual %s scheduler + postgres_store\", \"store\": %s, \"tables\": %s, "
      "\"before_s\": %.1f, \"during_s\": %.2f, \"after_s\": %.1f, \"kills\": %d, \"fires_before\": %zu, "
      "\"fires_during\": %zu, \"fires_after\": %zu, \"loop_alive\": %s, \"reported_running_during\": %s, "
      "\"reported_running\": %s, \"healthy_during\": %s, \"health_reason_during\": %s, \"healthy_after\": "
      "%s, "
      "\"duplicates\": %zu, \"errors\": %zu, \"error_samples\": %s}\n",
      PUNCTUAL_VERSION_STRING, json_string(db->display_name()).c_str(), json_strings(tables).c_str(),
      args.before, seconds_between(t_fault, t_heal), args.after, killed, before, during, after,
      h_after.healthy && after > 0 ? "true" : "false",
      h_during.state == punctual::scheduler_state::running ? "true" : "false",
      h_after.state == punctual::scheduler_state::running ? "true" : "false",
      healthy_during ? "true" : "false", json_string(reason_during).c_str(),
      h_after.healthy ? "true" : "false", duplicates, error_count, json_strings(samples).c_str());
  std::fflush(stdout);

  sched.async_stop(punctual::stop_mode::cancel, 0s, asio::use_future).get();
  subscription.reset();
  db->close();
}

}  // namespace

int main(int argc, char** argv) try {
  const auto args = parse(argc, argv);
  const std::string schema = "punctual_outage_" + std::to_string(::getpid());
  admin_connection admin(args.url);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  int status = 0;
  try {
    run(args, schema, admin, io);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pg_outage_bench: %s\n", e.what());
    status = 1;
  }
  work.reset();
  io.stop();
  io_thread.join();
  admin.query("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
  return status;
} catch (const std::exception& e) {
  std::fprintf(stderr, "pg_outage_bench: %s\n", e.what());
  return 1;
}
