// Three punctual-cron daemons (real processes, real time) on one PostgreSQL database (issue 13,
// "Proof — several nodes"): one crontab of 10 entries `@every 1s`, each daemon its own --node and
// a 3 s --lease. One daemon is SIGKILLed and another SIGSTOPped past its lease while they run
// jobs; the third takes over. Afterwards (SQL on the jobs table, and a file every run appends
// to): no fire time twice or missing between each entry's first and last, every job final, each
// run exactly once except the runs the two victims held — abandoned (on_abandoned=record) or run
// once more by a live daemon (rerun) — and the frozen daemon's late outcomes are not written.
// Each test uses a database of its own (punctual-cron always uses the schema "punctual"), dropped
// at the end. PUNCTUAL_CRON_BINARY is defined for this file by tests/CMakeLists.txt; without it,
// or without PUNCTUAL_TEST_POSTGRES_URL, there is no test / the test skips.
#include <catch2/catch.hpp>

#if defined(PUNCTUAL_CRON_BINARY) && defined(PUNCTUAL_TEST_HAVE_POSTGRES)

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/pg_testing.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::testing::pg::eventually;
using postgres_admin = punctual::testing::pg::admin_connection;
using punctual::testing::pg::server_url;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// `punctual-cron run CRONTAB --store URL --node NAME --lease 3s` in `dir`, with NODE_NAME=NAME in
/// its environment (so its jobs can say who ran them); SIGKILLed and reaped on the way out.
class cron_daemon {
 public:
  cron_daemon(const std::string& dir, const std::string& url, std::string node)
      : node_(std::move(node)), err_(dir + "/" + node_ + ".err") {
    const std::string crontab = dir + "/crontab", env = "NODE_NAME=" + node_;
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int out = ::open((dir + "/" + node_ + ".out").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0 || ::chdir(dir.c_str()) != 0)
        ::_exit(126);
      ::setenv("NODE_NAME", node_.c_str(), 1);
      ::unsetenv("NOTIFY_SOCKET");
      ::execl(PUNCTUAL_CRON_BINARY, PUNCTUAL_CRON_BINARY, "run", crontab.c_str(), "--store", url.c_str(),
              "--node", node_.c_str(), "--lease", "3s", "--grace", "5s", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  cron_daemon(const cron_daemon&) = delete;
  cron_daemon& operator=(const cron_daemon&) = delete;
  ~cron_daemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    reap();
  }

  const std::string& node() const { return node_; }
  std::string log() const { return "--- " + node_ + " stderr:\n" + slurp(err_); }
  bool running() const { return slurp(err_).find("running 10 entries") != std::string::npos; }
  void signal(int sig) const { REQUIRE(::kill(pid_, sig) == 0); }
  /// Waits for the exit; its status (exit code, or -signal).
  int reap() {
    int raw = 0;
    while (::waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
  }

 private:
  std::string node_;
  std::string err_;
  pid_t pid_ = -1;
};

/// Stops `d` (SIGSTOP) at a moment the store shows it running a job of an entry in `kinds`
/// ("record" / "rerun", the ids' prefixes); returns those jobs (id -> entry id). Stays stopped.
std::map<long, std::string> stop_while_running(postgres_admin& db, cron_daemon& d,
                                               const std::set<std::string>& kinds) {
  std::map<long, std::string> held;
  const bool ok = eventually(
      [&] {
        d.signal(SIGSTOP);
        std::this_thread::sleep_for(200ms);  // a write sent just before may still be committing
        held.clear();
        bool wanted = false;
        for (auto& r :
             db.rows("SELECT id, schedule_id FROM punctual.jobs WHERE state = 'running' AND node = '" +
                     d.node() + "'")) {
          held[std::stol(r[0])] = r[1];
          wanted = wanted || kinds.count(r[1].substr(0, r[1].find('-'))) != 0;
        }
        if (wanted) return true;
        d.signal(SIGCONT);
        std::this_thread::sleep_for(150ms);
        return false;
      },
      20s);
  REQUIRE(ok);
  return held;
}

}  // namespace

TEST_CASE("punctual-cron: three daemons on one PostgreSQL database, one killed and one frozen past its lease",
          "[punctual-cron][postgres][nodes]") {
  if (server_url().empty()) {
    WARN("skipped: PUNCTUAL_TEST_POSTGRES_URL is not set (no PostgreSQL server)");
    return;
  }
  punctual::testing::pg::scratch_database database;
  char tmpl[] = "/tmp/punctual-cron-nodes-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  struct cleanup {
    std::string dir;
    ~cleanup() { std::filesystem::remove_all(dir); }
  } cleanup_dir{dir};
  const std::string runs = dir + "/runs";
  {
    std::ofstream tab(dir + "/crontab");
    // Every run appends "<entry> <fire time> <node>" before its 0.4 s of work: the execution log.
    for (int k = 0; k < 10; ++k)
      tab << "#@ id=" << (k % 2 ? "rerun-" : "record-") << k
          << " coalesce=all overlap=queue on_abandoned=" << (k % 2 ? "rerun" : "record")
          << "\n@every 1s echo \"$PUNCTUAL_SCHEDULE_ID $PUNCTUAL_FIRE_TIME $NODE_NAME\" >> " << runs
          << "; sleep 0.4\n";
  }
  postgres_admin db(database.url);
  // The first daemon loads the crontab; the others start once it runs and find it unchanged.
  std::vector<std::unique_ptr<cron_daemon>> d;
  d.push_back(std::make_unique<cron_daemon>(dir, database.url, "cron-a"));
  if (!eventually([&] { return d[0]->running(); }, 20s)) FAIL("cron-a did not start\n" << d[0]->log());
  d.push_back(std::make_unique<cron_daemon>(dir, database.url, "cron-b"));
  d.push_back(std::make_unique<cron_daemon>(dir, database.url, "cron-c"));
  for (auto& x : d)
    if (!eventually([&] { return x->running(); }, 20s)) FAIL(x->node() << " did not start\n" << x->log());
  std::this_thread::sleep_for(5s);

  // cron-b dies with a job running (its process groups die with it); cron-c freezes with one
  // running, of the other policy where cron-b's held only one.
  auto killed = stop_while_running(db, *d[1], {"record", "rerun"});
  d[1]->signal(SIGKILL);
  REQUIRE(d[1]->reap() == -SIGKILL);
  std::set<std::string> other{"record", "rerun"};
  bool record = false, rerun = false;
  for (auto& [id, entry] : killed) (entry.rfind("rerun-", 0) == 0 ? rerun : record) = true;
  if (record && !rerun) other = {"rerun"};
  if (rerun && !record) other = {"record"};
  auto frozen = stop_while_running(db, *d[2], other);
  std::map<long, std::string> held = killed;
  held.insert(frozen.begin(), frozen.end());
  std::string ids;
  for (auto& [id, entry] : held) {
    // Appended piece by piece: `"," + std::to_string(id)` makes GCC 12 at -O3 report a bogus
    // -Wstringop-overflow inside libstdc++ (see numbered() in unit/store_conformance.hpp).
    if (!ids.empty()) ids += ',';
    ids += std::to_string(id);
  }
  INFO("cron-b killed with jobs running, cron-c frozen with jobs running: " << ids);

  // cron-a recovers both after their leases (3 s, checked every second).
  const auto unfinished =
      "SELECT count(*) FROM punctual.jobs WHERE id IN (" + ids + ") AND state IN ('pending', 'running')";
  if (!eventually([&] { return db.value(unfinished) == "0"; }, 20s))
    FAIL("the victims' runs were not recovered\n" << d[0]->log());
  d[2]->signal(SIGCONT);  // its runs ended meanwhile: it reaps them and tries to write their outcomes
  std::this_thread::sleep_for(4s);

  const auto paused_us = std::stoll(db.value("SELECT punctual.now_us()"));
  db.value("UPDATE punctual.schedules SET paused = true");
  if (!eventually(
          [&] {
            return db.value("SELECT count(*) FROM punctual.jobs WHERE state IN ('pending', 'running')") ==
                   "0";
          },
          20s))
    FAIL("jobs still pending or running after the pause\n" << d[0]->log() << d[2]->log());
  d[0]->signal(SIGTERM);
  d[2]->signal(SIGTERM);
  CHECK(d[0]->reap() == 0);
  CHECK(d[2]->reap() == 0);
  const auto logs = d[0]->log() + d[2]->log();

  // The execution log: (entry, fire time in the text the job saw) -> the nodes that ran it.
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> executed;
  {
    std::istringstream in(slurp(runs));
    for (std::string entry, fire, node; in >> entry >> fire >> node;) executed[{entry, fire}].push_back(node);
  }
  const auto rows = db.rows(
      "SELECT id, schedule_id, fire_time, state, node, attempt,"
      " to_char(to_timestamp(fire_time / 1e6) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
      " FROM punctual.jobs ORDER BY schedule_id, fire_time");
  std::map<std::string, std::vector<long long>> fires;
  int held_seen = 0, by_frozen = 0;
  for (const auto& r : rows) {
    const long id = std::stol(r[0]);
    const auto& entry = r[1];
    const auto& ran = executed[{entry, r[6]}];
    INFO("job " << id << " " << entry << " " << r[6] << ": " << r[3] << " on " << r[4] << ", attempt " << r[5]
                << ", run by " << ran.size() << "\n"
                << logs);
    fires[entry].push_back(std::stoll(r[2]));
    CHECK(r[3] != "pending");
    CHECK(r[3] != "running");
    const auto victim = held.find(id);
    if (victim == held.end()) {  // an ordinary run: once, by the node its row names
      CHECK(r[3] == "succeeded");
      CHECK(r[5] == "1");
      REQUIRE(ran.size() == 1);
      CHECK(ran[0] == r[4]);
      continue;
    }
    ++held_seen;
    // A victim's run, or both victims': cron-c may have taken up the rerun of a job cron-b held
    // before it froze (each abandonment then adds one attempt).
    const int victims = static_cast<int>(killed.count(id) + frozen.count(id));
    int by_b = 0, by_c = 0, by_a = 0;
    for (const auto& n : ran) (n == "cron-b" ? by_b : n == "cron-c" ? by_c : by_a) += 1;
    CHECK(by_b <= 1);
    CHECK(by_c <= 1);
    if (frozen.count(id) && by_c == 1) {
      // The frozen daemon saw its run end after SIGCONT and reported it; the row kept what the
      // recovery (and cron-a) wrote.
      ++by_frozen;
      CHECK(slurp(dir + "/cron-c.err").find("job " + r[0] + " succeeded") != std::string::npos);
    }
    if (entry.rfind("rerun-", 0) == 0) {  // run again by cron-a, whose outcome stays
      CHECK(r[3] == "succeeded");
      CHECK(r[5] == std::to_string(victims + 1));
      CHECK(r[4] == "cron-a");
      CHECK(by_a == 1);
    } else {  // abandoned, whatever the frozen node reported later
      CHECK(victims == 1);
      CHECK(r[3] == "abandoned");
      CHECK(r[5] == "1");
      CHECK(by_a == 0);
    }
  }
  CHECK(held_seen == static_cast<int>(held.size()));
  CHECK(by_frozen > 0);
  CHECK(fires.size() == 10);
  for (const auto& [entry, f] : fires) {
    INFO(entry << ": " << f.size() << " fire times\n" << logs);
    CHECK(f.size() >= 10);
    CHECK(f.back() >= paused_us - 3'000'000);
    for (std::size_t k = 1; k < f.size(); ++k)
      CHECK(f[k] - f[k - 1] == 1'000'000);  // none twice, none missing
  }
  // The frozen daemon did run again after SIGCONT (its late outcomes were its own view only).
  CHECK(std::stoi(db.value(
            "SELECT count(*) FROM punctual.jobs WHERE node = 'cron-c' AND state = 'succeeded'")) > 0);
}

#endif  // PUNCTUAL_CRON_BINARY && PUNCTUAL_TEST_HAVE_POSTGRES
