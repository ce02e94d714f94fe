// The executable specification of punctual::store (include/punctual/store/store.hpp).
//
// Every store's test file calls it from one TEST_CASE:
//
//   TEST_CASE("sqlite store passes the store conformance suite", "[store][sqlite]") {
//     punctual::testing::store_conformance([] { return std::make_shared<punctual::sqlite_store>(...); });
//   }
//
// Each behaviour is a named SECTION; Catch runs the TEST_CASE once per section, and each run
// starts from a fresh store made by `make_store`. Store operations are driven synchronously
// through run(), which also works for stores that complete on another thread.
//
// store.hpp states every rule checked here (this suite used to settle some points itself; they
// are part of store.hpp now). A store that judges leases by its own clock, as store.hpp allows,
// runs the suite with that clock replaced by the callers' times: the lease sections pass times
// far from the real clock.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "punctual/job.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/store.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/parse.hpp"
#include "punctual/trigger/trigger.hpp"

namespace punctual::testing {

/// The trigger whose canonical text is `text`. The suite only uses texts parse_trigger
/// understands, because SQL stores persist the text and parse it back.
inline trigger make_trigger(const std::string& text) { return parse_trigger(text); }

namespace conformance_detail {

/// Runs one store operation to completion on a private io_context and returns its result (or
/// rethrows its exception). The work guard keeps run() going while a store completes the
/// operation on another thread (SQLite's worker, libpq's socket).
template <class T>
T run(asio::awaitable<T> op) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::exception_ptr error;
  bool done = false;
  [[maybe_unused]] std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
  if constexpr (std::is_void_v<T>) {
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e) {
      error = e;
      done = true;
      io.stop();
    });
  } else {
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T v) {
      error = e;
      if (!e) value.emplace(std::move(v));
      done = true;
      io.stop();
    });
  }
  while (!done) {
    io.restart();
    io.run();
  }
  work.reset();
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*value);
}

using namespace std::chrono_literals;

/// All suite times are offsets from this instant (a multiple of 10 s, like every fire of
/// "interval:10s").
inline time_point t0() { return parse_iso("2026-01-01T00:00:00Z"); }
inline time_point at(std::chrono::microseconds offset) { return t0() + offset; }

/// A store driven synchronously.
struct blocking_store {
  std::shared_ptr<store> s;

  bool add(schedule_record r, conflict_policy p = conflict_policy::error) {
    return run(s->add_schedule(std::move(r), p));
  }
  std::vector<add_outcome> add_all(std::vector<schedule_record> batch,
                                   conflict_policy p = conflict_policy::error) {
    return run(s->add_schedules(std::move(batch), p));
  }
  bool remove(const std::string& id) { return run(s->remove_schedule(id)); }
  std::optional<schedule_record> get(const std::string& id) { return run(s->get_schedule(id)); }
  std::vector<schedule_record> list() { return run(s->list_schedules()); }
  std::optional<schedule_record> modify(const std::string& id, std::function<void(schedule_record&)> f) {
    return run(s->modify_schedule(id, std::move(f)));
  }
  std::vector<schedule_record> acquire(const std::string& node, time_point now, time_point lease_until,
                                       std::size_t limit = 100) {
    return run(s->acquire_due_schedules(node, now, lease_until, limit));
  }
  std::size_t release(const std::string& node, std::vector<schedule_release> r,
                      std::vector<job_record> j = {}) {
    return run(s->release_schedules(node, std::move(r), std::move(j)));
  }
  std::int64_t add_job(job_record j) { return run(s->add_job(std::move(j))); }
  std::vector<job_record> acquire_jobs(const std::string& node, time_point now, time_point lease_until,
                                       std::size_t limit = 100) {
    return run(s->acquire_jobs(node, now, lease_until, limit));
  }
  void update(const std::string& node, std::vector<job_record> jobs) {
    run(s->update_jobs(node, std::move(jobs)));
  }
  std::size_t release_jobs(const std::string& node, std::vector<std::int64_t> keep) {
    return run(s->release_jobs(node, std::move(keep)));
  }
  void extend(const std::string& node, time_point until) { run(s->extend_leases(node, until)); }
  void release_leases(const std::string& node) { run(s->release_leases(node)); }
  std::vector<job_record> recover(std::optional<std::string> node, time_point now) {
    return run(s->recover_abandoned(std::move(node), now));
  }
  due_times next_due() { return run(s->next_due()); }
  std::vector<job_record> jobs(job_query q) { return run(s->list_jobs(std::move(q))); }
  /// Every job, newest fire time first.
  std::vector<job_record> jobs() {
    job_query q;
    q.limit = 1'000'000;
    return jobs(q);
  }
  std::vector<job_record> jobs_of(const std::string& schedule_id) {
    job_query q;
    q.schedule_id = schedule_id;
    q.limit = 1'000'000;
    return jobs(q);
  }
  std::size_t purge(retention r, time_point now) { return run(s->purge_jobs(r, now)); }

  /// The one job with this id (fails the test if there is none).
  job_record job(std::int64_t id) {
    for (auto& j : jobs())
      if (j.id == id) return j;
    FAIL("no job with id " << id);
    return {};
  }
  bool has_job(std::int64_t id) {
    auto all = jobs();
    return std::any_of(all.begin(), all.end(), [&](const job_record& j) { return j.id == id; });
  }
};

/// `prefix` followed by `n` in decimal ("s17"), built by appending: GCC 12 at -O2/-O3 reports a
/// bogus -Wstringop-overflow inside libstdc++ for `"s" + std::to_string(n)` in some test loops
/// (operator+(const char*, string&&) inlines string::insert(0, ...), the path of GCC bug
/// 105651), which the developer build's -Werror turns into a failed Release build.
inline std::string numbered(const char* prefix, std::uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

/// A schedule "id" firing every 10 s, due at `next_fire`.
inline schedule_record make_schedule(const std::string& id, std::optional<time_point> next_fire,
                                     const std::string& trigger_text = "interval:10s") {
  schedule_record r;
  r.spec.id = id;
  r.spec.task = "task-" + id;
  r.spec.trigger = make_trigger(trigger_text);
  r.spec.payload = "payload of " + id;
  r.next_fire = next_fire;
  return r;
}

/// A pending job of `schedule_id` for `fire` (run_at = fire unless given).
inline job_record make_job(const std::string& schedule_id, time_point fire,
                           std::optional<time_point> run_at = std::nullopt) {
  job_record j;
  j.schedule_id = schedule_id;
  j.task = "task-" + schedule_id;
  j.payload = "payload of " + schedule_id;
  j.fire_time = fire;
  j.run_at = run_at.value_or(fire);
  return j;
}

/// Adds schedule `id` (due at 10 s) and gives it progress: a fire released at 10 s with its job
/// (next fire 20 s, last fire 10 s); then pauses it. What a replace must keep.
inline void add_with_progress_then_pause(blocking_store& st, const std::string& id) {
  using namespace std::chrono_literals;
  REQUIRE(st.add(make_schedule(id, at(10s))));
  REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
  REQUIRE(st.release("n1", {{id, at(20s), at(10s)}}, {make_job(id, at(10s))}) == 1);
  REQUIRE(st.modify(id, [](schedule_record& r) { r.spec.paused = true; }));
}

inline std::vector<std::string> ids_of(const std::vector<schedule_record>& v) {
  std::vector<std::string> out;
  for (auto& r : v) out.push_back(r.spec.id);
  return out;
}
inline std::vector<std::int64_t> ids_of(const std::vector<job_record>& v) {
  std::vector<std::int64_t> out;
  for (auto& j : v) out.push_back(j.id);
  return out;
}
inline std::vector<time_point> fires_of(const std::vector<job_record>& v) {
  std::vector<time_point> out;
  for (auto& j : v) out.push_back(j.fire_time);
  return out;
}

/// Counts change notifications; waits (bounded) for them, because a store may deliver them
/// from another thread after the operation has completed.
class change_counter {
 public:
  void bump() {
    std::lock_guard lock(mutex_);
    ++count_;
    cv_.notify_all();
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return count_;
  }
  /// True once the count exceeds `n`; false if it does not within 5 s.
  bool wait_above(std::size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return count_ > n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t count_ = 0;
};

/// Makes jobs final through the normal path (add, acquire by "worker", update): one job per
/// (schedule, fire, finished) triple. Returns their ids in the same order.
struct final_job {
  std::string schedule_id;
  time_point fire;
  time_point finished;
  job_state state = job_state::succeeded;
};
inline std::vector<std::int64_t> make_final_jobs(blocking_store& st, const std::vector<final_job>& spec) {
  std::vector<std::int64_t> ids;
  for (auto& f : spec) {
    const auto id = st.add_job(make_job(f.schedule_id, f.fire));
    REQUIRE(id > 0);
    ids.push_back(id);
  }
  auto taken = st.acquire_jobs("worker", at(1'000'000s), at(2'000'000s), spec.size() + 100);
  REQUIRE(taken.size() == spec.size());
  std::vector<job_record> updates;
  for (std::size_t k = 0; k < spec.size(); ++k) {
    auto j = st.job(ids[k]);
    j.state = spec[k].state;
    j.finished = spec[k].finished;
    updates.push_back(j);
  }
  st.update("worker", updates);
  return ids;
}

/// A racing node of the concurrency section: acquire, compute the due fires, release; the
/// shared clock moves 1 s per acquire. Runs on its own thread, so no Catch assertions here.
inline void race_node(blocking_store st, const std::string& node, std::atomic<std::int64_t>& clock_us,
                      int rounds, int drop_every, std::atomic<std::size_t>& inserted) {
  for (int r = 0; r < rounds; ++r) {
    const time_point now{duration{clock_us.fetch_add(1'000'000)}};
    auto got = st.acquire(node, now, now + 20s, 16);
    if (drop_every > 0 && r % drop_every == drop_every - 1) continue;  // a "crash": the lease just expires
    std::vector<schedule_release> releases;
    std::vector<job_record> jobs;
    for (auto& s : got) {
      if (!s.next_fire) throw std::runtime_error("acquired a schedule without next_fire: " + s.spec.id);
      std::optional<time_point> fire = s.next_fire, last;
      while (fire && *fire <= now) {
        jobs.push_back(make_job(s.spec.id, *fire));
        last = fire;
        fire = s.spec.trigger.next(*fire);
      }
      releases.push_back({s.spec.id, fire, last});
    }
    inserted += st.release(node, std::move(releases), std::move(jobs));
  }
}

// Each function holds the sections of one area (smaller functions keep compile times sane).

/// The sections on adding, reading and listing schedules.
inline void add_and_get_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("add_schedule stores every field, get_schedule and list_schedules return it") {
    auto r = make_schedule("alpha", at(10s), "interval:10s start=2026-01-01T00:00:05Z");
    r.last_fire = at(0s);
    r.spec.options.misfire_grace = 30s;
    r.spec.options.coalesce = coalesce_policy::all;
    r.spec.options.max_catch_up = 7;
    r.spec.options.max_running = 3;
    r.spec.options.overlap = overlap_policy::queue;
    r.spec.options.max_jitter = 2s;
    r.spec.options.timeout = 1min;
    r.spec.options.retries = 2;
    r.spec.options.retry_backoff = 3s;
    r.spec.options.retry_backoff_max = 1h;
    r.spec.options.start = at(0s);
    r.spec.options.end = at(86400s);
    r.spec.options.on_abandoned = abandoned_policy::rerun;
    r.spec.paused = true;
    REQUIRE(st.add(r));

    for (auto& got : {*st.get("alpha"), st.list().at(0)}) {
      CHECK(got.spec.id == "alpha");
      CHECK(got.spec.task == "task-alpha");
      CHECK(got.spec.trigger.to_string() == r.spec.trigger.to_string());
      CHECK(got.spec.trigger.next(at(10s)) == at(15s));
      CHECK(got.spec.payload == "payload of alpha");
      CHECK(got.spec.options == r.spec.options);
      CHECK(got.spec.paused);
      CHECK(got.next_fire == at(10s));
      CHECK(got.last_fire == at(0s));
      CHECK(got.lease_owner.empty());
      CHECK(got.quarantine.empty());
      CHECK(got.trigger_text == r.spec.trigger.to_string());
    }
    CHECK(st.list().size() == 1);
  }

  SECTION("add_schedule keeps an exhausted schedule (no next_fire) and an empty payload") {
    auto r = make_schedule("done", std::nullopt);
    r.spec.payload.clear();
    REQUIRE(st.add(r));
    auto got = st.get("done");
    REQUIRE(got);
    CHECK_FALSE(got->next_fire);
    CHECK_FALSE(got->last_fire);
    CHECK(got->spec.payload.empty());
  }

  SECTION("add_schedule with conflict_policy::error throws schedule_conflict and changes nothing") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    auto other = make_schedule("a", at(50s), "interval:1m");
    other.spec.task = "other";
    try {
      st.add(other, conflict_policy::error);
      FAIL("no schedule_conflict thrown");
    } catch (const schedule_conflict& e) {
      CHECK(e.id() == "a");
    }
    auto got = st.get("a");
    REQUIRE(got);
    CHECK(got->spec.task == "task-a");
    CHECK(got->next_fire == at(10s));
    CHECK(got->trigger_text == "interval:10s");
  }

  SECTION(
      "add_schedule with conflict_policy::replace replaces spec and next_fire, keeps last_fire, pause "
      "state and history") {
    add_with_progress_then_pause(st, "a");

    auto repl = make_schedule("a", at(60s), "interval:1m");
    repl.spec.task = "new-task";
    repl.spec.payload = "new payload";
    repl.spec.options.max_running = 5;
    repl.last_fire = at(-1000s);  // ignored: the stored last_fire stays
    CHECK(st.add(repl, conflict_policy::replace));

    auto got = st.get("a");
    REQUIRE(got);
    CHECK(got->spec.task == "new-task");
    CHECK(got->spec.payload == "new payload");
    CHECK(got->spec.options.max_running == 5);
    CHECK(got->trigger_text == "interval:1m");
    CHECK(got->next_fire == at(60s));
    CHECK(got->last_fire == at(10s));
    // replace keeps the stored pause state over spec.paused (store::add_schedule).
    CHECK(got->spec.paused);
    CHECK(fires_of(st.jobs_of("a")) == std::vector<time_point>{at(10s)});
    CHECK(st.add_job(make_job("a", at(10s))) == 0);  // the history still guards uniqueness
    CHECK(st.list().size() == 1);
  }

  SECTION("replace of an unpaused schedule stays unpaused even if the new spec says paused") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    auto repl = make_schedule("a", at(20s));
    repl.spec.paused = true;
    REQUIRE(st.add(repl, conflict_policy::replace));
    CHECK_FALSE(st.get("a")->spec.paused);
    CHECK(st.acquire("n1", at(15s), at(30s)).empty());  // the old next_fire is gone
    CHECK(st.next_due().schedule == at(20s));
    CHECK(ids_of(st.acquire("n1", at(20s), at(30s))) == std::vector<std::string>{"a"});
  }

  SECTION("add_schedule with conflict_policy::keep changes nothing and returns false") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    auto other = make_schedule("a", at(50s), "interval:1m");
    other.spec.task = "other";
    CHECK_FALSE(st.add(other, conflict_policy::keep));
    auto got = st.get("a");
    REQUIRE(got);
    CHECK(got->spec.task == "task-a");
    CHECK(got->next_fire == at(10s));
    CHECK(got->trigger_text == "interval:10s");
    // keep and replace on a new id simply add it
    CHECK(st.add(make_schedule("b", at(10s)), conflict_policy::keep));
    CHECK(st.add(make_schedule("c", at(10s)), conflict_policy::replace));
    CHECK(st.list().size() == 3);
  }

  SECTION("list_schedules returns every schedule ordered by id") {
    for (std::string id : {"m", "b", "z", "a", "k"}) REQUIRE(st.add(make_schedule(id, at(10s))));
    CHECK(ids_of(st.list()) == std::vector<std::string>{"a", "b", "k", "m", "z"});
  }

  SECTION("an empty store has no schedules, no jobs and nothing due") {
    CHECK(st.list().empty());
    CHECK(st.jobs().empty());
    CHECK_FALSE(st.get("nothing"));
    auto d = st.next_due();
    CHECK_FALSE(d.schedule);
    CHECK_FALSE(d.job);
    CHECK(st.acquire("n1", at(1000s), at(1100s)).empty());
    CHECK(st.acquire_jobs("n1", at(1000s), at(1100s)).empty());
    CHECK(st.recover(std::nullopt, at(1000s)).empty());
  }

  SECTION("get_schedule and remove_schedule of an unknown id: nullopt and false") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    CHECK_FALSE(st.get("b"));
    CHECK_FALSE(st.remove("b"));
    CHECK(st.list().size() == 1);
  }
}

/// The sections on add_schedules: a batch in one transaction, all or nothing.
inline void add_batch_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  using outcomes = std::vector<add_outcome>;
  SECTION("add_schedules stores every schedule of the batch as add_schedule would") {
    std::vector<schedule_record> batch;
    for (int k = 0; k < 300; ++k) {
      char id[16];
      std::snprintf(id, sizeof id, "b%03d", k);
      batch.push_back(make_schedule(id, at(10s * (k % 7 + 1)), k % 2 ? "interval:1m" : "interval:10s"));
    }
    batch[14].spec.paused = true;  // due at 10 s like every 7th, but paused
    batch[21].next_fire.reset();   // exhausted
    batch[7].last_fire = at(0s);
    batch[8].spec.options.max_running = 4;
    const auto got = st.add_all(batch);
    CHECK(got == outcomes(300, add_outcome::added));
    const auto all = st.list();
    REQUIRE(all.size() == 300);
    for (std::size_t k = 0; k < all.size(); ++k) {
      INFO("schedule " << batch[k].spec.id);
      CHECK(all[k].spec.id == batch[k].spec.id);
      CHECK(all[k].spec.task == batch[k].spec.task);
      CHECK(all[k].spec.payload == batch[k].spec.payload);
      CHECK(all[k].trigger_text == batch[k].spec.trigger.to_string());
      CHECK(all[k].spec.options == batch[k].spec.options);
      CHECK(all[k].spec.paused == batch[k].spec.paused);
      CHECK(all[k].next_fire == batch[k].next_fire);
      CHECK(all[k].last_fire == batch[k].last_fire);
      CHECK(all[k].lease_owner.empty());
    }
    // They are due like any other schedule: the 43 due at 10 s but the paused and the exhausted one.
    CHECK(st.acquire("n1", at(10s), at(40s), 1000).size() == 43 - 2);
    CHECK(st.add_all({}).empty());  // an empty batch changes nothing
    CHECK(st.list().size() == 300);
  }

  SECTION("add_schedules with conflict_policy::error: an existing id fails the whole batch, named") {
    REQUIRE(st.add(make_schedule("b", at(10s))));
    try {
      st.add_all({make_schedule("a", at(10s)), make_schedule("b", at(50s), "interval:1m"),
                  make_schedule("c", at(10s))});
      FAIL("no schedule_conflict thrown");
    } catch (const schedule_conflict& e) {
      CHECK(e.id() == "b");
      CHECK(std::string(e.what()).find("\"b\"") != std::string::npos);
    }
    CHECK(ids_of(st.list()) == std::vector<std::string>{"b"});  // neither a nor c
    CHECK(st.get("b")->trigger_text == "interval:10s");
    CHECK(st.next_due().schedule == at(10s));
  }

  SECTION("add_schedules with conflict_policy::error: an id twice in the batch fails it, named") {
    REQUIRE(st.add(make_schedule("z", at(10s))));
    try {
      st.add_all({make_schedule("a", at(10s)), make_schedule("dup", at(20s)), make_schedule("b", at(10s)),
                  make_schedule("dup", at(30s))});
      FAIL("no schedule_conflict thrown");
    } catch (const schedule_conflict& e) {
      CHECK(e.id() == "dup");
    }
    CHECK(ids_of(st.list()) == std::vector<std::string>{"z"});
    CHECK(st.jobs().empty());
  }

  SECTION("add_schedules with replace and keep: outcomes in batch order, history and pause kept") {
    add_with_progress_then_pause(st, "a");
    auto repl = make_schedule("a", at(60s), "interval:1m");
    repl.spec.task = "new-task";
    CHECK(st.add_all({make_schedule("n", at(10s)), repl, make_schedule("n", at(30s), "interval:1m")},
                     conflict_policy::replace) ==
          outcomes{add_outcome::added, add_outcome::replaced, add_outcome::replaced});
    auto a = st.get("a");
    REQUIRE(a);
    CHECK(a->spec.task == "new-task");
    CHECK(a->trigger_text == "interval:1m");
    CHECK(a->next_fire == at(60s));
    CHECK(a->last_fire == at(10s));
    CHECK(a->spec.paused);
    CHECK(fires_of(st.jobs_of("a")) == std::vector<time_point>{at(10s)});
    CHECK(st.get("n")->trigger_text == "interval:1m");  // the later entry of the batch wins
    CHECK(st.get("n")->next_fire == at(30s));

    CHECK(st.add_all({make_schedule("k", at(10s)), make_schedule("a", at(90s)), make_schedule("k", at(50s))},
                     conflict_policy::keep) ==
          outcomes{add_outcome::added, add_outcome::kept, add_outcome::kept});
    CHECK(st.get("a")->next_fire == at(60s));
    CHECK(st.get("k")->next_fire == at(10s));  // the first entry of the batch stays
    CHECK(ids_of(st.list()) == std::vector<std::string>{"a", "k", "n"});
  }
}

/// The sections on removing and modifying schedules.
inline void remove_and_modify_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("remove_schedule removes it, cancels its pending jobs and keeps its history") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.add(make_schedule("b", at(10s))));
    const auto done = make_final_jobs(st, {{"a", at(0s), at(1s)}}).at(0);
    const auto pending = st.add_job(make_job("a", at(10s)));
    const auto other = st.add_job(make_job("b", at(10s)));
    REQUIRE(pending > 0);
    REQUIRE(other > 0);

    CHECK(st.remove("a"));
    CHECK_FALSE(st.get("a"));
    CHECK(ids_of(st.list()) == std::vector<std::string>{"b"});
    CHECK_FALSE(st.remove("a"));

    auto history = st.jobs_of("a");
    CHECK(history.size() == 2);
    CHECK(st.job(pending).state == job_state::cancelled);
    CHECK(st.job(done).state == job_state::succeeded);
    CHECK(st.job(other).state == job_state::pending);
    // the cancelled job never runs
    CHECK(ids_of(st.acquire_jobs("n1", at(100s), at(200s))) == std::vector<std::int64_t>{other});
    CHECK_FALSE(st.next_due().job);
  }

  SECTION("remove_schedule leaves a running job running; its node can still finish it") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    const auto id = st.add_job(make_job("a", at(10s)));
    REQUIRE(st.acquire_jobs("n1", at(10s), at(40s)).size() == 1);
    REQUIRE(st.remove("a"));
    auto j = st.job(id);
    CHECK(j.state == job_state::running);
    j.state = job_state::succeeded;
    j.finished = at(12s);
    st.update("n1", {j});
    CHECK(st.job(id).state == job_state::succeeded);
  }

  SECTION("re-adding a removed schedule's id brings its history back") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    make_final_jobs(st, {{"a", at(0s), at(1s)}, {"a", at(10s), at(11s)}});
    REQUIRE(st.remove("a"));
    REQUIRE(st.add(make_schedule("a", at(20s))));
    CHECK(fires_of(st.jobs_of("a")) == std::vector<time_point>{at(10s), at(0s)});
    CHECK(st.add_job(make_job("a", at(10s))) == 0);
    CHECK(st.add_job(make_job("a", at(20s))) > 0);
    CHECK_FALSE(st.get("a")->last_fire);  // a new schedule: its progress starts afresh
  }

  SECTION("modify_schedule pauses and unpauses: a paused schedule is never acquired") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    auto paused = st.modify("a", [](schedule_record& r) { r.spec.paused = true; });
    REQUIRE(paused);
    CHECK(paused->spec.paused);
    CHECK(st.get("a")->spec.paused);
    CHECK(st.acquire("n1", at(100s), at(200s)).empty());
    CHECK_FALSE(st.next_due().schedule);

    auto resumed = st.modify("a", [](schedule_record& r) { r.spec.paused = false; });
    REQUIRE(resumed);
    CHECK_FALSE(resumed->spec.paused);
    CHECK(st.next_due().schedule == at(10s));
    CHECK(ids_of(st.acquire("n1", at(100s), at(200s))) == std::vector<std::string>{"a"});
  }

  SECTION("modify_schedule edits next_fire, last_fire and spec, and returns the new record") {
    REQUIRE(st.add(make_schedule("a", at(100s))));
    auto got = st.modify("a", [](schedule_record& r) {
      CHECK(r.spec.id == "a");
      CHECK(r.next_fire == at(100s));
      r.next_fire = at(30s);
      r.last_fire = at(20s);
      r.spec.payload = "edited";
      r.spec.trigger = make_trigger("interval:5s");
      r.spec.options.retries = 4;
    });
    REQUIRE(got);
    CHECK(got->next_fire == at(30s));
    CHECK(got->last_fire == at(20s));
    auto stored = st.get("a");
    REQUIRE(stored);
    CHECK(stored->next_fire == at(30s));
    CHECK(stored->last_fire == at(20s));
    CHECK(stored->spec.payload == "edited");
    CHECK(stored->trigger_text == "interval:5s");
    CHECK(stored->spec.options.retries == 4);
    // the earlier next_fire is what is due now
    CHECK(st.next_due().schedule == at(30s));
    CHECK(st.acquire("n1", at(29s), at(60s)).empty());
    CHECK(ids_of(st.acquire("n1", at(30s), at(60s))) == std::vector<std::string>{"a"});
  }

  SECTION("modify_schedule can make a schedule exhausted and later due again") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.modify("a", [](schedule_record& r) { r.next_fire.reset(); }));
    CHECK_FALSE(st.get("a")->next_fire);
    CHECK_FALSE(st.next_due().schedule);
    CHECK(st.acquire("n1", at(1000s), at(1100s)).empty());
    REQUIRE(st.modify("a", [](schedule_record& r) { r.next_fire = at(2000s); }));
    CHECK(st.next_due().schedule == at(2000s));
  }

  SECTION("modify_schedule cannot change the id") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    auto got = st.modify("a", [](schedule_record& r) { r.spec.id = "b"; });
    REQUIRE(got);
    CHECK(got->spec.id == "a");
    CHECK(ids_of(st.list()) == std::vector<std::string>{"a"});
  }

  SECTION("modify_schedule of an unknown id returns nullopt without calling change") {
    bool called = false;
    CHECK_FALSE(st.modify("nope", [&](schedule_record&) { called = true; }));
    CHECK_FALSE(called);
    CHECK(st.list().empty());
  }
}

/// The sections on acquire_due_schedules and schedule leases.
inline void acquire_schedule_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("acquire_due_schedules returns only due schedules, earliest next_fire first") {
    REQUIRE(st.add(make_schedule("b", at(20s))));
    REQUIRE(st.add(make_schedule("a", at(30s))));
    REQUIRE(st.add(make_schedule("c", at(10s))));
    REQUIRE(st.add(make_schedule("later", at(100s))));
    REQUIRE(st.add(make_schedule("exhausted", std::nullopt)));
    auto got = st.acquire("n1", at(50s), at(80s));
    CHECK(ids_of(got) == std::vector<std::string>{"c", "b", "a"});
    for (auto& r : got) {
      CHECK(r.lease_owner == "n1");
      CHECK(r.lease_until == at(80s));
      CHECK(r.spec.task == "task-" + r.spec.id);
      CHECK(r.trigger_text == "interval:10s");
    }
  }

  SECTION("acquire_due_schedules takes a schedule whose next_fire equals now") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    CHECK(st.acquire("n1", at(9s), at(40s)).empty());
    CHECK(ids_of(st.acquire("n1", at(10s), at(40s))) == std::vector<std::string>{"a"});
  }

  SECTION("acquire_due_schedules skips paused schedules") {
    auto p = make_schedule("p", at(10s));
    p.spec.paused = true;
    REQUIRE(st.add(p));
    REQUIRE(st.add(make_schedule("q", at(20s))));
    CHECK(ids_of(st.acquire("n1", at(50s), at(80s))) == std::vector<std::string>{"q"});
  }

  SECTION("acquire_due_schedules honours limit, earliest first; the rest stay due") {
    for (int k = 5; k >= 1; --k) REQUIRE(st.add(make_schedule("s" + std::to_string(k), at(k * 10s))));
    CHECK(ids_of(st.acquire("n1", at(100s), at(200s), 2)) == std::vector<std::string>{"s1", "s2"});
    CHECK(st.acquire("n1", at(100s), at(200s), 0).empty());
    CHECK(ids_of(st.acquire("n2", at(100s), at(200s), 2)) == std::vector<std::string>{"s3", "s4"});
    CHECK(ids_of(st.acquire("n3", at(100s), at(200s), 2)) == std::vector<std::string>{"s5"});
  }

  SECTION("an acquired schedule is leased to the node: get_schedule shows owner and lease_until") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    auto got = st.get("a");
    REQUIRE(got);
    CHECK(got->lease_owner == "n1");
    CHECK(got->lease_until == at(40s));
    CHECK(got->next_fire == at(10s));  // acquiring does not move the schedule
  }

  SECTION("another node cannot acquire a leased schedule until the lease has expired") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    CHECK(st.acquire("n2", at(20s), at(50s)).empty());
    // A lease is live up to and including lease_until, expired once lease_until < now.
    CHECK(st.acquire("n2", at(40s), at(70s)).empty());
    auto got = st.acquire("n2", at(40s) + 1us, at(70s));
    CHECK(ids_of(got) == std::vector<std::string>{"a"});
    CHECK(got.at(0).lease_owner == "n2");
    CHECK(st.get("a")->lease_owner == "n2");
    CHECK(st.get("a")->lease_until == at(70s));
    // the old owner has lost it: its release is ignored
    CHECK(st.release("n1", {{"a", at(20s), at(10s)}}, {make_job("a", at(10s))}) == 0);
    CHECK(st.get("a")->next_fire == at(10s));
    CHECK(st.jobs().empty());
  }

  SECTION("the holding node may acquire its own leased schedule again (a retried acquire)") {
    // The holder may take it again, with the new lease_until, so that an acquire whose reply
    // was lost can be retried at once.
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    auto again = st.acquire("n1", at(11s), at(41s));
    CHECK(ids_of(again) == std::vector<std::string>{"a"});
    CHECK(st.get("a")->lease_until == at(41s));
    CHECK(st.acquire("n2", at(41s), at(70s)).empty());
  }

  SECTION("expired leases and free schedules are merged earliest next_fire first") {
    REQUIRE(st.add(make_schedule("leased", at(8s))));
    REQUIRE(st.acquire("n1", at(8s), at(9s)).size() == 1);  // n1 dies holding it
    REQUIRE(st.add(make_schedule("free", at(5s))));
    REQUIRE(st.add(make_schedule("late", at(15s))));
    CHECK(ids_of(st.acquire("n2", at(20s), at(50s), 1)) == std::vector<std::string>{"free"});
    CHECK(ids_of(st.acquire("n3", at(20s), at(50s), 1)) == std::vector<std::string>{"leased"});
    CHECK(ids_of(st.acquire("n4", at(20s), at(50s), 1)) == std::vector<std::string>{"late"});
  }
}

/// The sections on release_schedules.
inline void release_schedule_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("release_schedules advances next_fire and last_fire, frees the lease and inserts the jobs") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.add(make_schedule("b", at(10s))));
    REQUIRE(st.acquire("n1", at(25s), at(60s)).size() == 2);
    auto j1 = make_job("a", at(10s), at(11s));
    j1.attempt = 1;
    const auto n = st.release("n1", {{"a", at(30s), at(20s)}, {"b", at(35s), at(20s)}},
                              {j1, make_job("a", at(20s)), make_job("b", at(20s))});
    CHECK(n == 3);
    auto a = st.get("a");
    REQUIRE(a);
    CHECK(a->next_fire == at(30s));
    CHECK(a->last_fire == at(20s));
    CHECK(a->lease_owner.empty());
    auto jobs = st.jobs_of("a");
    REQUIRE(jobs.size() == 2);
    CHECK(jobs[1].fire_time == at(10s));
    CHECK(jobs[1].run_at == at(11s));
    CHECK(jobs[1].state == job_state::pending);
    CHECK(jobs[1].task == "task-a");
    CHECK(jobs[1].payload == "payload of a");
    CHECK(jobs[1].attempt == 1);
    CHECK(jobs[1].id > 0);
    CHECK(jobs[0].id != jobs[1].id);
    // freed: another node can take it as soon as it is due again
    CHECK(st.acquire("n2", at(29s), at(90s)).empty());
    CHECK(ids_of(st.acquire("n2", at(30s), at(90s))) == std::vector<std::string>{"a"});
    CHECK(ids_of(st.acquire("n3", at(35s), at(90s))) == std::vector<std::string>{"b"});
  }

  SECTION("release_schedules: nullopt last_fire keeps it, nullopt next_fire exhausts the schedule") {
    auto r = make_schedule("a", at(10s));
    r.last_fire = at(0s);
    REQUIRE(st.add(r));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    CHECK(st.release("n1", {{"a", std::nullopt, std::nullopt}}) == 0);
    auto got = st.get("a");
    REQUIRE(got);
    CHECK_FALSE(got->next_fire);
    CHECK(got->last_fire == at(0s));
    CHECK(got->lease_owner.empty());
    CHECK_FALSE(st.next_due().schedule);
    CHECK(st.acquire("n1", at(100000s), at(100040s)).empty());
  }

  SECTION("release_schedules records final jobs (missed, skipped) without making them runnable") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(30s), at(60s)).size() == 1);
    auto missed = make_job("a", at(10s));
    missed.state = job_state::missed;
    missed.finished = at(30s);
    missed.error = "late";
    CHECK(st.release("n1", {{"a", at(40s), at(30s)}}, {missed, make_job("a", at(30s))}) == 2);
    auto jobs = st.jobs_of("a");
    REQUIRE(jobs.size() == 2);
    CHECK(jobs[1].state == job_state::missed);
    CHECK(jobs[1].error == "late");
    CHECK(jobs[1].finished == at(30s));
    CHECK(st.next_due().job == at(30s));
    auto taken = st.acquire_jobs("n1", at(100s), at(130s));
    CHECK(fires_of(taken) == std::vector<time_point>{at(30s)});
  }

  SECTION("release_schedules ignores schedules the node does not hold, and their jobs") {
    REQUIRE(st.add(make_schedule("free", at(10s))));
    REQUIRE(st.add(make_schedule("theirs", at(10s))));
    REQUIRE(st.add(make_schedule("mine", at(10s))));
    REQUIRE(st.acquire("n2", at(10s), at(40s), 100).size() == 3);
    REQUIRE(st.release("n2", {{"free", at(10s), std::nullopt}, {"mine", at(10s), std::nullopt}}) == 0);
    REQUIRE(st.acquire("n1", at(10s), at(40s), 1).size() == 1);  // n1 takes "free" (id order irrelevant)
    const auto n1_holds = st.get("free")->lease_owner == "n1" ? std::string("free") : std::string("mine");
    const auto n1_free = n1_holds == "free" ? std::string("mine") : std::string("free");
    // n1 releases what it holds, a free schedule, the one n2 holds, and a missing one
    const auto n = st.release("n1",
                              {{n1_holds, at(20s), at(10s)},
                               {n1_free, at(20s), at(10s)},
                               {"theirs", at(20s), at(10s)},
                               {"missing", at(20s), at(10s)}},
                              {make_job(n1_holds, at(10s)), make_job(n1_free, at(10s)),
                               make_job("theirs", at(10s)), make_job("missing", at(10s))});
    CHECK(n == 1);
    CHECK(fires_of(st.jobs()) == std::vector<time_point>{at(10s)});
    CHECK(st.jobs().at(0).schedule_id == n1_holds);
    CHECK(st.get(n1_holds)->next_fire == at(20s));
    CHECK(st.get(n1_free)->next_fire == at(10s));
    CHECK_FALSE(st.get(n1_free)->last_fire);
    CHECK(st.get("theirs")->next_fire == at(10s));
    CHECK(st.get("theirs")->lease_owner == "n2");
    CHECK_FALSE(st.get("missing"));
  }

  SECTION(
      "release_schedules ignores a job whose (schedule, fire_time) exists and counts only inserted jobs") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    const auto existing = st.add_job(make_job("a", at(10s)));
    REQUIRE(existing > 0);
    REQUIRE(st.acquire("n1", at(20s), at(50s)).size() == 1);
    auto dup = make_job("a", at(10s), at(99s));
    dup.payload = "duplicate";
    const auto n =
        st.release("n1", {{"a", at(30s), at(20s)}}, {dup, make_job("a", at(20s)), make_job("a", at(20s))});
    CHECK(n == 1);
    auto jobs = st.jobs_of("a");
    CHECK(fires_of(jobs) == std::vector<time_point>{at(20s), at(10s)});
    CHECK(st.job(existing).payload == "payload of a");  // the existing job is untouched
    CHECK(st.job(existing).run_at == at(10s));
    CHECK(st.get("a")->next_fire == at(30s));  // the release itself still happened
  }

  SECTION("a retried release_schedules is harmless") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(20s), at(50s)).size() == 1);
    const std::vector<schedule_release> rel{{"a", at(30s), at(20s)}};
    const std::vector<job_record> jobs{make_job("a", at(10s)), make_job("a", at(20s))};
    CHECK(st.release("n1", rel, jobs) == 2);
    CHECK(st.release("n1", rel, jobs) == 0);
    CHECK(st.jobs().size() == 2);
    CHECK(st.get("a")->next_fire == at(30s));
    // after a new acquire, a stale retry of the old release still cannot duplicate jobs
    REQUIRE(st.acquire("n1", at(30s), at(60s)).size() == 1);
    CHECK(st.release("n1", rel, jobs) == 0);
    CHECK(st.jobs().size() == 2);
  }

  SECTION("release_schedules with empty batches does nothing") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    CHECK(st.release("n1", {}, {}) == 0);
    CHECK(st.get("a")->lease_owner == "n1");
    CHECK(st.release("nobody", {}, {make_job("a", at(10s))}) == 0);
    CHECK(st.jobs().empty());
  }
}

/// The sections on add_job and acquire_jobs.
inline void acquire_job_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("add_job returns a new positive id, and 0 when (schedule_id, fire_time) exists") {
    const auto a = st.add_job(make_job("a", at(10s)));
    const auto b = st.add_job(make_job("a", at(20s)));
    const auto c = st.add_job(make_job("b", at(10s)));  // same fire time, other schedule
    CHECK(a > 0);
    CHECK(b > 0);
    CHECK(c > 0);
    CHECK(std::set<std::int64_t>{a, b, c}.size() == 3);
    CHECK(st.add_job(make_job("a", at(10s), at(50s))) == 0);
    CHECK(st.jobs().size() == 3);
    auto j = st.job(a);
    CHECK(j.schedule_id == "a");
    CHECK(j.state == job_state::pending);
    CHECK(j.run_at == at(10s));
    CHECK(j.node.empty());
  }

  SECTION("acquire_jobs takes pending jobs with run_at <= now, earliest run_at first, up to limit") {
    const auto j1 = st.add_job(make_job("a", at(30s)));
    const auto j2 = st.add_job(make_job("b", at(10s)));
    const auto j3 = st.add_job(make_job("c", at(0s), at(20s)));
    const auto j4 = st.add_job(make_job("d", at(100s)));
    CHECK(ids_of(st.acquire_jobs("n1", at(50s), at(80s), 2)) == std::vector<std::int64_t>{j2, j3});
    CHECK(ids_of(st.acquire_jobs("n2", at(50s), at(80s), 0)).empty());
    CHECK(ids_of(st.acquire_jobs("n2", at(50s), at(80s), 5)) == std::vector<std::int64_t>{j1});
    CHECK(st.acquire_jobs("n2", at(99s), at(130s)).empty());
    CHECK(ids_of(st.acquire_jobs("n2", at(100s), at(130s))) == std::vector<std::int64_t>{j4});
    CHECK(st.acquire_jobs("n3", at(1000s), at(1030s)).empty());  // running jobs are not taken again
  }

  SECTION("release_jobs puts the node's running jobs that are not kept back to pending") {
    const auto j1 = st.add_job(make_job("a", at(10s)));
    const auto j2 = st.add_job(make_job("b", at(11s)));
    const auto j3 = st.add_job(make_job("c", at(12s)));
    const auto j4 = st.add_job(make_job("d", at(13s)));
    const auto done = st.add_job(make_job("e", at(14s)));
    const auto waiting = st.add_job(make_job("f", at(500s)));
    REQUIRE(st.acquire_jobs("n1", at(20s), at(50s), 3).size() == 3);  // j1, j2, j3
    REQUIRE(ids_of(st.acquire_jobs("n2", at(20s), at(50s), 2)) == std::vector<std::int64_t>{j4, done});
    auto d = st.job(done);
    d.state = job_state::succeeded;
    st.update("n2", {d});

    CHECK(st.release_jobs("n1", {j2}) == 2);
    for (auto id : {j1, j3}) {
      auto j = st.job(id);
      CHECK(j.state == job_state::pending);
      CHECK(j.node.empty());
      CHECK_FALSE(j.started);
      CHECK(j.attempt == 1);
    }
    CHECK(st.job(j2).state == job_state::running);
    CHECK(st.job(j2).node == "n1");
    CHECK(st.job(j4).state == job_state::running);
    CHECK(st.job(j4).node == "n2");
    CHECK(st.job(done).state == job_state::succeeded);
    CHECK(st.job(waiting).state == job_state::pending);
    CHECK(st.next_due().job == at(10s));
    CHECK(st.recover(std::nullopt, at(100s)).size() == 2);  // j2 and j4 (leases ended at 50 s), not j1, j3
    CHECK(ids_of(st.acquire_jobs("n3", at(100s), at(130s))) == std::vector<std::int64_t>{j1, j3});
  }

  SECTION("release_jobs is safe to retry, and with everything kept releases nothing") {
    const auto j1 = st.add_job(make_job("a", at(10s)));
    const auto j2 = st.add_job(make_job("b", at(11s)));
    REQUIRE(st.acquire_jobs("n1", at(20s), at(50s)).size() == 2);
    CHECK(st.release_jobs("n1", {j1, j2}) == 0);
    CHECK(st.release_jobs("other", {}) == 0);
    CHECK(st.job(j1).state == job_state::running);
    CHECK(st.release_jobs("n1", {}) == 2);
    CHECK(st.release_jobs("n1", {}) == 0);
    CHECK(st.job(j1).state == job_state::pending);
    CHECK(st.jobs().size() == 2);
  }

  SECTION("acquire_jobs marks the jobs running with node, lease and started") {
    auto in = make_job("a", at(10s));
    in.attempt = 3;
    const auto id = st.add_job(in);
    auto got = st.acquire_jobs("n1", at(12s), at(40s));
    REQUIRE(got.size() == 1);
    for (auto& j : {got[0], st.job(id)}) {
      CHECK(j.id == id);
      CHECK(j.state == job_state::running);
      CHECK(j.node == "n1");
      CHECK(j.lease_until == at(40s));
      CHECK(j.started == at(12s));
      CHECK(j.attempt == 3);
      CHECK(j.fire_time == at(10s));
      CHECK(j.task == "task-a");
      CHECK(j.payload == "payload of a");
    }
    CHECK_FALSE(st.next_due().job);
  }

  SECTION("acquire_jobs returns every job with its schedule's current options, defaults once it is gone") {
    auto a = make_schedule("a", at(10s));
    a.spec.options.retries = 2;
    a.spec.options.timeout = 1min;
    a.spec.options.max_running = 3;
    a.spec.options.overlap = overlap_policy::queue;
    REQUIRE(st.add(a));
    auto b = make_schedule("b", at(10s));
    b.spec.options.on_abandoned = abandoned_policy::rerun;
    REQUIRE(st.add(b));
    REQUIRE(st.add(make_schedule("plain", at(10s))));
    // A job's own options (a stale hint) do not count: the schedule's do.
    auto hinted = make_job("a", at(0s));
    hinted.options = std::make_shared<const schedule_options>();
    REQUIRE(st.add_job(hinted) > 0);
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 3);
    REQUIRE(st.release("n1", {{"a", at(20s), at(10s)}, {"b", at(20s), at(10s)}, {"plain", at(20s), at(10s)}},
                       {make_job("a", at(10s)), make_job("b", at(10s)), make_job("plain", at(10s))}) == 3);
    REQUIRE(st.add_job(make_job("never-added", at(10s))) > 0);
    auto check_options = [&](const std::vector<job_record>& jobs,
                             const std::map<std::string, schedule_options>& want) {
      std::size_t checked = 0;
      for (auto& j : jobs) {
        INFO("job " << j.id << " of schedule " << j.schedule_id);
        REQUIRE(j.options != nullptr);
        auto it = want.find(j.schedule_id);
        REQUIRE(it != want.end());
        CHECK(*j.options == it->second);
        ++checked;
      }
      return checked;
    };
    auto got = st.acquire_jobs("n1", at(10s), at(40s));
    CHECK(check_options(got, {{"a", a.spec.options},
                              {"b", b.spec.options},
                              {"plain", schedule_options{}},
                              {"never-added", schedule_options{}}}) == 5);

    // While the jobs run, a's options change, b is removed and plain is replaced; put back to
    // pending and acquired again, each job gets its schedule's options of that moment.
    auto changed = a.spec.options;
    changed.retries = 5;
    changed.max_jitter = 3s;
    REQUIRE(st.modify("a", [&](schedule_record& r) { r.spec.options = changed; }));
    REQUIRE(st.remove("b"));
    auto replaced = make_schedule("plain", at(100s));
    replaced.spec.options.retries = 9;
    REQUIRE(st.add(replaced, conflict_policy::replace));
    std::vector<job_record> requeue;
    for (auto j : got) {
      j.state = job_state::pending;
      j.run_at = at(50s);
      requeue.push_back(j);
    }
    st.update("n1", requeue);
    got = st.acquire_jobs("n2", at(50s), at(80s));
    CHECK(check_options(got, {{"a", changed},
                              {"b", schedule_options{}},
                              {"plain", replaced.spec.options},
                              {"never-added", schedule_options{}}}) == 5);
  }
}

/// The sections on update_jobs.
inline void update_job_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("update_jobs writes a final state and every mutable field") {
    const auto id = st.add_job(make_job("a", at(10s)));
    auto j = st.acquire_jobs("n1", at(10s), at(40s)).at(0);
    j.state = job_state::failed;
    j.finished = at(15s);
    j.exit_code = 3;
    j.signal = 9;
    j.error = "boom";
    j.output = "last lines";
    j.process = {111, 112, 113};
    st.update("n1", {j});
    auto got = st.job(id);
    CHECK(got.state == job_state::failed);
    CHECK(got.started == at(10s));
    CHECK(got.finished == at(15s));
    CHECK(got.exit_code == 3);
    CHECK(got.signal == 9);
    CHECK(got.error == "boom");
    CHECK(got.output == "last lines");
    CHECK(got.process == process_identity{111, 112, 113});
    CHECK(got.fire_time == at(10s));
    CHECK(st.acquire_jobs("n1", at(1000s), at(1030s)).empty());
    CHECK(st.recover(std::nullopt, at(1000s)).empty());  // final jobs hold no lease
  }

  SECTION("update_jobs back to pending requeues the job with its new run_at and attempt") {
    const auto id = st.add_job(make_job("a", at(10s)));
    auto j = st.acquire_jobs("n1", at(10s), at(40s)).at(0);
    j.state = job_state::pending;
    j.run_at = at(200s);
    j.attempt = 2;
    j.started.reset();
    j.error = "retry after: boom";
    st.update("n1", {j});
    auto got = st.job(id);
    CHECK(got.state == job_state::pending);
    CHECK(got.node.empty());
    CHECK(got.attempt == 2);
    CHECK(got.run_at == at(200s));
    CHECK(got.error == "retry after: boom");
    CHECK(st.next_due().job == at(200s));
    CHECK(st.acquire_jobs("n2", at(199s), at(230s)).empty());
    auto again = st.acquire_jobs("n2", at(200s), at(230s));
    REQUIRE(again.size() == 1);
    CHECK(again[0].id == id);
    CHECK(again[0].attempt == 2);
    CHECK(again[0].node == "n2");
    CHECK(st.recover(std::nullopt, at(100s)).empty());  // its old lease (40 s) no longer counts
  }

  SECTION("update_jobs can requeue to an earlier run_at") {
    const auto id = st.add_job(make_job("a", at(100s)));
    REQUIRE(st.acquire_jobs("n1", at(100s), at(130s)).size() == 1);
    auto j = st.job(id);
    j.state = job_state::pending;
    j.run_at = at(50s);
    st.update("n1", {j});
    CHECK(st.next_due().job == at(50s));
    CHECK(ids_of(st.acquire_jobs("n1", at(50s), at(80s))) == std::vector<std::int64_t>{id});
  }

  SECTION("update_jobs ignores jobs held by another node, jobs not running and unknown ids") {
    const auto pending = st.add_job(make_job("a", at(10s), at(100s)));
    const auto theirs = st.add_job(make_job("b", at(10s)));
    const auto finished = st.add_job(make_job("c", at(10s)));
    REQUIRE(st.acquire_jobs("n2", at(10s), at(40s)).size() == 2);  // theirs, finished (by n2)
    auto f = st.job(finished);
    f.state = job_state::succeeded;
    f.finished = at(12s);
    st.update("n2", {f});

    auto p = st.job(pending);
    p.state = job_state::succeeded;
    auto t = st.job(theirs);
    t.state = job_state::succeeded;
    t.error = "not mine";
    auto f2 = st.job(finished);
    f2.state = job_state::failed;
    auto unknown = make_job("z", at(10s));
    unknown.id = 987654;
    unknown.state = job_state::failed;
    st.update("n1", {p, t, f2, unknown});
    st.update("n2", {f2});  // n2 no longer runs it either: final jobs are never rewritten

    CHECK(st.job(pending).state == job_state::pending);
    CHECK(st.job(theirs).state == job_state::running);
    CHECK(st.job(theirs).error.empty());
    CHECK(st.job(finished).state == job_state::succeeded);
    CHECK(st.jobs().size() == 3);
  }

  SECTION("update_jobs persists the process identity of a running job") {
    const auto id = st.add_job(make_job("a", at(10s)));
    auto j = st.acquire_jobs("n1", at(10s), at(40s)).at(0);
    j.process = {4242, 4242, 777};
    j.output = "started";
    st.update("n1", {j});
    auto got = st.job(id);
    CHECK(got.state == job_state::running);
    CHECK(got.node == "n1");
    CHECK(got.process == process_identity{4242, 4242, 777});
    CHECK(got.output == "started");
    // still held by n1: it can finish it
    got.state = job_state::succeeded;
    got.finished = at(20s);
    st.update("n1", {got});
    CHECK(st.job(id).state == job_state::succeeded);
    CHECK(st.job(id).process == process_identity{4242, 4242, 777});
  }

  SECTION("a retried update_jobs is harmless") {
    const auto id = st.add_job(make_job("a", at(10s)));
    auto j = st.acquire_jobs("n1", at(10s), at(40s)).at(0);
    j.state = job_state::succeeded;
    j.finished = at(11s);
    st.update("n1", {j});
    st.update("n1", {j});
    CHECK(st.job(id).state == job_state::succeeded);
    CHECK(st.job(id).finished == at(11s));
    CHECK(st.jobs().size() == 1);
    st.update("n1", {});
  }
}

/// The sections on extend_leases and release_leases.
inline void lease_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("extend_leases keeps the node's schedules and running jobs from expiring") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    const auto id = st.add_job(make_job("a", at(0s)));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    REQUIRE(st.acquire_jobs("n1", at(10s), at(40s)).size() == 1);
    st.extend("n1", at(300s));
    CHECK(st.get("a")->lease_until == at(300s));
    CHECK(st.job(id).lease_until == at(300s));
    CHECK(st.acquire("n2", at(100s), at(130s)).empty());
    CHECK(st.recover(std::nullopt, at(100s)).empty());
    CHECK(ids_of(st.acquire("n2", at(301s), at(330s))) == std::vector<std::string>{"a"});
    CHECK(ids_of(st.recover(std::nullopt, at(301s))) == std::vector<std::int64_t>{id});
  }

  SECTION("extend_leases leaves other nodes' leases alone") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.add(make_schedule("b", at(20s))));
    st.add_job(make_job("a", at(0s)));
    const auto jb = st.add_job(make_job("b", at(5s)));
    REQUIRE(st.acquire("n1", at(10s), at(40s), 1).size() == 1);       // a
    REQUIRE(st.acquire_jobs("n1", at(10s), at(40s), 1).size() == 1);  // a's job
    REQUIRE(st.acquire("n2", at(20s), at(40s), 1).size() == 1);       // b
    REQUIRE(st.acquire_jobs("n2", at(20s), at(40s), 1).size() == 1);  // b's job
    st.extend("n1", at(300s));
    st.extend("nobody", at(300s));
    CHECK(st.get("b")->lease_until == at(40s));
    CHECK(ids_of(st.acquire("n3", at(41s), at(70s))) == std::vector<std::string>{"b"});
    CHECK(ids_of(st.recover(std::nullopt, at(41s))) == std::vector<std::int64_t>{jb});
  }

  SECTION("release_leases frees the node's schedule leases only") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.add(make_schedule("b", at(10s))));
    const auto id = st.add_job(make_job("a", at(0s)));
    REQUIRE(st.acquire("n1", at(10s), at(100s), 1).size() == 1);
    REQUIRE(st.acquire("n2", at(10s), at(100s), 1).size() == 1);
    REQUIRE(st.acquire_jobs("n1", at(10s), at(100s)).size() == 1);
    const auto n1_holds = st.get("a")->lease_owner == "n1" ? std::string("a") : std::string("b");
    const auto n2_holds = n1_holds == "a" ? std::string("b") : std::string("a");
    st.release_leases("n1");
    auto freed = st.get(n1_holds);
    CHECK(freed->lease_owner.empty());
    CHECK(freed->next_fire == at(10s));  // unchanged: nothing was released
    CHECK(st.get(n2_holds)->lease_owner == "n2");
    CHECK(ids_of(st.acquire("n3", at(11s), at(40s))) == std::vector<std::string>{n1_holds});
    CHECK(st.job(id).state == job_state::running);  // jobs keep their leases
    CHECK(st.job(id).node == "n1");
    st.release_leases("nobody");
  }
}

/// The sections on recover_abandoned.
inline void recovery_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("recover_abandoned without a node returns the running jobs whose lease expired, of any node") {
    const auto ja = st.add_job(make_job("a", at(0s)));
    const auto jb = st.add_job(make_job("b", at(1s)));
    const auto jc = st.add_job(make_job("c", at(2s)));
    const auto jd = st.add_job(make_job("d", at(3s)));
    const auto pending = st.add_job(make_job("e", at(500s)));
    REQUIRE(ids_of(st.acquire_jobs("n1", at(10s), at(30s), 1)) == std::vector<std::int64_t>{ja});
    REQUIRE(ids_of(st.acquire_jobs("n2", at(10s), at(60s), 1)) == std::vector<std::int64_t>{jb});
    REQUIRE(ids_of(st.acquire_jobs("n3", at(10s), at(100s), 1)) == std::vector<std::int64_t>{jc});
    REQUIRE(ids_of(st.acquire_jobs("n3", at(10s), at(70s), 1)) == std::vector<std::int64_t>{jd});
    auto got = st.recover(std::nullopt, at(70s));  // jd's lease ends exactly now: still valid
    auto ids = ids_of(got);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::int64_t>{ja, jb});
    CHECK(st.job(jc).state == job_state::running);
    CHECK(st.job(jd).state == job_state::running);
    CHECK(st.job(pending).state == job_state::pending);
    CHECK(st.recover(std::nullopt, at(70s)).empty());  // each is recovered once
    CHECK(ids_of(st.recover(std::nullopt, at(70s) + 1us)) == std::vector<std::int64_t>{jd});
  }

  SECTION("recover_abandoned with a node also returns that node's running jobs whose lease is live") {
    const auto ja = st.add_job(make_job("a", at(0s)));
    const auto jb = st.add_job(make_job("b", at(1s)));
    const auto jc = st.add_job(make_job("c", at(2s)));
    REQUIRE(st.acquire_jobs("old", at(10s), at(1000s), 2).size() == 2);    // ja, jb
    REQUIRE(st.acquire_jobs("other", at(10s), at(1000s), 1).size() == 1);  // jc
    auto got = st.recover(std::string("old"), at(20s));
    auto ids = ids_of(got);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::int64_t>{ja, jb});
    CHECK(st.job(jc).state == job_state::running);
    CHECK(st.recover(std::string("old"), at(21s)).empty());
  }

  SECTION("recover_abandoned with the record policy marks the job abandoned and finished now") {
    REQUIRE(st.add(make_schedule("a", at(10s))));  // on_abandoned = record (the default)
    const auto id = st.add_job(make_job("a", at(10s)));
    REQUIRE(st.acquire_jobs("crashed-node", at(10s), at(40s)).size() == 1);
    auto got = st.recover(std::nullopt, at(50s));
    REQUIRE(got.size() == 1);
    for (auto& j : {got[0], st.job(id)}) {
      CHECK(j.id == id);
      CHECK(j.state == job_state::abandoned);
      CHECK(j.finished == at(50s));
      CHECK(j.attempt == 1);
      CHECK_THAT(j.error, Catch::Matchers::Contains("abandon", Catch::CaseSensitive::No));
      CHECK_THAT(j.error, Catch::Matchers::Contains("crashed-node"));
    }
    CHECK(st.acquire_jobs("n2", at(1000s), at(1030s)).empty());
    CHECK_FALSE(st.next_due().job);
  }

  SECTION("recover_abandoned of a job whose schedule is gone records it abandoned") {
    const auto id = st.add_job(make_job("ghost", at(10s)));
    REQUIRE(st.acquire_jobs("n1", at(10s), at(40s)).size() == 1);
    auto got = st.recover(std::string("n1"), at(50s));
    REQUIRE(got.size() == 1);
    CHECK(st.job(id).state == job_state::abandoned);
  }

  SECTION("recover_abandoned with the rerun policy puts the job back to pending, attempt + 1, run_at now") {
    auto s = make_schedule("a", at(10s));
    s.spec.options.on_abandoned = abandoned_policy::rerun;
    REQUIRE(st.add(s));
    const auto id = st.add_job(make_job("a", at(10s)));
    REQUIRE(st.acquire_jobs("crashed-node", at(10s), at(40s)).size() == 1);
    auto got = st.recover(std::nullopt, at(50s));
    REQUIRE(got.size() == 1);
    for (auto& j : {got[0], st.job(id)}) {
      CHECK(j.id == id);
      CHECK(j.state == job_state::pending);
      CHECK(j.attempt == 2);
      CHECK(j.run_at == at(50s));
      CHECK(j.fire_time == at(10s));
      CHECK(j.node.empty());
      CHECK_THAT(j.error, Catch::Matchers::Contains("abandon", Catch::CaseSensitive::No));
      CHECK_THAT(j.error, Catch::Matchers::Contains("crashed-node"));
    }
    CHECK(st.next_due().job == at(50s));
    auto again = st.acquire_jobs("n2", at(50s), at(80s));
    REQUIRE(again.size() == 1);
    CHECK(again[0].attempt == 2);
    CHECK(st.jobs().size() == 1);  // the same job, not a new one
  }

  SECTION("recover_abandoned returns the process identity so a surviving process group can be killed") {
    const auto id = st.add_job(make_job("a", at(10s)));
    auto j = st.acquire_jobs("n1", at(10s), at(40s)).at(0);
    j.process = {31337, 31300, 123456};
    st.update("n1", {j});
    auto got = st.recover(std::string("n1"), at(20s));
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == id);
    CHECK(got[0].process == process_identity{31337, 31300, 123456});
  }

  SECTION("after recovery the old node's late update is ignored") {
    auto s = make_schedule("r", at(10s));
    s.spec.options.on_abandoned = abandoned_policy::rerun;
    REQUIRE(st.add(s));
    REQUIRE(st.add(make_schedule("a", at(10s))));
    const auto ja = st.add_job(make_job("a", at(10s)));
    const auto jr = st.add_job(make_job("r", at(10s)));
    auto held = st.acquire_jobs("zombie", at(10s), at(40s));
    REQUIRE(held.size() == 2);
    REQUIRE(st.recover(std::nullopt, at(50s)).size() == 2);
    for (auto& j : held) {
      j.state = job_state::succeeded;
      j.finished = at(60s);
    }
    st.update("zombie", held);
    CHECK(st.job(ja).state == job_state::abandoned);
    CHECK(st.job(jr).state == job_state::pending);
  }
}

/// The sections on next_due.
inline void next_due_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("next_due reports the earliest unpaused next_fire and the earliest pending run_at") {
    REQUIRE(st.add(make_schedule("a", at(30s))));
    REQUIRE(st.add(make_schedule("b", at(20s))));
    auto p = make_schedule("paused", at(5s));
    p.spec.paused = true;
    REQUIRE(st.add(p));
    REQUIRE(st.add(make_schedule("exhausted", std::nullopt)));
    st.add_job(make_job("a", at(50s)));
    st.add_job(make_job("b", at(0s), at(40s)));
    auto d = st.next_due();
    CHECK(d.schedule == at(20s));
    CHECK(d.job == at(40s));
  }

  SECTION("next_due follows releases, removals and running jobs") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.add(make_schedule("b", at(20s))));
    REQUIRE(st.acquire("n1", at(10s), at(15s), 1).size() == 1);
    REQUIRE(st.release("n1", {{"a", at(100s), at(10s)}}, {make_job("a", at(10s))}) == 1);
    CHECK(st.next_due().schedule == at(20s));
    CHECK(st.next_due().job == at(10s));
    REQUIRE(st.remove("b"));
    CHECK(st.next_due().schedule == at(100s));
    REQUIRE(st.acquire_jobs("n1", at(10s), at(40s)).size() == 1);
    CHECK_FALSE(st.next_due().job);
  }

  SECTION("a leased schedule comes back in next_due when its lease expires") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("dead", at(10s), at(40s)).size() == 1);
    auto d = st.next_due();
    REQUIRE(d.schedule);
    // The time reported is one at which another node can acquire it, no later than a second
    // after the lease ends (due_times::schedule).
    CHECK(*d.schedule > at(40s));
    CHECK(*d.schedule <= at(41s));
    CHECK(ids_of(st.acquire("n2", *d.schedule, *d.schedule + 30s)) == std::vector<std::string>{"a"});

    // a free schedule due earlier than the lease end wins
    REQUIRE(st.add(make_schedule("b", at(50s))));
    REQUIRE(st.add(make_schedule("c", at(30s))));
    REQUIRE(st.acquire("dead", at(30s), at(200s), 1).size() == 1);  // takes c
    CHECK(st.next_due().schedule == at(50s));
  }

  SECTION("a leased schedule whose next_fire is after its lease end is due at next_fire") {
    REQUIRE(st.add(make_schedule("a", at(10s))));
    REQUIRE(st.acquire("n1", at(10s), at(40s)).size() == 1);
    REQUIRE(st.modify("a", [](schedule_record& r) { r.next_fire = at(100s); }));
    CHECK(st.next_due().schedule == at(100s));
    REQUIRE(st.modify("a", [](schedule_record& r) { r.spec.paused = true; }));
    CHECK_FALSE(st.next_due().schedule);
  }
}

/// The sections on list_jobs and purge_jobs.
inline void history_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("list_jobs filters by schedule and state, newest fire time first, up to limit") {
    make_final_jobs(st, {{"a", at(10s), at(11s)}, {"a", at(30s), at(31s), job_state::failed}});
    st.add_job(make_job("a", at(20s)));
    st.add_job(make_job("b", at(15s)));
    st.add_job(make_job("b", at(25s)));
    CHECK(fires_of(st.jobs()) == std::vector<time_point>{at(30s), at(25s), at(20s), at(15s), at(10s)});
    CHECK(fires_of(st.jobs_of("a")) == std::vector<time_point>{at(30s), at(20s), at(10s)});
    CHECK(fires_of(st.jobs_of("b")) == std::vector<time_point>{at(25s), at(15s)});
    CHECK(st.jobs_of("zzz").empty());

    job_query q;
    q.limit = 1000;
    q.state = job_state::pending;
    CHECK(fires_of(st.jobs(q)) == std::vector<time_point>{at(25s), at(20s), at(15s)});
    q.schedule_id = "a";
    CHECK(fires_of(st.jobs(q)) == std::vector<time_point>{at(20s)});
    q.state = job_state::failed;
    CHECK(fires_of(st.jobs(q)) == std::vector<time_point>{at(30s)});

    job_query lim;
    lim.limit = 2;
    CHECK(fires_of(run(st.s->list_jobs(lim))) == std::vector<time_point>{at(30s), at(25s)});
    lim.limit = 0;
    CHECK(run(st.s->list_jobs(lim)).empty());
    CHECK(run(st.s->list_jobs(job_query{})).size() == 5);  // the default limit (100) is plenty here
  }

  SECTION("purge_jobs keep_last keeps the newest final jobs of each schedule and never pending or running") {
    make_final_jobs(st, {{"a", at(10s), at(11s)},
                         {"a", at(20s), at(21s)},
                         {"a", at(30s), at(31s), job_state::failed},
                         {"a", at(40s), at(41s)},
                         {"a", at(50s), at(51s), job_state::missed},
                         {"b", at(10s), at(11s)},
                         {"b", at(20s), at(21s)}});
    st.add_job(make_job("a", at(5s), at(2'000'000s)));  // older fire time, still pending
    const auto running = st.add_job(make_job("a", at(1s), at(1'500'000s)));
    REQUIRE(ids_of(st.acquire_jobs("n1", at(1'500'000s), at(1'600'000s))) ==
            std::vector<std::int64_t>{running});

    retention r;
    r.keep_last = 3;
    CHECK(st.purge(r, at(100s)) == 2);
    CHECK(fires_of(st.jobs_of("a")) == std::vector<time_point>{at(50s), at(40s), at(30s), at(5s), at(1s)});
    CHECK(fires_of(st.jobs_of("b")) == std::vector<time_point>{at(20s), at(10s)});
    CHECK(st.purge(r, at(100s)) == 0);

    r.keep_last = 0;
    CHECK(st.purge(r, at(100s)) == 5);
    CHECK(fires_of(st.jobs()) == std::vector<time_point>{at(5s), at(1s)});
  }

  SECTION("purge_jobs max_age drops final jobs that finished longer ago, and nothing else") {
    make_final_jobs(st, {{"a", at(10s), at(10s)},
                         {"a", at(20s), at(50s)},  // finished exactly max_age ago: kept
                         {"a", at(30s), at(90s), job_state::failed},
                         {"b", at(10s), at(20s), job_state::timed_out}});
    st.add_job(make_job("a", at(0s), at(2'000'000s)));  // pending, no finish time
    retention r;
    r.max_age = 50s;
    CHECK(st.purge(r, at(100s)) == 2);
    CHECK(fires_of(st.jobs()) == std::vector<time_point>{at(30s), at(20s), at(0s)});
    CHECK(st.purge(retention{}, at(100000s)) == 0);  // an empty retention keeps everything
    CHECK(st.jobs().size() == 3);
  }

  SECTION("purge_jobs applies keep_last and max_age together") {
    make_final_jobs(st, {{"a", at(10s), at(10s)}, {"a", at(20s), at(90s)}, {"a", at(30s), at(20s)}});
    retention r;
    r.keep_last = 2;  // drops fire 10
    r.max_age = 50s;  // drops fire 30 (finished at 20)
    CHECK(st.purge(r, at(100s)) == 2);
    CHECK(fires_of(st.jobs()) == std::vector<time_point>{at(20s)});
  }

  SECTION("purge_jobs keeps the uniqueness of what is left, and purged fire times may be inserted again") {
    make_final_jobs(st, {{"a", at(10s), at(10s)}, {"a", at(20s), at(20s)}});
    retention r;
    r.keep_last = 1;
    REQUIRE(st.purge(r, at(100s)) == 1);
    CHECK(st.add_job(make_job("a", at(20s))) == 0);
    CHECK(st.add_job(make_job("a", at(10s))) > 0);  // "exists already" means: is still stored
  }
}

/// The sections on change notification.
inline void notification_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("subscribers are notified of changes that may make something due sooner") {
    change_counter changes;
    const auto handle = st.s->subscribe_changes([&] { changes.bump(); });
    auto expect_change = [&](const char* what, auto&& op) {
      INFO(what);
      const auto before = changes.count();
      op();
      CHECK(changes.wait_above(before));
    };
    REQUIRE(st.add(make_schedule("r", at(10s))));
    REQUIRE(
        st.modify("r", [](schedule_record& s) { s.spec.options.on_abandoned = abandoned_policy::rerun; }));
    expect_change("add_schedule", [&] { st.add(make_schedule("a", at(10s))); });
    expect_change("add_schedule replace",
                  [&] { st.add(make_schedule("a", at(5s)), conflict_policy::replace); });
    expect_change("add_schedules", [&] { st.add_all({make_schedule("batch", std::nullopt)}); });
    expect_change("modify_schedule",
                  [&] { st.modify("a", [](schedule_record& s) { s.next_fire = at(1s); }); });
    expect_change("add_job", [&] { st.add_job(make_job("a", at(1s))); });
    REQUIRE(st.acquire_jobs("n1", at(1s), at(30s)).size() == 1);
    expect_change("update_jobs requeue", [&] {
      auto j = st.jobs_of("a").at(0);
      j.state = job_state::pending;
      j.run_at = at(40s);
      st.update("n1", {j});
    });
    REQUIRE(st.acquire("n1", at(10s), at(30s)).size() == 2);
    expect_change("release_schedules creating jobs", [&] {
      st.release("n1", {{"a", at(20s), at(10s)}}, {make_job("a", at(10s))});
    });
    REQUIRE(st.acquire_jobs("n1", at(100s), at(130s)).size() == 2);
    expect_change("release_jobs", [&] { st.release_jobs("n1", {}); });
    REQUIRE(st.acquire("n1", at(20s), at(50s)).size() == 2);  // a, due again, and r, still held
    expect_change("release_leases", [&] { st.release_leases("n1"); });
    st.add_job(make_job("r", at(10s)));
    REQUIRE(st.acquire_jobs("n1", at(100s), at(130s)).size() == 3);
    expect_change("recover_abandoned rerun", [&] { st.recover(std::string("n1"), at(100s)); });
    st.s->unsubscribe_changes(handle);
  }

  SECTION("unsubscribe_changes stops notifications; other subscribers still get theirs") {
    change_counter first, second;
    const auto h1 = st.s->subscribe_changes([&] { first.bump(); });
    const auto h2 = st.s->subscribe_changes([&] { second.bump(); });
    CHECK(h1 != h2);
    st.add(make_schedule("a", at(10s)));
    REQUIRE(first.wait_above(0));
    REQUIRE(second.wait_above(0));
    st.s->unsubscribe_changes(h1);
    const auto after = first.count();
    const auto second_before = second.count();
    st.add(make_schedule("b", at(10s)));
    st.add_job(make_job("b", at(10s)));
    CHECK(second.wait_above(second_before));
    CHECK(first.count() == after);
    st.s->unsubscribe_changes(h2);
    st.s->unsubscribe_changes(h2);  // unknown handles are ignored
  }

  SECTION("after unsubscribe_changes returns, the callback is neither running nor called again") {
    // Unsubscribing waits for a call in progress, so a subscriber may destroy the state its
    // callback uses right after unsubscribing.
    std::atomic<bool> stop{false};
    std::thread writer([&, writer_store = st] {
      blocking_store w = writer_store;
      for (int k = 0; !stop; ++k) w.add_job(make_job("w", at(std::chrono::seconds(k))));
    });
    int violations = 0;
    for (int round = 0; round < 20; ++round) {
      auto alive = std::make_shared<std::atomic<bool>>(true);
      change_counter calls;
      std::atomic<int> bad{0};
      const auto h = st.s->subscribe_changes([&, alive] {
        if (!*alive) ++bad;
        calls.bump();
        std::this_thread::yield();
        if (!*alive) ++bad;
      });
      CHECK(calls.wait_above(0));
      st.s->unsubscribe_changes(h);
      *alive = false;
      const auto seen = calls.count();
      std::this_thread::yield();
      violations += bad.load() + static_cast<int>(calls.count() - seen);
    }
    stop = true;
    writer.join();
    CHECK(violations == 0);
  }
}

/// The sections on several nodes at once.
inline void race_sections(blocking_store& st) {
  using namespace std::chrono_literals;
  SECTION("four nodes racing over 200 schedules create exactly one job per due fire time") {
    constexpr int schedules = 200, nodes = 4, rounds = 150;
    for (int k = 0; k < schedules; ++k) {
      char id[16];
      std::snprintf(id, sizeof id, "s%03d", k % 1000);
      REQUIRE(st.add(make_schedule(id, at(0s))));
    }
    std::atomic<std::int64_t> clock_us{at(0s).time_since_epoch().count()};
    std::atomic<std::size_t> inserted{0};
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(nodes);
    for (int n = 0; n < nodes; ++n)
      threads.emplace_back([&, n] {
        try {
          // nodes 1 and 3 sometimes drop what they acquired (a crash): others take it over
          race_node(st, "node-" + std::to_string(n), clock_us, rounds, n % 2 == 1 ? 7 + n : 0, inserted);
        } catch (...) {
          errors[n] = std::current_exception();
        }
      });
    for (auto& t : threads) t.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);

    // Drain: every lease has expired; one last node catches up to `end`.
    const time_point end{duration{clock_us.load()} + 60s};
    std::atomic<std::int64_t> end_clock{end.time_since_epoch().count()};
    auto due_by_end = [&] {
      const auto d = st.next_due();
      return d.schedule && *d.schedule <= end;
    };
    for (int k = 0; k < 50 && due_by_end(); ++k) {
      end_clock = end.time_since_epoch().count();
      race_node(st, "drain", end_clock, 1, 0, inserted);
    }
    REQUIRE_FALSE(due_by_end());

    const auto all = st.jobs();
    CHECK(all.size() == inserted.load());
    std::map<std::string, std::vector<time_point>> by_schedule;
    for (auto& j : all) by_schedule[j.schedule_id].push_back(j.fire_time);
    REQUIRE(by_schedule.size() == static_cast<std::size_t>(schedules));
    std::vector<time_point> expected;
    for (auto t = at(0s); t <= end; t += 10s) expected.push_back(t);
    for (auto& [id, fires] : by_schedule) {
      INFO("schedule " << id);
      std::sort(fires.begin(), fires.end());
      CHECK(std::adjacent_find(fires.begin(), fires.end()) == fires.end());  // never twice
      CHECK(fires == expected);                                              // none missing
      CHECK(st.get(id)->last_fire == expected.back());
      CHECK(st.get(id)->lease_owner.empty());
    }
  }
}

}  // namespace conformance_detail

/// Runs every section of the store specification against stores made by `make_store` (one
/// fresh, empty store per section).
inline void store_conformance(const std::function<std::shared_ptr<store>()>& make_store) {
  conformance_detail::blocking_store st{make_store()};
  REQUIRE(st.s != nullptr);
  conformance_detail::add_and_get_sections(st);
  conformance_detail::add_batch_sections(st);
  conformance_detail::remove_and_modify_sections(st);
  conformance_detail::acquire_schedule_sections(st);
  conformance_detail::release_schedule_sections(st);
  conformance_detail::acquire_job_sections(st);
  conformance_detail::update_job_sections(st);
  conformance_detail::lease_sections(st);
  conformance_detail::recovery_sections(st);
  conformance_detail::next_due_sections(st);
  conformance_detail::history_sections(st);
  conformance_detail::notification_sections(st);
  conformance_detail::race_sections(st);
}

}  // namespace punctual::testing
