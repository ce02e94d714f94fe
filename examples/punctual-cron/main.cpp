// punctual-cron: a crontab-compatible daemon on punctual's scheduler with a durable store:
// SQLite, or PostgreSQL where it is built with libpq (PUNCTUAL_CRON_HAVE_POSTGRES).
// See usage_text below, include/punctual/crontab.hpp for the file format, and the README.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dashboard.hpp"
#include "fd_budget.hpp"
#include "http_server.hpp"
#include "json.hpp"
#include "punctual/crontab.hpp"
#include "punctual/options_text.hpp"
#include "punctual/prometheus.hpp"
#include "punctual/punctual.hpp"
#include "punctual/run/command_task.hpp"
#include "punctual/store/sqlite_store.hpp"
#include "systemd_notify.hpp"

#if defined(PUNCTUAL_CRON_HAVE_POSTGRES)
#include <libpq-fe.h>

#include "punctual/store/postgres_store.hpp"
#endif

namespace punctual_cron {
namespace {

constexpr const char* usage_text = R"(usage:
  punctual-cron run CRONTAB [--store URL] [--node NAME] [--http HOST:PORT] [--grace DURATION]
                    [--lease DURATION] [--http-max-connections N] [--http-admin TOKEN_FILE]
  punctual-cron check CRONTAB [--from ISO8601]
  punctual-cron status [--store URL] [--json]
  punctual-cron history ID [--store URL] [--limit N] [--json]
  punctual-cron pause ID | resume ID | trigger ID  [--store URL]
  punctual-cron recover DAMAGED.db NEW.db

run      runs the entries of CRONTAB until SIGTERM/SIGINT; SIGHUP or a change of the file
         reloads it. Job output goes to stdout/stderr, each line prefixed with "[ID] ";
         the daemon's own log goes to stderr.
check    validates CRONTAB and prints each entry with its next 3 fire times (after
         --from, default now). Errors are printed as FILE:LINE:COLUMN: message.
status   every schedule in the store: next and last fire, last outcome, paused.
history  the runs of schedule ID, newest first (--limit, default 20).
pause, resume, trigger
         act on schedule ID in the store; a running daemon picks the change up within a
         second. trigger queues one run now. On SQLite a daemon's own writes go first: these
         commands wait for it (up to 30s in all) rather than hold up its fires.
recover  saves what SQLite can still read of a damaged SQLite store (one that run and the
         other commands refuse as damaged) into the new file NEW.db, and prints what it
         saved and lost. DAMAGED.db is only read. Check NEW.db (status, history), stop the
         daemon, and move NEW.db in place of the damaged file.

options:
  --store URL       sqlite:PATH (default sqlite:punctual.db, in the current directory), or,
                    when built with libpq, a PostgreSQL database: postgresql://USER@HOST/DB
                    (or postgres://...), or postgresql:KEY=VALUE... (libpq's "host=h
                    dbname=d" form); its tables live in the schema "punctual". Output and
                    logs show the URL with its password replaced by ***.
  --node NAME       this daemon's node name, recorded with every run (default: the host
                    name). Runs left "running" by a previous daemon with the same name are
                    recorded as abandoned at start. Give each daemon on one store its own.
  --lease DURATION  how long another daemon on the same store waits before it takes over the
                    runs of this one when it stops answering (default 30s); leases are
                    renewed every third of it
  --http HOST:PORT  serve GET /metrics (Prometheus), GET /healthz (200 or 503), the
                    dashboard at / and its JSON API at /api/ (read-only). A bare :PORT
                    listens on 127.0.0.1 only; every interface must be asked for:
                    0.0.0.0:PORT (or [::]:PORT)
  --http-admin FILE allow the API's actions (pause, resume, trigger, cancel) to requests
                    that carry the token in FILE (Authorization: Bearer TOKEN); without it
                    every POST answers 403
  --http-max-connections N
                    HTTP connections open at once (default 64; lowered to half of what the
                    descriptor limit leaves after 64 for the daemon). At the cap a new one
                    closes the one waiting longest for its request (503 when all are being
                    answered). One request per connection; a connection is closed after 5s
                    without a byte or 10s without a whole request head
  --grace DURATION  how long SIGTERM waits for running jobs before terminating their
                    process groups (default 30s)
  --json            machine-readable output (status, history)
  --limit N         history length (default 20)
  --help            this text

Exit status: 0 success; 1 runtime failure (store cannot be opened, unknown ID);
2 bad usage or a bad crontab.
)";

struct usage_error {
  std::string message;
};

struct runtime_failure {
  std::string message;
};

struct cli {
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> options;
  bool json = false;
  bool help = false;

  std::string option(const std::string& name, std::string fallback) const {
    const auto it = options.find(name);
    return it == options.end() ? std::move(fallback) : it->second;
  }
};

cli parse_cli(int argc, char** argv) {
  static const std::set<std::string> valued = {"--store",     "--node",  "--http",  "--http-max-connections",
                                               "--grace",     "--lease", "--limit", "--from",
                                               "--http-admin"};
  cli c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      c.help = true;
    } else if (a == "--json") {
      c.json = true;
    } else if (a.rfind("--", 0) == 0) {
      std::string value;
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a.resize(eq);
      } else if (valued.count(a) != 0) {
        if (i + 1 >= argc) throw usage_error{"option " + a + " needs a value"};
        value = argv[++i];
      }
      if (valued.count(a) == 0) throw usage_error{"unknown option " + a};
      c.options[a] = value;
    } else if (c.command.empty()) {
      c.command = a;
    } else {
      c.args.push_back(a);
    }
  }
  return c;
}

/// Checks that `c` has exactly `n` positional arguments and only `allowed` options.
void expect(const cli& c, std::size_t n, const char* what, std::set<std::string> allowed,
            bool json_ok = false) {
  if (c.args.size() != n)
    throw usage_error{
        "punctual-cron " + c.command + " takes " + (n == 0 ? std::string("no argument") : what) +
        (c.args.size() > n ? " (unexpected \"" + c.args[n] + "\")" : std::string(" (missing)"))};
  for (const auto& [k, v] : c.options)
    if (allowed.count(k) == 0) throw usage_error{"punctual-cron " + c.command + " does not take " + k};
  if (c.json && !json_ok) throw usage_error{"punctual-cron " + c.command + " does not take --json"};
}

// ---- output helpers -------------------------------------------------------------------------

std::mutex output_mutex;

/// Writes `text` to fd with one write() where possible, so lines from the daemon and from jobs
/// do not interleave mid-line.
void write_all(int fd, std::string_view text) {
  std::lock_guard lock(output_mutex);
  while (!text.empty()) {
    const auto n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// "1.234s", "12ms", "2m03s".
std::string human(punctual::duration d) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(d).count();
  char buf[64];
  if (ms < 0) return "-" + human(-d);
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ms) / 1000.0);
  } else {
    const auto s = ms / 1000;
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

void log(std::string_view message) {
  std::string line = iso(punctual::system_clock{}.now());
  line += " punctual-cron: ";
  line += message;
  line += '\n';
  write_all(STDERR_FILENO, line);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw runtime_failure{"cannot read " + path + ": " + std::strerror(errno)};
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw runtime_failure{"cannot read " + path + ": read error"};
  return s.str();
}

/// "1 entry", "3 entries".
std::string entries_text(std::size_t n) { return std::to_string(n) + (n == 1 ? " entry" : " entries"); }

/// Reads and parses a crontab; diagnostics are formatted FILE:LINE:COLUMN: message.
struct loaded_crontab {
  punctual::crontab tab;
  std::vector<std::string> errors;
};

loaded_crontab load_crontab(const std::string& path) {
  loaded_crontab l;
  l.tab = punctual::parse_crontab(read_text_file(path));
  for (const auto& d : l.tab.errors) l.errors.push_back(punctual::format_diagnostic(path, d));
  return l;
}

// ---- the store --------------------------------------------------------------------------------

constexpr const char* default_store = "sqlite:punctual.db";

/// Where a --store URL points.
struct store_location {
  bool postgres = false;
  std::string path;      ///< SQLite: the database file
  std::string conninfo;  ///< PostgreSQL: what libpq gets (a URI, or key=value pairs)
  std::string display;   ///< what output and logs show: the URL without its password
};

/// The PostgreSQL schema punctual-cron keeps its tables in.
[[maybe_unused]] constexpr const char* postgres_schema = "punctual";

/// Parses --store: `sqlite:PATH`, `sqlite://` + an absolute path, `postgresql://...`,
/// `postgres://...` or `postgresql:KEY=VALUE ...`.
store_location parse_store_url(const std::string& url) {
  store_location l;
  if (url.rfind("postgresql:", 0) == 0 || url.rfind("postgres:", 0) == 0) {
#if defined(PUNCTUAL_CRON_HAVE_POSTGRES)
    const auto rest = url.substr(url.find(':') + 1);
    l.postgres = true;
    l.conninfo = rest.rfind("//", 0) == 0 ? url : rest;  // a URI as it is; key=value pairs without the prefix
    l.display = rest.rfind("//", 0) == 0 ? punctual::redact_conninfo(url)
                                         : url.substr(0, url.find(':') + 1) + punctual::redact_conninfo(rest);
    if (rest.empty() || rest == "//")
      throw usage_error{"--store " + url + ": no database after " + url.substr(0, url.find(':') + 1)};
    return l;
#else
    // The URL itself is not echoed: it may hold a password.
    throw usage_error{
        "--store: this punctual-cron was built without libpq, so it has no PostgreSQL store; "
        "use sqlite:PATH"};
#endif
  }
  l.display = url;
  if (url.rfind("sqlite://", 0) == 0) {
    l.path = url.substr(9);
    if (l.path.empty() || l.path[0] != '/')
      throw usage_error{"--store " + url +
                        ": sqlite:// needs an absolute path (sqlite:///var/lib/x.db), or write sqlite:PATH"};
    return l;
  }
  if (url.rfind("sqlite:", 0) == 0) {
    l.path = url.substr(7);
    if (l.path.empty()) throw usage_error{"--store " + url + ": no file name after sqlite:"};
    return l;
  }
  throw usage_error{"--store " + url + ": unknown store URL (expected sqlite:PATH or postgresql://...)"};
}

#if defined(PUNCTUAL_CRON_HAVE_POSTGRES)
/// Whether the database of `l` holds punctual-cron's tables. Throws runtime_failure when it
/// cannot be reached. The inspection commands ask first, so that they never create a store.
bool postgres_store_exists(const store_location& l) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(l.conninfo.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw runtime_failure{"cannot connect to the store " + l.display + ": " +
                          std::string(PQerrorMessage(conn.get()))};
  const std::string sql = std::string("SELECT to_regclass('") + postgres_schema + ".schedules') IS NOT NULL";
  std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn.get(), sql.c_str()), PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
    throw runtime_failure{"cannot read the store " + l.display + ": " +
                          std::string(PQerrorMessage(conn.get()))};
  return PQntuples(r.get()) == 1 && std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
}
#endif

/// How long pause, resume and trigger wait for the SQLite store's write lock, which they take
/// after any daemon that waits for it (sqlite_write_priority::low).
constexpr std::chrono::seconds cli_write_wait{30};

/// A store opened for one inspection command, with the io_context it runs on.
struct opened_store {
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>();
  std::shared_ptr<punctual::store> store;
  std::string display;  ///< what messages show (never a password)
};

/// Opens an existing store for the inspection commands (never creates one).
opened_store open_existing_store(const std::string& url) {
  const auto l = parse_store_url(url);
  opened_store o;
  o.display = l.display;
#if defined(PUNCTUAL_CRON_HAVE_POSTGRES)
  if (l.postgres) {
    if (!postgres_store_exists(l))
      throw runtime_failure{"no store at " + l.display + " (no table " + postgres_schema + ".schedules)"};
    punctual::postgres_store_options po;
    po.schema = postgres_schema;
    po.pool_size = 1;
    auto pg = punctual::postgres_store::open(o.io->get_executor(), l.conninfo, po);
    o.display = pg->display_name();
    o.store = std::move(pg);
    return o;
  }
#endif
  struct stat st {};
  if (::stat(l.path.c_str(), &st) != 0)
    throw runtime_failure{"no store at " + url + " (" + l.path + ": " + std::strerror(errno) + ")"};
  punctual::sqlite_store_options so;
  so.create = false;
  so.poll_interval = std::chrono::milliseconds{0};
  so.purge_interval = std::chrono::milliseconds{0};
  // A command's write (trigger, pause, resume) lets a daemon on the same file write first: the
  // daemon's fires never queue behind a crowd of commands. Each command waits its turn for up
  // to cli_write_wait, then fails with "database is locked".
  so.write_priority = punctual::sqlite_write_priority::low;
  so.busy_timeout = cli_write_wait;
  o.store = punctual::sqlite_store::open(l.path, so);
  return o;
}

/// Runs `body` (a coroutine on a scheduler over `s` that is never started) to completion.
template <class Body>
void with_scheduler(opened_store& s, Body body) {
  punctual::scheduler_options so;
  so.job_store = s.store;
  punctual::scheduler sched{s.io->get_executor(), so};
  std::exception_ptr error;
  asio::co_spawn(*s.io, body(sched), [&](std::exception_ptr e) { error = e; });
  s.io->run();
  if (error) std::rethrow_exception(error);
}

// ---- check ------------------------------------------------------------------------------------

/// The zone an entry's fire times are shown in: its cron zone, else the host's.
const punctual::time_zone& entry_zone(const punctual::crontab_entry& e) {
  if (const auto* c = e.spec.trigger.target<punctual::cron_trigger>()) return c->zone();
  return display_zone();
}

int cmd_check(const cli& c) {
  expect(c, 1, "one argument, the crontab file", {"--from"});
  const auto& path = c.args[0];
  const auto l = load_crontab(path);
  if (!l.errors.empty()) {
    for (const auto& e : l.errors) write_all(STDERR_FILENO, e + "\n");
    write_all(STDERR_FILENO,
              path + ": " + std::to_string(l.errors.size()) + " error(s); nothing would run\n");
    return 2;
  }
  punctual::time_point from = punctual::system_clock{}.now();
  if (const auto it = c.options.find("--from"); it != c.options.end()) {
    try {
      from = punctual::parse_iso(it->second);
    } catch (const punctual::parse_error& e) {
      throw usage_error{std::string("--from: ") + e.what()};
    }
  }
  std::string out;
  for (const auto& e : l.tab.entries) {
    out += path + ":" + std::to_string(e.line) + ": " + e.spec.id + "\n";
    out += "  trigger: " + e.spec.trigger.to_string() + "\n";
    out += "  command: " + e.command + "\n";
    if (const auto opts = punctual::to_string(e.spec.options); !opts.empty())
      out += "  options: " + opts + "\n";
    out += "  next:   ";
    auto t = from;
    int shown = 0;
    for (; shown < 3; ++shown) {
      const auto n = punctual::detail::next_within(e.spec.trigger, t, e.spec.options);
      if (!n) break;
      out += (shown ? ", " : " ") + punctual::format_iso(*n, entry_zone(e));
      t = *n;
    }
    if (shown == 0) out += " never";
    out += "\n";
  }
  out += path + ": " + entries_text(l.tab.entries.size()) + ", no errors\n";
  write_all(STDOUT_FILENO, out);
  return 0;
}

// ---- status, history, pause, resume, trigger ----------------------------------------------------

/// Rows as left-aligned columns two blanks apart (the first row is the header).
std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(rows.empty() ? 0 : rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t k = 0; k < row.size() && k < width.size(); ++k)
      width[k] = std::max(width[k], row[k].size());
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t k = 0; k < row.size(); ++k) {
      out += row[k];
      if (k + 1 < row.size() && k < width.size()) out += std::string(width[k] - row[k].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

int cmd_status(const cli& c) {
  expect(c, 0, "", {"--store"}, true);
  const auto url = c.option("--store", default_store);
  auto store = open_existing_store(url);
  std::vector<punctual::schedule_record> schedules;
  std::map<std::string, std::optional<punctual::job_record>> last;
  with_scheduler(store, [&](punctual::scheduler& s) -> asio::awaitable<void> {
    schedules = co_await s.async_list_schedules(asio::use_awaitable);
    for (const auto& r : schedules) {
      punctual::job_query q;
      q.schedule_id = r.spec.id;
      q.limit = 1;
      auto jobs = co_await s.async_list_jobs(std::move(q), asio::use_awaitable);
      last[r.spec.id] = jobs.empty() ? std::nullopt : std::optional(jobs.front());
    }
  });
  const auto outcome = [&](const std::string& id) -> std::optional<std::string> {
    const auto& j = last[id];
    if (!j) return std::nullopt;
    return std::string(punctual::to_string(j->state));
  };
  std::string out;
  if (c.json) {
    json list = json::array();
    for (const auto& r : schedules) list.push_back(schedule_json(r, outcome(r.spec.id)));
    out += to_json_lines(list);
  } else {
    std::vector<std::vector<std::string>> rows{
        {"ID", "NEXT FIRE", "LAST FIRE", "LAST OUTCOME", "PAUSED", "TRIGGER"}};
    for (const auto& r : schedules)
      rows.push_back({r.spec.id, iso(r.next_fire).value_or("-"), iso(r.last_fire).value_or("-"),
                      outcome(r.spec.id).value_or("-"),
                      r.quarantine.empty() ? (r.spec.paused ? "yes" : "no") : "quarantined: " + r.quarantine,
                      r.trigger_text});
    out += format_table(rows);
    if (schedules.empty()) out += "(no schedules in " + store.display + ")\n";
  }
  write_all(STDOUT_FILENO, out);
  return 0;
}

int cmd_recover(const cli& c) {
  expect(c, 2, "two arguments, the damaged store file and the new file", {});
  auto path = [](std::string p) { return p.rfind("sqlite:", 0) == 0 ? p.substr(7) : p; };
  const auto report = punctual::sqlite_store::recover(path(c.args[0]), path(c.args[1]));
  write_all(STDOUT_FILENO, path(c.args[1]) + ": " + report.summary() + "\n");
  return 0;
}

int cmd_history(const cli& c) {
  expect(c, 1, "one argument, a schedule id", {"--store", "--limit"}, true);
  const auto& id = c.args[0];
  std::size_t limit = 20;
  if (const auto it = c.options.find("--limit"); it != c.options.end()) {
    const auto& v = it->second;
    if (v.empty() || v.size() > 7 || v.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(v) == 0)
      throw usage_error{"--limit \"" + v + "\": expected a whole number from 1 to 9999999"};
    limit = std::stoul(v);
  }
  const auto url = c.option("--store", default_store);
  auto store = open_existing_store(url);
  std::vector<punctual::job_record> jobs;
  bool exists = false;
  with_scheduler(store, [&](punctual::scheduler& s) -> asio::awaitable<void> {
    exists = (co_await s.async_get_schedule(id, asio::use_awaitable)).has_value();
    punctual::job_query q;
    q.schedule_id = id;
    q.limit = limit;
    jobs = co_await s.async_list_jobs(std::move(q), asio::use_awaitable);
  });
  if (!exists && jobs.empty())
    throw runtime_failure{"no schedule \"" + id + "\" and no runs of it in " + store.display};
  std::string out;
  if (c.json) {
    json list = json::array();
    for (const auto& j : jobs) list.push_back(run_json(j));
    out += to_json_lines(list);
  } else {
    std::vector<std::vector<std::string>> rows{
        {"JOB", "FIRE TIME", "STARTED", "FINISHED", "OUTCOME", "EXIT", "NODE", "ERROR"}};
    for (const auto& j : jobs)
      rows.push_back(
          {std::to_string(j.id), iso(j.fire_time), iso(j.started).value_or("-"),
           iso(j.finished).value_or("-"), std::string(punctual::to_string(j.state)),
           j.exit_code ? std::to_string(*j.exit_code) : (j.signal ? "sig" + std::to_string(*j.signal) : "-"),
           j.node.empty() ? "-" : j.node, j.error});
    out += format_table(rows);
    if (jobs.empty()) out += "(no runs of " + id + " yet)\n";
  }
  write_all(STDOUT_FILENO, out);
  return 0;
}

int cmd_change(const cli& c) {
  expect(c, 1, "one argument, a schedule id", {"--store"});
  const auto& id = c.args[0];
  const auto url = c.option("--store", default_store);
  auto store = open_existing_store(url);
  std::string done;
  try {
    with_scheduler(store, [&](punctual::scheduler& s) -> asio::awaitable<void> {
      if (c.command == "pause") {
        co_await s.async_pause_schedule(id, asio::use_awaitable);
        done = "paused " + id;
      } else if (c.command == "resume") {
        co_await s.async_resume_schedule(id, punctual::resume_from::missed, asio::use_awaitable);
        done = "resumed " + id;
      } else {
        const auto job = co_await s.async_run_now(id, asio::use_awaitable);
        done = "queued a run of " + id + " now (job " + std::to_string(job) + ")";
      }
    });
  } catch (const punctual::schedule_not_found&) {
    throw runtime_failure{"no schedule \"" + id + "\" in " + store.display};
  }
  write_all(STDOUT_FILENO, done + "\n");
  return 0;
}

// ---- run: the daemon ----------------------------------------------------------------------------

/// The token in --http-admin's file: its first line without surrounding blanks; at least 16
/// characters (a guessable token would open the actions to anyone who can reach the port).
std::string read_admin_token(const std::string& path) {
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const runtime_failure& e) {
    throw usage_error{"--http-admin: " + e.message};
  }
  text = text.substr(0, text.find('\n'));
  const auto first = text.find_first_not_of(" \t\r");
  const auto last = text.find_last_not_of(" \t\r");
  text = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
  if (text.size() < 16)
    throw usage_error{"--http-admin " + path +
                      ": the token (the file's first line) must have at least 16 characters"};
  return text;
}

/// Identity of the crontab file as last seen, to notice edits.
struct file_stamp {
  std::int64_t mtime_ns = -1;
  std::int64_t size = -1;
  std::uint64_t inode = 0;
  bool operator==(const file_stamp&) const = default;
};

file_stamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

/// The task every crontab entry runs: its payload is the entry's environment and command line
/// (see encode_crontab_payload), run by $SHELL from that environment, else /bin/sh.
constexpr const char* crontab_task = "crontab";

class daemon {
 public:
  daemon(asio::io_context& io, const cli& c)
      : io_(io),
        crontab_path_(c.args.at(0)),
        store_url_(c.option("--store", default_store)),
        node_(c.option("--node", punctual::default_node_name())),
        stop_signals_(io, SIGTERM, SIGINT),
        reload_signal_(io, SIGHUP),
        watch_timer_(io),
        watchdog_timer_(io),
        retry_timer_(io) {
    const auto grace_text = c.option("--grace", "30s");
    try {
      grace_ = punctual::parse_duration(grace_text);
    } catch (const punctual::parse_error& e) {
      throw usage_error{std::string("--grace: ") + e.what()};
    }
    if (grace_ < punctual::duration::zero())
      throw usage_error{"--grace " + grace_text + ": must not be negative"};
    if (node_.empty()) throw usage_error{"--node: must not be empty"};
    const auto lease_text = c.option("--lease", "30s");
    try {
      lease_ = punctual::parse_duration(lease_text);
    } catch (const punctual::parse_error& e) {
      throw usage_error{std::string("--lease: ") + e.what()};
    }
    if (lease_ < std::chrono::seconds{1})
      throw usage_error{"--lease " + lease_text + ": must be at least 1s"};
    if (const auto it = c.options.find("--http"); it != c.options.end()) {
      try {
        http_at_ = parse_listen_address(it->second);
      } catch (const std::invalid_argument& e) {
        throw usage_error{e.what()};
      }
    }
    if (const auto it = c.options.find("--http-max-connections"); it != c.options.end()) {
      const auto& v = it->second;
      if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) < 1 || std::stoul(v) > 100000)
        throw usage_error{"--http-max-connections \"" + v + "\": expected a whole number from 1 to 100000"};
      http_max_connections_ = std::stoul(v);
      http_max_connections_given_ = true;
    }
    if (const auto it = c.options.find("--http-admin"); it != c.options.end()) {
      if (!http_at_) throw usage_error{"--http-admin needs --http (it allows the HTTP API's actions)"};
      admin_token_ = read_admin_token(it->second);
    }
  }

  int run() {
    auto first = load_crontab(crontab_path_);
    if (!first.errors.empty()) {
      for (const auto& e : first.errors) write_all(STDERR_FILENO, e + "\n");
      write_all(STDERR_FILENO, crontab_path_ + ": " + std::to_string(first.errors.size()) +
                                   " error(s); punctual-cron does not start on a bad crontab\n");
      return 2;
    }
    stamp_ = stamp_of(crontab_path_);
    descriptor_limit_ = raise_descriptor_limit();  // before the store and HTTP open any
    open_store();
    make_scheduler();
    if (http_at_) {
      http_limits limits;
      limits.max_connections = std::min(http_max_connections_, http_connection_budget(descriptor_limit_));
      limits.log = [](std::string_view m) { log(m); };
      std::string why = "descriptor limit " + std::to_string(descriptor_limit_);
      if (limits.max_connections < http_max_connections_)
        why = (http_max_connections_given_ ? "--http-max-connections " : "the default ") +
              std::to_string(http_max_connections_) + " lowered: the " + why +
              " leaves HTTP at most half of what is left after " + std::to_string(daemon_descriptor_reserve) +
              " for the daemon";
      log("http: at most " + std::to_string(limits.max_connections) + " connections (" + why +
          "); closed after " + std::to_string(limits.idle_timeout.count() / 1000) + "s without a byte or " +
          std::to_string(limits.header_timeout.count() / 1000) + "s without a whole request");
      dashboard_ = std::make_unique<dashboard>(dashboard_context{
          sched_.get(), store_display_, node_, punctual::system_clock{}.now(), admin_token_});
      http_ = std::make_unique<http_server>(
          io_.get_executor(), *http_at_, [this](const http_request& q) { return serve(q); },
          std::move(limits));
      const auto at = http_->local_endpoint();
      log("http: serving /metrics and /healthz on " + at.address().to_string() + ":" +
          std::to_string(at.port()) + ", the dashboard at / (" +
          (admin_token_.empty() ? "read-only" : "actions allowed with the --http-admin token") + ")");
      http_->start();
    }
    stop_signals_.async_wait([this](asio::error_code ec, int sig) {
      if (!ec) asio::co_spawn(io_, shutdown(sig), asio::detached);
    });
    wait_for_reload_signal();
    asio::co_spawn(io_, startup(std::move(first.tab)), asio::detached);
    io_.run();
    return 0;  // stopped by SIGTERM/SIGINT: a success (failures leave as exceptions, exit 1)
  }

 private:
  void open_store() {
    const auto location = parse_store_url(store_url_);
    store_display_ = location.display;
#if defined(PUNCTUAL_CRON_HAVE_POSTGRES)
    if (location.postgres) {
      // Connects (and migrates) on first use, in startup(): a server that is down is retried
      // like any store error, with the reason in the log.
      punctual::postgres_store_options o;
      o.schema = postgres_schema;
      o.on_warning = [](std::string_view m) { log("store: " + std::string(m)); };
      auto pg = punctual::postgres_store::open(io_.get_executor(), location.conninfo, std::move(o));
      store_display_ = pg->display_name();
      store_ = std::move(pg);
      return;
    }
#endif
    punctual::sqlite_store_options o;
    o.on_warning = [](std::string m) { log("store: " + m); };
    for (int attempt = 1;; ++attempt) {
      try {
        store_ = punctual::sqlite_store::open(location.path, o);
        return;
      } catch (const punctual::sqlite_error& e) {
        const int primary = e.code() & 0xff;
        // Opening takes the lock only to migrate the schema. Locked for a minute (plus the
        // busy timeout of each attempt) is not "a few seconds": give up with the reason.
        if ((primary != 5 /* SQLITE_BUSY */ && primary != 6 /* SQLITE_LOCKED */) || attempt >= 40)
          throw runtime_failure{"cannot open the store " + store_display_ + ": " + e.what()};
        if (attempt == 1)
          log(std::string("store ") + store_display_ + " is locked (" + e.what() + "); retrying");
        std::this_thread::sleep_for(std::chrono::milliseconds{std::min(200 * attempt, 1500)});
      }
    }
  }

  void make_scheduler() {
    punctual::scheduler_options so;
    so.job_store = store_;
    so.node = node_;
    so.lease = lease_;
    so.on_abandoned_process = punctual::kill_abandoned_process;
    sched_ = std::make_unique<punctual::scheduler>(io_.get_executor(), so);
    punctual::command_task_options co;
    co.on_line = [](const punctual::job_context& job, std::string_view line, bool is_stderr) {
      std::string text = "[" + job.schedule_id() + "] ";
      text += line;
      text += '\n';
      write_all(is_stderr ? STDERR_FILENO : STDOUT_FILENO, text);
    };
    punctual::add_command_builder_task(
        sched_->tasks(), crontab_task,
        [](punctual::job_context& job) {
          auto p = punctual::decode_crontab_payload(job.payload());
          std::string shell = "/bin/sh";
          for (const auto& [k, v] : p.env)
            if (k == "SHELL" && !v.empty()) shell = v;
          auto cmd = punctual::command::shell(std::move(p.command), shell);
          cmd.env = std::move(p.env);
          cmd.env.emplace_back("PUNCTUAL_SCHEDULE_ID", job.schedule_id());
          cmd.env.emplace_back("PUNCTUAL_FIRE_TIME", punctual::format_iso(job.fire_time()));
          return cmd;
        },
        std::move(co));
    subscription_ = sched_->events().subscribe([this](const punctual::event& e) { on_event(e); });
  }

  // ---- life cycle ----

  asio::awaitable<void> startup(punctual::crontab tab) {
    busy_ = true;
    const bool loaded = co_await apply_with_retry(tab, "loaded");
    busy_ = false;
    if (!loaded || stopping_) co_return;
    sched_->start();
    log("running " + entries_text(tab.entries.size()) + " from " + crontab_path_ + " (store " +
        store_display_ + ", node " + node_ + ")");
    notifier_.notify("READY=1\nSTATUS=running " + entries_text(tab.entries.size()));
    watch_file();
    watchdog();
    if (reload_pending_) asio::co_spawn(io_, reload("SIGHUP"), asio::detached);
  }

  asio::awaitable<void> shutdown(int sig) {
    if (stopping_) co_return;
    stopping_ = true;
    const auto running = sched_->health().running_jobs;
    log(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ": stopping; " +
        (running ? "waiting up to " + punctual::format_duration(grace_) + " for " + std::to_string(running) +
                       " running job(s)"
                 : std::string("no jobs running")));
    notifier_.notify("STOPPING=1");
    retry_timer_.cancel();
    watch_timer_.cancel();
    watchdog_timer_.cancel();
    reload_signal_.cancel();
    // A second signal during the grace period ends it: running jobs are terminated now.
    stop_signals_.async_wait([this](asio::error_code ec, int) {
      if (ec) return;
      log("second signal: terminating running jobs now");
      asio::co_spawn(
          io_,
          [this]() -> asio::awaitable<void> {
            co_await sched_->async_stop(punctual::stop_mode::cancel, {}, asio::use_awaitable);
          },
          asio::detached);
    });
    co_await sched_->async_stop(punctual::stop_mode::wait, grace_, asio::use_awaitable);
    if (http_) http_->stop();
    if (dashboard_) dashboard_->events().close_all();
    stop_signals_.cancel();
    log("stopped");
    io_.stop();
  }

  void wait_for_reload_signal() {
    reload_signal_.async_wait([this](asio::error_code ec, int) {
      if (ec) return;
      asio::co_spawn(io_, reload("SIGHUP"), asio::detached);
      wait_for_reload_signal();
    });
  }

  /// Re-reads the crontab and applies it; a bad file is reported and the entries in force stay.
  asio::awaitable<void> reload(std::string why) {
    if (busy_) {  // a load is in progress: do it again when that one is done
      reload_pending_ = true;
      co_return;
    }
    busy_ = true;
    do {
      reload_pending_ = false;
      stamp_ = stamp_of(crontab_path_);
      try {
        auto l = load_crontab(crontab_path_);
        if (!l.errors.empty()) {
          for (const auto& e : l.errors) log(e);
          log("reload (" + why + ") rejected: " + std::to_string(l.errors.size()) +
              " error(s) in the crontab; the entries in force stay");
        } else {
          co_await apply_with_retry(l.tab, "reloaded (" + why + ")");
        }
      } catch (const runtime_failure& e) {
        log("reload (" + why + ") failed: " + e.message + "; the entries in force stay");
      }
    } while (reload_pending_ && !stopping_);
    busy_ = false;
  }

  /// Applies `tab` to the store, retrying store errors with backoff until it works or the
  /// daemon stops. False when stopped first.
  asio::awaitable<bool> apply_with_retry(const punctual::crontab& tab, std::string verb) {
    auto delay = std::chrono::milliseconds{250};
    for (int attempt = 1;; ++attempt) {
      try {
        co_await apply(tab, verb);
        if (attempt > 1) log("store recovered: crontab " + verb);
        co_return true;
      } catch (const std::exception& e) {
        if (attempt == 1)
          log(std::string("store error while applying the crontab: ") + e.what() + "; retrying");
      }
      if (stopping_) co_return false;
      retry_timer_.expires_after(delay);
      co_await retry_timer_.async_wait(use_tuple);
      if (stopping_) co_return false;
      delay = std::min(delay * 2, std::chrono::milliseconds{10'000});
    }
  }

  static bool same(const punctual::schedule_record& r, const punctual::schedule_spec& s) {
    return r.quarantine.empty() && r.trigger_text == s.trigger.to_string() && r.spec.task == s.task &&
           r.spec.payload == s.payload &&
           punctual::to_string(r.spec.options) == punctual::to_string(s.options);
  }

  /// Makes the store's crontab schedules equal to `tab`: adds new entries, replaces changed ones
  /// (history, last fire and pause state kept), removes the ones no longer in the file.
  /// Unchanged entries are left alone, so their next fire time — and catch-up after downtime —
  /// is kept. New and changed entries go to the store in one transaction (async_add_schedules):
  /// a crontab of 10,000 entries costs one commit, not 10,000.
  asio::awaitable<void> apply(const punctual::crontab& tab, const std::string& verb) {
    auto stored = co_await sched_->async_list_schedules(asio::use_awaitable);
    std::map<std::string, const punctual::schedule_record*> by_id;
    for (const auto& r : stored) by_id[r.spec.id] = &r;
    std::size_t added = 0, changed = 0, unchanged = 0, removed = 0;
    std::set<std::string> in_file;
    std::vector<punctual::schedule_spec> to_store;
    for (const auto& e : tab.entries) {
      in_file.insert(e.spec.id);
      const auto it = by_id.find(e.spec.id);
      if (it != by_id.end() && same(*it->second, e.spec)) {
        ++unchanged;
        continue;
      }
      to_store.push_back(e.spec);
    }
    if (!to_store.empty()) {
      const auto outcomes = co_await sched_->async_add_schedules(
          std::move(to_store), punctual::conflict_policy::replace, asio::use_awaitable);
      for (const auto o : outcomes) ++(o == punctual::add_outcome::added ? added : changed);
    }
    for (const auto& r : stored) {
      if (r.spec.task != crontab_task || in_file.count(r.spec.id) != 0) continue;
      co_await sched_->async_remove_schedule(r.spec.id, asio::use_awaitable);
      ++removed;
    }
    log("crontab " + verb + ": " + entries_text(tab.entries.size()) + " (" + std::to_string(added) +
        " added, " + std::to_string(changed) + " changed, " + std::to_string(removed) + " removed, " +
        std::to_string(unchanged) + " unchanged)");
  }

  /// Polls the crontab's identity once a second; a change reloads it.
  void watch_file() {
    watch_timer_.expires_after(std::chrono::seconds{1});
    watch_timer_.async_wait([this](asio::error_code ec) {
      if (ec || stopping_) return;
      if (stamp_of(crontab_path_) != stamp_) asio::co_spawn(io_, reload("file changed"), asio::detached);
      watch_file();
    });
  }

  /// systemd watchdog: WATCHDOG=1 only while the scheduler reports itself healthy, so a
  /// wedged scheduler is restarted by systemd.
  void watchdog() {
    const auto interval = systemd_notifier::watchdog_interval();
    if (!interval || !notifier_.enabled()) return;
    watchdog_timer_.expires_after(*interval);
    watchdog_timer_.async_wait([this](asio::error_code ec) {
      if (ec || stopping_) return;
      const auto h = sched_->health();
      if (h.healthy) {
        notifier_.notify(unhealthy_ ? "WATCHDOG=1\nSTATUS=running" : "WATCHDOG=1");
        unhealthy_ = false;
      } else if (!unhealthy_) {
        notifier_.notify("STATUS=unhealthy: " + h.reason);
        unhealthy_ = true;
      }
      watchdog();
    });
  }

  asio::awaitable<http_response> serve(const http_request& q) {
    if (auto r = co_await dashboard_->handle(q)) co_return std::move(*r);
    co_return serve_plain(q.method == "POST" ? "" : q.path);
  }

  http_response serve_plain(std::string_view path) {
    if (path == "/metrics")
      return {200, "text/plain; version=0.0.4; charset=utf-8",
              punctual::to_prometheus(sched_->metrics(), sched_->health()) + store_info()};
    if (path == "/healthz") {
      const auto h = sched_->health();
      if (h.healthy) return {200, "text/plain; charset=utf-8", "ok\n"};
      return {503, "text/plain; charset=utf-8",
              "unhealthy: " + (h.reason.empty() ? std::string(to_string(h.state)) : h.reason) + "\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found (try /, /api/health, /metrics or /healthz)\n"};
  }

  /// The punctual_cron_store_info gauge: which store this daemon uses (no password).
  std::string store_info() const {
    std::string label;  // a Prometheus label value: backslash, quote and newline escaped
    for (char ch : store_display_) {
      if (ch == '\n')
        label += "\\n";
      else if (ch == '\\' || ch == '"')
        label += {'\\', ch};
      else
        label += ch;
    }
    std::string out;
    punctual::detail::prometheus_header(out, "punctual_cron_store_info", "gauge",
                                        "The store this daemon uses (its password redacted).");
    punctual::detail::prometheus_sample(out, "punctual_cron_store_info", "store=\"" + label + "\"", "1");
    return out;
  }

  // ---- the log ----

  void on_event(const punctual::event& e) {
    if (dashboard_) dashboard_->publish(e);
    using k = punctual::event_kind;
    const std::string who = "[" + e.schedule_id + "] ";
    const std::string job = "job " + std::to_string(e.job_id);
    const auto fire = e.fire_time ? iso(*e.fire_time) : std::string("?");
    const auto took = [&]() -> std::string {
      const auto it = started_.find(e.job_id);
      if (it == started_.end()) return "";
      const auto d = e.at - it->second;
      started_.erase(it);
      return " after " + human(d);
    };
    switch (e.kind) {
      case k::job_started:
        started_[e.job_id] = e.at;
        log(who + job + " started for " + fire + " (" + (e.lateness ? human(*e.lateness) : std::string("?")) +
            " late, attempt " + std::to_string(e.attempt) + ")");
        break;
      case k::job_succeeded: log(who + job + " succeeded" + took()); break;
      case k::job_failed: log(who + job + " failed" + took() + ": " + e.message); break;
      case k::job_timed_out:
        log(who + job + " timed out" + took() + (e.message.empty() ? "" : ": " + e.message));
        break;
      case k::job_cancelled: log(who + job + " cancelled" + took() + ": " + e.message); break;
      case k::job_missed:
        log(who + "missed the run for " + fire + " (" + (e.lateness ? human(*e.lateness) : std::string("?")) +
            " late, beyond its misfire grace)");
        break;
      case k::job_skipped:
        log(who + "skipped the run for " + fire + ": max_running runs still running");
        break;
      case k::job_abandoned: log(who + job + " for " + fire + " was abandoned: " + e.message); break;
      case k::job_recovered: log(who + job + " queued again (on_abandoned=rerun)"); break;
      case k::job_retry_scheduled:
        log(who + job + " will be retried (attempt " + std::to_string(e.attempt) + "): " + e.message);
        break;
      case k::fires_dropped:
        log(who + std::to_string(e.count) +
            " due fire time(s) dropped by coalescing (one catch-up run instead)");
        break;
      case k::schedule_quarantined: log(who + "quarantined: " + e.message); break;
      case k::schedule_finished: log(who + "its trigger will never fire again"); break;
      case k::store_error:
        // Once per outage (and a failed last write at stop); health and /metrics show the rest.
        if (e.count <= 1 || e.attempt == 0)
          log("store error in " + e.op + ": " + e.message +
              "; retrying with backoff (running jobs continue)");
        break;
      case k::store_recovered:
        log("store recovered (" + e.op + "): " + e.message);  // the message says after how many failures
        break;
      case k::loop_restarted: log("scheduler loop " + e.op + " restarted: " + e.message); break;
      case k::clock_stepped: log(e.message); break;
      case k::listener_error: log("event listener error: " + e.message); break;
      default: break;
    }
  }

  asio::io_context& io_;
  std::string crontab_path_;
  std::string store_url_;      // as given: may hold a password, never shown
  std::string store_display_;  // what the log and /metrics show
  std::string node_;
  punctual::duration grace_{};
  punctual::duration lease_{};
  std::optional<asio::ip::tcp::endpoint> http_at_;
  std::size_t http_max_connections_ = 64;
  bool http_max_connections_given_ = false;
  rlim_t descriptor_limit_ = 1024;  // the soft RLIMIT_NOFILE, once raised
  std::shared_ptr<punctual::store> store_;
  std::unique_ptr<punctual::scheduler> sched_;
  punctual::subscription subscription_;
  std::string admin_token_;  // --http-admin: "" when read-only
  std::unique_ptr<dashboard> dashboard_;
  std::unique_ptr<http_server> http_;
  systemd_notifier notifier_;
  asio::signal_set stop_signals_;
  asio::signal_set reload_signal_;
  asio::steady_timer watch_timer_;
  asio::steady_timer watchdog_timer_;
  asio::steady_timer retry_timer_;
  file_stamp stamp_;
  std::map<std::int64_t, punctual::time_point> started_;
  bool stopping_ = false;
  bool busy_ = false;
  bool reload_pending_ = false;
  bool unhealthy_ = false;
};

int cmd_run(const cli& c) {
  expect(c, 1, "one argument, the crontab file",
         {"--store", "--node", "--http", "--http-max-connections", "--grace", "--lease", "--http-admin"});
  asio::io_context io;
  daemon d(io, c);
  return d.run();
}

}  // namespace
}  // namespace punctual_cron

int main(int argc, char** argv) {
  using namespace punctual_cron;
  try {
    const cli c = parse_cli(argc, argv);
    if (c.help || c.command == "help") {
      write_all(STDOUT_FILENO, usage_text);
      return 0;
    }
    if (c.command == "run") return cmd_run(c);
    if (c.command == "check") return cmd_check(c);
    if (c.command == "status") return cmd_status(c);
    if (c.command == "history") return cmd_history(c);
    if (c.command == "recover") return cmd_recover(c);
    if (c.command == "pause" || c.command == "resume" || c.command == "trigger") return cmd_change(c);
    throw usage_error{c.command.empty() ? "no command given" : "unknown command \"" + c.command + "\""};
  } catch (const usage_error& e) {
    write_all(STDERR_FILENO, "punctual-cron: " + e.message + "\n(punctual-cron --help for usage)\n");
    return 2;
  } catch (const runtime_failure& e) {
    write_all(STDERR_FILENO, "punctual-cron: " + e.message + "\n");
    return 1;
  } catch (const std::exception& e) {
    write_all(STDERR_FILENO, std::string("punctual-cron: ") + e.what() + "\n");
    return 1;
  }
}
