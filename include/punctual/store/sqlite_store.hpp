/// @file store/sqlite_store.hpp
/// The SQLite store: punctual's durable embedded store. One database file holds the schedules,
/// their progress and leases, and the job history; it survives crashes (every commit is durable
/// with the default `synchronous = full`), and several processes (punctual-cron's commands, a
/// second scheduler node) may use the same file at once.
///
/// Opt-in: include this header yourself and link SQLite 3.35 or newer (`-lsqlite3`, CMake target
/// `punctual::sqlite`); `punctual.hpp` never includes it. POSIX only (it watches the file's
/// identity with stat()).
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/system_error.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/detail/write_gate.hpp"
#include "punctual/job.hpp"
#include "punctual/options_text.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/change_subscribers.hpp"
#include "punctual/store/store.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/parse.hpp"
#include "punctual/trigger/trigger.hpp"

#if SQLITE_VERSION_NUMBER < 3035000
#error "punctual's sqlite_store needs SQLite 3.35 or newer (UPDATE ... RETURNING)"
#endif

PUNCTUAL_BEGIN_NAMESPACE

/// SQLite's `PRAGMA synchronous` levels. `full` (the default) makes every commit durable: a
/// release_schedules() that returned survives power loss. `normal` in WAL mode may lose the
/// last commits on power loss (never on a process crash) and is faster on slow disks.
enum class sqlite_synchronous { off, normal, full, extra };

/// Who writes first when connections to one database file want its write lock at once (see
/// sqlite_store_options::write_priority).
enum class sqlite_write_priority {
  /// A scheduler's own store: when it has to wait for the write lock it announces itself, and
  /// low-priority writers stand back until it has written.
  normal,
  /// A short-lived tool's store (punctual-cron's trigger, pause, resume): it starts no write,
  /// and retries none, while a normal-priority writer waits for the lock.
  low,
};

/// Configuration of a sqlite_store.
struct sqlite_store_options {
  /// How long an operation waits for another connection's write lock before it fails with
  /// "database is locked" (SQLITE_BUSY). The scheduler retries failed operations.
  std::chrono::milliseconds busy_timeout{5000};
  /// Durability of commits; see sqlite_synchronous.
  sqlite_synchronous synchronous = sqlite_synchronous::full;
  /// The connection's page cache, in KiB (`PRAGMA cache_size = -N`): SQLite's default of 2 MiB
  /// makes stores with 100k+ schedules read pages from the OS again and again.
  std::int64_t cache_kib = 16384;
  /// How often the store looks for commits by other connections (`PRAGMA data_version`) to wake
  /// its change subscribers. Zero disables the polling.
  std::chrono::milliseconds poll_interval{200};
  /// History kept by the store's own periodic purge (see purge_interval): by default the newest
  /// 1000 final jobs of each schedule.
  retention history{1000, std::nullopt};
  /// How often the store applies `history` by itself (on its worker, when idle). Zero disables
  /// it; purge_jobs() can always be called explicitly.
  std::chrono::milliseconds purge_interval{std::chrono::minutes{10}};
  /// Create the database file when it does not exist (only at construction: a file that
  /// disappears later is reported as an error, never silently recreated empty).
  bool create = true;
  /// Called (on the store's worker thread) with a message when the store recovers from a
  /// problem by itself: a reopened connection, a quarantined schedule, a failed background
  /// poll or purge. Must not block or call back into the store.
  std::function<void(std::string)> on_warning;
  /// How long the integrity check at open (`PRAGMA quick_check`) may take. A damaged file is
  /// refused (sqlite_error with SQLITE_CORRUPT, saying what SQLite found and how to recover);
  /// a file too big to check within the budget is opened with a warning that it was not fully
  /// checked. Zero disables the check. quick_check reads every page, so this bounds how much
  /// longer than the schema read an open of a big file takes. The check runs at construction
  /// and at each reopen after SQLite reported corruption.
  std::chrono::microseconds integrity_check_budget{std::chrono::seconds{1}};
  /// The bound on the write-ahead log, in KiB: the store checkpoints once the log holds this
  /// much (`wal_autocheckpoint`), truncates it back to this size afterwards
  /// (`journal_size_limit`), and checkpoints by itself when idle if readers held a checkpoint
  /// off. A store needs its database's size plus about this much (plus 32 KiB for the -shm
  /// file) of free disk space. Zero keeps SQLite's defaults (1000 pages, never truncated).
  std::int64_t wal_limit_kib = 512;
  /// Called (on the worker thread) right after each (re)open of the connection, before the
  /// store's own pragmas and schema check: the place for `PRAGMA key`, `cache_size`,
  /// `mmap_size` and the like. An exception from it makes the open fail.
  std::function<void(sqlite3*)> on_open;
  /// How this store's writes rank against those of other stores (other processes) on the same
  /// file. SQLite's write lock has no queue: a writer that finds it taken sleeps and tries
  /// again, so under a crowd of short-lived writers a scheduler's write could wait up to
  /// busy_timeout while its fires fall behind. The stores meet at a small lock file next to
  /// the database, `PATH-priority` (created when missing; without it priorities are off): a
  /// normal-priority store waiting for the lock announces itself there, and low-priority stores
  /// wait while it does, within their own busy_timeout. A waiting scheduler then waits for the
  /// write in progress only. Normal stores rank equally among themselves.
  sqlite_write_priority write_priority = sqlite_write_priority::normal;
};

/// What sqlite_store::recover() saved from a damaged file.
struct sqlite_recovery_report {
  std::size_t schedules = 0;       ///< schedules copied
  std::size_t schedules_lost = 0;  ///< schedules known (from an index) but unreadable
  std::size_t jobs = 0;            ///< runs copied
  std::size_t jobs_lost = 0;       ///< runs known (from an index) but unreadable
  /// One line for people: "saved 2 schedules and 580 runs; lost 0 schedules and 20 runs".
  std::string summary() const {
    return "saved " + std::to_string(schedules) + " schedules and " + std::to_string(jobs) + " runs; lost " +
           std::to_string(schedules_lost) + " schedules and " + std::to_string(jobs_lost) + " runs";
  }
};

/// What every failing SQLite operation throws: `sqlite: <op>: <message> (<code name>)`, e.g.
/// `sqlite: release_schedules: database is locked (SQLITE_BUSY)`. The store stays usable:
/// after I/O errors, a read-only or replaced file, or a corrupt page it reopens its connection
/// on the next operation.
class sqlite_error : public std::runtime_error {
 public:
  sqlite_error(std::string op, int code, const std::string& message)
      : std::runtime_error("sqlite: " + op + ": " + message + " (" + code_name(code) + ")"),
        op_(std::move(op)),
        code_(code) {}

  /// The store operation that failed ("acquire_due_schedules", "open", ...).
  const std::string& op() const noexcept { return op_; }
  /// SQLite's extended result code (SQLITE_BUSY, SQLITE_READONLY_DBMOVED, ...).
  int code() const noexcept { return code_; }

  /// The symbolic name of an extended or primary SQLite result code ("SQLITE_IOERR_FSYNC").
  static std::string code_name(int code) {
    struct entry {
      int code;
      const char* name;
    };
#define PUNCTUAL_SQLITE_CODE(c) \
  { c, #c }
    static constexpr entry names[] = {
        PUNCTUAL_SQLITE_CODE(SQLITE_OK),
        PUNCTUAL_SQLITE_CODE(SQLITE_ERROR),
        PUNCTUAL_SQLITE_CODE(SQLITE_INTERNAL),
        PUNCTUAL_SQLITE_CODE(SQLITE_PERM),
        PUNCTUAL_SQLITE_CODE(SQLITE_ABORT),
        PUNCTUAL_SQLITE_CODE(SQLITE_BUSY),
        PUNCTUAL_SQLITE_CODE(SQLITE_LOCKED),
        PUNCTUAL_SQLITE_CODE(SQLITE_NOMEM),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY),
        PUNCTUAL_SQLITE_CODE(SQLITE_INTERRUPT),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR),
        PUNCTUAL_SQLITE_CODE(SQLITE_CORRUPT),
        PUNCTUAL_SQLITE_CODE(SQLITE_NOTFOUND),
        PUNCTUAL_SQLITE_CODE(SQLITE_FULL),
        PUNCTUAL_SQLITE_CODE(SQLITE_CANTOPEN),
        PUNCTUAL_SQLITE_CODE(SQLITE_PROTOCOL),
        PUNCTUAL_SQLITE_CODE(SQLITE_EMPTY),
        PUNCTUAL_SQLITE_CODE(SQLITE_SCHEMA),
        PUNCTUAL_SQLITE_CODE(SQLITE_TOOBIG),
        PUNCTUAL_SQLITE_CODE(SQLITE_CONSTRAINT),
        PUNCTUAL_SQLITE_CODE(SQLITE_MISMATCH),
        PUNCTUAL_SQLITE_CODE(SQLITE_MISUSE),
        PUNCTUAL_SQLITE_CODE(SQLITE_NOLFS),
        PUNCTUAL_SQLITE_CODE(SQLITE_AUTH),
        PUNCTUAL_SQLITE_CODE(SQLITE_FORMAT),
        PUNCTUAL_SQLITE_CODE(SQLITE_RANGE),
        PUNCTUAL_SQLITE_CODE(SQLITE_NOTADB),
        PUNCTUAL_SQLITE_CODE(SQLITE_BUSY_RECOVERY),
        PUNCTUAL_SQLITE_CODE(SQLITE_BUSY_SNAPSHOT),
        PUNCTUAL_SQLITE_CODE(SQLITE_BUSY_TIMEOUT),
        PUNCTUAL_SQLITE_CODE(SQLITE_LOCKED_SHAREDCACHE),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY_RECOVERY),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY_CANTLOCK),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY_ROLLBACK),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY_DBMOVED),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY_CANTINIT),
        PUNCTUAL_SQLITE_CODE(SQLITE_READONLY_DIRECTORY),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_READ),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_SHORT_READ),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_WRITE),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_FSYNC),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_DIR_FSYNC),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_TRUNCATE),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_FSTAT),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_UNLOCK),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_RDLOCK),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_DELETE),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_NOMEM),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_ACCESS),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_LOCK),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_CLOSE),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_SHMOPEN),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_SHMSIZE),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_SHMLOCK),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_SHMMAP),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_SEEK),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_DELETE_NOENT),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_MMAP),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_DATA),
        PUNCTUAL_SQLITE_CODE(SQLITE_IOERR_CORRUPTFS),
        PUNCTUAL_SQLITE_CODE(SQLITE_CORRUPT_VTAB),
        PUNCTUAL_SQLITE_CODE(SQLITE_CORRUPT_SEQUENCE),
        PUNCTUAL_SQLITE_CODE(SQLITE_CORRUPT_INDEX),
        PUNCTUAL_SQLITE_CODE(SQLITE_CANTOPEN_NOTEMPDIR),
        PUNCTUAL_SQLITE_CODE(SQLITE_CANTOPEN_ISDIR),
        PUNCTUAL_SQLITE_CODE(SQLITE_CANTOPEN_FULLPATH),
        PUNCTUAL_SQLITE_CODE(SQLITE_CANTOPEN_DIRTYWAL),
        PUNCTUAL_SQLITE_CODE(SQLITE_CANTOPEN_SYMLINK),
        PUNCTUAL_SQLITE_CODE(SQLITE_CONSTRAINT_CHECK),
        PUNCTUAL_SQLITE_CODE(SQLITE_CONSTRAINT_NOTNULL),
        PUNCTUAL_SQLITE_CODE(SQLITE_CONSTRAINT_PRIMARYKEY),
        PUNCTUAL_SQLITE_CODE(SQLITE_CONSTRAINT_UNIQUE),
        PUNCTUAL_SQLITE_CODE(SQLITE_ABORT_ROLLBACK),
    };
#undef PUNCTUAL_SQLITE_CODE
    for (const auto& e : names)
      if (e.code == code) return e.name;
    for (const auto& e : names)
      if (e.code == (code & 0xff)) return std::string(e.name) + " extended " + std::to_string(code);
    return "SQLite code " + std::to_string(code);
  }

 private:
  std::string op_;
  int code_;
};

namespace detail {

/// A failed SQLite call inside the worker, before it is tagged with the operation's name.
struct sqlite_failure {
  int code;
  std::string message;
};

/// A prepared statement in use: binds, steps and reads columns; resets it when done.
class sqlite_query {
 public:
  sqlite_query(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  sqlite_query(const sqlite_query&) = delete;
  sqlite_query& operator=(const sqlite_query&) = delete;
  ~sqlite_query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  sqlite_query& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  sqlite_query& bind(int i, std::string_view v) {
    return check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  sqlite_query& bind_null(int i) { return check(sqlite3_bind_null(s_, i)); }
  sqlite_query& bind(int i, time_point t) {
    return bind(i, static_cast<std::int64_t>(t.time_since_epoch().count()));
  }
  template <class T>
  sqlite_query& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }
  sqlite_query& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  sqlite_query& bind(int i, std::uint32_t v) { return bind(i, static_cast<std::int64_t>(v)); }
  sqlite_query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  sqlite_query& bind(int i, const char* v) { return bind(i, std::string_view(v)); }

  /// Steps once: true with a row, false when done.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw sqlite_failure{sqlite3_extended_errcode(db_), sqlite3_errmsg(db_)};
  }
  /// Steps to the end, ignoring rows; returns the number of rows changed.
  int run() {
    while (step()) {
    }
    return sqlite3_changes(db_);
  }

  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  time_point time(int c) const { return time_point{duration{i64(c)}}; }
  std::optional<time_point> opt_time(int c) const {
    return is_null(c) ? std::nullopt : std::optional<time_point>(time(c));
  }
  std::optional<int> opt_int(int c) const {
    return is_null(c) ? std::nullopt : std::optional<int>(static_cast<int>(i64(c)));
  }

 private:
  sqlite_query& check(int rc) {
    if (rc != SQLITE_OK) throw sqlite_failure{sqlite3_extended_errcode(db_), sqlite3_errmsg(db_)};
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* s_;
};

/// The schema, as forward migrations: migrations[v] takes a database from version v to v + 1.
/// Version 1 is the first released schema; version 2 adds schedule quarantine, the process
/// group and start time of running jobs, and the lease index.
inline constexpr const char* sqlite_migrations[] = {
    // 0 -> 1
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE schedules("
    " id TEXT PRIMARY KEY, task TEXT NOT NULL, trigger_text TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '',"
    " options_text TEXT NOT NULL DEFAULT '', paused INTEGER NOT NULL DEFAULT 0, next_fire_us INTEGER,"
    " last_fire_us INTEGER, lease_owner TEXT NOT NULL DEFAULT '', lease_until_us INTEGER NOT NULL DEFAULT 0,"
    " created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);"
    "CREATE INDEX schedules_due ON schedules(next_fire_us) WHERE paused = 0;"
    "CREATE TABLE jobs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, schedule_id TEXT NOT NULL, task TEXT NOT NULL,"
    " payload TEXT NOT NULL DEFAULT '', fire_time_us INTEGER NOT NULL, run_at_us INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL, node TEXT NOT NULL DEFAULT '',"
    " lease_until_us INTEGER NOT NULL DEFAULT 0, started_us INTEGER, finished_us INTEGER, exit_code INTEGER,"
    " signal INTEGER, error TEXT NOT NULL DEFAULT '', output TEXT NOT NULL DEFAULT '',"
    " pid INTEGER NOT NULL DEFAULT 0, UNIQUE(schedule_id, fire_time_us));"
    "CREATE INDEX jobs_state ON jobs(state, run_at_us);"
    "INSERT INTO meta(key, value) VALUES('schema_version', '1');",
    // 1 -> 2
    "ALTER TABLE schedules ADD COLUMN quarantine TEXT;"
    "ALTER TABLE jobs ADD COLUMN pgid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN proc_start INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX schedules_due;"
    "CREATE INDEX schedules_due ON schedules(next_fire_us) WHERE paused = 0 AND quarantine IS NULL;"
    "CREATE INDEX schedules_lease ON schedules(lease_owner) WHERE lease_owner <> '';"
    "UPDATE meta SET value = '2' WHERE key = 'schema_version';",
};

/// The completion signature of a store operation returning T.
template <class T>
struct sqlite_signature {
  using type = void(std::exception_ptr, T);
};
template <>
struct sqlite_signature<void> {
  using type = void(std::exception_ptr);
};

inline std::int64_t sqlite_us(time_point t) { return t.time_since_epoch().count(); }

}  // namespace detail

// Column lists shared by the store's queries (#undef'd at the end of this header).
#define PUNCTUAL_SQLITE_SCHEDULE_COLUMN_LIST                                                               \
  "rowid, id, task, trigger_text, payload, options_text, paused, next_fire_us, last_fire_us, lease_owner," \
  " lease_until_us, quarantine"
#define PUNCTUAL_SQLITE_SCHEDULE_COLUMNS "SELECT " PUNCTUAL_SQLITE_SCHEDULE_COLUMN_LIST
#define PUNCTUAL_SQLITE_JOB_COLUMN_LIST                                                             \
  "id, schedule_id, task, payload, fire_time_us, run_at_us, attempt, state, node, lease_until_us, " \
  "started_us,"                                                                                     \
  " finished_us, exit_code, signal, error, output, pid, pgid, proc_start"
#define PUNCTUAL_SQLITE_JOB_SELECT(p, rest)                                                          \
  "SELECT " p "id, " p "schedule_id, " p "task, " p "payload, " p "fire_time_us, " p "run_at_us, " p \
  "attempt, " p "state, " p "node, " p "lease_until_us, " p "started_us, " p "finished_us, " p       \
  "exit_code, " p "signal, " p "error, " p "output, " p "pid, " p "pgid, " p "proc_start" rest

/// A store in one SQLite database file (see the file comment).
///
/// - Blocking SQLite work never runs on the caller's thread: each store has one worker thread
///   with its own connection, fed by a queue; an operation completes on the awaiting
///   coroutine's executor. Cancelling the awaiting coroutine interrupts the operation (also
///   while it waits for a lock): it then fails with `asio::error::operation_aborted` and its
///   transaction is rolled back. One that committed before the cancellation reached it
///   completes normally (store.hpp, "Cancellation").
/// - Every operation is one transaction (writes take the write lock up front with
///   `BEGIN IMMEDIATE`), so a failed operation changes nothing and may be retried.
/// - Failures throw sqlite_error. The store never needs to be recreated: a busy or full
///   database works again once the lock or space is released; after I/O errors, a read-only
///   or replaced file or corruption, the next operation reopens the connection. A database file
///   deleted while open is reported as an error (never recreated empty) until it is restored.
/// - Schedules whose stored trigger or options text no longer parses are quarantined by
///   acquire_due_schedules (kept, reported once, never fired); get_schedule and list_schedules
///   show them with `quarantine` set and an empty trigger.
/// - Opening checks the file (`PRAGMA quick_check`, within integrity_check_budget) and refuses a
///   damaged one; recover() saves what can be read of it into a new file. Apart from that
///   bounded check, startup cost does not grow with the number of schedules: opening reads the
///   schema version only, and what is due comes from indexed queries.
/// - The write-ahead log is kept within wal_limit_kib. A log deleted while the store has it
///   open is noticed (before each operation and every second), its content saved into the
///   database file through the open connection, and the loss reported as an error.
/// - Commits by other connections (other processes, other stores on the same file) wake the
///   change subscribers within poll_interval.
///
/// Thread safety: every member may be called from any thread.
///
/// @code
/// punctual::scheduler_options o;
/// o.job_store = punctual::sqlite_store::open("/var/lib/myapp/schedules.db");
/// punctual::scheduler sched(io.get_executor(), o);
/// @endcode
class sqlite_store final : public store {
 public:
  /// The schema version this store writes (older databases are migrated forward at open).
  static constexpr int schema_version = static_cast<int>(std::size(detail::sqlite_migrations));

  /// Opens (by default creating) the database at `path`, migrates its schema forward and starts
  /// the worker. Throws sqlite_error (op "open") when the file cannot be opened, is not a
  /// database, or has a newer schema than this version of punctual knows.
  explicit sqlite_store(std::string path, sqlite_store_options options = {})
      : path_(std::move(path)), options_(std::move(options)) {
    is_file_ = !path_.empty() && path_ != ":memory:" && path_.rfind("file:", 0) != 0;
    std::promise<void> opened;
    auto ready = opened.get_future();
    worker_ = std::thread([this, p = std::move(opened)]() mutable { worker_main(std::move(p)); });
    try {
      ready.get();
    } catch (...) {
      {
        std::lock_guard lock(mutex_);
        stopping_ = true;
      }
      cv_.notify_all();
      worker_.join();
      throw;
    }
  }

  /// Same as the constructor, returning a shared_ptr (what the scheduler takes).
  static std::shared_ptr<sqlite_store> open(std::string path, sqlite_store_options options = {}) {
    return std::make_shared<sqlite_store>(std::move(path), std::move(options));
  }

  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

  /// Finishes the queued operations, then closes the connection. Operations waiting for a lock
  /// give up at once.
  ~sqlite_store() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  /// Saves what SQLite can still read of the store at `source` (e.g. one refused at open as
  /// damaged) into a new store file at `destination`, and says what it saved and lost. The
  /// source is opened read-only and never modified; an existing destination is never
  /// overwritten. Rows are read table by table: the table from both ends (a damaged page stops
  /// a scan, what lies beyond it is reached from the other end) and through every index of it
  /// (which name the rows on damaged table pages: those are then fetched one by one, and
  /// counted as lost when their page cannot be read). Throws sqlite_error (op "recover") when
  /// the destination exists, the source cannot be opened or its schema cannot be read.
  ///
  /// @code
  /// auto r = punctual::sqlite_store::recover("jobs.db", "jobs-recovered.db");
  /// std::cout << r.summary() << "\n";  // then check it, and move it in place of the damaged file
  /// @endcode
  static sqlite_recovery_report recover(const std::string& source, const std::string& destination);

  /// The database file's path, as given.
  const std::string& path() const noexcept { return path_; }

  // ---- schedules ---------------------------------------------------------------------

  asio::awaitable<bool> add_schedule(schedule_record s, conflict_policy on_conflict) override {
    return submit<bool>("add_schedule", [this, s = std::move(s), on_conflict] {
      transaction tx(*this);
      const bool stored = store_schedule(s, on_conflict, wall_us()) != add_outcome::kept;
      tx.commit();
      if (stored) notify();
      return stored;
    });
  }

  asio::awaitable<std::vector<add_outcome>> add_schedules(std::vector<schedule_record> batch,
                                                          conflict_policy on_conflict) override {
    return submit<std::vector<add_outcome>>("add_schedules", [this, batch = std::move(batch), on_conflict] {
      std::vector<add_outcome> out;
      if (batch.empty()) return out;
      out.reserve(batch.size());
      transaction tx(*this);  // one commit for the batch; a conflict or failure rolls it all back
      const auto now = wall_us();
      for (const auto& s : batch) out.push_back(store_schedule(s, on_conflict, now));
      tx.commit();
      if (std::any_of(out.begin(), out.end(), [](add_outcome o) { return o != add_outcome::kept; })) notify();
      return out;
    });
  }

  asio::awaitable<bool> remove_schedule(std::string id) override {
    return submit<bool>("remove_schedule", [this, id = std::move(id)] {
      transaction tx(*this);
      auto del = query("DELETE FROM schedules WHERE id = ?1");
      if (del.bind(1, id).run() == 0) return false;
      auto cancel = query(
          "UPDATE jobs SET state = 'cancelled', error = 'schedule removed', node = ''"
          " WHERE schedule_id = ?1 AND state = 'pending'");
      cancel.bind(1, id).run();
      tx.commit();
      notify();
      return true;
    });
  }

  asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) override {
    return submit<std::optional<schedule_record>>("get_schedule", [this, id = std::move(id)] {
      auto l = read_schedule(id);
      return l ? std::optional<schedule_record>(std::move(l->record)) : std::nullopt;
    });
  }

  asio::awaitable<std::vector<schedule_record>> list_schedules() override {
    return submit<std::vector<schedule_record>>("list_schedules", [this] {
      std::vector<schedule_record> out;
      auto q = query(PUNCTUAL_SQLITE_SCHEDULE_COLUMNS " FROM schedules ORDER BY id");
      while (q.step()) out.push_back(load_schedule(q).record);
      return out;
    });
  }

  asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) override {
    return submit<std::optional<schedule_record>>(
        "modify_schedule",
        [this, id = std::move(id), change = std::move(change)]() -> std::optional<schedule_record> {
          transaction tx(*this);
          auto loaded = read_schedule(id);
          if (!loaded) return std::nullopt;
          schedule_record r = loaded->record;
          change(r);
          // What is stored stays stored unless the change replaced it: a quarantined row keeps its
          // unparsable text until a valid trigger (or options) is written over it.
          std::string trigger_text =
              r.spec.trigger || loaded->trigger_ok ? r.spec.trigger.to_string() : loaded->stored_trigger_text;
          std::string options_text = loaded->options_ok || !(r.spec.options == schedule_options{})
                                         ? to_string(r.spec.options)
                                         : loaded->stored_options_text;
          std::string why;
          parse_trigger_cached(trigger_text, &why);
          parse_options_cached(options_text, &why);
          auto q = query(
              "UPDATE schedules SET task = ?2, trigger_text = ?3, payload = ?4, options_text = ?5, paused = "
              "?6,"
              " next_fire_us = ?7, last_fire_us = ?8, quarantine = ?9, updated_us = ?10 WHERE rowid = ?1");
          q.bind(1, loaded->rowid).bind(2, r.spec.task).bind(3, trigger_text).bind(4, r.spec.payload);
          q.bind(5, options_text).bind(6, r.spec.paused ? 1 : 0).bind(7, r.next_fire).bind(8, r.last_fire);
          if (why.empty() || loaded->stored_quarantine.empty())
            q.bind_null(9);
          else
            q.bind(9, loaded->stored_quarantine);
          q.bind(10, wall_us()).run();
          auto result = read_schedule(id);
          tx.commit();
          notify();
          return result ? std::optional(std::move(result->record)) : std::nullopt;
        });
  }

  // ---- the schedule loop -------------------------------------------------------------

  asio::awaitable<std::vector<schedule_record>> acquire_due_schedules(std::string node, time_point now,
                                                                      time_point lease_until,
                                                                      std::size_t limit) override {
    return submit<std::vector<schedule_record>>("acquire_due_schedules", [this, node = std::move(node), now,
                                                                          lease_until, limit] {
      std::vector<schedule_record> out;
      if (limit == 0) return out;
      transaction tx(*this, true, durability::lease);
      std::vector<loaded_schedule> due;
      {
        // One statement leases the batch and returns it (the new lease included).
        auto q = query(
            "UPDATE schedules SET lease_owner = ?2, lease_until_us = ?3 WHERE rowid IN"
            " (SELECT rowid FROM schedules WHERE next_fire_us <= ?1 AND paused = 0 AND quarantine IS NULL"
            " AND (lease_owner = '' OR lease_owner = ?2 OR lease_until_us < ?1)"
            " ORDER BY next_fire_us LIMIT ?4) RETURNING " PUNCTUAL_SQLITE_SCHEDULE_COLUMN_LIST);
        q.bind(1, now).bind(2, node).bind(3, lease_until);
        q.bind(4, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
        while (q.step()) due.push_back(load_schedule(q));
      }
      std::sort(due.begin(), due.end(), [](const loaded_schedule& a, const loaded_schedule& b) {
        return a.record.next_fire != b.record.next_fire ? a.record.next_fire < b.record.next_fire
                                                        : a.rowid < b.rowid;
      });
      for (auto& l : due) {
        if (!l.record.quarantine.empty()) {  // unusable: quarantined, reported once, not leased
          auto q = query(
              "UPDATE schedules SET quarantine = ?2, lease_owner = '', lease_until_us = 0 WHERE rowid = ?1");
          q.bind(1, l.rowid).bind(2, l.record.quarantine).run();
          l.record.lease_owner.clear();
          l.record.lease_until = time_point{};
          warn("schedule \"" + l.record.spec.id + "\" quarantined: " + l.record.quarantine);
        }
        out.push_back(std::move(l.record));
      }
      tx.commit();
      return out;
    });
  }

  asio::awaitable<std::size_t> release_schedules(std::string node,
                                                 const std::vector<schedule_release>& releases,
                                                 const std::vector<job_record>& jobs) override {
    // The worker thread gets its own copies: the call may be abandoned (timeout) before it runs.
    return submit<std::size_t>("release_schedules", [this, node = std::move(node), releases, jobs] {
      if (node.empty() || (releases.empty() && jobs.empty())) return std::size_t{0};
      transaction tx(*this);
      const auto now = wall_us();
      std::unordered_set<std::string_view> held;
      for (auto& r : releases) {
        auto q = query(
            "UPDATE schedules SET next_fire_us = ?2, last_fire_us = coalesce(?3, last_fire_us), lease_owner "
            "= '',"
            " lease_until_us = 0, updated_us = ?5 WHERE id = ?1 AND lease_owner = ?4");
        q.bind(1, r.id).bind(2, r.next_fire).bind(3, r.last_fire).bind(4, node).bind(5, now);
        if (q.run() > 0) held.insert(r.id);
      }
      std::size_t inserted = 0;
      for (auto& j : jobs)
        if (held.count(j.schedule_id) != 0 && insert_job(j) != 0) ++inserted;
      tx.commit();
      if (!held.empty()) notify();
      return inserted;
    });
  }

  // ---- the job loop ------------------------------------------------------------------

  asio::awaitable<std::int64_t> add_job(job_record job) override {
    return submit<std::int64_t>("add_job", [this, job = std::move(job)] {
      transaction tx(*this);
      const auto id = insert_job(job);
      tx.commit();
      if (id != 0) notify();
      return id;
    });
  }

  asio::awaitable<std::vector<job_record>> acquire_jobs(std::string node, time_point now,
                                                        time_point lease_until, std::size_t limit) override {
    return submit<std::vector<job_record>>(
        "acquire_jobs", [this, node = std::move(node), now, lease_until, limit] {
          std::vector<job_record> out;
          if (limit == 0) return out;
          transaction tx(*this);
          {
            auto q = query(
                "UPDATE jobs SET state = 'running', node = ?1, lease_until_us = ?2, started_us = ?3"
                " WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND run_at_us <= ?3"
                " ORDER BY run_at_us, id LIMIT ?4) RETURNING " PUNCTUAL_SQLITE_JOB_COLUMN_LIST);
            q.bind(1, node).bind(2, lease_until).bind(3, now);
            q.bind(4, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
            while (q.step()) out.push_back(load_job(q));
          }
          // Each job with its schedule's options as they are now (defaults once it is removed, or
          // while its stored options do not parse), read in the same transaction.
          std::unordered_map<std::string_view, std::shared_ptr<const schedule_options>> by_schedule;
          for (auto& j : out) {
            auto [it, added] = by_schedule.try_emplace(j.schedule_id);
            if (added) {
              auto q = query("SELECT options_text FROM schedules WHERE id = ?1");
              std::string why;
              it->second =
                  q.bind(1, j.schedule_id).step() ? shared_options_cached(q.text(0), &why) : default_options_;
            }
            j.options = it->second;
          }
          tx.commit();
          std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
            return a.run_at != b.run_at ? a.run_at < b.run_at : a.id < b.id;
          });
          return out;
        });
  }

  asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) override {
    return submit<void>("update_jobs", [this, node = std::move(node), jobs] {
      if (jobs.empty()) return;
      transaction tx(*this);
      bool requeued = false;
      for (auto& j : jobs) {
        auto q = query(
            "UPDATE jobs SET state = ?2, run_at_us = ?3, attempt = ?4, started_us = ?5, finished_us = ?6,"
            " exit_code = ?7, signal = ?8, error = ?9, output = ?10, pid = ?11, pgid = ?12, proc_start = ?13,"
            " node = CASE WHEN ?2 = 'pending' THEN '' ELSE node END"
            " WHERE id = ?1 AND state = 'running' AND node = ?14");
        q.bind(1, j.id).bind(2, to_string(j.state)).bind(3, j.run_at).bind(4, j.attempt).bind(5, j.started);
        q.bind(6, j.finished).bind(7, j.exit_code).bind(8, j.signal).bind(9, j.error).bind(10, j.output);
        q.bind(11, j.process.pid).bind(12, j.process.pgid);
        q.bind(13, static_cast<std::int64_t>(j.process.start_time)).bind(14, node);
        if (q.run() > 0 && j.state == job_state::pending) requeued = true;
      }
      tx.commit();
      if (requeued) notify();
    });
  }

  asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) override {
    return submit<std::size_t>("release_jobs", [this, node = std::move(node), keep = std::move(keep)] {
      transaction tx(*this);
      const std::unordered_set<std::int64_t> kept(keep.begin(), keep.end());
      std::vector<std::int64_t> ids;
      {
        auto q = query("SELECT id FROM jobs WHERE state = 'running' AND node = ?1");
        q.bind(1, node);
        while (q.step())
          if (kept.count(q.i64(0)) == 0) ids.push_back(q.i64(0));
      }
      for (auto id : ids)
        query("UPDATE jobs SET state = 'pending', node = '', started_us = NULL WHERE id = ?1")
            .bind(1, id)
            .run();
      tx.commit();
      if (!ids.empty()) notify();
      return ids.size();
    });
  }

  // ---- leases and recovery -----------------------------------------------------------

  asio::awaitable<void> extend_leases(std::string node, time_point until) override {
    return submit<void>("extend_leases", [this, node = std::move(node), until] {
      transaction tx(*this, true, durability::lease);
      query("UPDATE schedules SET lease_until_us = ?2 WHERE lease_owner = ?1 AND lease_owner <> ''")
          .bind(1, node)
          .bind(2, until)
          .run();
      query("UPDATE jobs SET lease_until_us = ?2 WHERE state = 'running' AND node = ?1")
          .bind(1, node)
          .bind(2, until)
          .run();
      tx.commit();
    });
  }

  asio::awaitable<void> release_leases(std::string node) override {
    return submit<void>("release_leases", [this, node = std::move(node)] {
      transaction tx(*this, true, durability::lease);
      const int n = query(
                        "UPDATE schedules SET lease_owner = '', lease_until_us = 0 WHERE lease_owner = ?1 "
                        "AND lease_owner <> ''")
                        .bind(1, node)
                        .run();
      tx.commit();
      if (n > 0) notify();
    });
  }

  asio::awaitable<std::vector<job_record>> recover_abandoned(std::optional<std::string> node,
                                                             time_point now) override {
    return submit<std::vector<job_record>>("recover_abandoned", [this, node = std::move(node), now] {
      transaction tx(*this);
      std::vector<job_record> out;
      std::vector<bool> rerun;
      {
        auto q = query(PUNCTUAL_SQLITE_JOB_SELECT(
            "j.",
            ", s.options_text FROM jobs j LEFT JOIN schedules s ON s.id = j.schedule_id"
            " WHERE j.state = 'running' AND (j.lease_until_us < ?1 OR j.node = ?2)"));
        q.bind(1, now);
        if (node)
          q.bind(2, *node);
        else
          q.bind_null(2);
        while (q.step()) {
          out.push_back(load_job(q));
          bool again = false;
          if (!q.is_null(job_column_count)) {
            std::string why;
            auto o = parse_options_cached(q.text(job_column_count), &why);
            again = why.empty() && o.on_abandoned == abandoned_policy::rerun;
          }
          rerun.push_back(again);
        }
      }
      bool requeued = false;
      for (std::size_t k = 0; k < out.size(); ++k) {
        job_record& j = out[k];
        mark_abandoned(j, now, rerun[k]);
        requeued = requeued || rerun[k];
        auto q = query(
            "UPDATE jobs SET state = ?2, attempt = ?3, run_at_us = ?4, node = ?5, started_us = ?6,"
            " finished_us = ?7, error = ?8 WHERE id = ?1");
        q.bind(1, j.id).bind(2, to_string(j.state)).bind(3, j.attempt).bind(4, j.run_at).bind(5, j.node);
        q.bind(6, j.started).bind(7, j.finished).bind(8, j.error).run();
      }
      tx.commit();
      if (requeued) notify();
      return out;
    });
  }

  asio::awaitable<due_times> next_due() override {
    return submit<due_times>("next_due", [this] {
      transaction tx(*this, false);
      due_times d;
      {
        auto q = query(
            "SELECT next_fire_us FROM schedules WHERE next_fire_us IS NOT NULL AND paused = 0 AND quarantine "
            "IS NULL"
            " AND lease_owner = '' ORDER BY next_fire_us LIMIT 1");
        if (q.step()) d.schedule = q.time(0);
      }
      {
        // A leased schedule is due for other nodes once its lease has expired.
        auto q = query(
            "SELECT min(max(next_fire_us, lease_until_us + 1)) FROM schedules INDEXED BY schedules_lease"
            " WHERE lease_owner > '' AND lease_owner <> ''"
            " AND next_fire_us IS NOT NULL AND paused = 0 AND quarantine IS NULL");
        if (q.step() && !q.is_null(0)) {
          const auto t = q.time(0);
          if (!d.schedule || t < *d.schedule) d.schedule = t;
        }
      }
      {
        auto q = query("SELECT min(run_at_us) FROM jobs WHERE state = 'pending'");
        if (q.step() && !q.is_null(0)) d.job = q.time(0);
      }
      tx.commit();
      return d;
    });
  }

  // ---- history -----------------------------------------------------------------------

  asio::awaitable<std::vector<job_record>> list_jobs(job_query jq) override {
    return submit<std::vector<job_record>>("list_jobs", [this, jq = std::move(jq)] {
      std::vector<job_record> out;
      if (jq.limit == 0) return out;
      const char* sql =
          jq.schedule_id && jq.state
              ? PUNCTUAL_SQLITE_JOB_SELECT("",
                                           " FROM jobs WHERE schedule_id = ?1 AND state = ?2"
                                           " ORDER BY fire_time_us DESC, id DESC LIMIT ?3")
          : jq.schedule_id ? PUNCTUAL_SQLITE_JOB_SELECT("",
                                                        " FROM jobs WHERE schedule_id = ?1 AND ?2 IS NULL"
                                                        " ORDER BY fire_time_us DESC, id DESC LIMIT ?3")
          : jq.state       ? PUNCTUAL_SQLITE_JOB_SELECT("",
                                                        " FROM jobs WHERE ?1 IS NULL AND state = ?2"
                                                              " ORDER BY fire_time_us DESC, id DESC LIMIT ?3")
                           : PUNCTUAL_SQLITE_JOB_SELECT("",
                                                        " FROM jobs WHERE ?1 IS NULL AND ?2 IS NULL"
                                                              " ORDER BY fire_time_us DESC, id DESC LIMIT ?3");
      auto q = query(sql);
      q.bind(1, jq.schedule_id);
      if (jq.state)
        q.bind(2, to_string(*jq.state));
      else
        q.bind_null(2);
      q.bind(3, static_cast<std::int64_t>(std::min<std::size_t>(jq.limit, INT64_MAX)));
      while (q.step()) out.push_back(load_job(q));
      return out;
    });
  }

  asio::awaitable<std::size_t> purge_jobs(retention r, time_point now) override {
    return submit<std::size_t>("purge_jobs", [this, r, now] { return purge(r, now); });
  }

  // ---- change notification -----------------------------------------------------------

  /// Callbacks run on the store's worker thread (so they must not wait for a store operation:
  /// the worker would wait for itself). A callback that throws is reported through on_warning.
  std::uint64_t subscribe_changes(std::function<void()> on_change) override {
    return changes_.subscribe(std::move(on_change));
  }

  /// After it returns, `on_change` of `handle` is not running and is never called again. It
  /// waits for a call in progress on the worker, except when called from inside that very
  /// callback (on the worker): then it returns at once, the call runs to its end, and no
  /// further call starts (see change_subscribers).
  void unsubscribe_changes(std::uint64_t handle) override { changes_.unsubscribe(handle); }

 private:
  // ---- running work on the worker ----------------------------------------------------

  struct work_item {
    virtual ~work_item() = default;
    virtual void run(sqlite_store& s) = 0;
  };

  template <class T, class F, class Handler>
  struct op_item final : work_item {
    op_item(const char* o, F fn, Handler h, std::shared_ptr<std::atomic<bool>> c)
        : op(o),
          f(std::move(fn)),
          handler(std::move(h)),
          work(asio::make_work_guard(asio::get_associated_executor(handler))),
          cancelled(std::move(c)) {}

    void run(sqlite_store& s) override {
      std::conditional_t<std::is_void_v<T>, char, T> result{};
      std::exception_ptr error;
      if (cancelled->load()) {
        error = std::make_exception_ptr(
            asio::system_error(asio::error::operation_aborted, std::string("sqlite: ") + op));
      } else {
        try {
          if constexpr (std::is_void_v<T>)
            s.execute(op, f, cancelled.get());
          else
            result = s.execute(op, f, cancelled.get());
        } catch (...) {
          error = std::current_exception();
        }
      }
      // Once the completion has run, the caller may destroy its io_context at any moment. So
      // everything that refers to the caller's executor moves into the completion, and the
      // completion waits (`gate`) until post() has returned here: Asio signals the io_context's
      // condition variable after queueing, which must not race with its destruction.
      auto gate = std::make_shared<std::mutex>();
      std::unique_lock posting(*gate);
      const auto ex = asio::get_associated_executor(handler);  // destroyed before `posting` unlocks
      // The worker keeps no reference to the exception (its release would be unordered with the
      // caller's reads of it, as far as a thread sanitizer can tell).
      asio::post(ex, [h = std::move(handler), e = std::move(error), r = std::move(result),
                      w = std::move(work), gate]() mutable {
        { std::lock_guard posted(*gate); }
        asio::get_associated_cancellation_slot(h).clear();
        if constexpr (std::is_void_v<T>)
          std::move(h)(std::move(e));
        else
          std::move(h)(std::move(e), std::move(r));
      });
    }

    const char* op;
    F f;
    Handler handler;
    asio::executor_work_guard<asio::associated_executor_t<Handler>> work;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };

  /// Queues `f` (returning T, run on the worker inside execute()) and completes the awaiting
  /// coroutine with its result on the coroutine's executor.
  ///
  /// The store's operations are plain functions returning this awaitable, not coroutines: no
  /// temporaries live across a co_await in them (GCC 12 mishandles those in coroutines).
  template <class T, class F>
  asio::awaitable<T> submit(const char* op, F f) {
    using signature = typename detail::sqlite_signature<T>::type;
    return asio::async_initiate<const asio::use_awaitable_t<>&, signature>(
        [this, op](auto handler, F fn) {
          using handler_type = decltype(handler);
          auto cancelled = std::make_shared<std::atomic<bool>>(false);
          auto slot = asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected())
            slot.assign([cancelled](asio::cancellation_type type) {
              if (type != asio::cancellation_type::none) cancelled->store(true);
            });
          enqueue(std::make_unique<op_item<T, F, handler_type>>(op, std::move(fn), std::move(handler),
                                                                std::move(cancelled)));
        },
        asio::use_awaitable, std::move(f));
  }

  void enqueue(std::unique_ptr<work_item> w) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(w));
    }
    cv_.notify_one();
  }

  void worker_main(std::promise<void> opened) {
    try {
      open_connection(true);
      opened.set_value();
    } catch (const detail::sqlite_failure& f) {
      opened.set_exception(std::make_exception_ptr(sqlite_error("open", f.code, f.message)));
      return;
    } catch (...) {
      opened.set_exception(std::current_exception());
      return;
    }
    last_poll_ = last_purge_ = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!queue_.empty()) {
        auto w = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        w->run(*this);
        w.reset();
        housekeeping();
        lock.lock();
        continue;
      }
      if (stopping_) break;
      const auto tick =
          options_.poll_interval.count() > 0
              ? std::min<std::chrono::milliseconds>(options_.poll_interval, std::chrono::seconds(1))
              : std::chrono::milliseconds(1000);
      cv_.wait_for(lock, tick, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && !stopping_) {
        lock.unlock();
        housekeeping();
        lock.lock();
      }
    }
    lock.unlock();
    close_connection();
  }

  /// Runs one operation's body on the worker: (re)opens the connection when needed, turns SQLite
  /// failures into sqlite_error and decides whether the connection must be reopened.
  template <class F>
  auto execute(const char* op, F& f, const std::atomic<bool>* cancel) -> decltype(f()) {
    cancel_ = cancel;
    struct reset_cancel {
      sqlite_store* s;
      ~reset_cancel() {
        s->cancel_ = nullptr;
        s->gate_.withdraw();  // a wait outside a transaction's BEGIN (a checkpoint, say) ends here too
      }
    } reset{this};
    try {
      ensure_open();
      return f();
    } catch (const detail::sqlite_failure& e) {
      if (cancel && cancel->load())  // interrupted, or gave up waiting for a lock, because cancelled
        throw asio::system_error(asio::error::operation_aborted,
                                 std::string("sqlite: ") + op + ": cancelled");
      after_failure(e.code);
      throw sqlite_error(op, e.code, e.message);
    }
  }

  // ---- the connection ----------------------------------------------------------------

  void open_connection(bool initial) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI |
                      (initial && options_.create ? SQLITE_OPEN_CREATE : 0);
    if (is_file_ && !initial) {
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT)
        throw detail::sqlite_failure{SQLITE_CANTOPEN, "database file \"" + path_ +
                                                          "\" does not exist any more (deleted while open?); "
                                                          "restore it to continue"};
    }
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      const int code = db ? sqlite3_extended_errcode(db) : rc;
      std::string message =
          "cannot open \"" + path_ + "\": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
      sqlite3_close(db);
      throw detail::sqlite_failure{code, std::move(message)};
    }
    db_ = db;
    try {
      sqlite3_extended_result_codes(db_, 1);
      sqlite3_busy_handler(db_, &sqlite_store::busy_handler, this);
      sqlite3_progress_handler(db_, 1000, &sqlite_store::progress_handler, this);
      if (options_.on_open) options_.on_open(db_);
      const bool read_only = sqlite3_db_readonly(db_, "main") == 1;
      read_only_ = read_only;
      if (read_only) warn("\"" + path_ + "\" is read-only: writes fail until it is writable again");
      if (!read_only) {
        std::string mode;
        {
          auto q = query("PRAGMA journal_mode");
          if (q.step()) mode = q.text(0);
        }
        if (mode != "wal" && mode != "memory") {
          auto w = query("PRAGMA journal_mode = WAL");
          if (w.step()) mode = w.text(0);
          if (mode != "wal") warn("could not switch \"" + path_ + "\" to WAL mode");
        }
        wal_mode_ = is_file_ && mode == "wal";
        if (wal_mode_) bound_wal();
      }
      synchronous_ = -1;
      set_synchronous(options_.synchronous);
      if (options_.cache_kib > 0) {
        const auto sql = "PRAGMA cache_size = -" + std::to_string(options_.cache_kib);
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
          throw detail::sqlite_failure{sqlite3_extended_errcode(db_), sqlite3_errmsg(db_)};
      }
      if (std::exchange(check_integrity_, false)) {
        check_integrity_ = true;  // again at the next open, should this one fail
        check_integrity();
        check_integrity_ = false;
      }
      migrate(read_only);
      {
        auto q = query("PRAGMA data_version");
        if (q.step()) data_version_ = q.i64(0);
      }
      file_id_ = current_file_id();
      wal_id_ = wal_mode_ ? file_identity(wal_path()) : file_id{};
      gate_.withdraw();  // an announcement made while opening (a busy journal-mode switch)
      if (is_file_ && !gate_.is_open()) {
        struct stat st {};
        const mode_t mode = ::stat(path_.c_str(), &st) == 0 ? (st.st_mode & 0666) : 0644;
        if (!gate_.open(path_ + "-priority", mode))
          warn("cannot open \"" + path_ + "-priority\" (" + std::strerror(errno) +
               "): write priorities between processes are off");
      }
    } catch (...) {
      close_connection();
      throw;
    }
  }

  void close_connection() {
    for (auto& [sql, s] : statements_) sqlite3_finalize(s);
    statements_.clear();
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
    wal_mode_ = false;
  }

  // ---- integrity, the write-ahead log -------------------------------------------------

  /// `PRAGMA quick_check` within integrity_check_budget; a damaged file is refused with
  /// SQLite's findings and the way out. The budget is kept by a watchdog thread calling
  /// sqlite3_interrupt(), not by the progress handler: up to SQLite 3.42 the b-tree walk is a
  /// single VM instruction, which the progress handler never sees.
  void check_integrity() {
    const auto budget = options_.integrity_check_budget;
    if (budget.count() <= 0) return;
    std::mutex m;
    std::condition_variable cv;
    bool done = false, over_budget = false;
    std::thread watchdog([&] {
      std::unique_lock lock(m);
      if (!cv.wait_for(lock, budget, [&] { return done; })) {
        over_budget = true;
        sqlite3_interrupt(db_);
      }
    });
    auto stop_watchdog = [&] {
      {
        std::lock_guard lock(m);
        done = true;
      }
      cv.notify_all();
      if (watchdog.joinable()) watchdog.join();
    };
    std::string found;
    int code = SQLITE_OK;
    std::string message;
    try {
      sqlite3_stmt* st = nullptr;
      int rc = sqlite3_prepare_v2(db_, "PRAGMA quick_check(10)", -1, &st, nullptr);
      while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(st)) != SQLITE_ROW) break;
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        std::string line = t ? t : "";
        std::replace(line.begin(), line.end(), '\n', ' ');  // "*** in database main ***\nPage 9: ..."
        if (line != "ok") found += (found.empty() ? "" : "; ") + line;
      }
      if (rc != SQLITE_DONE) {
        code = sqlite3_extended_errcode(db_);
        message = sqlite3_errmsg(db_);
      }
      sqlite3_finalize(st);
    } catch (...) {
      stop_watchdog();
      throw;
    }
    stop_watchdog();  // over_budget is final now
    if ((code & 0xff) == SQLITE_INTERRUPT && over_budget) {
      warn("the integrity check did not finish within " + format_duration(budget) + ": \"" + path_ +
           "\" was opened without being fully checked (integrity_check_budget)");
      return;
    }
    if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB)
      found += (found.empty() ? "" : "; ") + message;  // what it found before it gave up, first
    else if (code != SQLITE_OK)
      throw detail::sqlite_failure{code, "integrity check of \"" + path_ + "\": " + message};
    if (found.empty()) return;
    throw detail::sqlite_failure{
        SQLITE_CORRUPT,
        "\"" + path_ + "\" is damaged (PRAGMA quick_check: " + found +
            "); refusing to use it. Save what can be read into a new file with `punctual-cron "
            "recover " +
            path_ + " NEW.db` (sqlite_store::recover), then put NEW.db in its place"};
  }

  /// The bound on the write-ahead log (wal_limit_kib): checkpoint at that size, truncate back
  /// to it after a checkpoint.
  void bound_wal() {
    if (options_.wal_limit_kib <= 0) return;
    const std::int64_t bytes = options_.wal_limit_kib * 1024;
    std::int64_t page_size = 4096;
    {
      auto q = query("PRAGMA page_size");
      if (q.step() && q.i64(0) > 0) page_size = q.i64(0);
    }
    const auto pages = std::to_string(std::max<std::int64_t>(1, bytes / page_size));
    const auto sql =
        "PRAGMA wal_autocheckpoint = " + pages + "; PRAGMA journal_size_limit = " + std::to_string(bytes);
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
      throw detail::sqlite_failure{sqlite3_extended_errcode(db_), sqlite3_errmsg(db_)};
  }

  std::string wal_path() const { return path_ + "-wal"; }

  /// The write-ahead log this connection writes to is no longer the one at wal_path() (deleted,
  /// or replaced): its committed transactions exist only in the connection's open descriptor.
  /// A TRUNCATE checkpoint through the connection saves them into the database file (and
  /// empties the log index, so other connections read the file again); the connection is then
  /// closed, to be reopened with a new log. When saving fails (a full disk) the connection is
  /// kept, and every call fails, until it works.
  void check_wal() {
    if (!db_ || !wal_mode_ || !current_file_id().exists) return;  // a deleted database: see ensure_open()
    const auto now = file_identity(wal_path());
    if (!wal_id_.exists) {  // not created yet at open: watch it from now on
      wal_id_ = now;
      return;
    }
    if (wal_lost_.empty() && now.exists && now.dev == wal_id_.dev && now.ino == wal_id_.ino) return;
    const std::string what =
        "the write-ahead log \"" + wal_path() + "\" was deleted while the store had it open";
    int frames = 0, saved = 0;
    const bool quiet = std::exchange(no_wait_, true);  // a checkpoint never waits for other connections here
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &frames, &saved);
    no_wait_ = quiet;
    if (rc == SQLITE_OK) {
      wal_lost_.clear();
      wal_report_ = what + "; its committed transactions were saved into \"" + path_ +
                    "\" and the store reopens it with a new log";
      warn(wal_report_);
      close_connection();
      return;
    }
    const auto reason = std::string(sqlite3_errmsg(db_)) + " (" +
                        sqlite_error::code_name(sqlite3_extended_errcode(db_)) + ")";
    const bool first = wal_lost_.empty();
    wal_lost_ =
        what + ", and saving its committed transactions into \"" + path_ + "\" failed: " + reason +
        "; every call fails until they are saved (free disk space; stopping the process now loses them)";
    if (first) warn(wal_lost_);
  }

  /// Before an operation: a lost write-ahead log fails it (once after the log was saved, every
  /// time while it is not).
  void report_wal() {
    if (!wal_report_.empty()) {
      auto m = std::move(wal_report_);
      wal_report_.clear();
      throw detail::sqlite_failure{SQLITE_IOERR, std::move(m)};
    }
    if (!wal_lost_.empty()) throw detail::sqlite_failure{SQLITE_IOERR, wal_lost_};
  }

  struct file_id {
    dev_t dev = 0;
    ino_t ino = 0;
    bool exists = false;
  };
  file_id current_file_id() const { return is_file_ ? file_identity(path_) : file_id{}; }
  static file_id file_identity(const std::string& path) {
    file_id id;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      id.dev = st.st_dev;
      id.ino = st.st_ino;
      id.exists = true;
    }
    return id;
  }

  /// Before each operation: reopen a connection closed after an error, and notice a database
  /// file that was deleted (an error) or replaced (reopened).
  void ensure_open() {
    if (!wal_lost_.empty()) check_wal();  // try again to save the lost log
    report_wal();                         // noticed while idle, or still lost
    if (!db_) {
      open_connection(false);
      warn("reopened \"" + path_ + "\"");
      return;
    }
    if (!is_file_) return;
    if (read_only_ && ::access(path_.c_str(), W_OK) == 0) {  // the file became writable again
      close_connection();
      open_connection(false);
      return;
    }
    const auto now = current_file_id();
    if (!now.exists) {
      close_connection();
      throw detail::sqlite_failure{
          SQLITE_CANTOPEN, "database file \"" + path_ + "\" was deleted while open; restore it to continue"};
    }
    if (now.dev != file_id_.dev || now.ino != file_id_.ino) {
      close_connection();
      warn("database file \"" + path_ + "\" was replaced; reopening it");
      open_connection(false);
      return;
    }
    check_wal();
    report_wal();
  }

  /// Errors after which the connection is closed, to be reopened by the next operation.
  void after_failure(int code) {
    if (!is_file_) return;           // ":memory:", "" or a URI: a reopen would start from nothing
    if (!wal_lost_.empty()) return;  // the connection holds the only copy of the lost log
    if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB) check_integrity_ = true;
    switch (code & 0xff) {
      case SQLITE_IOERR:
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
      case SQLITE_PROTOCOL:
      case SQLITE_SCHEMA: close_connection(); break;
      default: break;
    }
  }

  void migrate(bool read_only) {
    int version = read_schema_version();
    if (version == schema_version) return;
    if (version > schema_version)
      throw detail::sqlite_failure{
          SQLITE_ERROR, "\"" + path_ + "\" has schema version " + std::to_string(version) +
                            ", newer than this punctual knows (" + std::to_string(schema_version) + ")"};
    if (read_only)
      throw detail::sqlite_failure{SQLITE_READONLY, "\"" + path_ + "\" has schema version " +
                                                        std::to_string(version) +
                                                        " and needs a migration, but it is read-only"};
    transaction tx(*this);
    version = read_schema_version();  // another process may have migrated it meanwhile
    for (; version < schema_version; ++version) {
      char* message = nullptr;
      if (sqlite3_exec(db_, detail::sqlite_migrations[version], nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = "migrating the schema from version " + std::to_string(version) + ": " +
                           (message ? message : sqlite3_errmsg(db_));
        sqlite3_free(message);
        throw detail::sqlite_failure{sqlite3_extended_errcode(db_), std::move(text)};
      }
    }
    tx.commit();
  }

  int read_schema_version() {
    {
      auto q = query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
      if (!q.step() || q.i64(0) == 0) return 0;
    }
    auto q = query("SELECT value FROM meta WHERE key = 'schema_version'");
    if (!q.step()) return 0;
    return static_cast<int>(q.i64(0));
  }

  static int busy_handler(void* p, int count) {
    auto* self = static_cast<sqlite_store*>(p);
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) self->busy_since_ = now;
    if ((self->cancel_ && self->cancel_->load()) || self->no_wait_ || self->stopping_flag()) return 0;
    const auto limit =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(self->options_.busy_timeout);
    auto step = std::chrono::milliseconds(count < 5 ? (1 << count) : 20);
    if (self->options_.write_priority == sqlite_write_priority::normal) {
      self->gate_.announce();  // low-priority writers stand back until this write has the lock
      if (self->gate_.announced()) step = std::chrono::milliseconds(1);  // take it as soon as it is free
    } else {
      self->yield_to_priority_writers(self->busy_since_ + limit);
    }
    const auto waited = std::chrono::steady_clock::now() - self->busy_since_;
    if (waited >= limit) return 0;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(step, limit - waited));
    return 1;
  }

  /// A low-priority store's wait, before it begins a write and while it retries one: until no
  /// normal-priority writer announces itself, `deadline`, a cancellation or the store's stop.
  void yield_to_priority_writers(std::chrono::steady_clock::time_point deadline) {
    while (gate_.priority_writer_waiting() && std::chrono::steady_clock::now() < deadline &&
           !(cancel_ && cancel_->load()) && !stopping_flag())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  static int progress_handler(void* p) {
    auto* self = static_cast<sqlite_store*>(p);
    return self->cancel_ && self->cancel_->load() ? 1 : 0;
  }

  bool stopping_flag() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  void set_synchronous(sqlite_synchronous level) {
    if (synchronous_ == static_cast<int>(level)) return;
    static constexpr const char* sql[] = {"PRAGMA synchronous = OFF", "PRAGMA synchronous = NORMAL",
                                          "PRAGMA synchronous = FULL", "PRAGMA synchronous = EXTRA"};
    query(sql[static_cast<int>(level)]).run();
    synchronous_ = static_cast<int>(level);
  }

  /// A cached prepared statement for `sql` (a string literal: cached by address).
  detail::sqlite_query query(const char* sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
        throw detail::sqlite_failure{sqlite3_extended_errcode(db_), sqlite3_errmsg(db_)};
      it = statements_.emplace(sql, s).first;
    }
    return detail::sqlite_query(db_, it->second);
  }

  /// How durable a transaction's commit must be. `lease` transactions only move leases: they
  /// commit without an fsync of their own even under synchronous = full, since losing one to a
  /// power cut only frees a lease (the machine that held it went down too), and the next
  /// durable commit syncs the write-ahead log, theirs included. A process crash loses nothing.
  enum class durability { normal, lease };

  /// BEGIN IMMEDIATE (or deferred) ... COMMIT; rolls back unless committed.
  class transaction {
   public:
    explicit transaction(sqlite_store& s, bool immediate = true, durability d = durability::normal) : s_(s) {
      s_.set_synchronous(d == durability::lease
                             ? std::min(s_.options_.synchronous, sqlite_synchronous::normal)
                             : s_.options_.synchronous);
      if (immediate && s_.options_.write_priority == sqlite_write_priority::low)
        s_.yield_to_priority_writers(std::chrono::steady_clock::now() + s_.options_.busy_timeout);
      struct withdraw_after {
        sqlite_store& s;
        ~withdraw_after() { s.gate_.withdraw(); }  // has the lock now, or gave up waiting
      } withdraw{s_};
      s_.query(immediate ? "BEGIN IMMEDIATE" : "BEGIN").run();
    }
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    void commit() {
      s_.query("COMMIT").run();
      done_ = true;
    }
    ~transaction() {
      if (!done_ && s_.db_ && sqlite3_get_autocommit(s_.db_) == 0)
        sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

   private:
    sqlite_store& s_;
    bool done_ = false;
  };

  // ---- rows --------------------------------------------------------------------------

  static constexpr int job_column_count = 19;

  struct loaded_schedule {
    std::int64_t rowid = 0;
    schedule_record record;
    bool trigger_ok = true;
    bool options_ok = true;
    std::string stored_trigger_text;
    std::string stored_options_text;
    std::string stored_quarantine;
  };

  /// add_schedule's work inside the caller's transaction: inserts `s`, or handles an existing id
  /// by `on_conflict` (error: throws schedule_conflict; keep: nothing; replace: the definition
  /// and next_fire, while last_fire, pause state and lease stay).
  add_outcome store_schedule(const schedule_record& s, conflict_policy on_conflict, std::int64_t now) {
    std::optional<std::int64_t> existing;
    {
      auto q = query("SELECT rowid FROM schedules WHERE id = ?1");
      q.bind(1, s.spec.id);
      if (q.step()) existing = q.i64(0);
    }
    const auto trigger_text = s.spec.trigger.to_string();
    const auto options_text = to_string(s.spec.options);
    if (existing) {
      if (on_conflict == conflict_policy::error) throw schedule_conflict(s.spec.id);
      if (on_conflict == conflict_policy::keep) return add_outcome::kept;
      auto q = query(
          "UPDATE schedules SET task = ?2, trigger_text = ?3, payload = ?4, options_text = ?5, "
          "next_fire_us = ?6,"
          " quarantine = NULL, updated_us = ?7 WHERE rowid = ?1");
      q.bind(1, *existing).bind(2, s.spec.task).bind(3, trigger_text).bind(4, s.spec.payload);
      q.bind(5, options_text).bind(6, s.next_fire).bind(7, now).run();
      return add_outcome::replaced;
    }
    auto q = query(
        "INSERT INTO schedules(id, task, trigger_text, payload, options_text, paused, next_fire_us, "
        "last_fire_us,"
        " lease_owner, lease_until_us, quarantine, created_us, updated_us)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', 0, NULL, ?9, ?9)");
    q.bind(1, s.spec.id).bind(2, s.spec.task).bind(3, trigger_text).bind(4, s.spec.payload);
    q.bind(5, options_text).bind(6, s.spec.paused ? 1 : 0).bind(7, s.next_fire).bind(8, s.last_fire);
    q.bind(9, now).run();
    return add_outcome::added;
  }

  std::optional<loaded_schedule> read_schedule(const std::string& id) {
    auto q = query(PUNCTUAL_SQLITE_SCHEDULE_COLUMNS " FROM schedules WHERE id = ?1");
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return load_schedule(q);
  }

  loaded_schedule load_schedule(const detail::sqlite_query& q) {
    loaded_schedule l;
    l.rowid = q.i64(0);
    schedule_record& r = l.record;
    r.spec.id = q.text(1);
    r.spec.task = q.text(2);
    l.stored_trigger_text = q.text(3);
    r.spec.payload = q.text(4);
    l.stored_options_text = q.text(5);
    r.spec.paused = q.i64(6) != 0;
    r.next_fire = q.opt_time(7);
    r.last_fire = q.opt_time(8);
    r.lease_owner = q.text(9);
    r.lease_until = q.time(10);
    l.stored_quarantine = q.text(11);
    r.trigger_text = l.stored_trigger_text;
    std::string why_trigger, why_options;
    r.spec.trigger = parse_trigger_cached(l.stored_trigger_text, &why_trigger);
    r.spec.options = parse_options_cached(l.stored_options_text, &why_options);
    l.trigger_ok = why_trigger.empty();
    l.options_ok = why_options.empty();
    std::string why = why_trigger;
    if (!why.empty() && !why_options.empty()) why += "; ";
    why += why_options;
    r.quarantine = !l.stored_quarantine.empty() ? l.stored_quarantine : why;
    return l;
  }

  /// The trigger stored as `text`; on failure an empty trigger, with the reason appended to *why.
  trigger parse_trigger_cached(const std::string& text, std::string* why) {
    if (text.empty()) return {};
    if (auto it = trigger_cache_.find(text); it != trigger_cache_.end()) return it->second;
    try {
      auto t = parse_trigger(text);
      if (trigger_cache_.size() >= cache_limit) trigger_cache_.clear();
      trigger_cache_.emplace(text, t);
      return t;
    } catch (const std::exception& e) {
      if (!why->empty()) *why += "; ";
      *why += "stored trigger does not parse: ";
      *why += e.what();
      return {};
    }
  }

  /// The options stored as `text`, one object for every row that stores the same text; on failure
  /// the defaults, with the reason appended to *why.
  std::shared_ptr<const schedule_options> shared_options_cached(const std::string& text, std::string* why) {
    if (text.empty()) return default_options_;
    if (auto it = options_cache_.find(text); it != options_cache_.end()) return it->second;
    try {
      auto o = std::make_shared<const schedule_options>(parse_schedule_options(text));
      if (options_cache_.size() >= cache_limit) options_cache_.clear();
      options_cache_.emplace(text, o);
      return o;
    } catch (const std::exception& e) {
      if (!why->empty()) *why += "; ";
      *why += "stored options do not parse: ";
      *why += e.what();
      return default_options_;
    }
  }
  schedule_options parse_options_cached(const std::string& text, std::string* why) {
    return *shared_options_cached(text, why);
  }

  job_record load_job(const detail::sqlite_query& q) {
    job_record j;
    j.id = q.i64(0);
    j.schedule_id = q.text(1);
    j.task = q.text(2);
    j.payload = q.text(3);
    j.fire_time = q.time(4);
    j.run_at = q.time(5);
    j.attempt = static_cast<std::uint32_t>(q.i64(6));
    j.node = q.text(8);
    j.lease_until = q.time(9);
    j.started = q.opt_time(10);
    j.finished = q.opt_time(11);
    j.exit_code = q.opt_int(12);
    j.signal = q.opt_int(13);
    j.error = q.text(14);
    j.output = q.text(15);
    j.process.pid = q.i64(16);
    j.process.pgid = q.i64(17);
    j.process.start_time = static_cast<std::uint64_t>(q.i64(18));
    const auto state = q.text(7);
    try {
      j.state = parse_job_state(state);
    } catch (const parse_error&) {
      j.state = job_state::failed;
      j.error = "stored state \"" + state + "\" is unknown; " + j.error;
    }
    return j;
  }

  /// INSERT OR IGNORE of one job; its new id, or 0 when (schedule_id, fire_time) exists.
  std::int64_t insert_job(const job_record& j) {
    auto q = query(
        "INSERT OR IGNORE INTO jobs(schedule_id, task, payload, fire_time_us, run_at_us, attempt, state, "
        "node,"
        " lease_until_us, started_us, finished_us, exit_code, signal, error, output, pid, pgid, proc_start)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)");
    q.bind(1, j.schedule_id).bind(2, j.task).bind(3, j.payload).bind(4, j.fire_time).bind(5, j.run_at);
    q.bind(6, j.attempt)
        .bind(7, to_string(j.state))
        .bind(8, j.node)
        .bind(9, j.lease_until)
        .bind(10, j.started);
    q.bind(11, j.finished).bind(12, j.exit_code).bind(13, j.signal).bind(14, j.error).bind(15, j.output);
    q.bind(16, j.process.pid)
        .bind(17, j.process.pgid)
        .bind(18, static_cast<std::int64_t>(j.process.start_time));
    if (q.run() == 0) return 0;
    return sqlite3_last_insert_rowid(db_);
  }

  std::size_t purge(const retention& r, time_point now) {
    if (!r.keep_last && !r.max_age) return 0;
    std::optional<std::int64_t> cutoff;
    if (r.max_age) {
      // finished + max_age < now  <=>  finished < now - max_age (saturated)
      const auto n = detail::sqlite_us(now);
      const auto a = r.max_age->count();
      if (a >= 0)
        cutoff = n < std::numeric_limits<std::int64_t>::min() + a ? std::numeric_limits<std::int64_t>::min()
                                                                  : n - a;
      else
        cutoff = n > std::numeric_limits<std::int64_t>::max() + a ? std::numeric_limits<std::int64_t>::max()
                                                                  : n - a;
    }
    transaction tx(*this);
    auto q = query(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM (SELECT id, finished_us,"
        " row_number() OVER (PARTITION BY schedule_id ORDER BY fire_time_us DESC) AS rank"
        " FROM jobs WHERE state NOT IN ('pending', 'running'))"
        " WHERE rank > ?1 OR finished_us < ?2)");
    if (r.keep_last)
      q.bind(1, static_cast<std::int64_t>(std::min<std::size_t>(*r.keep_last, INT64_MAX)));
    else
      q.bind_null(1);
    q.bind(2, cutoff);
    const auto n = static_cast<std::size_t>(q.run());
    tx.commit();
    return n;
  }

  // ---- background work: change polling and history purge -----------------------------

  void housekeeping() {
    const auto now = std::chrono::steady_clock::now();
    if (options_.poll_interval.count() > 0 && now - last_poll_ >= options_.poll_interval) {
      last_poll_ = now;
      poll_changes();
    }
    if (now - last_wal_check_ >= std::chrono::seconds{1}) {
      last_wal_check_ = now;
      check_wal();
      checkpoint_if_over_bound();
    }
    if (options_.purge_interval.count() > 0 && now - last_purge_ >= options_.purge_interval) {
      last_purge_ = now;
      try {
        if (db_) {
          const auto n = purge(options_.history,
                               std::chrono::time_point_cast<duration>(std::chrono::system_clock::now()));
          (void)n;
        }
      } catch (const detail::sqlite_failure& f) {
        warn("periodic history purge failed: " + f.message + " (" + sqlite_error::code_name(f.code) + ")");
      }
    }
  }

  /// A log grown past its bound (a reader held the automatic checkpoints off) is checkpointed
  /// when idle, and truncated when nobody reads it, without waiting for other connections.
  void checkpoint_if_over_bound() {
    if (!db_ || !wal_mode_ || !wal_lost_.empty() || read_only_ || options_.wal_limit_kib <= 0) return;
    struct stat st {};
    if (::stat(wal_path().c_str(), &st) != 0 || st.st_size <= options_.wal_limit_kib * 1024) return;
    const bool quiet = std::exchange(no_wait_, true);
    int frames = 0, saved = 0;
    if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &saved) == SQLITE_OK &&
        frames == saved)
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    no_wait_ = quiet;
  }

  void poll_changes() {
    if (changes_.empty() || !db_) return;
    try {
      std::int64_t v = 0;
      {
        auto q = query("PRAGMA data_version");
        if (!q.step()) return;
        v = q.i64(0);
      }
      if (v != data_version_) {
        data_version_ = v;
        notify();
      }
    } catch (const detail::sqlite_failure& f) {
      warn("polling for changes failed: " + f.message + " (" + sqlite_error::code_name(f.code) + ")");
    }
  }

  void notify() {
    changes_.notify([this](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        warn(std::string("a change subscriber threw: ") + ex.what());
      } catch (...) {
        warn("a change subscriber threw");
      }
    });
  }

  void warn(const std::string& message) {
    if (!options_.on_warning) return;
    try {
      options_.on_warning("sqlite store: " + message);
    } catch (...) {
    }
  }

  static std::int64_t wall_us() {
    return std::chrono::duration_cast<duration>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  static constexpr std::size_t cache_limit = 4096;

  const std::string path_;
  const sqlite_store_options options_;
  bool is_file_ = true;
  bool read_only_ = false;  // the connection was opened read-only (worker only)
  int synchronous_ = -1;    // the connection's current PRAGMA synchronous (worker only)

  // Shared between callers and the worker.
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<work_item>> queue_;
  bool stopping_ = false;
  std::thread worker_;

  change_subscribers changes_;

  // The worker's own state.
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
  file_id file_id_;
  const std::atomic<bool>* cancel_ = nullptr;
  std::chrono::steady_clock::time_point busy_since_{};
  detail::write_gate gate_;  // write priority between processes (worker only)
  std::chrono::steady_clock::time_point last_poll_{}, last_purge_{}, last_wal_check_{};
  std::int64_t data_version_ = 0;
  bool check_integrity_ = true;  // run the integrity check at the next open
  bool wal_mode_ = false;        // the connection is in WAL mode on a file
  file_id wal_id_;               // the write-ahead log as the connection opened it
  std::string wal_lost_;         // why calls fail: the log is lost and not saved yet
  std::string wal_report_;       // the lost log was saved: the next call fails once with this
  bool no_wait_ = false;         // the busy handler gives up at once
  std::unordered_map<std::string, trigger> trigger_cache_;
  std::unordered_map<std::string, std::shared_ptr<const schedule_options>> options_cache_;
  const std::shared_ptr<const schedule_options> default_options_ = std::make_shared<const schedule_options>();
};

namespace detail {

/// An SQLite connection closed at scope exit (for sqlite_store::recover).
struct sqlite_connection {
  sqlite3* db = nullptr;
  sqlite_connection() = default;
  sqlite_connection(const sqlite_connection&) = delete;
  sqlite_connection& operator=(const sqlite_connection&) = delete;
  ~sqlite_connection() { sqlite3_close_v2(db); }
  void open(const std::string& path, int flags) {
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK)
      throw sqlite_error("recover", db ? sqlite3_extended_errcode(db) : rc,
                         "cannot open \"" + path + "\": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_extended_result_codes(db, 1);
  }
  void fail(const std::string& what) const {
    throw sqlite_error("recover", sqlite3_extended_errcode(db), what + ": " + sqlite3_errmsg(db));
  }
  void exec(const char* sql) const {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }
  /// The rows of a one-column integer query, as far as they can be read.
  void collect(const std::string& sql, std::set<std::int64_t>& out) const {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK)
      while (sqlite3_step(s) == SQLITE_ROW) out.insert(sqlite3_column_int64(s, 0));
    sqlite3_finalize(s);
  }
  std::vector<std::string> strings(const std::string& sql, int column = 0) const {
    std::vector<std::string> out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) fail(sql);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
      out.emplace_back(t ? t : "");
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) fail(sql);
    return out;
  }
};

/// Copies the readable rows of `table` from `src` to `dst` (the columns both have); returns
/// {copied, known but unreadable}.
inline std::pair<std::size_t, std::size_t> sqlite_recover_table(const sqlite_connection& src,
                                                                const sqlite_connection& dst,
                                                                const std::string& table) {
  const auto theirs = src.strings("PRAGMA table_info(\"" + table + "\")", 1);
  std::string columns, params;
  for (const auto& c : dst.strings("PRAGMA table_info(\"" + table + "\")", 1))
    if (std::find(theirs.begin(), theirs.end(), c) != theirs.end()) {
      columns += (columns.empty() ? "\"" : ", \"") + c + "\"";
      params += params.empty() ? "?" : ", ?";
    }
  std::set<std::int64_t> ids;
  src.collect("SELECT rowid FROM \"" + table + "\" NOT INDEXED ORDER BY rowid", ids);
  src.collect("SELECT rowid FROM \"" + table + "\" NOT INDEXED ORDER BY rowid DESC", ids);
  for (const auto& index :
       src.strings("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = '" + table + "'"))
    src.collect("SELECT rowid FROM \"" + table + "\" INDEXED BY \"" + index + "\"", ids);
  sqlite3_stmt* get = nullptr;
  sqlite3_stmt* put = nullptr;
  const auto get_sql = "SELECT " + columns + " FROM \"" + table + "\" WHERE rowid = ?";
  const auto put_sql = "INSERT INTO \"" + table + "\"(" + columns + ") VALUES(" + params + ")";
  struct finalize {
    sqlite3_stmt*& a;
    sqlite3_stmt*& b;
    ~finalize() {
      sqlite3_finalize(a);
      sqlite3_finalize(b);
    }
  } cleanup{get, put};
  if (sqlite3_prepare_v2(src.db, get_sql.c_str(), -1, &get, nullptr) != SQLITE_OK) src.fail(get_sql);
  if (sqlite3_prepare_v2(dst.db, put_sql.c_str(), -1, &put, nullptr) != SQLITE_OK) dst.fail(put_sql);
  std::size_t copied = 0, lost = 0;
  for (const auto id : ids) {
    sqlite3_reset(get);
    sqlite3_bind_int64(get, 1, id);
    if (sqlite3_step(get) != SQLITE_ROW) {
      ++lost;
      continue;
    }
    sqlite3_reset(put);
    for (int k = 0; k < sqlite3_column_count(get); ++k)
      sqlite3_bind_value(put, k + 1, sqlite3_column_value(get, k));
    if (sqlite3_step(put) != SQLITE_DONE) {
      ++lost;
      continue;
    }
    ++copied;
  }
  return {copied, lost};
}

}  // namespace detail

inline sqlite_recovery_report sqlite_store::recover(const std::string& source,
                                                    const std::string& destination) {
  struct stat st {};
  if (::stat(destination.c_str(), &st) == 0)
    throw sqlite_error("recover", SQLITE_CANTOPEN,
                       "\"" + destination + "\" already exists; recover writes a new file only");
  if (::stat(source.c_str(), &st) != 0)
    throw sqlite_error("recover", SQLITE_CANTOPEN, "\"" + source + "\": " + std::strerror(errno));
  detail::sqlite_connection src;
  src.open(source, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);  // never writes the source
  {
    // An empty store of this version: its schema, migrations included.
    sqlite_store_options o;
    o.integrity_check_budget = std::chrono::microseconds{0};
    o.poll_interval = o.purge_interval = std::chrono::milliseconds{0};
    sqlite_store fresh(destination, o);
  }
  detail::sqlite_connection dst;
  dst.open(destination, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  dst.exec("BEGIN IMMEDIATE");
  sqlite_recovery_report r;
  std::tie(r.schedules, r.schedules_lost) = detail::sqlite_recover_table(src, dst, "schedules");
  std::tie(r.jobs, r.jobs_lost) = detail::sqlite_recover_table(src, dst, "jobs");
  dst.exec("COMMIT");
  return r;
}

#undef PUNCTUAL_SQLITE_SCHEDULE_COLUMNS
#undef PUNCTUAL_SQLITE_SCHEDULE_COLUMN_LIST
#undef PUNCTUAL_SQLITE_JOB_COLUMN_LIST
#undef PUNCTUAL_SQLITE_JOB_SELECT

PUNCTUAL_END_NAMESPACE
