// Damaging a real SQLite store file the way a bad disk does: garbage over one page of the jobs
// table's b-tree (found through sqlite_schema.rootpage and the page size). For the tests of the
// integrity check at open and of recovery.
#pragma once

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

namespace punctual::testing {

/// The whole content of a file ("" when it cannot be read).
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Adds `runs` finished runs of `schedule_id` to the store file at `path` (a store of any
/// version, not open elsewhere) with plain SQL, then overwrites a page in the middle of the
/// jobs table's b-tree with garbage. Returns the damaged page's number.
inline std::int64_t damage_jobs_table(const std::string& path, const std::string& schedule_id, int runs) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  auto number = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const auto n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
  };
  const auto sql = "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < " +
                   std::to_string(runs) +
                   ")"
                   " INSERT INTO jobs(schedule_id, task, fire_time_us, run_at_us, state, finished_us, output)"
                   " SELECT '" +
                   schedule_id +
                   "', 'task', n * 1000000, n * 1000000, 'succeeded', n * 1000000 + 1, 'ok'"
                   " FROM k";
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  const auto page_size = number("PRAGMA page_size");
  const auto root = number("SELECT rootpage FROM sqlite_schema WHERE name = 'jobs'");
  REQUIRE(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  std::string bytes = file_bytes(path);
  auto big_endian = [&](std::size_t at, int n) {
    std::uint32_t v = 0;
    for (int k = 0; k < n; ++k)
      v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(k)]);
    return v;
  };
  // The root is an interior table page (type 5) once the table spans several pages: its middle
  // cell starts with the number of a child page.
  const auto base = static_cast<std::size_t>((root - 1) * page_size);
  REQUIRE(bytes.size() >= base + static_cast<std::size_t>(page_size));
  REQUIRE(static_cast<unsigned char>(bytes[base]) == 0x05);
  const auto cells = big_endian(base + 3, 2);
  REQUIRE(cells >= 2);
  const auto child =
      static_cast<std::int64_t>(big_endian(base + big_endian(base + 12 + 2 * (cells / 2), 2), 4));
  REQUIRE(child > 1);
  std::mt19937 rng(14);
  const auto at = static_cast<std::size_t>((child - 1) * page_size);
  for (std::int64_t k = 0; k < page_size; ++k)
    bytes[at + static_cast<std::size_t>(k)] = static_cast<char>(rng() & 0xff);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return child;
}

}  // namespace punctual::testing
