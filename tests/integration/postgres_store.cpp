// The PostgreSQL store against a real server (PUNCTUAL_TEST_POSTGRES_URL): the store
// conformance suite, reconnection after the server drops the connections, migrations by
// several stores at once, refusal of a newer schema, the database clock, fencing of job writes,
// LISTEN/NOTIFY between two store objects, cancellation, and passwords kept out of every text.
// Each test works in a schema of its own and drops it at the end; without the variable every
// test skips with a warning saying why.
#include <catch2/catch.hpp>

#if defined(PUNCTUAL_TEST_HAVE_POSTGRES)

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "../unit/store_conformance.hpp"
#include "punctual/store/postgres_store.hpp"

using namespace std::chrono_literals;
using punctual::postgres_error;
using punctual::postgres_store;
using punctual::postgres_store_options;
using punctual::testing::conformance_detail::at;
using punctual::testing::conformance_detail::blocking_store;
using punctual::testing::conformance_detail::change_counter;
using punctual::testing::conformance_detail::make_job;
using punctual::testing::conformance_detail::make_schedule;
using punctual::testing::conformance_detail::run;

namespace {

/// The server the tests use, or "" (the tests then skip).
std::string server_url() {
  const char* url = std::getenv("PUNCTUAL_TEST_POSTGRES_URL");
  return url ? url : "";
}

#define PUNCTUAL_REQUIRE_SERVER()                                                  \
  if (server_url().empty()) {                                                      \
    WARN("skipped: PUNCTUAL_TEST_POSTGRES_URL is not set (no PostgreSQL server)"); \
    return;                                                                        \
  }

/// The io_context the stores run on, on a thread of its own for the whole test run.
asio::any_io_executor store_executor() {
  struct background {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
    ~background() {
      work.reset();
      io.stop();
      thread.join();
    }
  };
  static background b;
  return b.io.get_executor();
}

/// A blocking connection of the test's own, for SQL behind the stores' backs.
struct admin_connection {
  PGconn* pg = nullptr;
  admin_connection() {
    pg = PQconnectdb(server_url().c_str());
    if (PQstatus(pg) != CONNECTION_OK) throw std::runtime_error(std::string("admin: ") + PQerrorMessage(pg));
    exec("SET client_min_messages TO warning");
  }
  ~admin_connection() { PQfinish(pg); }
  /// Runs `sql`; returns the first column of the first row ("" when none).
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(pg, sql.c_str());
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string m = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("admin: " + sql + ": " + m);
    }
    std::string v = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return v;
  }
};

/// A fresh schema name, dropped (with everything in it) at scope exit.
struct temp_schema {
  std::string name;
  temp_schema() {
    std::random_device rd;
    name = "t_" + std::to_string(rd()) + std::to_string(rd() % 1000);
  }
  ~temp_schema() {
    try {
      admin_connection a;
      a.exec("DROP SCHEMA IF EXISTS \"" + name + "\" CASCADE");
    } catch (...) {
    }
  }
};

/// The server's URL with application_name = `name`, so a test can find the store's backends.
std::string url_named(const std::string& name) {
  const auto url = server_url();
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + name;
}

postgres_store_options test_options(const std::string& schema, bool database_clock = false) {
  postgres_store_options o;
  o.schema = schema;
  o.use_database_clock = database_clock;
  o.poll_interval = 100ms;
  return o;
}

std::shared_ptr<postgres_store> make_store(const std::string& schema, bool database_clock = false) {
  return postgres_store::open(store_executor(), url_named(schema), test_options(schema, database_clock));
}

/// A store in a fresh schema, which goes when the store does.
std::shared_ptr<punctual::store> make_fresh_store() {
  auto schema = std::make_shared<temp_schema>();
  auto s = make_store(schema->name);
  return std::shared_ptr<punctual::store>(s.get(), [s, schema](punctual::store*) mutable {
    s.reset();  // closes the connections, then the schema is dropped
  });
}

/// Waits (bounded, 10 s) until `sql` returns a value other than "0": state of the server that
/// the test cannot be told about otherwise (a backend waiting for a lock, a LISTEN in place).
bool wait_for_server(admin_connection& a, const std::string& sql) {
  for (int k = 0; k < 1000; ++k) {
    if (a.exec(sql) != "0") return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

/// Warnings a store reports, collected thread-safely.
struct warnings {
  std::mutex mutex;
  std::vector<std::string> seen;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view w) {
      std::lock_guard lock(mutex);
      seen.emplace_back(w);
    };
  }
  bool any_contains(const std::string& text) {
    std::lock_guard lock(mutex);
    for (auto& w : seen)
      if (w.find(text) != std::string::npos) return true;
    return false;
  }
  std::vector<std::string> all() {
    std::lock_guard lock(mutex);
    return seen;
  }
};

std::size_t count_jobs(admin_connection& a, const std::string& schema) {
  return std::stoul(a.exec("SELECT count(*) FROM \"" + schema + "\".jobs"));
}

}  // namespace

TEST_CASE("postgres store passes the store conformance suite", "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  punctual::testing::store_conformance(make_fresh_store);
}

TEST_CASE("postgres store: connections the server terminates are re-opened, nothing is duplicated",
          "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  warnings w;
  auto o = test_options(schema.name);
  o.on_warning = w.sink();
  auto s = postgres_store::open(store_executor(), url_named(schema.name), o);
  blocking_store st{s};
  admin_connection a;
  REQUIRE(st.add(make_schedule("a", at(10s))));
  REQUIRE(st.add_job(make_job("a", at(10s))) > 0);
  const std::string store_backends = "SELECT pid FROM pg_stat_activity WHERE application_name = '" +
                                     schema.name + "' AND pid <> pg_backend_pid()";

  SECTION("idle connections") {
    REQUIRE(a.exec("SELECT count(pg_terminate_backend(pid)) FROM (" + store_backends + ") b") != "0");
    // The next call may notice the loss (postgres_error) or find it out before it uses the
    // connection; the one after works either way, and a retried insert adds nothing.
    try {
      st.add_job(make_job("a", at(20s)));
    } catch (const postgres_error& e) {
      INFO(e.what());
      CHECK(!e.sqlstate().empty());
    }
    st.add_job(make_job("a", at(20s)));  // the retry: inserts it unless the first call did
    CHECK(st.jobs_of("a").size() == 2);
    CHECK(count_jobs(a, schema.name) == 2);
  }

  SECTION("a connection in use: the operation fails, is not applied, and the next one works") {
    a.exec("BEGIN");
    a.exec("LOCK TABLE \"" + schema.name + "\".jobs IN ACCESS EXCLUSIVE MODE");
    std::exception_ptr failure;
    std::thread caller([&] {
      try {
        st.add_job(make_job("a", at(30s)));
      } catch (...) {
        failure = std::current_exception();
      }
    });
    const bool waiting =
        wait_for_server(a, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + schema.name +
                               "' AND wait_event_type = 'Lock'");
    a.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '" +
           schema.name + "' AND wait_event_type = 'Lock'");
    caller.join();
    a.exec("ROLLBACK");
    REQUIRE(waiting);
    REQUIRE(failure);
    try {
      std::rethrow_exception(failure);
    } catch (const postgres_error& e) {
      INFO(e.what());
      CHECK(e.sqlstate() == "57P01");  // admin_shutdown: terminated by pg_terminate_backend
      CHECK(std::string(e.what()).find("add_job") != std::string::npos);
    }
    CHECK(count_jobs(a, schema.name) == 1);  // not applied
    CHECK(st.add_job(make_job("a", at(30s))) > 0);
    CHECK(count_jobs(a, schema.name) == 2);
    CHECK(w.any_contains("reconnected"));
  }
}

TEST_CASE("postgres store: a cancelled operation stops waiting at once and is not applied",
          "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  auto s = make_store(schema.name);
  blocking_store st{s};
  admin_connection a;
  REQUIRE(st.add(make_schedule("a", at(10s))));
  a.exec("BEGIN");
  a.exec("LOCK TABLE \"" + schema.name + "\".jobs IN ACCESS EXCLUSIVE MODE");

  asio::io_context io;
  asio::cancellation_signal cancel;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, s->add_job(make_job("a", at(10s))),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, std::int64_t) {
                   error = e;
                   done = true;
                 }));
  io.poll();  // starts the operation
  const bool waiting = wait_for_server(a, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                                              schema.name + "' AND wait_event_type = 'Lock'");
  io.poll();
  REQUIRE(waiting);
  REQUIRE_FALSE(done);
  const auto cancelled_at = std::chrono::steady_clock::now();
  cancel.emit(asio::cancellation_type::all);
  while (!done && std::chrono::steady_clock::now() - cancelled_at < 5s) io.run_one_for(10ms);
  const auto took = std::chrono::steady_clock::now() - cancelled_at;
  a.exec("ROLLBACK");
  REQUIRE(done);
  CHECK(took < 500ms);
  REQUIRE(error);
  try {
    std::rethrow_exception(error);
  } catch (const asio::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  CHECK(st.jobs_of("a").empty());  // rolled back on the server with the dropped connection
  CHECK(st.add_job(make_job("a", at(10s))) > 0);
}

TEST_CASE("postgres store: several stores migrating one schema at once all succeed", "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  std::vector<std::shared_ptr<postgres_store>> stores;
  for (int k = 0; k < 4; ++k) stores.push_back(make_store(schema.name));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (auto& s : stores)
    threads.emplace_back([&failures, s] {
      try {
        run(s->connect());
      } catch (...) {
        ++failures;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  admin_connection a;
  CHECK(a.exec("SELECT string_agg(version::text, ',') FROM \"" + schema.name + "\".schema_version") ==
        std::to_string(postgres_store::schema_version));
  blocking_store st{stores[0]};
  CHECK(st.add(make_schedule("a", at(10s))));
  CHECK(blocking_store{stores[3]}.get("a").has_value());
}

TEST_CASE("postgres store: a schema of a newer version is refused and left unchanged", "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  admin_connection a;
  const std::string q = "\"" + schema.name + "\"";
  a.exec("CREATE SCHEMA " + q + "; CREATE TABLE " + q + ".schema_version(version integer NOT NULL);" +
         " INSERT INTO " + q + ".schema_version VALUES(99)");
  auto s = make_store(schema.name);
  try {
    run(s->connect());
    FAIL("connect() accepted a schema of version 99");
  } catch (const postgres_error& e) {
    CHECK(std::string(e.what()).find("newer") != std::string::npos);
    CHECK(std::string(e.what()).find("99") != std::string::npos);
  }
  CHECK_THROWS_AS(blocking_store{s}.list(), postgres_error);
  CHECK(a.exec("SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema.name + "'") == "1");
  CHECK(a.exec("SELECT version FROM " + q + ".schema_version") == "99");
}

TEST_CASE("postgres store: with the database clock a skewed node cannot take a live lease",
          "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  auto a_store = make_store(schema.name, true);
  auto b_store = make_store(schema.name, true);
  blocking_store a{a_store}, b{b_store};
  const auto real_now = std::chrono::time_point_cast<punctual::duration>(std::chrono::system_clock::now());
  const auto ahead = real_now + 1h;  // node b's clock is an hour fast
  REQUIRE(a.add(make_schedule("s", real_now - 10s)));

  SECTION("schedule leases") {
    REQUIRE(a.acquire("node-a", real_now, real_now + 30s).size() == 1);
    CHECK(b.acquire("node-b", ahead, ahead + 30s).empty());  // by b's clock expired, by the server's live
    CHECK(a.get("s")->lease_owner == "node-a");
    // A lease that has expired by the server's clock goes, even to a node whose clock is slow.
    a.release_leases("node-a");
    REQUIRE(a.acquire("node-a", real_now, real_now - 1s).size() == 1);
    const auto behind = real_now - 1h;
    CHECK(b.acquire("node-b", behind + 1h, behind + 1h + 30s).size() == 1);
    CHECK(a.get("s")->lease_owner == "node-b");
  }

  SECTION("job leases and extend_leases") {
    REQUIRE(a.add_job(make_job("s", real_now - 5s)) > 0);
    REQUIRE(a.acquire_jobs("node-a", real_now, real_now + 30s).size() == 1);
    CHECK(b.recover(std::nullopt, ahead).empty());  // the job's lease is live by the server's clock
    a.extend("node-a", real_now + 60s);
    CHECK(b.recover(std::nullopt, ahead + 50s).empty());
    // The callers' scale would have called it expired: a store that compares callers' times does.
    auto callers_clock = make_store(schema.name, false);
    CHECK(blocking_store{callers_clock}.recover(std::nullopt, ahead).size() == 1);
  }
}

TEST_CASE("postgres store: a node whose job was recovered and taken again cannot write its outcome",
          "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  blocking_store st{make_store(schema.name)};
  auto sched = make_schedule("s", at(10s));
  sched.spec.options.on_abandoned = punctual::abandoned_policy::rerun;
  REQUIRE(st.add(sched));
  const auto id = st.add_job(make_job("s", at(10s)));
  auto first = st.acquire_jobs("n1", at(10s), at(40s));
  REQUIRE(first.size() == 1);
  CHECK(first[0].lease_token != 0);
  // n1 hangs; its lease expires; the job is recovered and n1 (restarted, same name) takes it again.
  auto recovered = st.recover(std::nullopt, at(100s));
  REQUIRE(recovered.size() == 1);
  CHECK(recovered[0].lease_token != first[0].lease_token);
  auto second = st.acquire_jobs("n1", at(100s), at(130s));
  REQUIRE(second.size() == 1);
  CHECK(second[0].attempt == 2);
  CHECK(second[0].lease_token != first[0].lease_token);
  CHECK(second[0].lease_token != recovered[0].lease_token);

  auto late = first[0];  // the first attempt's outcome, written late
  late.state = punctual::job_state::failed;
  late.finished = at(101s);
  late.error = "late";
  st.update("n1", {late});
  auto now = st.job(id);
  CHECK(now.state == punctual::job_state::running);
  CHECK(now.attempt == 2);
  CHECK(now.error.find("late") == std::string::npos);

  auto current = second[0];
  current.state = punctual::job_state::succeeded;
  current.finished = at(120s);
  st.update("n1", {current});
  CHECK(st.job(id).state == punctual::job_state::succeeded);
}

TEST_CASE("postgres store: NOTIFY wakes a subscriber of another store object within 100 ms",
          "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  temp_schema schema;
  warnings w;
  auto writer = make_store(schema.name);
  auto o = test_options(schema.name);
  o.on_warning = w.sink();
  auto reader = postgres_store::open(store_executor(), url_named(schema.name + "_reader"), o);
  blocking_store ws{writer};
  REQUIRE(ws.add(make_schedule("a", at(10s))));
  change_counter changes;
  const auto h = reader->subscribe_changes([&] { changes.bump(); });
  admin_connection a;
  const std::string listening = "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                                schema.name + "_reader' AND query LIKE 'LISTEN%'";
  REQUIRE(wait_for_server(a, listening));

  const auto before = changes.count();
  const auto sent = std::chrono::steady_clock::now();
  REQUIRE(ws.add_job(make_job("a", at(10s))) > 0);
  REQUIRE(changes.wait_above(before));
  const auto latency = std::chrono::steady_clock::now() - sent;
  INFO("latency " << std::chrono::duration_cast<std::chrono::microseconds>(latency).count() << " us");
  CHECK(latency < 100ms);

  SECTION("while the LISTEN connection is down, polling wakes the subscriber and LISTEN comes back") {
    a.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" + schema.name +
           "_reader' AND query LIKE 'LISTEN%'");
    const auto after_loss = changes.count();
    CHECK(changes.wait_above(after_loss));  // a poll (every 100 ms here) or the re-LISTEN
    REQUIRE(wait_for_server(a, listening));
    const auto again = changes.count();
    REQUIRE(ws.add_job(make_job("a", at(20s))) > 0);
    CHECK(changes.wait_above(again));
    CHECK(w.any_contains("LISTEN connection is down"));
  }
  reader->unsubscribe_changes(h);
}

TEST_CASE("postgres store: no password in display_name, errors or warnings", "[store][postgres]") {
  using punctual::redact_conninfo;
  CHECK(redact_conninfo("postgresql://app:s3cret@db:5432/prod?sslmode=require") ==
        "postgresql://app:***@db:5432/prod?sslmode=require");
  CHECK(redact_conninfo("postgres://db/prod?user=app&password=s3cret&x=1") ==
        "postgres://db/prod?user=app&password=***&x=1");
  CHECK(redact_conninfo("host=db password='s 3 \\' cret' user=app") == "host=db password=*** user=app");
  CHECK(redact_conninfo("host=db password = s3cret") == "host=db password = ***");
  CHECK(redact_conninfo("host=db password") == "host=db ***");
  CHECK(redact_conninfo("postgresql://app@db/prod") == "postgresql://app@db/prod");

  // Nothing listens on port 1: every connection attempt fails.
  const std::vector<std::string> unreachable = {
      "postgresql://app:s3cretpw@127.0.0.1:1/prod?connect_timeout=2",
      "host=127.0.0.1 port=1 user=app password=s3cretpw dbname=prod",
      "host=127.0.0.1 port=1 password=s3cretpw dbname",  // malformed
      "postgresql://app@127.0.0.1:1/prod?password=s3cretpw&nonsense=1",
  };
  for (auto& conninfo : unreachable) {
    INFO(conninfo);
    warnings w;
    postgres_store_options o;
    o.on_warning = w.sink();
    o.connect_timeout = 2s;
    auto s = postgres_store::open(store_executor(), conninfo, o);
    CHECK(s->display_name().find("s3cretpw") == std::string::npos);
    try {
      run(s->connect());
      FAIL("connected to port 1");
    } catch (const postgres_error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find("s3cretpw") == std::string::npos);
      CHECK(e.sqlstate().substr(0, 2) == "08");
    }
    for (auto& text : w.all()) CHECK(text.find("s3cretpw") == std::string::npos);
  }
}

#else

TEST_CASE("postgres store tests", "[store][postgres]") {
  WARN("skipped: built without libpq (PUNCTUAL_TEST_HAVE_POSTGRES is not defined)");
}

#endif
