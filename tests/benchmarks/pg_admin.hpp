// Shared by the PostgreSQL benchmarks (postgres_bench, pg_outage_bench): a blocking libpq
// connection for their setup, fault injection and clean-up, never the store's.
#pragma once

#include <libpq-fe.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "punctual/store/postgres_store.hpp"

namespace punctual_bench {

/// A blocking libpq connection (never the store's); NOTICEs are off.
class admin_connection {
 public:
  explicit admin_connection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("cannot connect to " + punctual::redact_conninfo(url) + ": " + why);
    }
    query("SET client_min_messages = warning");  // no NOTICEs from DROP SCHEMA ... CASCADE
  }
  admin_connection(const admin_connection&) = delete;
  admin_connection& operator=(const admin_connection&) = delete;
  ~admin_connection() { PQfinish(conn_); }

  /// Runs `sql` with text parameters; returns the first column of every row ("" for NULL).
  std::vector<std::string> query(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                               nullptr, nullptr, 0);
    const auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string why = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(sql.substr(0, 60) + "...: " + why);
    }
    std::vector<std::string> rows;
    for (int i = 0; i < PQntuples(r); ++i) rows.emplace_back(PQgetvalue(r, i, 0));
    PQclear(r);
    return rows;
  }

 private:
  PGconn* conn_;
};

}  // namespace punctual_bench
