// punctual::testing::pg: what PostgreSQL tests and benchmarks share: a blocking admin
// connection of their own (SQL behind the store's back), throwaway schemas, the SQL of issue
// 13's seed failure (a trigger that terminates the backend writing a row), and a throwaway
// server (scripts/pg-scratch) that a test may stop and start.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "punctual/store/postgres_store.hpp"

namespace punctual::testing::pg {

/// The server tests use: $PUNCTUAL_TEST_POSTGRES_URL, or "" (they then skip).
inline std::string server_url() {
  const char* url = std::getenv("PUNCTUAL_TEST_POSTGRES_URL");
  return url ? url : "";
}

/// A fresh name "t_<random digits>" for a schema or database.
inline std::string scratch_name() {
  std::random_device rd;
  return "t_" + std::to_string(rd()) + "_" + std::to_string(rd() % 1000);
}

/// `url` (a URI: postgresql://[userinfo@]host[:port][/db][?query]) with its database `db`.
inline std::string with_database(const std::string& url, const std::string& db) {
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

/// A blocking libpq connection for the test's own SQL (never a store's).
class admin_connection {
 public:
  /// To the tests' server (server_url()).
  admin_connection() : admin_connection(server_url()) {}
  explicit admin_connection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("admin connection to " + redact_conninfo(url) + ": " + why);
    }
    // No NOTICEs from DROP ... CASCADE, no WARNING when pg_terminate_backend finds a backend gone.
    query("SET client_min_messages TO error");
  }
  admin_connection(const admin_connection&) = delete;
  admin_connection& operator=(const admin_connection&) = delete;
  ~admin_connection() { PQfinish(conn_); }

  /// Runs `sql` with text parameters ($1, $2, ...); every row, each column as text ("" for
  /// NULL). Throws std::runtime_error saying which statement failed and why.
  std::vector<std::vector<std::string>> rows(const std::string& sql,
                                             const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                               nullptr, nullptr, 0);
    const auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string why = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("admin: " + sql.substr(0, 80) + ": " + why);
    }
    std::vector<std::vector<std::string>> out(static_cast<std::size_t>(PQntuples(r)));
    for (int i = 0; i < PQntuples(r); ++i)
      for (int k = 0; k < PQnfields(r); ++k)
        out[static_cast<std::size_t>(i)].emplace_back(PQgetvalue(r, i, k));
    PQclear(r);
    return out;
  }
  /// The first column of every row.
  std::vector<std::string> query(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<std::string> column;
    for (auto& row : rows(sql, params)) column.push_back(row.empty() ? "" : row.front());
    return column;
  }
  /// The first column of the first row ("" when none).
  std::string value(const std::string& sql) {
    auto rows = query(sql);
    return rows.empty() ? "" : rows.front();
  }

 private:
  PGconn* conn_;
};

/// A fresh schema name ("t_<random>"), dropped with everything in it when this is destroyed.
class temp_schema {
 public:
  explicit temp_schema(std::string url = server_url()) : url_(std::move(url)) {}
  temp_schema(const temp_schema&) = delete;
  temp_schema& operator=(const temp_schema&) = delete;
  ~temp_schema() {
    try {
      admin_connection a(url_);
      a.query("DROP SCHEMA IF EXISTS \"" + name + "\" CASCADE");
    } catch (...) {  // the server may be gone (a throwaway one, stopped)
    }
  }
  std::string name = scratch_name();

 private:
  std::string url_;
};

/// A fresh database on the tests' server, created now and dropped (its sessions ended first)
/// when this is destroyed; `url` points at it.
struct scratch_database {
  std::string name = scratch_name();
  std::string url = with_database(server_url(), name);
  scratch_database() { admin_connection().query("CREATE DATABASE \"" + name + "\""); }
  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;
  ~scratch_database() {
    try {
      admin_connection().query("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
    } catch (...) {
    }
  }
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

/// `url` with application_name = `name` (so a test can find the backends of one store).
inline std::string with_application_name(const std::string& url, const std::string& name) {
  if (url.find("://") == std::string::npos) return url + " application_name=" + name;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + name;
}

/// Issue 13's seed failure as SQL: each of the next `kills` rows inserted or updated in
/// `tables` of `schema` makes its backend terminate itself (pg_terminate_backend(
/// pg_backend_pid())), so the server drops the connection inside the writer's own statement.
/// They are counted by the sequence <schema>.kills, whose nextval survives the backend's
/// death. With `at_commit` the trigger is a deferred constraint trigger: the backend dies
/// while committing. Run the statements in order; heal with kill_writers_off_sql.
inline std::vector<std::string> kill_writers_sql(const std::string& schema,
                                                 const std::vector<std::string>& tables, int kills,
                                                 bool at_commit = false) {
  std::vector<std::string> sql = {
      "CREATE SEQUENCE " + schema + ".kills",
      "CREATE FUNCTION " + schema +
          ".kill_writer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('" + schema +
          ".kills') <= " + std::to_string(kills) +
          " THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$"};
  for (const auto& t : tables)
    sql.push_back(std::string(at_commit ? "CREATE CONSTRAINT TRIGGER kill_writer AFTER"
                                        : "CREATE TRIGGER kill_writer BEFORE") +
                  " INSERT OR UPDATE ON " + schema + "." + t +
                  (at_commit ? " DEFERRABLE INITIALLY DEFERRED" : "") + " FOR EACH ROW EXECUTE FUNCTION " +
                  schema + ".kill_writer()");
  return sql;
}

/// Removes what kill_writers_sql created.
inline std::vector<std::string> kill_writers_off_sql(const std::string& schema,
                                                     const std::vector<std::string>& tables) {
  std::vector<std::string> sql;
  for (const auto& t : tables) sql.push_back("DROP TRIGGER IF EXISTS kill_writer ON " + schema + "." + t);
  sql.push_back("DROP FUNCTION IF EXISTS " + schema + ".kill_writer()");
  sql.push_back("DROP SEQUENCE IF EXISTS " + schema + ".kills");
  return sql;
}

/// A query for the rows killed so far (at most `kills`).
inline std::string kills_done_sql(const std::string& schema, int kills) {
  return "SELECT least(" + std::to_string(kills) + ", CASE WHEN is_called THEN last_value ELSE 0 END) FROM " +
         schema + ".kills";
}

/// A throwaway PostgreSQL server of the test's own (scripts/pg-scratch: initdb in a scratch
/// directory, trust authentication, on 127.0.0.1), which it may stop and start again; removed
/// when this is destroyed. ok() is false (and why() says why) when the machine cannot run one:
/// no server binaries, root without a postgres user, initdb failing.
class scratch_server {
 public:
  /// Starts a server with database `db`; check ok() (and why() when not).
  explicit scratch_server(const std::string& script, const std::string& db = "punctual_faults") {
    std::string out;
    const int status = run_capture(script + " start " + db + " 2>&1", out);
    if (status != 0) {
      why_ = "scripts/pg-scratch start failed: " + out;
      return;
    }
    url_ = export_value(out, "PUNCTUAL_TEST_POSTGRES_URL");
    dir_ = export_value(out, "PUNCTUAL_PG_SCRATCH");
    if (url_.empty() || dir_.empty()) {
      why_ = "scripts/pg-scratch start printed no server: " + out;
      return;
    }
    script_ = script;
    const auto colon = url_.rfind(':');
    port_ = url_.substr(colon + 1, url_.find('/', colon) - colon - 1);
    run_capture("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1", bin_);
    while (!bin_.empty() && (bin_.back() == '\n' || bin_.back() == ' ')) bin_.pop_back();
    as_ = ::getuid() == 0 ? "runuser -u postgres -- " : "";
  }
  scratch_server(const scratch_server&) = delete;
  scratch_server& operator=(const scratch_server&) = delete;
  ~scratch_server() {
    if (!dir_.empty()) std::system((script_ + " stop " + dir_ + " >/dev/null 2>&1").c_str());
  }

  bool ok() const { return !dir_.empty() && !bin_.empty(); }
  const std::string& why() const { return why_; }
  const std::string& url() const { return url_; }

  /// Stops the server at once (`pg_ctl stop -m immediate`: no shutdown checkpoint, every
  /// backend killed, as in a crash). Throws when pg_ctl fails.
  void stop_immediate() { pg_ctl("-m immediate stop"); }
  /// Starts the stopped server again on the same port and waits until it accepts connections.
  void start() {
    pg_ctl("-l " + dir_ + "/server.log -w -t 30 -o \"-c listen_addresses=127.0.0.1 -p " + port_ + " -k " +
           dir_ + " -c fsync=off\" start");
  }

 private:
  void pg_ctl(const std::string& args) {
    std::string out;
    if (run_capture(as_ + bin_ + "/pg_ctl -D " + dir_ + "/data " + args + " 2>&1", out) != 0)
      throw std::runtime_error("pg_ctl " + args + " failed: " + out);
  }
  static int run_capture(const std::string& command, std::string& out) {
    out.clear();
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return -1;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, p)) out += buffer;
    return ::pclose(p);
  }
  static std::string export_value(const std::string& text, const std::string& name) {
    const std::string key = "export " + name + "=";
    const auto at = text.find(key);
    if (at == std::string::npos) return "";
    const auto begin = at + key.size();
    return text.substr(begin, text.find('\n', begin) - begin);
  }

  std::string script_, url_, dir_, port_, bin_, as_, why_;
};

}  // namespace punctual::testing::pg
