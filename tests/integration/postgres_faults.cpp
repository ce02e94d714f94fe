// Issue 13, "Proof" (faults): punctual's real scheduler on the PostgreSQL store, on the real
// clock, against a real server (PUNCTUAL_TEST_POSTGRES_URL) that misbehaves:
//  1. the store's backends terminated (pg_terminate_backend) at random moments, in the middle of
//     their statements and commits, while a schedule fires every 200 ms;
//  2. the seed failure: a trigger that makes the backend terminate itself inside the store's own
//     INSERT/UPDATE of schedules and jobs (and, second case, while it commits) for the next K
//     writes; then healed;
//  3. the server stopped (`pg_ctl stop -m immediate`) for 6 s and started again, on a throwaway
//     server of the test's own (scripts/pg-scratch);
//  4. a black-holed connection (tests/support/tcp_proxy.hpp) between the store and the server.
// Each proves: every fire time of the window ran exactly once (the task's own log and the jobs
// table agree: none twice, none missing — the schedule coalesces with `all`, so an outage drops
// no fire time — and every job succeeded), the scheduler never stops running, health() is
// unhealthy during the fault with the store error as its reason and healthy after, and firing
// resumes within a bound (the measured times are printed as INFO/WARN lines).
// Each test works in a schema of its own. Without the variable every test skips with a warning;
// test 3 also skips (with a warning) where no throwaway server can be started.
#include <catch2/catch.hpp>

#if defined(PUNCTUAL_TEST_HAVE_POSTGRES)

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include "../support/pg_testing.hpp"
#include "../support/tcp_proxy.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/postgres_store.hpp"
#include "punctual/trigger/interval.hpp"

using namespace std::chrono_literals;
using punctual::duration;
using punctual::time_point;
using punctual::testing::pg::admin_connection;
using punctual::testing::pg::server_url;
using punctual::testing::pg::temp_schema;

namespace {

#define PUNCTUAL_REQUIRE_SERVER()                                                  \
  if (server_url().empty()) {                                                      \
    WARN("skipped: PUNCTUAL_TEST_POSTGRES_URL is not set (no PostgreSQL server)"); \
    return;                                                                        \
  }

time_point wall_now() { return punctual::system_clock::instance().now(); }

double seconds(duration d) { return std::chrono::duration<double>(d).count(); }

/// Waits (polling every 5 ms) until `done()` or `timeout`; returns done().
bool wait_for(const std::function<bool()>& done, duration timeout) {
  const auto until = wall_now() + timeout;
  while (!done()) {
    if (wall_now() >= until) return done();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// The timing every test uses: short enough that outages are noticed and left within a second
/// or two (the scheduler's defaults are 30 s for lease, store_timeout and backoff_max).
constexpr duration period = 200ms;
constexpr duration max_wait = 500ms;
constexpr duration store_timeout = 1500ms;
constexpr duration backoff_max = 400ms;

/// One scheduler on one postgres_store, on an io_context thread of its own, with one schedule
/// ("tick", every 200 ms, coalesce=all) whose runs the task logs, and a log of store errors with
/// the health() seen at each.
class fault_run {
 public:
  fault_run(const std::string& conninfo, const std::string& schema) : schema_(schema) {
    punctual::postgres_store_options so;
    so.schema = schema;
    so.connect_timeout = 1000ms;
    so.statement_timeout = 5000ms;
    so.poll_interval = 200ms;
    db = punctual::postgres_store::open(io_.get_executor(), conninfo, so);
    punctual::scheduler_options o;
    o.job_store = db;
    o.node = "faults";
    o.max_wait = max_wait;
    o.lease = 3s;
    o.store_timeout = store_timeout;
    o.backoff_initial = 50ms;
    o.backoff_max = backoff_max;
    o.restart_delay = 200ms;
    sched = std::make_unique<punctual::scheduler>(io_.get_executor(), o);
    sched->tasks().add("tick", [this](punctual::job_context& job) -> asio::awaitable<void> {
      std::lock_guard lock(mutex_);
      runs_.emplace_back(wall_now(), job.fire_time());
      co_return;
    });
    errors_sub_ = sched->events().subscribe(
        [this](const punctual::event& e) {
          const auto h = sched->health();  // on the strand, right after the failure was counted
          std::lock_guard lock(mutex_);
          errors_.push_back(e.op + ": " + e.message);
          if (h.healthy)
            ++healthy_at_error_;
          else
            unhealthy_reasons_.push_back(h.reason);
        },
        {punctual::event_kind::store_error});
    thread_ = std::thread([this] { io_.run(); });
    asio::co_spawn(io_, db->connect(), asio::use_future).get();  // fails fast without a server
    punctual::schedule_options every;
    every.coalesce = punctual::coalesce_policy::all;  // an outage drops no fire time
    every.max_catch_up = 1000;
    const auto start = std::chrono::ceil<std::chrono::seconds>(wall_now());
    sched
        ->async_add_schedule({.id = "tick",
                              .task = "tick",
                              .trigger = punctual::interval_trigger(period, start),
                              .options = every},
                             asio::use_future)
        .get();
    first_fire = *sched->async_get_schedule("tick", asio::use_future).get()->next_fire;
    sched->start();
  }
  fault_run(const fault_run&) = delete;
  fault_run& operator=(const fault_run&) = delete;
  ~fault_run() {
    try {
      sched->async_stop(punctual::stop_mode::cancel, 0s, asio::use_future).get();
    } catch (...) {
    }
    errors_sub_.reset();
    sched.reset();
    db->close();
    db.reset();
    // What the store still has under way ends now that it is closed: let it end, then stop.
    work_.reset();
    wait_for([&] { return io_.stopped(); }, 2s);
    io_.stop();
    thread_.join();
  }

  /// The first run started at or after `t`.
  std::optional<time_point> first_run_after(time_point t) const {
    std::lock_guard lock(mutex_);
    std::optional<time_point> first;
    for (auto& [started, fire] : runs_)
      if (started >= t && (!first || started < *first)) first = started;
    return first;
  }
  std::size_t runs_after(time_point t) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(runs_.begin(), runs_.end(), [&](auto& r) { return r.first >= t; }));
  }
  std::vector<std::string> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  std::size_t error_count() const {
    std::lock_guard lock(mutex_);
    return errors_.size();
  }
  /// health().reason at every store error (unhealthy ones), and how many errors saw it healthy.
  std::vector<std::string> unhealthy_reasons() const {
    std::lock_guard lock(mutex_);
    return unhealthy_reasons_;
  }
  std::size_t healthy_at_error() const {
    std::lock_guard lock(mutex_);
    return healthy_at_error_;
  }

  /// Checks that every fire time from the first to `cutoff` ran exactly once and succeeded, in
  /// the task's log and in the jobs table (read through `admin`), and that no fire time ran
  /// twice at all. Waits up to 5 s for the jobs up to `cutoff` to be final first.
  void check_every_fire_once(admin_connection& admin, time_point cutoff) const {
    const std::string upto = std::to_string(cutoff.time_since_epoch().count());
    const std::string jobs = schema_ + ".jobs WHERE schedule_id = 'tick' AND fire_time <= " + upto;
    std::size_t expected = 0;
    for (auto f = first_fire; f <= cutoff; f += period) ++expected;
    REQUIRE(expected > 0);
    wait_for(
        [&] {
          return admin.value("SELECT count(*) FROM " + jobs + " AND state = 'succeeded'") ==
                 std::to_string(expected);
        },
        5s);
    std::map<std::int64_t, std::string> stored;  // fire time -> state
    for (const auto& row : admin.query("SELECT fire_time || ' ' || state FROM " + jobs)) {
      const auto space = row.find(' ');
      stored.emplace(std::stoll(row.substr(0, space)), row.substr(space + 1));
    }
    std::map<time_point, int> ran;
    {
      std::lock_guard lock(mutex_);
      for (auto& r : runs_) ++ran[r.second];
    }
    std::ostringstream problems;
    for (auto& [fire, n] : ran)
      if (n != 1) problems << punctual::format_iso(fire) << " ran " << n << " times; ";
    for (auto f = first_fire; f <= cutoff; f += period) {
      const auto it = stored.find(f.time_since_epoch().count());
      if (it == stored.end())
        problems << punctual::format_iso(f) << " has no job; ";
      else if (it->second != "succeeded")
        problems << punctual::format_iso(f) << " is " << it->second << "; ";
      if (ran[f] == 0) problems << punctual::format_iso(f) << " never ran; ";
    }
    for (auto& [fire, state] : stored)
      if ((fire - first_fire.time_since_epoch().count()) % period.count() != 0)
        problems << "job at " << fire << " is not a fire time; ";
    INFO("fire times " << punctual::format_iso(first_fire) << " .. " << punctual::format_iso(cutoff) << " ("
                       << expected << "): " << problems.str());
    CHECK(problems.str().empty());
    CHECK(stored.size() == expected);
  }

 private:
  // First: destroyed after the store and the scheduler, whose sockets and timers use it.
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;

 public:
  std::shared_ptr<punctual::postgres_store> db;
  std::unique_ptr<punctual::scheduler> sched;
  time_point first_fire;

 private:
  std::string schema_;
  mutable std::mutex mutex_;                             // guards the logs below
  std::vector<std::pair<time_point, time_point>> runs_;  // (started, fire time)
  std::vector<std::string> errors_;
  std::vector<std::string> unhealthy_reasons_;
  std::size_t healthy_at_error_ = 0;
  punctual::subscription errors_sub_;
};

/// Samples health() every 5 ms on a thread of its own while it lives.
class health_sampler {
 public:
  struct sample {
    time_point at;
    punctual::health_report h;
  };
  explicit health_sampler(const punctual::scheduler& s)
      : thread_([this, &s] {
          while (!done_) {
            auto h = s.health();
            {
              std::lock_guard lock(mutex_);
              samples_.push_back({wall_now(), std::move(h)});
            }
            std::this_thread::sleep_for(5ms);
          }
        }) {}
  health_sampler(const health_sampler&) = delete;
  health_sampler& operator=(const health_sampler&) = delete;
  ~health_sampler() {
    done_ = true;
    thread_.join();
  }
  std::vector<sample> samples() const {
    std::lock_guard lock(mutex_);
    return samples_;
  }
  /// The first sample at or after `t` for which `p` holds.
  template <class P>
  std::optional<sample> first_after(time_point t, P p) const {
    for (auto& s : samples())
      if (s.at >= t && p(s.h)) return s;
    return std::nullopt;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<sample> samples_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

/// What every test checks once its fault has healed at `healed`: a run started within 2 s, the
/// scheduler healthy again (also within 2 s) and running, every fire time up to a little before
/// now exactly once. Returns the resume time (first run after `healed`).
duration check_recovery(fault_run& run, admin_connection& admin, time_point healed,
                        duration resume_bound = 2s) {
  REQUIRE(wait_for([&] { return run.first_run_after(healed).has_value(); }, resume_bound + 1s));
  const auto resumed = *run.first_run_after(healed) - healed;
  CHECK(resumed <= resume_bound);
  CHECK(wait_for([&] { return run.sched->health().healthy; }, 2s));
  const auto h = run.sched->health();
  INFO("health after the fault: " << h.reason);
  CHECK(h.state == punctual::scheduler_state::running);
  CHECK(h.loop_restarts == 0);
  // Let it fire a second more in health, then check the whole window.
  std::this_thread::sleep_for(1s);
  CHECK(run.runs_after(healed) >= 4);
  run.check_every_fire_once(admin, wall_now() - 3 * period);
  return resumed;
}

/// Every store error's health() was unhealthy, saying "store error streak".
void check_unhealthy_at_errors(const fault_run& run) {
  const auto reasons = run.unhealthy_reasons();
  CHECK(run.healthy_at_error() == 0);
  REQUIRE_FALSE(reasons.empty());
  for (auto& r : reasons) {
    INFO(r);
    CHECK(r.find("store error streak") != std::string::npos);
  }
}

std::string first_errors(const fault_run& run, std::size_t n = 4) {
  const auto e = run.errors();
  std::string out;
  for (std::size_t i = 0; i < std::min(n, e.size()); ++i) out += "\n  " + e[i];
  return out;
}

}  // namespace

TEST_CASE("postgres faults: backends terminated at random moments lose and duplicate no fire time",
          "[scheduler][postgres][faults]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema(server_url());
  admin_connection admin(server_url());
  fault_run run(punctual::testing::pg::with_application_name(server_url(), schema.name), schema.name);
  std::this_thread::sleep_for(1s);
  REQUIRE(run.sched->health().healthy);

  // For at least 3 s (and until 4 store calls failed, at most 8 s): terminate every backend of
  // the store whose statement is under way (its COMMIT included: an autocommit statement is
  // 'active' until it has committed), as fast as the admin connection can, and every ~200 ms
  // all of its backends, idle ones and the LISTEN connection too.
  const std::string backends = "FROM pg_stat_activity WHERE application_name = '" + schema.name + "'";
  std::mt19937 rng(std::random_device{}());
  const auto t_fault = wall_now();
  auto next_all = t_fault;
  int busy_kills = 0, all_kills = 0;
  while (wall_now() < t_fault + 8s && (wall_now() < t_fault + 3s || run.error_count() < 4)) {
    busy_kills += std::stoi(
        admin.value("SELECT count(pg_terminate_backend(pid)) " + backends + " AND state = 'active'"));
    if (wall_now() >= next_all) {
      all_kills += std::stoi(admin.value("SELECT count(pg_terminate_backend(pid)) " + backends));
      next_all = wall_now() + std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 350)(rng));
    }
  }
  const auto t_heal = wall_now();
  const auto errors = run.errors();
  INFO(busy_kills << " busy and " << all_kills << " backends terminated, " << errors.size()
                  << " store errors:" << first_errors(run));
  REQUIRE(errors.size() >= 1);
  check_unhealthy_at_errors(run);
  const auto resumed = check_recovery(run, admin, t_heal);
  WARN("random terminations (" << busy_kills << " in a statement, " << all_kills << " in all; "
                               << errors.size() << " store errors in " << seconds(t_heal - t_fault)
                               << " s): resumed " << seconds(resumed) << " s after");
}

TEST_CASE("postgres faults: the seed failure, backends killed inside the store's own writes, then healed",
          "[scheduler][postgres][faults]") {
  PUNCTUAL_REQUIRE_SERVER();
  const bool at_commit = GENERATE(false, true);
  const int kills = at_commit ? 4 : 6;
  temp_schema schema(server_url());
  admin_connection admin(server_url());
  fault_run run(server_url(), schema.name);
  std::this_thread::sleep_for(1s);
  REQUIRE(run.sched->health().healthy);

  const std::vector<std::string> tables = {"schedules", "jobs"};
  for (const auto& sql : punctual::testing::pg::kill_writers_sql(schema.name, tables, kills, at_commit))
    admin.query(sql);
  const auto t_fault = wall_now();
  const std::string done = punctual::testing::pg::kills_done_sql(schema.name, kills);
  const bool all_killed = wait_for([&] { return admin.value(done) == std::to_string(kills); }, 10s);
  // The sequence counts a kill before the backend dies: let the last one's error be reported.
  std::this_thread::sleep_for(100ms);
  for (const auto& sql : punctual::testing::pg::kill_writers_off_sql(schema.name, tables)) admin.query(sql);
  const auto t_heal = wall_now();
  const auto errors = run.errors();
  INFO((at_commit ? "at commit: " : "in the statement: ")
       << errors.size() << " store errors:" << first_errors(run, 8));
  REQUIRE(all_killed);
  REQUIRE(errors.size() >= static_cast<std::size_t>(kills));
  for (auto& e : errors) {
    INFO(e);
    CHECK(e.find("SQLSTATE 57P01") != std::string::npos);  // admin_shutdown: the backend was terminated
  }
  check_unhealthy_at_errors(run);
  const auto resumed = check_recovery(run, admin, t_heal);
  WARN("seed failure " << (at_commit ? "at COMMIT" : "inside INSERT/UPDATE") << ": " << kills
                       << " writes killed in " << seconds(t_heal - t_fault) << " s; resumed "
                       << seconds(resumed) << " s after healing");
}

TEST_CASE("postgres faults: the server stopped for 6 s and started again", "[scheduler][postgres][faults]") {
  PUNCTUAL_REQUIRE_SERVER();
  // Issue 13 says 30 s; 6 s shows the same (every call fails with a refused connection, the
  // backoff is capped at 400 ms) and keeps this file's wall time under a minute.
  constexpr duration outage = 6s;
  punctual::testing::pg::scratch_server server(PUNCTUAL_TEST_DATA_DIR "/../../scripts/pg-scratch");
  if (!server.ok()) {
    WARN("skipped: cannot start a throwaway PostgreSQL server: " << server.why());
    return;
  }
  temp_schema schema(server.url());
  admin_connection admin(server.url());
  fault_run run(server.url(), schema.name);
  std::this_thread::sleep_for(1s);
  REQUIRE(run.sched->health().healthy);
  health_sampler health(*run.sched);

  const auto t_stop = wall_now();
  server.stop_immediate();
  std::this_thread::sleep_for(outage);
  const auto t_start = wall_now();
  server.start();
  const auto t_up = wall_now();
  admin_connection admin_again(server.url());

  const auto unhealthy = health.first_after(t_stop, [](auto& h) { return !h.healthy; });
  REQUIRE(unhealthy);
  const auto detected = unhealthy->at - t_stop;
  INFO(unhealthy->h.reason);
  CHECK(detected <= max_wait + store_timeout);
  CHECK(unhealthy->h.reason.find("store error streak") != std::string::npos);
  // From then until the server was back, never healthy, always running.
  for (auto& s : health.samples()) {
    if (s.at < unhealthy->at || s.at >= t_start) continue;
    INFO(punctual::format_iso(s.at) << ": " << s.h.reason);
    CHECK_FALSE(s.h.healthy);
    CHECK(s.h.state == punctual::scheduler_state::running);
  }
  CHECK(run.runs_after(t_stop + 500ms) == run.runs_after(t_start));  // nothing ran while it was down
  const auto resumed = check_recovery(run, admin_again, t_up);
  WARN("server down " << seconds(t_start - t_stop) << " s (pg_ctl start took " << seconds(t_up - t_start)
                      << " s): unhealthy after " << seconds(detected) << " s, resumed " << seconds(resumed)
                      << " s after it accepted connections; " << run.error_count() << " store errors");
}

namespace {

/// The connection parameters of `url` with host and port replaced by 127.0.0.1:`port`.
std::string via_port(const std::string& url, std::uint16_t port, std::string* target_host,
                     std::uint16_t* target_port) {
  char* why = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &why);
  if (!options) {
    std::string m = why ? why : "out of memory";
    PQfreemem(why);
    throw std::runtime_error("cannot parse the server URL: " + m);
  }
  std::string out = "host=127.0.0.1 port=" + std::to_string(port);
  *target_host = "127.0.0.1";
  *target_port = 5432;
  for (auto* o = options; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    const std::string key = o->keyword, value = o->val;
    if (key == "host" || key == "hostaddr") {
      *target_host = value;
      continue;
    }
    if (key == "port") {
      *target_port = static_cast<std::uint16_t>(std::stoi(value));
      continue;
    }
    std::string quoted;
    for (char c : value) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    out += " " + key + "='" + quoted + "'";
  }
  PQconninfoFree(options);
  return out;
}

}  // namespace

TEST_CASE("postgres faults: a black-holed connection is noticed within max_wait + store_timeout",
          "[scheduler][postgres][faults]") {
  PUNCTUAL_REQUIRE_SERVER();
  std::string host;
  std::uint16_t port = 0;
  via_port(server_url(), 0, &host, &port);
  punctual::testing::tcp_proxy proxy(host, port);
  const std::string conninfo = via_port(server_url(), proxy.port(), &host, &port);
  temp_schema schema(server_url());
  admin_connection admin(server_url());
  fault_run run(conninfo, schema.name);
  std::this_thread::sleep_for(1500ms);
  REQUIRE(run.sched->health().healthy);
  health_sampler health(*run.sched);

  // Every connection open now, and each one made while it lasts, is accepted and never answered:
  // what a server that hangs (or a peer whose TCP stack lives on) looks like. Keepalives and
  // tcp_user_timeout cannot see it; the guard's store_timeout does.
  const auto t_hole = wall_now();
  proxy.set_mode(punctual::testing::proxy_mode::black_hole);
  const bool noticed = wait_for([&] { return !run.sched->health().healthy; }, max_wait + store_timeout + 2s);
  std::this_thread::sleep_for(1s);
  const auto t_pass = wall_now();
  proxy.set_mode(punctual::testing::proxy_mode::pass);

  REQUIRE(noticed);
  const auto unhealthy = health.first_after(t_hole, [](auto& h) { return !h.healthy; });
  REQUIRE(unhealthy);
  const auto detected = unhealthy->at - t_hole;
  INFO(unhealthy->h.reason);
  CHECK(detected <= max_wait + store_timeout + 100ms);  // (100 ms: the sampling and scheduling)
  CHECK(unhealthy->h.reason.find("store error streak") != std::string::npos);
  CHECK(unhealthy->h.reason.find("timed out") != std::string::npos);
  CHECK(run.runs_after(t_hole + store_timeout) == run.runs_after(t_pass));  // nothing ran in the hole
  // Back to pass: new connections forward. The ones made before stay black holes; each still
  // in the pool costs its user one store_timeout before it is dropped.
  const auto resumed = check_recovery(run, admin, t_pass, 2 * store_timeout + 2 * backoff_max + 1s);
  WARN("black hole: unhealthy after "
       << seconds(detected) << " s (bound max_wait + store_timeout = " << seconds(max_wait + store_timeout)
       << " s), resumed " << seconds(resumed) << " s after the proxy forwarded again; " << run.error_count()
       << " store errors, " << proxy.bytes_swallowed() << " bytes swallowed");
}

TEST_CASE("postgres store: keepalives and tcp_user_timeout are set unless the connection string sets them",
          "[store][postgres]") {
  // No server needed: libpq reports a connection's parameters as soon as it starts connecting.
  auto effective = [](const std::string& conninfo, const punctual::postgres_store_options& o) {
    std::vector<const char*> keys, values;
    const auto params = punctual::detail::pg_connect_parameters(conninfo, o);
    for (auto& [k, v] : params) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* c = PQconnectStartParams(keys.data(), values.data(), 1);
    REQUIRE(c);
    std::map<std::string, std::string> out;
    PQconninfoOption* info = PQconninfo(c);
    for (auto* i = info; i && i->keyword; ++i)
      if (i->val) out[i->keyword] = i->val;
    PQconninfoFree(info);
    PQfinish(c);
    return out;
  };
  punctual::postgres_store_options o;
  auto d = effective("host=127.0.0.1 port=1 dbname=x connect_timeout=1", o);
  CHECK(d["keepalives"] == "1");
  CHECK(d["keepalives_idle"] == "5");
  CHECK(d["keepalives_interval"] == "2");
  CHECK(d["keepalives_count"] == "3");
  CHECK(d["tcp_user_timeout"] == "10000");
  CHECK(d["dbname"] == "x");
  CHECK(d["port"] == "1");
  auto u =
      effective("postgresql://u@127.0.0.1:1/y?keepalives_idle=7&tcp_user_timeout=0&connect_timeout=1", o);
  CHECK(u["keepalives_idle"] == "7");
  CHECK(u["tcp_user_timeout"] == "0");
  CHECK(u["keepalives_count"] == "3");
  CHECK(u["dbname"] == "y");
  CHECK(u["user"] == "u");
  o.keepalive_idle = 0s;
  o.tcp_user_timeout = 0ms;
  auto none = effective("host=127.0.0.1 port=1 connect_timeout=1", o);
  CHECK(none["keepalives_idle"].empty());
  CHECK(none["tcp_user_timeout"].empty());
}

#else

TEST_CASE("postgres faults", "[scheduler][postgres][faults]") {
  WARN("skipped: built without libpq (PUNCTUAL_TEST_HAVE_POSTGRES is not defined)");
}

#endif
