// The memory store's internals: its tables (punctual::detail) checked against standard containers
// under long random sequences of operations, and store operations that stress their bookkeeping.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "punctual/store/memory_store.hpp"
#include "store_conformance.hpp"

using punctual::testing::conformance_detail::numbered;

namespace {

// Random operations on an id -> pointer table: ids handed out in increasing order, most dropped
// soon, some kept for a long time (as a schedule's history is), some looked up after removal.
template <class Map>
void check_id_table(std::uint32_t seed, int steps, bool in_order) {
  std::mt19937_64 rng(seed);
  std::vector<int> values(1);  // the pointees: their addresses are the stored pointers
  values.reserve(static_cast<std::size_t>(steps) + 1);
  Map table;
  std::map<std::int64_t, int*> model;
  std::set<std::int64_t> kept;
  std::int64_t next_id = 0;
  for (int step = 0; step < steps; ++step) {
    const auto r = rng() % 100;
    if (r < 45 || model.empty()) {
      next_id += in_order ? 1 : 1 + static_cast<std::int64_t>(rng() % 3);
      values.push_back(step);
      table.insert(next_id, &values.back());
      model[next_id] = &values.back();
      if (rng() % 30 == 0) kept.insert(next_id);  // stays for long, as kept history does
    } else if (r < 85) {
      // drop one of the oldest few not kept (jobs finish about in order), or sometimes any one
      auto it = model.begin();
      if (r < 80) {
        auto skip = rng() % 8;
        for (auto k = it; k != model.end(); ++k) {
          if (kept.count(k->first)) continue;
          it = k;
          if (skip-- == 0) break;
        }
      } else {
        std::advance(it, static_cast<long>(rng() % model.size()));
      }
      kept.erase(it->first);
      CHECK(table.erase(it->first));
      model.erase(it);
    } else if (r < 95) {
      const auto id = 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(next_id + 2));
      const auto m = model.find(id);
      CHECK(table.find(id) == (m == model.end() ? nullptr : m->second));
    } else {
      const auto id = 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(next_id + 2));
      CHECK(table.erase(id) == (model.erase(id) == 1));
    }
    REQUIRE(table.size() == model.size());
  }
  for (auto& [id, p] : model) CHECK(table.find(id) == p);
  std::multiset<int*> seen, want;
  table.for_each([&](int& v) { seen.insert(&v); });
  for (auto& [id, p] : model) want.insert(p);
  CHECK(seen == want);
}

}  // namespace

TEST_CASE("memory store id map finds, adds and removes like a map", "[store][memory]") {
  for (std::uint32_t seed = 1; seed <= 4; ++seed)
    check_id_table<punctual::detail::id_map<int>>(seed, 20000, false);
}

TEST_CASE("memory store sequential id map finds, adds and removes like a map", "[store][memory]") {
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    check_id_table<punctual::detail::sequential_id_map<int>>(seed, 20000, true);
    check_id_table<punctual::detail::sequential_id_map<int>>(seed, 20000, false);  // ids with gaps
  }
}

TEST_CASE("memory store flat index finds, adds and removes like a map", "[store][memory]") {
  std::mt19937_64 rng(7);
  punctual::detail::flat_index index;
  std::vector<std::string> keys;  // value -> key
  std::unordered_map<std::string, std::uint32_t> model;
  // A weak hash (few distinct values) forces long probe runs and wrap-around at the table end.
  auto hash = [](const std::string& k) {
    return static_cast<std::uint32_t>(std::hash<std::string>{}(k) % 61);
  };
  auto find = [&](const std::string& k) {
    return index.find(hash(k), [&](std::uint32_t v) { return keys[v] == k; });
  };
  for (int step = 0; step < 30000; ++step) {
    const std::string k = numbered("s", rng() % 400);
    const auto m = model.find(k);
    if (rng() % 2 == 0) {
      if (m == model.end()) {
        keys.push_back(k);
        const auto v = static_cast<std::uint32_t>(keys.size() - 1);
        index.insert(hash(k), v);
        model.emplace(k, v);
      } else {
        CHECK(index.erase(hash(k), [&](std::uint32_t v) { return keys[v] == k; }));
        model.erase(m);
      }
    } else {
      CHECK(find(k) == (m == model.end() ? punctual::detail::flat_index::npos : m->second));
    }
    REQUIRE(index.size() == model.size());
  }
  for (auto& [k, v] : model) CHECK(find(k) == v);
}

TEST_CASE("memory store slot pool keeps addresses stable and recycles freed slots", "[store][memory]") {
  punctual::detail::slot_pool<std::string, 2> pool;  // 4 a chunk: many chunks
  std::vector<std::string*> addresses;
  for (int i = 0; i < 50; ++i) {
    const auto ix = pool.allocate();
    REQUIRE(ix == static_cast<std::uint32_t>(i));
    pool[ix] = numbered("v", static_cast<std::uint64_t>(i));
    addresses.push_back(&pool[ix]);
  }
  for (int i = 0; i < 50; ++i) {
    CHECK(&pool[static_cast<std::uint32_t>(i)] == addresses[static_cast<std::size_t>(i)]);
    CHECK(pool[static_cast<std::uint32_t>(i)] == numbered("v", static_cast<std::uint64_t>(i)));
  }
  pool.release(17);
  pool.release(3);
  CHECK(pool.allocate() == 3);
  CHECK(pool.allocate() == 17);
  CHECK(pool.allocate() == 50);
  CHECK(pool.size() == 51);
}

namespace {

// A key and a tag telling items with equal keys apart (the queues do not order them).
struct item {
  std::int64_t key;
  int tag;
  bool operator<(const item& o) const { return key < o.key; }
};

template <class Queue>
void check_queue(std::uint32_t seed, int steps, int in_order_percent) {
  std::mt19937_64 rng(seed);
  Queue q;
  std::multiset<std::int64_t> model;
  std::int64_t last = 0;
  for (int step = 0; step < steps; ++step) {
    if (rng() % 100 < 55 || model.empty()) {
      // mostly increasing keys (as fire times are), sometimes an earlier one; ties happen
      const bool in_order = static_cast<int>(rng() % 100) < in_order_percent;
      const auto key = in_order ? last + static_cast<std::int64_t>(rng() % 3)
                                : last - static_cast<std::int64_t>(rng() % 50) + 10;
      last = std::max(last, key);
      q.push({key, step});
      model.insert(key);
    } else {
      REQUIRE(q.top().key == *model.begin());
      q.pop();
      model.erase(model.begin());
    }
    REQUIRE(q.size() == model.size());
    REQUIRE(q.empty() == model.empty());
    if (!model.empty()) REQUIRE(q.top().key == *model.begin());
  }
  while (!model.empty()) {
    REQUIRE(q.top().key == *model.begin());
    q.pop();
    model.erase(model.begin());
  }
  CHECK(q.empty());
}

}  // namespace

TEST_CASE("memory store quad heap always yields its least item", "[store][memory]") {
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    check_queue<punctual::detail::quad_heap<item>>(seed, 20000, 0);
    check_queue<punctual::detail::quad_heap<item>>(seed, 20000, 90);
  }
}

TEST_CASE("memory store mostly ordered queue always yields its least item", "[store][memory]") {
  for (std::uint32_t seed = 1; seed <= 3; ++seed)
    for (int in_order : {0, 50, 90, 100})
      check_queue<punctual::detail::mostly_ordered_queue<item>>(seed, 20000, in_order);
}

namespace {
using namespace std::chrono_literals;
using punctual::testing::conformance_detail::at;
using punctual::testing::conformance_detail::blocking_store;
using punctual::testing::conformance_detail::make_job;
using punctual::testing::conformance_detail::make_schedule;
}  // namespace

TEST_CASE("memory store updates a job added as running without touching acquired ones", "[store][memory]") {
  auto store = std::make_shared<punctual::memory_store>();
  blocking_store st{store};
  REQUIRE(st.add(make_schedule("a", std::nullopt)));
  auto inserted = make_job("a", at(10s));
  inserted.state = punctual::job_state::running;
  inserted.node = "n1";
  const auto inserted_id = st.add_job(inserted);
  REQUIRE(inserted_id > 0);
  const auto pending_id = st.add_job(make_job("a", at(20s)));
  REQUIRE(st.acquire_jobs("n1", at(30s), at(60s)).size() == 1);
  auto done = st.job(inserted_id);
  done.state = punctual::job_state::succeeded;
  done.finished = at(31s);
  st.update("n1", {done});
  CHECK(st.job(inserted_id).state == punctual::job_state::succeeded);
  // the acquired job is still held: release_jobs puts it back
  CHECK(st.job(pending_id).state == punctual::job_state::running);
  CHECK(st.release_jobs("n1", {}) == 1);
  CHECK(st.job(pending_id).state == punctual::job_state::pending);
}

TEST_CASE("memory store keeps its bookkeeping through many rounds of fires", "[store][memory]") {
  // Schedules with different periods (due order changes from round to round), bounded history
  // (old job ids stay while newer ones come and go), schedules removed and re-added.
  constexpr int schedules = 300;
  constexpr std::size_t history = 2;
  auto store = std::make_shared<punctual::memory_store>(punctual::memory_store_options{history});
  blocking_store st{store};
  std::vector<punctual::duration> period;
  for (int i = 0; i < schedules; ++i) {
    period.push_back(std::chrono::seconds{1 + (i * 7) % 13});
    REQUIRE(st.add(make_schedule("s" + std::to_string(i), at(1s) + std::chrono::milliseconds{i})));
  }
  std::map<std::string, std::vector<punctual::time_point>> fired;  // per schedule, in order
  std::int64_t last_id = 0;
  auto now = at(0s);
  for (int round = 0; round < 60; ++round) {
    now += 1s;
    if (round % 10 == 5) {  // remove one schedule and add it back: its history stays
      const std::string id = "s" + std::to_string(round);
      REQUIRE(st.remove(id));
      REQUIRE(st.add(make_schedule(id, now)));
    }
    auto due = st.acquire("n1", now, now + 30s, 64);  // batches smaller than what is due
    while (!due.empty()) {
      std::vector<punctual::schedule_release> releases;
      std::vector<punctual::job_record> jobs;
      for (std::size_t k = 0; k < due.size(); ++k) {
        const auto& s = due[k];
        REQUIRE(*s.next_fire <= now);
        if (k > 0) REQUIRE(*due[k - 1].next_fire <= *s.next_fire);  // earliest first
        const auto i = std::stoi(s.spec.id.substr(1));
        releases.push_back({s.spec.id, *s.next_fire + period[static_cast<std::size_t>(i)], s.next_fire});
        jobs.push_back(make_job(s.spec.id, *s.next_fire));
        fired[s.spec.id].push_back(*s.next_fire);
      }
      REQUIRE(st.release("n1", releases, jobs) == jobs.size());
      due = st.acquire("n1", now, now + 30s, 64);
    }
    auto runs = st.acquire_jobs("n1", now, now + 30s, 1000);
    for (std::size_t k = 0; k < runs.size(); ++k) {
      REQUIRE(runs[k].id > last_id);  // ids increase; jobs were created in run_at order
      last_id = runs[k].id;
      runs[k].state = k % 3 == 0 ? punctual::job_state::failed : punctual::job_state::succeeded;
      runs[k].finished = now;
    }
    st.update("n1", runs);
    REQUIRE(st.next_due().schedule > std::optional<punctual::time_point>{now});
    REQUIRE_FALSE(st.next_due().job);
  }
  std::size_t kept = 0;
  for (auto& [id, fires] : fired) {
    auto jobs = st.jobs_of(id);
    REQUIRE(jobs.size() == std::min(history, fires.size()));
    for (std::size_t k = 0; k < jobs.size(); ++k) CHECK(jobs[k].fire_time == fires[fires.size() - 1 - k]);
    kept += jobs.size();
  }
  CHECK(store->job_count() == kept);
  CHECK(store->schedule_count() == static_cast<std::size_t>(schedules));
}

TEST_CASE("memory store returns each schedule's trigger text through replaces and removals",
          "[store][memory]") {
  // Enough replaced and removed triggers that the store packs its buffer of texts several times.
  auto store = std::make_shared<punctual::memory_store>();
  blocking_store st{store};
  auto text_for = [](int i, int version) {
    return "interval:" + std::to_string(1 + (i * 31 + version * 7) % 5000) + "s";
  };
  std::map<std::string, std::string> want;  // id -> trigger text
  for (int version = 0; version < 12; ++version) {
    for (int i = 0; i < 400; ++i) {
      const std::string id = "schedule-" + std::to_string(i);
      if ((i + version) % 5 == 0) {  // removed now and then (and added back in a later round)
        st.remove(id);
        want.erase(id);
        continue;
      }
      auto r = make_schedule(id, at(1s), text_for(i, version));
      want[id] = r.spec.trigger.to_string();  // canonical text
      REQUIRE(st.add(r, punctual::conflict_policy::replace));
    }
    for (auto& [id, text] : want) {
      const auto got = st.get(id);
      REQUIRE(got);
      REQUIRE(got->trigger_text == text);
      REQUIRE(got->spec.trigger.to_string() == text);
    }
  }
  const auto all = st.list();
  REQUIRE(all.size() == want.size());
  for (auto& s : all) CHECK(s.trigger_text == want.at(s.spec.id));
  const auto due = st.acquire("n1", at(2s), at(30s), 1000);
  REQUIRE(due.size() == want.size());
  for (auto& s : due) CHECK(s.trigger_text == want.at(s.spec.id));
}
