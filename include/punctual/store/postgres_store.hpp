/// @file store/postgres_store.hpp
/// The PostgreSQL store: schedules, leases and the job history in a PostgreSQL database that
/// several scheduler nodes (processes, machines) share.
///
/// Opt-in: include this header yourself and link libpq (`-lpq`, CMake target
/// `punctual::postgres`); `punctual.hpp` never includes it. POSIX only (the connection's socket
/// is waited on with `asio::posix::stream_descriptor`).
///
/// - libpq's asynchronous API on the store's executor: no thread is blocked per query, and no
///   blocking libpq call runs on the executor (name resolution inside PQconnectStart is the one
///   exception libpq imposes: give `hostaddr` to avoid it).
/// - A small pool of connections (pool_size), each with the store's statements prepared once;
///   a lost connection makes the operation fail (postgres_error) and is re-opened on next use.
/// - Every operation is one transaction (most are a single statement), so a failed or cancelled
///   one changes nothing unless it had committed.
/// - The schema lives in options.schema, is created and migrated forward under an advisory
///   lock (several nodes may start at once), and a database with a newer schema version than
///   this code knows is refused without a change.
/// - Several nodes: acquires use `FOR UPDATE SKIP LOCKED`; leases are judged by the database
///   server's clock by default (use_database_clock); running jobs carry a fencing token.
/// - Change notification through LISTEN/NOTIFY on a channel named after the schema, with
///   polling while the listening connection is down.
#pragma once

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/system_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/job.hpp"
#include "punctual/options_text.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/change_subscribers.hpp"
#include "punctual/store/store.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/parse.hpp"
#include "punctual/trigger/trigger.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// Configuration of a postgres_store.
struct postgres_store_options {
  /// The schema every table lives in (quoted as an identifier; created if missing). Its name
  /// is also the LISTEN/NOTIFY channel.
  std::string schema = "punctual";
  /// Connections for operations (one more is opened for LISTEN once somebody subscribes).
  std::size_t pool_size = 4;
  /// How long opening one connection may take.
  std::chrono::milliseconds connect_timeout{5000};
  /// `SET statement_timeout` of every connection (0: the server's setting).
  std::chrono::milliseconds statement_timeout{10000};
  /// How often the subscribers are woken while the LISTEN connection is down (and a reconnect
  /// of it attempted).
  std::chrono::milliseconds poll_interval{1000};
  /// TCP keepalives of every connection (libpq's keepalives_idle, keepalives_interval,
  /// keepalives_count): a connection whose peer vanished (host down, network cut) while it was
  /// idle is found dead after idle + interval * count of silence, 5 + 2 * 3 = 11 s by default.
  /// This is what notices a lost LISTEN connection, which never sends anything by itself.
  /// 0 s (idle): libpq's keepalive defaults (the system's). A keepalive parameter in the
  /// connection string wins over these.
  std::chrono::seconds keepalive_idle{5};
  std::chrono::seconds keepalive_interval{2};
  int keepalive_count = 3;
  /// libpq's tcp_user_timeout (Linux): a connection whose data sent stays unacknowledged this
  /// long is closed by the kernel, so a statement sent to a vanished server fails after it
  /// instead of waiting for TCP's retransmissions (~15 min). 0: the system's. A tcp_user_timeout
  /// in the connection string wins.
  ///
  /// Neither notices a peer whose TCP stack still answers but which never replies (a hung
  /// server, a proxy that swallows the traffic): there the bound is the caller's. The
  /// scheduler's guard cancels every store call after scheduler_options::store_timeout, and a
  /// cancelled operation's connection is closed. So a scheduler on this store reports a
  /// black-holed server (health() unhealthy, "store error streak") within store_timeout of its
  /// next store call, i.e. at most max_wait + store_timeout after the fault
  /// (tests/integration/postgres_faults.cpp measures it).
  std::chrono::milliseconds tcp_user_timeout{10000};
  /// Leases judged by the database server's clock (store.hpp, "Clocks"): a lease's length comes
  /// from the call, its start and expiry from the server's clock_timestamp(). False: the
  /// callers' times are compared, like the other stores (the conformance suite needs that).
  /// Every node sharing a schema must use the same setting.
  bool use_database_clock = true;
  /// Called (on the store's executor) with a message when the store recovers from a problem by
  /// itself: a re-opened connection, a quarantined schedule, a server notice, a lost LISTEN
  /// connection. Never contains a password. Must not block or call into the store.
  std::function<void(std::string_view)> on_warning;
};

/// What every failing PostgreSQL operation throws: `postgres <display name>: <op>: <message>
/// (SQLSTATE <code>)`. Connection failures carry a class 08 state ("08006"); server errors
/// their own ("57P01" when the backend was terminated, "40P01" for a deadlock, ...). The message
/// never contains the connection's password.
class postgres_error : public std::runtime_error {
 public:
  postgres_error(std::string sqlstate, const std::string& message)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  /// The five-character SQLSTATE ("" when unknown).
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

namespace detail {

/// Where the password is in a libpq connection string: [begin, end) ranges of every password
/// value, and whether the string could be scanned to its end (else `tail` is where it stopped).
struct conninfo_secrets {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::optional<std::size_t> tail;  ///< unscannable from here on (redacted entirely)
};

inline bool pg_is_uri(std::string_view s) {
  return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}

inline conninfo_secrets find_conninfo_secrets(std::string_view s) {
  conninfo_secrets out;
  if (pg_is_uri(s)) {
    const std::size_t start = s.find("://") + 3;
    const std::size_t path = s.find_first_of("/?", start);
    const std::size_t auth_end = path == std::string_view::npos ? s.size() : path;
    const std::size_t at = s.substr(0, auth_end).rfind('@');
    if (at != std::string_view::npos && at >= start) {
      const std::size_t colon = s.substr(0, at).find(':', start);
      if (colon != std::string_view::npos) out.ranges.emplace_back(colon + 1, at);
    }
    const std::size_t query = s.find('?', start);
    if (query != std::string_view::npos) {
      std::size_t p = query + 1;
      while (p <= s.size()) {
        std::size_t amp = s.find('&', p);
        if (amp == std::string_view::npos) amp = s.size();
        const auto param = s.substr(p, amp - p);
        const auto eq = param.find('=');
        if (eq != std::string_view::npos && param.substr(0, eq) == "password")
          out.ranges.emplace_back(p + eq + 1, amp);
        p = amp + 1;
      }
    }
    return out;
  }
  std::size_t p = 0;
  auto space = [&](std::size_t i) { return i < s.size() && std::isspace(static_cast<unsigned char>(s[i])); };
  while (true) {
    while (space(p)) ++p;
    if (p >= s.size()) break;
    const std::size_t key_begin = p;
    while (p < s.size() && s[p] != '=' && !space(p)) ++p;
    const auto key = s.substr(key_begin, p - key_begin);
    while (space(p)) ++p;
    if (p >= s.size() || s[p] != '=') {
      out.tail = key_begin;
      break;
    }
    ++p;
    while (space(p)) ++p;
    const std::size_t value_begin = p;
    if (p < s.size() && s[p] == '\'') {
      ++p;
      while (p < s.size() && s[p] != '\'') p += s[p] == '\\' ? 2 : 1;
      if (p >= s.size()) {
        out.tail = key == "password" ? value_begin : key_begin;
        break;
      }
      ++p;
    } else {
      while (p < s.size() && !space(p)) p += s[p] == '\\' ? 2 : 1;
      p = std::min(p, s.size());
    }
    if (key == "password") out.ranges.emplace_back(value_begin, p);
  }
  return out;
}

}  // namespace detail

/// `conninfo` (a URI or key=value words, as libpq takes them) with every password replaced by
/// `***`; the rest from a point where it cannot be read on is replaced by `***` too.
///
/// @code
/// redact_conninfo("postgresql://app:secret@db/prod") == "postgresql://app:***@db/prod"
/// redact_conninfo("host=db password='s e c' user=app") == "host=db password=*** user=app"
/// @endcode
inline std::string redact_conninfo(std::string_view conninfo) {
  const auto secrets = detail::find_conninfo_secrets(conninfo);
  std::string out;
  std::size_t p = 0;
  const std::size_t end = secrets.tail.value_or(conninfo.size());
  for (auto [b, e] : secrets.ranges) {
    if (b >= end) break;
    out.append(conninfo.substr(p, b - p));
    out += "***";
    p = e;
  }
  if (p < end) out.append(conninfo.substr(p, end - p));
  if (secrets.tail) out += "***";
  return out;
}

namespace detail {

/// The completion signature of a store operation returning T.
template <class T>
struct pg_signature {
  using type = void(std::exception_ptr, T);
};
template <>
struct pg_signature<void> {
  using type = void(std::exception_ptr);
};

/// What an operation ended with, carried to the caller as a value: co_spawn keeps a copy of an
/// exception_ptr it completes with and releases it on the strand, unordered with the caller's
/// use of the exception; one made here has no other owner.
template <class T>
struct pg_outcome {
  std::exception_ptr error;
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
};

/// Runs `work` and returns its result or exception as a pg_outcome.
template <class T>
asio::awaitable<pg_outcome<T>> pg_capture(asio::awaitable<T> work) {
  pg_outcome<T> o;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(work);
    } else {
      T v = co_await std::move(work);
      o.value.emplace(std::move(v));
    }
  } catch (...) {
    o.error = std::current_exception();
  }
  co_return o;
}

/// `text` as valid UTF-8 without NUL bytes (what a PostgreSQL text value can hold): each invalid
/// byte and each NUL becomes U+FFFD.
inline std::string pg_text(std::string_view text) {
  auto valid_at = [&](std::size_t i) -> std::size_t {  // length of a valid sequence at i, or 0
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) return 0;
    if (c < 0x80) return 1;
    std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || i + n > text.size()) return 0;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
    const auto c1 = static_cast<unsigned char>(text[i + 1]);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
        (c == 0xF4 && c1 > 0x8F))
      return 0;
    return n;
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const auto n = valid_at(i);
    if (n == 0) break;
    i += n;
  }
  if (i == text.size()) return std::string(text);
  std::string out(text.substr(0, i));
  while (i < text.size()) {
    const auto n = valid_at(i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

/// Builds the JSON arrays of objects that batch operations pass as one json parameter (json,
/// not jsonb: json_to_recordset reads the text in one pass; jsonb would build and search a tree).
class pg_json {
 public:
  void begin_object() {
    out_ += out_.empty() ? "[{" : ",{";
    first_ = true;
  }
  void end_object() { out_ += '}'; }
  std::string take() {
    if (out_.empty()) return "[]";
    out_ += ']';
    return std::move(out_);
  }
  void add(std::string_view key, std::int64_t v) { field(key) += std::to_string(v); }
  void add(std::string_view key, const std::optional<time_point>& v) {
    if (v)
      add(key, static_cast<std::int64_t>(v->time_since_epoch().count()));
    else
      field(key) += "null";
  }
  void add(std::string_view key, const std::optional<int>& v) {
    if (v)
      add(key, static_cast<std::int64_t>(*v));
    else
      field(key) += "null";
  }
  void add(std::string_view key, std::string_view text) {
    std::string& o = field(key);
    o += '"';
    for (const char ch : pg_text(text)) {
      const auto c = static_cast<unsigned char>(ch);
      if (ch == '"' || ch == '\\') {
        o += '\\';
        o += ch;
      } else if (c < 0x20) {
        static constexpr char hex[] = "0123456789abcdef";
        o += "\\u00";
        o += hex[c >> 4];
        o += hex[c & 15];
      } else {
        o += ch;
      }
    }
    o += '"';
  }

 private:
  std::string& field(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += key;
    out_ += "\":";
    return out_;
  }
  std::string out_;
  bool first_ = true;
};

/// The text-format parameters of one statement.
class pg_params {
 public:
  pg_params& add(std::string_view v) {
    values_.emplace_back(pg_text(v));
    return *this;
  }
  pg_params& add(const std::string& v) { return add(std::string_view(v)); }
  pg_params& add(const char* v) { return add(std::string_view(v)); }
  pg_params& add(std::int64_t v) {
    values_.emplace_back(std::to_string(v));
    return *this;
  }
  pg_params& add(time_point t) { return add(static_cast<std::int64_t>(t.time_since_epoch().count())); }
  pg_params& add(bool v) {
    values_.emplace_back(v ? "t" : "f");
    return *this;
  }
  template <class T>
  pg_params& add(const std::optional<T>& v) {
    return v ? add(*v) : add_null();
  }
  pg_params& add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  int size() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> p;
    for (auto& v : values_) p.push_back(v ? v->c_str() : nullptr);
    return p;
  }

 private:
  std::vector<std::optional<std::string>> values_;
};

/// One statement's result rows.
class pg_result {
 public:
  pg_result() = default;
  explicit pg_result(PGresult* r) : r_(r, &PQclear) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col),
                       static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
  }
  std::int64_t i64(int row, int col) const {
    std::int64_t v = 0;
    const char* p = PQgetvalue(r_.get(), row, col);
    std::from_chars(p, p + PQgetlength(r_.get(), row, col), v);
    return v;
  }
  bool boolean(int row, int col) const { return PQgetvalue(r_.get(), row, col)[0] == 't'; }
  time_point time(int row, int col) const { return time_point{duration{i64(row, col)}}; }
  std::optional<time_point> opt_time(int row, int col) const {
    return is_null(row, col) ? std::nullopt : std::optional<time_point>(time(row, col));
  }
  std::optional<int> opt_int(int row, int col) const {
    return is_null(row, col) ? std::nullopt : std::optional<int>(static_cast<int>(i64(row, col)));
  }

 private:
  std::shared_ptr<PGresult> r_;
};

/// One libpq connection and the descriptor that waits on its socket.
struct pg_connection {
  explicit pg_connection(const asio::strand<asio::any_io_executor>& ex) : socket(ex) {}
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;
  ~pg_connection() {
    unwatch();  // the descriptor never closes libpq's socket: PQfinish does
    if (pg) PQfinish(pg);
  }
  void watch() {
    if (!socket.is_open() && PQsocket(pg) >= 0) socket.assign(PQsocket(pg));
  }
  void unwatch() {
    if (socket.is_open()) socket.release();
  }
  /// After each libpq call that may have dropped the connection: a socket libpq closed must
  /// leave the reactor now, before its number can be reused by another connection.
  void forget_closed_socket() {
    if (socket.is_open() && PQsocket(pg) != socket.native_handle()) socket.release();
  }
  bool usable() const {
    return pg && PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE && !PQisBusy(pg);
  }

  PGconn* pg = nullptr;
  asio::posix::stream_descriptor socket;
  std::uint64_t prepared = 0;  // bit k: statement k is prepared on this connection
  bool timed_out = false;      // the connect deadline passed
  bool self_cancel = false;    // a wait was cancelled because the socket was found ready
};

/// A job's columns in the order load_job reads them.
#define PUNCTUAL_PG_JOB_COLUMNS(p)                                                                     \
  p "id, " p "schedule_id, " p "task, " p "payload, " p "fire_time, " p "run_at, " p "attempt, " p     \
    "state, " p "node, " p "lease_until, " p "started, " p "finished, " p "exit_code, " p "signal, " p \
    "error, " p "output, " p "pid, " p "pgid, " p "proc_start, " p "lease_token"
#define PUNCTUAL_PG_SCHEDULE_COLUMNS(p)                                                                  \
  p "id, " p "task, " p "trigger_text, " p "payload, " p "options_text, " p "paused, " p "next_fire, " p \
    "last_fire, " p "lease_owner, " p "lease_until, " p "quarantine"
#define PUNCTUAL_PG_DB_NOW "coalesce($4::bigint, now_us())"

/// The store's prepared statements (prepared on each connection when first used).
enum class pg_stmt : int {
  insert_schedule,
  replace_schedule,
  remove_schedule,
  get_schedule,
  get_schedule_for_update,
  list_schedules,
  write_schedule,
  acquire_schedules,
  quarantine_schedule,
  release_schedules,
  add_job,
  acquire_jobs,
  update_jobs,
  release_jobs,
  extend_leases,
  release_leases,
  find_abandoned,
  write_abandoned,
  next_due,
  list_jobs,
  purge_jobs,
  count
};

inline const char* pg_statement_text(pg_stmt s) {
  switch (s) {
    case pg_stmt::insert_schedule:
      return "INSERT INTO schedules(id, task, trigger_text, payload, options_text, paused, next_fire, "
             "last_fire)"
             " VALUES($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING "
             "notify_changed(1)";
    case pg_stmt::replace_schedule:
      return "INSERT INTO schedules(id, task, trigger_text, payload, options_text, paused, next_fire, "
             "last_fire)"
             " VALUES($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET task = excluded.task,"
             " trigger_text = excluded.trigger_text, payload = excluded.payload,"
             " options_text = excluded.options_text, next_fire = excluded.next_fire, quarantine = NULL,"
             " updated = now() RETURNING notify_changed(1)";
    case pg_stmt::remove_schedule:
      return "WITH d AS (DELETE FROM schedules WHERE id = $1 RETURNING id),"
             " c AS (UPDATE jobs SET state = 'cancelled', error = 'schedule removed', node = ''"
             " WHERE state = 'pending' AND schedule_id IN (SELECT id FROM d) RETURNING 1)"
             " SELECT notify_changed(count(*)) FROM d";
    case pg_stmt::get_schedule:
      return "SELECT " PUNCTUAL_PG_SCHEDULE_COLUMNS("") " FROM schedules WHERE id = $1";
    case pg_stmt::get_schedule_for_update:
      return "SELECT " PUNCTUAL_PG_SCHEDULE_COLUMNS("") " FROM schedules WHERE id = $1 FOR UPDATE";
    case pg_stmt::list_schedules:
      return "SELECT " PUNCTUAL_PG_SCHEDULE_COLUMNS("") " FROM schedules ORDER BY id";
    case pg_stmt::write_schedule:
      return "UPDATE schedules SET task = $2, trigger_text = $3, payload = $4, options_text = $5, paused = "
             "$6,"
             " next_fire = $7, last_fire = $8, quarantine = $9, updated = now() WHERE id = $1"
             " RETURNING " PUNCTUAL_PG_SCHEDULE_COLUMNS("") ", notify_changed(1)";
    case pg_stmt::acquire_schedules:
      // $1 now, $2 node, $3 lease_until, $4 the database's now (NULL: the server's clock), $5 limit
      return "WITH c AS (SELECT " PUNCTUAL_PG_DB_NOW
             " AS db_now),"
             " picked AS (SELECT s.id FROM schedules s, c WHERE s.next_fire <= $1 AND NOT s.paused"
             " AND s.quarantine IS NULL AND (s.lease_owner = '' OR s.lease_owner = $2 OR s.lease_db < "
             "c.db_now)"
             " ORDER BY s.next_fire, s.id LIMIT $5 FOR UPDATE OF s SKIP LOCKED)"
             " UPDATE schedules s SET lease_owner = $2, lease_until = $3, lease_db = c.db_now + ($3 - $1)"
             " FROM picked, c WHERE s.id = picked.id RETURNING " PUNCTUAL_PG_SCHEDULE_COLUMNS("s.");
    case pg_stmt::quarantine_schedule:
      return "UPDATE schedules SET quarantine = $2, lease_owner = '', lease_until = 0, lease_db = 0"
             " WHERE id = $1 AND lease_owner = $3";
    case pg_stmt::release_schedules:
      // $1 node, $2 releases [{id, next_fire, last_fire}], $3 jobs (as add_job's columns)
      return "WITH r AS (SELECT * FROM json_to_recordset($2::json) AS x(id text, next_fire bigint,"
             " last_fire bigint)),"
             " held AS (UPDATE schedules s SET next_fire = r.next_fire,"
             " last_fire = coalesce(r.last_fire, s.last_fire), lease_owner = '', lease_until = 0, lease_db = "
             "0,"
             " updated = now() FROM r WHERE s.id = r.id AND s.lease_owner = $1 AND $1 <> '' RETURNING s.id),"
             " j AS (SELECT * FROM json_to_recordset($3::json) AS x(schedule_id text,"
             " task text, payload text, fire_time bigint, run_at bigint, attempt bigint, state text, node "
             "text,"
             " lease_until bigint, started bigint, finished bigint, exit_code integer, signal integer,"
             " error text, output text, pid bigint, pgid bigint, proc_start bigint, ord bigint)),"
             " ins AS (INSERT INTO jobs(schedule_id, task, payload, fire_time, run_at, attempt, state, node,"
             " lease_until, lease_db, started, finished, exit_code, signal, error, output, pid, pgid, "
             "proc_start)"
             " SELECT schedule_id, task, payload, fire_time, run_at, attempt, state, node, lease_until,"
             " lease_until, started, finished, exit_code, signal, error, output, pid, pgid, proc_start FROM j"
             " WHERE schedule_id IN (SELECT id FROM held) ORDER BY ord"
             " ON CONFLICT (schedule_id, fire_time) DO NOTHING RETURNING 1)"
             " SELECT (SELECT count(*) FROM ins), notify_changed((SELECT count(*) FROM held))";
    case pg_stmt::add_job:
      return "INSERT INTO jobs(schedule_id, task, payload, fire_time, run_at, attempt, state, node, "
             "lease_until,"
             " lease_db, started, finished, exit_code, signal, error, output, pid, pgid, proc_start)"
             " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
             " ON CONFLICT (schedule_id, fire_time) DO NOTHING RETURNING id, notify_changed(1)";
    case pg_stmt::acquire_jobs:
      // $1 node, $2 now, $3 lease_until, $4 the database's now, $5 limit
      return "WITH c AS (SELECT " PUNCTUAL_PG_DB_NOW " AS db_now),"
             " picked AS (SELECT id FROM jobs WHERE state = 'pending' AND run_at <= $2 ORDER BY run_at, id"
             " LIMIT $5 FOR UPDATE SKIP LOCKED),"
             " taken AS (UPDATE jobs j SET state = 'running', node = $1, lease_until = $3,"
             " lease_db = c.db_now + ($3 - $2), started = $2, lease_token = nextval('lease_tokens')"
             " FROM picked, c WHERE j.id = picked.id RETURNING j.*)"
             " SELECT " PUNCTUAL_PG_JOB_COLUMNS("t.") ", s.options_text FROM taken t"
             " LEFT JOIN schedules s ON s.id = t.schedule_id ORDER BY t.run_at, t.id";
    case pg_stmt::update_jobs:
      return "WITH u AS (SELECT * FROM json_to_recordset($2::json) AS x(id bigint, state text, run_at "
             "bigint,"
             " attempt bigint, started bigint, finished bigint, exit_code integer, signal integer, error "
             "text,"
             " output text, pid bigint, pgid bigint, proc_start bigint, lease_token bigint)),"
             " w AS (UPDATE jobs j SET state = u.state, run_at = u.run_at, attempt = u.attempt,"
             " started = u.started, finished = u.finished, exit_code = u.exit_code, signal = u.signal,"
             " error = u.error, output = u.output, pid = u.pid, pgid = u.pgid, proc_start = u.proc_start,"
             " node = CASE WHEN u.state = 'pending' THEN '' ELSE j.node END FROM u"
             " WHERE j.id = u.id AND j.state = 'running' AND j.node = $1"
             " AND (u.lease_token = 0 OR j.lease_token = u.lease_token) RETURNING j.state)"
             " SELECT notify_changed((SELECT count(*) FROM w WHERE state = 'pending'))";
    case pg_stmt::release_jobs:
      return "WITH r AS (UPDATE jobs SET state = 'pending', node = '', started = NULL"
             " WHERE state = 'running' AND node = $1 AND NOT (id = ANY($2::bigint[])) RETURNING 1)"
             " SELECT notify_changed(count(*)) FROM r";
    case pg_stmt::extend_leases:
      return "WITH s AS (UPDATE schedules SET lease_db = lease_db + ($2 - lease_until), lease_until = $2"
             " WHERE lease_owner = $1 AND $1 <> '' RETURNING 1),"
             " j AS (UPDATE jobs SET lease_db = lease_db + ($2 - lease_until), lease_until = $2"
             " WHERE state = 'running' AND node = $1 RETURNING 1)"
             " SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM j)";
    case pg_stmt::release_leases:
      return "WITH r AS (UPDATE schedules SET lease_owner = '', lease_until = 0, lease_db = 0"
             " WHERE lease_owner = $1 AND $1 <> '' RETURNING 1) SELECT notify_changed(count(*)) FROM r";
    case pg_stmt::find_abandoned:
      // $1 the database's now (NULL: the server's clock), $2 node or NULL
      return "SELECT " PUNCTUAL_PG_JOB_COLUMNS("j.") ", s.options_text FROM jobs j"
             " LEFT JOIN schedules s ON s.id = j.schedule_id"
             " WHERE j.state = 'running' AND (j.lease_db < coalesce($1::bigint, now_us()) OR j.node = $2)"
             " ORDER BY j.id FOR UPDATE OF j SKIP LOCKED";
    case pg_stmt::write_abandoned:
      return "WITH u AS (SELECT * FROM json_to_recordset($1::json) AS x(id bigint, state text, attempt "
             "bigint,"
             " run_at bigint, node text, started bigint, finished bigint, error text)),"
             " w AS (UPDATE jobs j SET state = u.state, attempt = u.attempt, run_at = u.run_at, node = "
             "u.node,"
             " started = u.started, finished = u.finished, error = u.error,"
             " lease_token = nextval('lease_tokens') FROM u WHERE j.id = u.id RETURNING j.id, j.lease_token,"
             " j.state)"
             " SELECT id, lease_token, notify_changed((SELECT count(*) FROM w WHERE state = 'pending')) FROM "
             "w";
    case pg_stmt::next_due:
      return "SELECT (SELECT min(next_fire) FROM schedules WHERE next_fire IS NOT NULL AND NOT paused"
             " AND quarantine IS NULL AND lease_owner = ''),"
             " (SELECT min(greatest(next_fire, lease_until + 1)) FROM schedules WHERE lease_owner <> ''"
             " AND next_fire IS NOT NULL AND NOT paused AND quarantine IS NULL),"
             " (SELECT min(run_at) FROM jobs WHERE state = 'pending')";
    case pg_stmt::list_jobs:
      return "SELECT " PUNCTUAL_PG_JOB_COLUMNS("") " FROM jobs WHERE ($1::text IS NULL OR schedule_id = $1)"
             " AND ($2::text IS NULL OR state = $2) ORDER BY fire_time DESC, id DESC LIMIT $3";
    case pg_stmt::purge_jobs:
      return "WITH d AS (DELETE FROM jobs WHERE id IN (SELECT id FROM (SELECT id, finished,"
             " row_number() OVER (PARTITION BY schedule_id ORDER BY fire_time DESC) AS rank FROM jobs"
             " WHERE state NOT IN ('pending', 'running')) x WHERE rank > $1 OR finished < $2) RETURNING 1)"
             " SELECT count(*) FROM d";
    case pg_stmt::count: break;
  }
  return "";
}

/// The schema, as forward migrations (run with search_path set to the store's schema):
/// pg_migrations[v] takes a schema from version v to v + 1.
inline constexpr const char* pg_migrations[] = {
    // 0 -> 1
    "CREATE FUNCTION now_us() RETURNS bigint LANGUAGE sql VOLATILE"
    " AS 'SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint';"
    "CREATE FUNCTION notify_changed(n bigint) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$"
    " BEGIN IF n > 0 THEN PERFORM pg_notify(current_schema(), ''); END IF; RETURN n; END $$;"
    "CREATE SEQUENCE lease_tokens;"
    "CREATE TABLE schedules(id text COLLATE \"C\" PRIMARY KEY, task text NOT NULL, trigger_text text NOT "
    "NULL,"
    " payload text NOT NULL DEFAULT '', options_text text NOT NULL DEFAULT '',"
    " paused boolean NOT NULL DEFAULT false, next_fire bigint, last_fire bigint,"
    " lease_owner text NOT NULL DEFAULT '', lease_until bigint NOT NULL DEFAULT 0,"
    " lease_db bigint NOT NULL DEFAULT 0, quarantine text,"
    " created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX schedules_due ON schedules(next_fire, id) WHERE NOT paused AND quarantine IS NULL;"
    "CREATE INDEX schedules_lease ON schedules(lease_owner) WHERE lease_owner <> '';"
    "CREATE TABLE jobs(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " schedule_id text COLLATE \"C\" NOT NULL, task text NOT NULL, payload text NOT NULL DEFAULT '',"
    " fire_time bigint NOT NULL, run_at bigint NOT NULL, attempt bigint NOT NULL DEFAULT 1,"
    " state text NOT NULL, node text NOT NULL DEFAULT '', lease_until bigint NOT NULL DEFAULT 0,"
    " lease_db bigint NOT NULL DEFAULT 0, lease_token bigint NOT NULL DEFAULT 0, started bigint,"
    " finished bigint, exit_code integer, signal integer, error text NOT NULL DEFAULT '',"
    " output text NOT NULL DEFAULT '', pid bigint NOT NULL DEFAULT 0, pgid bigint NOT NULL DEFAULT 0,"
    " proc_start bigint NOT NULL DEFAULT 0, UNIQUE(schedule_id, fire_time));"
    "CREATE INDEX jobs_pending ON jobs(run_at, id) WHERE state = 'pending';"
    "CREATE INDEX jobs_running ON jobs(node) WHERE state = 'running';",
};

/// The parameters the store connects with (for PQconnectStartParams with expand_dbname): the
/// keepalive and tcp_user_timeout settings of `o` first (those not 0), then `dbname` =
/// `conninfo`, which libpq expands and whose own settings therefore win.
inline std::vector<std::pair<std::string, std::string>> pg_connect_parameters(
    const std::string& conninfo, const postgres_store_options& o) {
  std::vector<std::pair<std::string, std::string>> p;
  if (o.keepalive_idle.count() > 0) {
    p.emplace_back("keepalives", "1");
    p.emplace_back("keepalives_idle", std::to_string(o.keepalive_idle.count()));
    if (o.keepalive_interval.count() > 0)
      p.emplace_back("keepalives_interval", std::to_string(o.keepalive_interval.count()));
    if (o.keepalive_count > 0) p.emplace_back("keepalives_count", std::to_string(o.keepalive_count));
  }
  if (o.tcp_user_timeout.count() > 0)
    p.emplace_back("tcp_user_timeout", std::to_string(o.tcp_user_timeout.count()));
  p.emplace_back("dbname", conninfo);
  return p;
}

/// A PostgreSQL identifier in double quotes.
inline std::string pg_quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

/// The state a postgres_store shares with the coroutines running its operations: everything
/// but the subscriber list and the immutable configuration is used on the strand only.
class pg_core : public std::enable_shared_from_this<pg_core> {
 public:
  static constexpr int schema_version = static_cast<int>(std::size(pg_migrations));

  pg_core(asio::any_io_executor ex, std::string conninfo, postgres_store_options o)
      : strand_(asio::make_strand(std::move(ex))),
        conninfo_(std::move(conninfo)),
        options_(std::move(o)),
        display_(redact_conninfo(conninfo_)),
        setup_sql_(make_setup_sql()),
        connect_parameters_(pg_connect_parameters(conninfo_, options_)) {
    const auto secrets = find_conninfo_secrets(conninfo_);
    for (auto [b, e] : secrets.ranges)
      if (e > b) secrets_.emplace_back(conninfo_.substr(b, e - b));
    if (secrets.tail) secrets_.emplace_back(conninfo_.substr(*secrets.tail));
    if (const char* p = std::getenv("PGPASSWORD"); p && *p) secrets_.emplace_back(p);
    if (options_.pool_size == 0) options_.pool_size = 1;
  }

  const asio::strand<asio::any_io_executor>& strand() const { return strand_; }
  const std::string& display_name() const { return display_; }
  change_subscribers& changes() { return changes_; }

  // ---- the pool ---------------------------------------------------------------------

  /// A connection taken from the pool for one operation; given back (or dropped when it is not
  /// clean: mid-transaction, busy, broken) when destroyed.
  class lease {
   public:
    lease() = default;
    lease(pg_core* core, std::unique_ptr<pg_connection> c, const char* op)
        : core_(core), c_(std::move(c)), op_(op) {
      core_->busy_.push_back(c_.get());
    }
    lease(lease&& o) noexcept : core_(o.core_), c_(std::move(o.c_)), op_(o.op_) {}
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (!c_) return;
      auto& busy = core_->busy_;
      busy.erase(std::remove(busy.begin(), busy.end(), c_.get()), busy.end());
      core_->give_back(std::move(c_));
    }
    pg_connection& operator*() const { return *c_; }
    const char* op() const { return op_; }

   private:
    pg_core* core_ = nullptr;
    std::unique_ptr<pg_connection> c_;
    const char* op_ = "";
  };

  /// A connection for `op`: an idle one, a new one while fewer than pool_size are open, or the
  /// next one given back.
  asio::awaitable<lease> take(const char* op) {
    for (;;) {
      if (closed_) throw error(op, "08003", "the store is closed");
      while (!idle_.empty()) {
        std::unique_ptr<pg_connection> c = std::move(idle_.back());
        idle_.pop_back();
        if (still_alive(*c)) co_return lease(this, std::move(c), op);
        drop(std::move(c), "an idle connection was lost");
      }
      if (open_ < options_.pool_size) {
        ++open_;
        std::unique_ptr<pg_connection> c;
        std::exception_ptr failed;
        try {
          c = co_await open_connection(op, true);
        } catch (...) {
          failed = std::current_exception();
        }
        if (failed) {
          --open_;
          wake_waiter();
          std::rethrow_exception(failed);
        }
        co_return lease(this, std::move(c), op);
      }
      waiter w(this);
      asio::error_code ec;
      co_await w.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (w.given) {
        std::unique_ptr<pg_connection> c = std::move(w.given);
        co_return lease(this, std::move(c), op);
      }
      asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none)
        throw asio::system_error(asio::error::operation_aborted, "postgres: " + std::string(op));
    }
  }

  /// Closes every connection; operations under way and later fail.
  void close() {
    closed_ = true;
    idle_.clear();
    for (auto* c : busy_)
      if (c->socket.is_open()) c->socket.cancel();
    for (auto* w : waiters_) w->timer.cancel();
    if (listen_conn_ && listen_conn_->socket.is_open()) listen_conn_->socket.cancel();
    if (listen_timer_) listen_timer_->cancel();
  }

  // ---- running statements ------------------------------------------------------------

  /// Runs prepared statement `s` on `l`'s connection (preparing it first when needed).
  asio::awaitable<pg_result> run(const lease& l, pg_stmt s, const pg_params& p) {
    pg_connection& c = *l;
    const auto bit = std::uint64_t{1} << static_cast<int>(s);
    const std::string name = "punctual_" + std::to_string(static_cast<int>(s));
    if ((c.prepared & bit) == 0) {
      if (!PQsendPrepare(c.pg, name.c_str(), pg_statement_text(s), 0, nullptr))
        throw connection_error(l.op(), c);
      co_await results(l.op(), c);
      c.prepared |= bit;
    }
    const auto values = p.pointers();
    if (!PQsendQueryPrepared(c.pg, name.c_str(), p.size(), values.data(), nullptr, nullptr, 0))
      throw connection_error(l.op(), c);
    pg_result r = co_await results(l.op(), c);
    co_return r;
  }

  /// Runs `sql` (one statement or several, no parameters) with the simple query protocol.
  asio::awaitable<pg_result> run_sql(const char* op, pg_connection& c, const char* sql) {
    if (!PQsendQuery(c.pg, sql)) throw connection_error(op, c);
    pg_result r = co_await results(op, c);
    co_return r;
  }

  /// Runs `sql` with parameters, unprepared.
  asio::awaitable<pg_result> run_params(const char* op, pg_connection& c, const char* sql,
                                        const pg_params& p) {
    const auto values = p.pointers();
    if (!PQsendQueryParams(c.pg, sql, p.size(), nullptr, values.data(), nullptr, nullptr, 0))
      throw connection_error(op, c);
    pg_result r = co_await results(op, c);
    co_return r;
  }

  asio::awaitable<void> begin(const lease& l) { co_await run_sql(l.op(), *l, "BEGIN"); }
  asio::awaitable<void> commit(const lease& l) { co_await run_sql(l.op(), *l, "COMMIT"); }
  asio::awaitable<void> rollback(const lease& l) { co_await run_sql(l.op(), *l, "ROLLBACK"); }

  // ---- caches of parsed text ---------------------------------------------------------

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

  /// The options stored as `text`, one object per distinct text; the defaults (and the reason
  /// in *why) when it does not parse.
  std::shared_ptr<const schedule_options> shared_options(const std::string& text, std::string* why) {
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
  const std::shared_ptr<const schedule_options>& default_options() const { return default_options_; }

  // ---- notification and warnings -----------------------------------------------------

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
      options_.on_warning("postgres store " + display_ + ": " + scrub(message));
    } catch (...) {
    }
  }

  /// Starts the LISTEN connection (once; on the strand).
  void start_listening() {
    if (listening_started_ || closed_) return;
    listening_started_ = true;
    asio::co_spawn(strand_, listen_loop(shared_from_this()), asio::detached);
  }

  const postgres_store_options& options() const { return options_; }

  postgres_error error(const char* op, const std::string& sqlstate, const std::string& message) const {
    std::string text = "postgres " + display_ + ": " + op + ": " + scrub(message);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (!sqlstate.empty()) text += " (SQLSTATE " + sqlstate + ")";
    return postgres_error(sqlstate, text);
  }

 private:
  struct waiter {
    explicit waiter(pg_core* c) : core(c), timer(c->strand_, asio::steady_timer::time_point::max()) {
      core->waiters_.push_back(this);
    }
    ~waiter() {
      auto& w = core->waiters_;
      w.erase(std::remove(w.begin(), w.end(), this), w.end());
      if (given) core->give_back(std::move(given));
    }
    pg_core* core;
    asio::steady_timer timer;
    std::unique_ptr<pg_connection> given;
  };

  void give_back(std::unique_ptr<pg_connection> c) {
    if (closed_ || !c->usable()) {
      drop(std::move(c), "");
      return;
    }
    if (!waiters_.empty()) {
      waiter* w = waiters_.front();
      waiters_.pop_front();
      w->given = std::move(c);
      w->timer.cancel();
      return;
    }
    idle_.push_back(std::move(c));
  }

  void drop(std::unique_ptr<pg_connection> c, const std::string& why) {
    if (!why.empty()) warn(why);
    c.reset();
    --open_;
    lost_ = true;
    wake_waiter();
  }

  void wake_waiter() {
    if (waiters_.empty()) return;
    waiter* w = waiters_.front();
    waiters_.pop_front();
    w->timer.cancel();
  }

  /// An idle connection is checked before use: a server that terminated it has usually said so.
  static bool still_alive(pg_connection& c) {
    // A terminated backend sends a FATAL message, then closes: read both (the message comes
    // as a notice while idle), so that the loss is seen here rather than by the next query.
    for (int k = 0; k < 4 && PQstatus(c.pg) == CONNECTION_OK; ++k) {
      pollfd p{PQsocket(c.pg), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      const bool read = PQconsumeInput(c.pg) != 0;
      if (read) PQisBusy(c.pg);
      c.forget_closed_socket();
      if (!read) return false;
      while (PGnotify* n = PQnotifies(c.pg)) PQfreemem(n);
    }
    return c.usable();
  }

  std::string make_setup_sql() const {
    std::string sql = "SET search_path TO " + pg_quote_identifier(options_.schema) +
                      "; SET client_min_messages TO warning; SET client_encoding TO 'UTF8'";
    if (options_.statement_timeout.count() > 0)
      sql += "; SET statement_timeout TO " + std::to_string(options_.statement_timeout.count());
    return sql;
  }

  std::string scrub(std::string text) const {
    for (auto& s : secrets_) {
      if (s.size() < 1) continue;
      for (auto p = text.find(s); p != std::string::npos; p = text.find(s, p + 3))
        text.replace(p, s.size(), "***");
    }
    return text;
  }

  postgres_error connection_error(const char* op, pg_connection& c) const {
    if (c.pg) c.forget_closed_socket();
    const char* m = c.pg ? PQerrorMessage(c.pg) : "out of memory";
    return error(op, "08006", m && *m ? m : "connection failure");
  }

  /// Waits until the socket is ready for `w` (after a check that it is not ready already: the
  /// reactor reports edges, and libpq may have left data unread in the socket).
  asio::awaitable<void> wait(const char* op, pg_connection& c, asio::posix::stream_descriptor::wait_type w) {
    const short events = w == asio::posix::stream_descriptor::wait_read ? POLLIN : POLLOUT;
    pollfd p{c.socket.native_handle(), events, 0};
    if (::poll(&p, 1, 0) > 0) co_return;
    c.self_cancel = false;
    asio::error_code ec;
    auto initiate = [&c, w, events](auto handler) {
      c.socket.async_wait(w, std::move(handler));
      pollfd q{c.socket.native_handle(), events, 0};  // ready between the check and the wait?
      if (::poll(&q, 1, 0) > 0) {
        c.self_cancel = true;
        c.socket.cancel();
      }
    };
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await asio::async_initiate<decltype(token)&, void(asio::error_code)>(initiate, token);
    if (!ec) co_return;
    if (ec == asio::error::operation_aborted) {
      if (c.self_cancel) co_return;
      if (closed_) throw error(op, "08003", "the store was closed");
      if (c.timed_out) throw error(op, "08001", "connecting timed out");
      throw asio::system_error(asio::error::operation_aborted, "postgres: " + std::string(op));
    }
    throw error(op, "08006", "waiting on the connection's socket: " + ec.message());
  }

  /// Sends what libpq has buffered, then reads every result of the command sent; returns the
  /// last one, or throws the first error.
  asio::awaitable<pg_result> results(const char* op, pg_connection& c) {
    for (;;) {
      const int f = PQflush(c.pg);
      if (f == 0) break;
      if (f < 0) throw connection_error(op, c);
      co_await wait(op, c, asio::posix::stream_descriptor::wait_write);
      if (!PQconsumeInput(c.pg)) throw connection_error(op, c);
    }
    pg_result last;
    std::optional<postgres_error> failure;
    for (;;) {
      if (!PQconsumeInput(c.pg)) {
        // Lost: what the server said last (FATAL: terminating connection ...) comes as a
        // result, which carries its SQLSTATE. The socket is closed, so this does not block.
        c.forget_closed_socket();
        while (PGresult* r = PQgetResult(c.pg)) {
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          if (!failure && PQresultStatus(r) == PGRES_FATAL_ERROR && state)
            failure = error(op, state, PQresultErrorMessage(r));
          PQclear(r);
        }
        if (failure) throw *failure;
        throw connection_error(op, c);
      }
      if (PQisBusy(c.pg)) {
        co_await wait(op, c, asio::posix::stream_descriptor::wait_read);
        continue;
      }
      PGresult* r = PQgetResult(c.pg);
      c.forget_closed_socket();
      if (!r) break;
      const auto status = PQresultStatus(r);
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (!failure) failure = error(op, state ? state : "", PQresultErrorMessage(r));
        PQclear(r);
      } else {
        last = pg_result(r);
      }
    }
    if (failure) throw *failure;
    if (PQstatus(c.pg) != CONNECTION_OK) throw connection_error(op, c);
    co_return last;
  }

  /// Opens a connection: connects (within connect_timeout), sets it up and, the first time,
  /// migrates the schema.
  asio::awaitable<std::unique_ptr<pg_connection>> open_connection(const char* op, bool migrate_schema) {
    auto c = std::make_unique<pg_connection>(strand_);
    std::vector<const char*> keys, values;
    for (auto& [k, v] : connect_parameters_) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    c->pg = PQconnectStartParams(keys.data(), values.data(), 1);
    if (!c->pg) throw error(op, "08001", "cannot connect: out of memory");
    if (PQstatus(c->pg) == CONNECTION_BAD)
      throw error(op, "08001", std::string("cannot connect: ") + PQerrorMessage(c->pg));
    PQsetNoticeProcessor(
        c->pg,
        [](void* self, const char* m) { static_cast<pg_core*>(self)->warn(std::string("notice: ") + m); },
        this);
    asio::steady_timer deadline(strand_, options_.connect_timeout);
    pg_connection* raw = c.get();
    deadline.async_wait([raw](asio::error_code ec) {
      if (ec) return;
      raw->timed_out = true;
      if (raw->socket.is_open()) raw->socket.cancel();
    });
    struct cancel_deadline {
      asio::steady_timer& t;
      ~cancel_deadline() { t.cancel(); }
    } stop_deadline{deadline};
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
      if (st == PGRES_POLLING_OK) break;
      if (st == PGRES_POLLING_FAILED)
        throw error(op, "08001", std::string("cannot connect: ") + PQerrorMessage(c->pg));
      if (c->timed_out) throw error(op, "08001", "connecting timed out");
      c->watch();  // libpq may switch sockets while connecting (another address, SSL retry)
      co_await wait(op, *c,
                    st == PGRES_POLLING_READING ? asio::posix::stream_descriptor::wait_read
                                                : asio::posix::stream_descriptor::wait_write);
      c->unwatch();
      st = PQconnectPoll(c->pg);
    }
    c->watch();
    if (PQsetnonblocking(c->pg, 1) != 0) throw connection_error(op, *c);
    co_await run_sql(op, *c, setup_sql_.c_str());
    if (migrate_schema && !migrated_) {
      co_await migrate(op, *c);
      migrated_ = true;
    }
    if (lost_ && migrate_schema) {
      lost_ = false;
      warn("reconnected");
    }
    co_return c;
  }

  /// Creates or migrates the schema, under an advisory lock held by the transaction.
  asio::awaitable<void> migrate(const char* op, pg_connection& c) {
    const std::string schema = pg_quote_identifier(options_.schema);
    const std::string version_table = schema + ".schema_version";
    const std::string read_version = "SELECT coalesce(max(version), 0) FROM " + version_table;
    {
      // Up to date already: nothing to lock or create (the role may lack CREATE rights).
      pg_params table;
      table.add(version_table);
      pg_result exists = co_await run_params(op, c, "SELECT to_regclass($1) IS NOT NULL", table);
      if (exists.boolean(0, 0)) {
        pg_result v = co_await run_sql(op, c, read_version.c_str());
        check_version(op, static_cast<int>(v.i64(0, 0)));
        if (v.i64(0, 0) == schema_version) co_return;
      }
    }
    const std::string create = "CREATE SCHEMA IF NOT EXISTS " + schema + "; CREATE TABLE IF NOT EXISTS " +
                               version_table + "(version integer NOT NULL)";
    co_await run_sql(op, c, "BEGIN");
    pg_params key;
    key.add("punctual schema " + options_.schema);
    co_await run_params(op, c, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key);
    co_await run_sql(op, c, create.c_str());
    pg_result v = co_await run_sql(op, c, read_version.c_str());
    const int version = static_cast<int>(v.i64(0, 0));
    if (version > schema_version) co_await run_sql(op, c, "ROLLBACK");
    check_version(op, version);
    for (int k = version; k < schema_version; ++k) {
      const std::string set_version = "DELETE FROM " + version_table + "; INSERT INTO " + version_table +
                                      " VALUES(" + std::to_string(k + 1) + ")";
      co_await run_sql(op, c, pg_migrations[k]);
      co_await run_sql(op, c, set_version.c_str());
    }
    co_await run_sql(op, c, "COMMIT");
  }

  void check_version(const char* op, int version) const {
    if (version > schema_version)
      throw error(op, "",
                  "schema " + pg_quote_identifier(options_.schema) + " has version " +
                      std::to_string(version) + ", newer than this punctual knows (" +
                      std::to_string(schema_version) + "); nothing was changed");
  }

  /// Keeps a LISTEN connection open while the store lives; polls while it cannot.
  asio::awaitable<void> listen_loop(std::shared_ptr<pg_core> self) {
    const char* op = "listen";
    const std::string listen_sql = "LISTEN " + pg_quote_identifier(options_.schema);
    bool was_down = false;
    while (!closed_) {
      std::exception_ptr failed;
      try {
        listen_conn_ = co_await open_connection(op, false);
        co_await run_sql(op, *listen_conn_, listen_sql.c_str());
        if (was_down) {
          warn("listening for changes again");
          notify();  // what changed while it was down
        }
        was_down = false;
        for (;;) {
          co_await wait(op, *listen_conn_, asio::posix::stream_descriptor::wait_read);
          if (!PQconsumeInput(listen_conn_->pg)) throw connection_error(op, *listen_conn_);
          PQisBusy(listen_conn_->pg);  // parses what came, notifications included
          bool changed = false;
          while (PGnotify* n = PQnotifies(listen_conn_->pg)) {
            PQfreemem(n);
            changed = true;
          }
          if (changed) notify();
          if (PQstatus(listen_conn_->pg) != CONNECTION_OK) throw connection_error(op, *listen_conn_);
        }
      } catch (const std::exception& e) {
        failed = std::current_exception();
        if (!closed_)
          warn(std::string("the LISTEN connection is down (") + e.what() + "); polling every " +
               std::to_string(options_.poll_interval.count()) + " ms");
      } catch (...) {
        failed = std::current_exception();
      }
      listen_conn_.reset();
      if (closed_) break;
      was_down = true;
      asio::steady_timer t(strand_, std::max(options_.poll_interval, std::chrono::milliseconds(1)));
      listen_timer_ = &t;
      asio::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      listen_timer_ = nullptr;
      if (!closed_) notify();  // anything might have changed meanwhile
    }
    (void)self;
  }

  static constexpr std::size_t cache_limit = 4096;

  const asio::strand<asio::any_io_executor> strand_;
  const std::string conninfo_;
  postgres_store_options options_;
  const std::string display_;
  const std::string setup_sql_;
  const std::vector<std::pair<std::string, std::string>> connect_parameters_;
  std::vector<std::string> secrets_;
  change_subscribers changes_;

  // On the strand only.
  std::vector<std::unique_ptr<pg_connection>> idle_;
  std::vector<pg_connection*> busy_;
  std::deque<waiter*> waiters_;
  std::size_t open_ = 0;
  bool migrated_ = false;
  bool lost_ = false;
  bool closed_ = false;
  bool listening_started_ = false;
  std::unique_ptr<pg_connection> listen_conn_;
  asio::steady_timer* listen_timer_ = nullptr;
  std::unordered_map<std::string, trigger> trigger_cache_;
  std::unordered_map<std::string, std::shared_ptr<const schedule_options>> options_cache_;
  const std::shared_ptr<const schedule_options> default_options_ = std::make_shared<const schedule_options>();
};

}  // namespace detail

/// A store in a PostgreSQL database (see the file comment).
///
/// - Operations run on a strand of the executor given at construction, whose io_context must
///   run while they are awaited; each completes on the awaiting coroutine's executor. They may
///   be called from any thread.
/// - Per-operation cancellation: a cancellation of the awaiting coroutine (any type but none)
///   stops the wait on the server at once; the operation fails with
///   `asio::error::operation_aborted` and its connection is dropped, so a transaction under way
///   rolls back on the server. One whose commit was sent may still have been applied
///   (store.hpp, "Cancellation").
/// - Failures throw postgres_error (or schedule_conflict). After a lost connection the next
///   operation opens a new one and on_warning says so; the scheduler's guard retries.
/// - Fencing: acquire_jobs gives each job a new lease_token, recover_abandoned a new one again;
///   update_jobs writes a job only while its stored token equals the record's (when that is
///   not 0), so a node whose job was recovered and rerun elsewhere cannot write its outcome.
/// - Schedules whose stored trigger or options text no longer parses are quarantined by
///   acquire_due_schedules, as in the SQLite store.
///
/// @code
/// auto store = punctual::postgres_store::open(io.get_executor(), "postgresql://app@db/prod");
/// punctual::scheduler_options o;
/// o.job_store = store;
/// @endcode
class postgres_store final : public store {
 public:
  /// The schema version this store writes (older schemas are migrated forward).
  static constexpr int schema_version = detail::pg_core::schema_version;

  /// A store on `conninfo` (a URI or key=value words; PG* variables and the password file work
  /// as libpq reads them). Connects lazily: the first operation (or connect()) opens the first
  /// connection and migrates the schema.
  postgres_store(asio::any_io_executor ex, std::string conninfo, postgres_store_options o = {})
      : core_(std::make_shared<detail::pg_core>(std::move(ex), std::move(conninfo), std::move(o))) {}

  /// Same as the constructor, returning a shared_ptr (what the scheduler takes).
  static std::shared_ptr<postgres_store> open(asio::any_io_executor ex, std::string conninfo,
                                              postgres_store_options o = {}) {
    return std::make_shared<postgres_store>(std::move(ex), std::move(conninfo), std::move(o));
  }

  postgres_store(const postgres_store&) = delete;
  postgres_store& operator=(const postgres_store&) = delete;

  /// Closes every connection (operations under way fail).
  ~postgres_store() override { close(); }

  /// The connection string with its password replaced by `***`.
  const std::string& display_name() const noexcept { return core_->display_name(); }

  /// Opens a connection and migrates the schema now. Completion: `void(std::exception_ptr)`;
  /// throws postgres_error.
  asio::awaitable<void> connect() { return submit(connect_op(core_)); }

  /// Closes every connection; operations under way and later ones fail with postgres_error
  /// (SQLSTATE 08003).
  void close() {
    asio::post(core_->strand(), [c = core_] { c->close(); });
  }

  // ---- schedules ---------------------------------------------------------------------

  asio::awaitable<bool> add_schedule(schedule_record s, conflict_policy on_conflict) override {
    return submit(add_schedule_op(core_, std::move(s), on_conflict));
  }
  /// One transaction; a new schedule costs one statement, a replaced one two.
  asio::awaitable<std::vector<add_outcome>> add_schedules(std::vector<schedule_record> batch,
                                                          conflict_policy on_conflict) override {
    return submit(add_schedules_op(core_, std::move(batch), on_conflict));
  }
  asio::awaitable<bool> remove_schedule(std::string id) override {
    return submit(remove_schedule_op(core_, std::move(id)));
  }
  asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) override {
    return submit(get_schedule_op(core_, std::move(id)));
  }
  asio::awaitable<std::vector<schedule_record>> list_schedules() override {
    return submit(list_schedules_op(core_));
  }
  /// `change` runs on the store's strand.
  asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) override {
    return submit(modify_schedule_op(core_, std::move(id), std::move(change)));
  }

  // ---- the schedule loop -------------------------------------------------------------

  asio::awaitable<std::vector<schedule_record>> acquire_due_schedules(std::string node, time_point now,
                                                                      time_point lease_until,
                                                                      std::size_t limit) override {
    return submit(acquire_due_op(core_, std::move(node), now, lease_until, limit));
  }
  asio::awaitable<std::size_t> release_schedules(std::string node,
                                                 const std::vector<schedule_release>& releases,
                                                 const std::vector<job_record>& jobs) override {
    // The batches are encoded now: the caller's vectors are valid only until the call returns.
    detail::pg_json r;
    for (auto& x : releases) {
      r.begin_object();
      r.add("id", x.id);
      r.add("next_fire", x.next_fire);
      r.add("last_fire", x.last_fire);
      r.end_object();
    }
    detail::pg_json j;
    std::int64_t ord = 0;
    for (auto& x : jobs) {
      j.begin_object();
      job_fields(j, x);
      j.add("ord", ++ord);
      j.end_object();
    }
    const bool empty = releases.empty() && jobs.empty();
    return submit(release_schedules_op(core_, std::move(node), r.take(), j.take(), empty));
  }

  // ---- the job loop ------------------------------------------------------------------

  asio::awaitable<std::int64_t> add_job(job_record job) override {
    return submit(add_job_op(core_, std::move(job)));
  }
  /// Each job gets a new lease_token, and its schedule's options read in the same statement.
  asio::awaitable<std::vector<job_record>> acquire_jobs(std::string node, time_point now,
                                                        time_point lease_until, std::size_t limit) override {
    return submit(acquire_jobs_op(core_, std::move(node), now, lease_until, limit));
  }
  /// Writes a job only while node and, when the record's lease_token is not 0, the token match.
  asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) override {
    detail::pg_json u;
    for (auto& x : jobs) {
      u.begin_object();
      u.add("id", x.id);
      u.add("state", to_string(x.state));
      u.add("run_at", std::optional<time_point>(x.run_at));
      u.add("attempt", static_cast<std::int64_t>(x.attempt));
      u.add("started", x.started);
      u.add("finished", x.finished);
      u.add("exit_code", x.exit_code);
      u.add("signal", x.signal);
      u.add("error", x.error);
      u.add("output", x.output);
      u.add("pid", x.process.pid);
      u.add("pgid", x.process.pgid);
      u.add("proc_start", static_cast<std::int64_t>(x.process.start_time));
      u.add("lease_token", x.lease_token);
      u.end_object();
    }
    return submit(update_jobs_op(core_, std::move(node), u.take(), jobs.empty()));
  }
  asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) override {
    return submit(release_jobs_op(core_, std::move(node), std::move(keep)));
  }

  // ---- leases and recovery -----------------------------------------------------------

  asio::awaitable<void> extend_leases(std::string node, time_point until) override {
    return submit(extend_leases_op(core_, std::move(node), until));
  }
  asio::awaitable<void> release_leases(std::string node) override {
    return submit(release_leases_op(core_, std::move(node)));
  }
  asio::awaitable<std::vector<job_record>> recover_abandoned(std::optional<std::string> node,
                                                             time_point now) override {
    return submit(recover_op(core_, std::move(node), now));
  }
  asio::awaitable<due_times> next_due() override { return submit(next_due_op(core_)); }

  // ---- history -----------------------------------------------------------------------

  asio::awaitable<std::vector<job_record>> list_jobs(job_query q) override {
    return submit(list_jobs_op(core_, std::move(q)));
  }
  asio::awaitable<std::size_t> purge_jobs(retention r, time_point now) override {
    return submit(purge_jobs_op(core_, r, now));
  }

  // ---- change notification -----------------------------------------------------------

  /// Callbacks run on the store's strand: after this store's own changes, on a NOTIFY from any
  /// node, and every poll_interval while the LISTEN connection is down. The first subscription
  /// opens the LISTEN connection.
  std::uint64_t subscribe_changes(std::function<void()> on_change) override {
    const auto h = core_->changes().subscribe(std::move(on_change));
    asio::post(core_->strand(), [c = core_] { c->start_listening(); });
    return h;
  }
  void unsubscribe_changes(std::uint64_t handle) override { core_->changes().unsubscribe(handle); }

 private:
  using core_ptr = std::shared_ptr<detail::pg_core>;
  using lease = detail::pg_core::lease;
  using detail_stmt = detail::pg_stmt;

  /// Runs `work` on the store's strand and completes the awaiting coroutine with its result on
  /// that coroutine's executor. A cancellation of the caller reaches `work` on the strand.
  template <class T>
  asio::awaitable<T> submit(asio::awaitable<T> work) {
    using signature = typename detail::pg_signature<T>::type;
    return asio::async_initiate<const asio::use_awaitable_t<>&, signature>(
        [core = core_](auto handler, asio::awaitable<T> w) {
          auto signal = std::make_shared<asio::cancellation_signal>();
          auto slot = asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected())
            slot.assign([signal, strand = core->strand()](asio::cancellation_type type) {
              if (type == asio::cancellation_type::none) return;
              asio::post(strand, [signal, type] { signal->emit(type); });
            });
          auto work_guard = asio::make_work_guard(asio::get_associated_executor(handler));
          auto done = [h = std::move(handler), g = std::move(work_guard), signal](
                          std::exception_ptr spawn_error, detail::pg_outcome<T> o) mutable {
            if (spawn_error && !o.error) o.error = spawn_error;
            // The completion runs on the caller's executor; it waits (gate) until post() has
            // returned here, as the caller may destroy its io_context right after it.
            auto gate = std::make_shared<std::mutex>();
            std::unique_lock posting(*gate);
            const auto ex = asio::get_associated_executor(h);
            asio::post(ex, [h = std::move(h), o = std::move(o), g = std::move(g), gate]() mutable {
              { std::lock_guard posted(*gate); }
              asio::get_associated_cancellation_slot(h).clear();
              if constexpr (std::is_void_v<T>)
                std::move(h)(std::move(o.error));
              else if (o.value)
                std::move(h)(std::move(o.error), std::move(*o.value));
              else
                std::move(h)(std::move(o.error), T{});
            });
          };
          asio::co_spawn(core->strand(), detail::pg_capture(std::move(w)),
                         asio::bind_cancellation_slot(signal->slot(), std::move(done)));
        },
        asio::use_awaitable, std::move(work));
  }

  static void job_fields(detail::pg_json& j, const job_record& x) {
    j.add("schedule_id", x.schedule_id);
    j.add("task", x.task);
    j.add("payload", x.payload);
    j.add("fire_time", std::optional<time_point>(x.fire_time));
    j.add("run_at", std::optional<time_point>(x.run_at));
    j.add("attempt", static_cast<std::int64_t>(x.attempt));
    j.add("state", to_string(x.state));
    j.add("node", x.node);
    j.add("lease_until", std::optional<time_point>(x.lease_until));
    j.add("started", x.started);
    j.add("finished", x.finished);
    j.add("exit_code", x.exit_code);
    j.add("signal", x.signal);
    j.add("error", x.error);
    j.add("output", x.output);
    j.add("pid", x.process.pid);
    j.add("pgid", x.process.pgid);
    j.add("proc_start", static_cast<std::int64_t>(x.process.start_time));
  }

  // ---- rows --------------------------------------------------------------------------

  struct loaded_schedule {
    schedule_record record;
    bool trigger_ok = true;
    bool options_ok = true;
    std::string stored_trigger_text;
    std::string stored_options_text;
    std::string stored_quarantine;
  };

  static loaded_schedule load_schedule(detail::pg_core& core, const detail::pg_result& q, int row) {
    loaded_schedule l;
    schedule_record& r = l.record;
    r.spec.id = q.text(row, 0);
    r.spec.task = q.text(row, 1);
    l.stored_trigger_text = q.text(row, 2);
    r.spec.payload = q.text(row, 3);
    l.stored_options_text = q.text(row, 4);
    r.spec.paused = q.boolean(row, 5);
    r.next_fire = q.opt_time(row, 6);
    r.last_fire = q.opt_time(row, 7);
    r.lease_owner = q.text(row, 8);
    r.lease_until = q.time(row, 9);
    if (!q.is_null(row, 10)) l.stored_quarantine = q.text(row, 10);
    r.trigger_text = l.stored_trigger_text;
    std::string why_trigger, why_options;
    r.spec.trigger = core.parse_trigger_cached(l.stored_trigger_text, &why_trigger);
    r.spec.options = *core.shared_options(l.stored_options_text, &why_options);
    l.trigger_ok = why_trigger.empty();
    l.options_ok = why_options.empty();
    std::string why = why_trigger;
    if (!why.empty() && !why_options.empty()) why += "; ";
    why += why_options;
    r.quarantine = !l.stored_quarantine.empty() ? l.stored_quarantine : why;
    return l;
  }

  static job_record load_job(const detail::pg_result& q, int row) {
    job_record j;
    j.id = q.i64(row, 0);
    j.schedule_id = q.text(row, 1);
    j.task = q.text(row, 2);
    j.payload = q.text(row, 3);
    j.fire_time = q.time(row, 4);
    j.run_at = q.time(row, 5);
    j.attempt = static_cast<std::uint32_t>(q.i64(row, 6));
    j.node = q.text(row, 8);
    j.lease_until = q.time(row, 9);
    j.started = q.opt_time(row, 10);
    j.finished = q.opt_time(row, 11);
    j.exit_code = q.opt_int(row, 12);
    j.signal = q.opt_int(row, 13);
    j.error = q.text(row, 14);
    j.output = q.text(row, 15);
    j.process.pid = q.i64(row, 16);
    j.process.pgid = q.i64(row, 17);
    j.process.start_time = static_cast<std::uint64_t>(q.i64(row, 18));
    j.lease_token = q.i64(row, 19);
    const auto state = q.text(row, 7);
    try {
      j.state = parse_job_state(state);
    } catch (const parse_error&) {
      j.state = job_state::failed;
      j.error = "stored state \"" + state + "\" is unknown; " + j.error;
    }
    return j;
  }

  static constexpr int job_column_count = 20;

  static std::int64_t clamp_limit(std::size_t limit) {
    return static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
  }

  /// The database's "now" parameter: NULL lets the server's clock decide.
  static void add_db_now(const detail::pg_core& core, detail::pg_params& p, time_point now) {
    if (core.options().use_database_clock)
      p.add_null();
    else
      p.add(now);
  }

  // ---- the operations (coroutines on the strand; `core` keeps the state alive) --------
  //
  // No temporary lives across a co_await in them (GCC 12 mishandles those in coroutines).

  static asio::awaitable<void> connect_op(core_ptr core) { lease l = co_await core->take("connect"); }

  static asio::awaitable<bool> add_schedule_op(core_ptr core, schedule_record s,
                                               conflict_policy on_conflict) {
    detail::pg_params p;
    p.add(s.spec.id).add(s.spec.task).add(s.spec.trigger.to_string()).add(s.spec.payload);
    p.add(to_string(s.spec.options)).add(s.spec.paused).add(s.next_fire).add(s.last_fire);
    const auto stmt = on_conflict == conflict_policy::replace ? detail_stmt::replace_schedule
                                                              : detail_stmt::insert_schedule;
    lease l = co_await core->take("add_schedule");
    detail::pg_result r = co_await core->run(l, stmt, p);
    if (r.rows() > 0) {
      core->notify();
      co_return true;
    }
    if (on_conflict == conflict_policy::error) throw schedule_conflict(s.spec.id);
    co_return false;
  }

  static asio::awaitable<std::vector<add_outcome>> add_schedules_op(core_ptr core,
                                                                    std::vector<schedule_record> batch,
                                                                    conflict_policy on_conflict) {
    std::vector<add_outcome> out;
    if (batch.empty()) co_return out;
    out.reserve(batch.size());
    lease l = co_await core->take("add_schedules");
    co_await core->begin(l);
    for (const auto& s : batch) {
      detail::pg_params p;
      p.add(s.spec.id).add(s.spec.task).add(s.spec.trigger.to_string()).add(s.spec.payload);
      p.add(to_string(s.spec.options)).add(s.spec.paused).add(s.next_fire).add(s.last_fire);
      detail::pg_result inserted = co_await core->run(l, detail_stmt::insert_schedule, p);
      if (inserted.rows() > 0) {
        out.push_back(add_outcome::added);
        continue;
      }
      if (on_conflict == conflict_policy::error) {
        co_await core->rollback(l);  // nothing of the batch is stored
        throw schedule_conflict(s.spec.id);
      }
      if (on_conflict == conflict_policy::keep) {
        out.push_back(add_outcome::kept);
        continue;
      }
      co_await core->run(l, detail_stmt::replace_schedule, p);
      out.push_back(add_outcome::replaced);
    }
    co_await core->commit(l);
    if (std::any_of(out.begin(), out.end(), [](add_outcome o) { return o != add_outcome::kept; }))
      core->notify();
    co_return out;
  }

  static asio::awaitable<bool> remove_schedule_op(core_ptr core, std::string id) {
    detail::pg_params p;
    p.add(id);
    lease l = co_await core->take("remove_schedule");
    detail::pg_result r = co_await core->run(l, detail_stmt::remove_schedule, p);
    const bool removed = r.i64(0, 0) > 0;
    if (removed) core->notify();
    co_return removed;
  }

  static asio::awaitable<std::optional<schedule_record>> get_schedule_op(core_ptr core, std::string id) {
    detail::pg_params p;
    p.add(id);
    lease l = co_await core->take("get_schedule");
    detail::pg_result r = co_await core->run(l, detail_stmt::get_schedule, p);
    if (r.rows() == 0) co_return std::nullopt;
    co_return load_schedule(*core, r, 0).record;
  }

  static asio::awaitable<std::vector<schedule_record>> list_schedules_op(core_ptr core) {
    detail::pg_params p;
    lease l = co_await core->take("list_schedules");
    detail::pg_result r = co_await core->run(l, detail_stmt::list_schedules, p);
    std::vector<schedule_record> out;
    for (int k = 0; k < r.rows(); ++k) out.push_back(load_schedule(*core, r, k).record);
    co_return out;
  }

  static asio::awaitable<std::optional<schedule_record>> modify_schedule_op(
      core_ptr core, std::string id, std::function<void(schedule_record&)> change) {
    detail::pg_params key;
    key.add(id);
    lease l = co_await core->take("modify_schedule");
    co_await core->begin(l);
    detail::pg_result found = co_await core->run(l, detail_stmt::get_schedule_for_update, key);
    if (found.rows() == 0) {
      co_await core->commit(l);
      co_return std::nullopt;
    }
    loaded_schedule loaded = load_schedule(*core, found, 0);
    schedule_record r = loaded.record;
    change(r);
    // What is stored stays stored unless the change replaced it: a quarantined row keeps its
    // unparsable text until a valid trigger (or options) is written over it.
    std::string trigger_text =
        r.spec.trigger || loaded.trigger_ok ? r.spec.trigger.to_string() : loaded.stored_trigger_text;
    std::string options_text = loaded.options_ok || !(r.spec.options == schedule_options{})
                                   ? to_string(r.spec.options)
                                   : loaded.stored_options_text;
    std::string why;
    core->parse_trigger_cached(trigger_text, &why);
    core->shared_options(options_text, &why);
    detail::pg_params p;
    p.add(id).add(r.spec.task).add(trigger_text).add(r.spec.payload).add(options_text).add(r.spec.paused);
    p.add(r.next_fire).add(r.last_fire);
    if (why.empty() || loaded.stored_quarantine.empty())
      p.add_null();
    else
      p.add(loaded.stored_quarantine);
    detail::pg_result written = co_await core->run(l, detail_stmt::write_schedule, p);
    co_await core->commit(l);
    core->notify();
    if (written.rows() == 0) co_return std::nullopt;
    co_return load_schedule(*core, written, 0).record;
  }

  static asio::awaitable<std::vector<schedule_record>> acquire_due_op(core_ptr core, std::string node,
                                                                      time_point now, time_point lease_until,
                                                                      std::size_t limit) {
    std::vector<schedule_record> out;
    if (limit == 0) co_return out;
    detail::pg_params p;
    p.add(now).add(node).add(lease_until);
    add_db_now(*core, p, now);
    p.add(clamp_limit(limit));
    lease l = co_await core->take("acquire_due_schedules");
    detail::pg_result r = co_await core->run(l, detail_stmt::acquire_schedules, p);
    std::vector<schedule_record> due;
    for (int k = 0; k < r.rows(); ++k) due.push_back(load_schedule(*core, r, k).record);
    std::sort(due.begin(), due.end(), [](const schedule_record& a, const schedule_record& b) {
      return a.next_fire != b.next_fire ? a.next_fire < b.next_fire : a.spec.id < b.spec.id;
    });
    for (auto& s : due) {
      if (!s.quarantine.empty()) {  // unusable: quarantined, reported once, not leased
        detail::pg_params q;
        q.add(s.spec.id).add(s.quarantine).add(node);
        co_await core->run(l, detail_stmt::quarantine_schedule, q);
        s.lease_owner.clear();
        s.lease_until = time_point{};
        core->warn("schedule \"" + s.spec.id + "\" quarantined: " + s.quarantine);
      }
      out.push_back(std::move(s));
    }
    co_return out;
  }

  static asio::awaitable<std::size_t> release_schedules_op(core_ptr core, std::string node,
                                                           std::string releases, std::string jobs,
                                                           bool empty) {
    if (node.empty() || empty) co_return 0;
    detail::pg_params p;
    p.add(node).add(releases).add(jobs);
    lease l = co_await core->take("release_schedules");
    detail::pg_result r = co_await core->run(l, detail_stmt::release_schedules, p);
    if (r.i64(0, 1) > 0) core->notify();
    co_return static_cast<std::size_t>(r.i64(0, 0));
  }

  static asio::awaitable<std::int64_t> add_job_op(core_ptr core, job_record j) {
    detail::pg_params p;
    p.add(j.schedule_id).add(j.task).add(j.payload).add(j.fire_time).add(j.run_at);
    p.add(static_cast<std::int64_t>(j.attempt)).add(to_string(j.state)).add(j.node).add(j.lease_until);
    p.add(j.started).add(j.finished);
    p.add(j.exit_code ? std::optional<std::int64_t>(*j.exit_code) : std::nullopt);
    p.add(j.signal ? std::optional<std::int64_t>(*j.signal) : std::nullopt);
    p.add(j.error).add(j.output).add(j.process.pid).add(j.process.pgid);
    p.add(static_cast<std::int64_t>(j.process.start_time));
    lease l = co_await core->take("add_job");
    detail::pg_result r = co_await core->run(l, detail_stmt::add_job, p);
    if (r.rows() == 0) co_return 0;
    core->notify();
    co_return r.i64(0, 0);
  }

  static asio::awaitable<std::vector<job_record>> acquire_jobs_op(core_ptr core, std::string node,
                                                                  time_point now, time_point lease_until,
                                                                  std::size_t limit) {
    std::vector<job_record> out;
    if (limit == 0) co_return out;
    detail::pg_params p;
    p.add(node).add(now).add(lease_until);
    add_db_now(*core, p, now);
    p.add(clamp_limit(limit));
    lease l = co_await core->take("acquire_jobs");
    detail::pg_result r = co_await core->run(l, detail_stmt::acquire_jobs, p);
    for (int k = 0; k < r.rows(); ++k) {
      out.push_back(load_job(r, k));
      std::string why;
      out.back().options = r.is_null(k, job_column_count)
                               ? core->default_options()
                               : core->shared_options(r.text(k, job_column_count), &why);
    }
    co_return out;
  }

  static asio::awaitable<void> update_jobs_op(core_ptr core, std::string node, std::string jobs, bool empty) {
    if (empty) co_return;
    detail::pg_params p;
    p.add(node).add(jobs);
    lease l = co_await core->take("update_jobs");
    detail::pg_result r = co_await core->run(l, detail_stmt::update_jobs, p);
    if (r.i64(0, 0) > 0) core->notify();
  }

  static asio::awaitable<std::size_t> release_jobs_op(core_ptr core, std::string node,
                                                      std::vector<std::int64_t> keep) {
    std::string array = "{";
    for (auto id : keep) {
      if (array.size() > 1) array += ',';
      array += std::to_string(id);
    }
    array += '}';
    detail::pg_params p;
    p.add(node).add(array);
    lease l = co_await core->take("release_jobs");
    detail::pg_result r = co_await core->run(l, detail_stmt::release_jobs, p);
    const auto n = static_cast<std::size_t>(r.i64(0, 0));
    if (n > 0) core->notify();
    co_return n;
  }

  static asio::awaitable<void> extend_leases_op(core_ptr core, std::string node, time_point until) {
    detail::pg_params p;
    p.add(node).add(until);
    lease l = co_await core->take("extend_leases");
    co_await core->run(l, detail_stmt::extend_leases, p);
  }

  static asio::awaitable<void> release_leases_op(core_ptr core, std::string node) {
    detail::pg_params p;
    p.add(node);
    lease l = co_await core->take("release_leases");
    detail::pg_result r = co_await core->run(l, detail_stmt::release_leases, p);
    if (r.i64(0, 0) > 0) core->notify();
  }

  static asio::awaitable<std::vector<job_record>> recover_op(core_ptr core, std::optional<std::string> node,
                                                             time_point now) {
    detail::pg_params p;
    if (core->options().use_database_clock)
      p.add_null();
    else
      p.add(now);
    p.add(node);
    lease l = co_await core->take("recover_abandoned");
    co_await core->begin(l);
    detail::pg_result found = co_await core->run(l, detail_stmt::find_abandoned, p);
    std::vector<job_record> out;
    detail::pg_json w;
    bool requeued = false;
    for (int k = 0; k < found.rows(); ++k) {
      job_record j = load_job(found, k);
      bool rerun = false;
      if (!found.is_null(k, job_column_count)) {
        std::string why;
        auto o = core->shared_options(found.text(k, job_column_count), &why);
        rerun = why.empty() && o->on_abandoned == abandoned_policy::rerun;
      }
      mark_abandoned(j, now, rerun);
      requeued = requeued || rerun;
      w.begin_object();
      w.add("id", j.id);
      w.add("state", to_string(j.state));
      w.add("attempt", static_cast<std::int64_t>(j.attempt));
      w.add("run_at", std::optional<time_point>(j.run_at));
      w.add("node", j.node);
      w.add("started", j.started);
      w.add("finished", j.finished);
      w.add("error", j.error);
      w.end_object();
      out.push_back(std::move(j));
    }
    if (out.empty()) {
      co_await core->commit(l);
      co_return out;
    }
    detail::pg_params wp;
    wp.add(w.take());
    detail::pg_result tokens = co_await core->run(l, detail_stmt::write_abandoned, wp);
    co_await core->commit(l);
    for (int k = 0; k < tokens.rows(); ++k)
      for (auto& j : out)
        if (j.id == tokens.i64(k, 0)) j.lease_token = tokens.i64(k, 1);
    if (requeued) core->notify();
    co_return out;
  }

  static asio::awaitable<due_times> next_due_op(core_ptr core) {
    detail::pg_params p;
    lease l = co_await core->take("next_due");
    detail::pg_result r = co_await core->run(l, detail_stmt::next_due, p);
    due_times d;
    d.schedule = r.opt_time(0, 0);
    if (const auto leased = r.opt_time(0, 1); leased && (!d.schedule || *leased < *d.schedule))
      d.schedule = leased;
    d.job = r.opt_time(0, 2);
    co_return d;
  }

  static asio::awaitable<std::vector<job_record>> list_jobs_op(core_ptr core, job_query q) {
    std::vector<job_record> out;
    if (q.limit == 0) co_return out;
    detail::pg_params p;
    p.add(q.schedule_id);
    if (q.state)
      p.add(to_string(*q.state));
    else
      p.add_null();
    p.add(clamp_limit(q.limit));
    lease l = co_await core->take("list_jobs");
    detail::pg_result r = co_await core->run(l, detail_stmt::list_jobs, p);
    for (int k = 0; k < r.rows(); ++k) out.push_back(load_job(r, k));
    co_return out;
  }

  static asio::awaitable<std::size_t> purge_jobs_op(core_ptr core, retention rule, time_point now) {
    if (!rule.keep_last && !rule.max_age) co_return 0;
    std::optional<std::int64_t> cutoff;
    if (rule.max_age) {
      // finished + max_age < now  <=>  finished < now - max_age (saturated)
      const auto n = static_cast<std::int64_t>(now.time_since_epoch().count());
      const auto a = static_cast<std::int64_t>(rule.max_age->count());
      constexpr auto lo = std::numeric_limits<std::int64_t>::min();
      constexpr auto hi = std::numeric_limits<std::int64_t>::max();
      cutoff = a >= 0 ? (n < lo + a ? lo : n - a) : (n > hi + a ? hi : n - a);
    }
    detail::pg_params p;
    if (rule.keep_last)
      p.add(clamp_limit(*rule.keep_last));
    else
      p.add_null();
    p.add(cutoff);
    lease l = co_await core->take("purge_jobs");
    detail::pg_result r = co_await core->run(l, detail_stmt::purge_jobs, p);
    co_return static_cast<std::size_t>(r.i64(0, 0));
  }

  core_ptr core_;
};

#undef PUNCTUAL_PG_JOB_COLUMNS
#undef PUNCTUAL_PG_SCHEDULE_COLUMNS
#undef PUNCTUAL_PG_DB_NOW

PUNCTUAL_END_NAMESPACE
