// What the multi-node PostgreSQL tests share: the server's URL (PUNCTUAL_TEST_POSTGRES_URL), a
// blocking libpq connection of the test's own for SQL behind the nodes' backs, scratch schemas
// and databases that are dropped on the way out, and polling with a deadline.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace punctual::testing {

/// The server the tests use, or "" (the tests then skip).
inline std::string postgres_url() {
  const char* url = std::getenv("PUNCTUAL_TEST_POSTGRES_URL");
  return url ? url : "";
}

/// `url` with its database name replaced by `db` (a URI: postgresql://[userinfo@]host[:port][/db][?query]).
inline std::string postgres_url_with_database(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) throw std::invalid_argument("not a postgresql:// URI: " + url);
  const auto query = url.find('?', scheme + 3);
  const auto path = url.find('/', scheme + 3);
  const auto host_end =
      path != std::string::npos && (query == std::string::npos || path < query) ? path : query;
  std::string out = url.substr(0, host_end == std::string::npos ? url.size() : host_end) + "/" + db;
  if (query != std::string::npos) out += url.substr(query);
  return out;
}

/// A blocking connection for SQL behind the stores' backs.
class postgres_admin {
 public:
  using rows = std::vector<std::vector<std::string>>;

  explicit postgres_admin(const std::string& url = postgres_url()) : pg_(PQconnectdb(url.c_str())) {
    if (PQstatus(pg_) != CONNECTION_OK) {
      const std::string m = PQerrorMessage(pg_);
      PQfinish(pg_);
      throw std::runtime_error("admin connection: " + m);
    }
    exec("SET client_min_messages TO warning");
  }
  postgres_admin(const postgres_admin&) = delete;
  postgres_admin& operator=(const postgres_admin&) = delete;
  ~postgres_admin() { PQfinish(pg_); }

  /// Runs `sql`; every row, each column as text ("" for NULL).
  rows query(const std::string& sql) {
    PGresult* r = PQexec(pg_, sql.c_str());
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const std::string m = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("admin: " + sql + ": " + m);
    }
    rows out(static_cast<std::size_t>(PQntuples(r)));
    for (int i = 0; i < PQntuples(r); ++i)
      for (int k = 0; k < PQnfields(r); ++k)
        out[static_cast<std::size_t>(i)].emplace_back(PQgetvalue(r, i, k));
    PQclear(r);
    return out;
  }
  /// Runs `sql`; the first column of the first row ("" when none).
  std::string exec(const std::string& sql) {
    const auto r = query(sql);
    return r.empty() || r[0].empty() ? "" : r[0][0];
  }

 private:
  PGconn* pg_;
};

/// Polls `ready` every 50 ms until it holds or `limit` has passed; whether it held.
template <class Pred>
bool eventually(Pred ready, std::chrono::steady_clock::duration limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

/// A fresh name "t_<random digits>" for a schema or database.
inline std::string scratch_name() {
  std::random_device rd;
  return "t_" + std::to_string(rd()) + std::to_string(rd() % 1000);
}

/// A fresh schema name, dropped (with everything in it) at scope exit.
struct scratch_schema {
  std::string name = scratch_name();
  scratch_schema() = default;
  scratch_schema(const scratch_schema&) = delete;
  scratch_schema& operator=(const scratch_schema&) = delete;
  ~scratch_schema() {
    try {
      postgres_admin a;
      a.exec("DROP SCHEMA IF EXISTS \"" + name + "\" CASCADE");
    } catch (...) {
    }
  }
};

/// A fresh database, created now and dropped (its sessions ended first) at scope exit.
struct scratch_database {
  std::string name = scratch_name();
  std::string url = postgres_url_with_database(postgres_url(), name);
  scratch_database() { postgres_admin().exec("CREATE DATABASE \"" + name + "\""); }
  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;
  ~scratch_database() {
    try {
      postgres_admin a;
      a.exec("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
    } catch (...) {
    }
  }
};

}  // namespace punctual::testing
