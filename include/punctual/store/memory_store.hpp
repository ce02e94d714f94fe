/// @file store/memory_store.hpp
/// The in-memory store: the reference implementation of the store interface, and the
/// scheduler's default. Nothing survives the process.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/store/store.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// Configuration of a memory_store.
struct memory_store_options {
  /// Final jobs kept per schedule (older ones are dropped as new ones finish). 0 keeps none.
  std::size_t history_per_schedule = 10;
};

/// Schedules and jobs in memory, behind one mutex. Compact: about 150 bytes per schedule plus
/// its trigger (tests/benchmarks/scheduler_bench.cpp measures it). Completes every operation
/// synchronously (the awaitables never suspend).
///
/// Thread safety: every member may be called from any thread.
class memory_store final : public store {
 public:
  explicit memory_store(memory_store_options options = {}) : options_(options) {}

  asio::awaitable<bool> add_schedule(schedule_record s, conflict_policy on_conflict) override {
    co_return locked([&] { return do_add(std::move(s), on_conflict); }, true);
  }

  asio::awaitable<bool> remove_schedule(std::string id) override {
    co_return locked([&] { return do_remove(id); }, true);
  }

  asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) override {
    co_return locked([&]() -> std::optional<schedule_record> {
      auto it = index_.find(id);
      if (it == index_.end()) return std::nullopt;
      return to_record(*it->second);
    });
  }

  asio::awaitable<std::vector<schedule_record>> list_schedules() override {
    co_return locked([&] {
      std::vector<schedule_record> out;
      out.reserve(index_.size());
      for (auto& [id, e] : index_) out.push_back(to_record(*e));
      std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.spec.id < b.spec.id; });
      return out;
    });
  }

  asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) override {
    co_return locked(
        [&]() -> std::optional<schedule_record> {
          auto it = index_.find(id);
          if (it == index_.end()) return std::nullopt;
          entry& e = *it->second;
          schedule_record r = to_record(e);
          change(r);
          r.spec.id = e.id;
          assign(e, r, /*keep_lease=*/true);
          return to_record(e);
        },
        true);
  }

  asio::awaitable<std::vector<schedule_record>> acquire_due_schedules(std::string node, time_point now,
                                                                      time_point lease_until,
                                                                      std::size_t limit) override {
    co_return locked([&] {
      std::vector<schedule_record> out;
      const auto now_us = us(now);
      const auto node_ix = intern(nodes_, node);
      // Leased schedules this node may take: those whose lease expired without a release (a
      // dead node), and those it holds itself (a retried acquire whose first reply was lost).
      // They are merged with the heap so that the result is earliest next_fire first overall.
      std::vector<entry*> leased;
      for (entry* e : leased_)
        if ((e->lease_until < now_us || e->lease_owner == node_ix) && e->next_fire <= now_us && !e->paused)
          leased.push_back(e);
      std::sort(leased.begin(), leased.end(), [](entry* a, entry* b) { return a->next_fire < b->next_fire; });
      last_taken_.clear();
      auto take = [&](entry& e) {
        e.lease_owner = node_ix;
        e.lease_until = us(lease_until);
        leased_.insert(&e);
        last_taken_.push_back(&e);
        out.push_back(to_record(e));
      };
      std::size_t next_leased = 0;
      while (out.size() < limit) {
        // Drop heap items that no longer describe a free, due schedule.
        while (!due_.empty()) {
          const heap_item& top = due_.top();
          if (top.e->gen == top.gen && top.e->next_fire == top.at && !top.e->paused &&
              top.e->lease_owner == 0)
            break;
          due_.pop();
        }
        const bool heap_due = !due_.empty() && due_.top().at <= now_us;
        const bool leased_due = next_leased < leased.size();
        if (!heap_due && !leased_due) break;
        if (heap_due && (!leased_due || due_.top().at <= leased[next_leased]->next_fire)) {
          entry* e = due_.top().e;
          due_.pop();
          take(*e);
        } else {
          take(*leased[next_leased++]);
        }
      }
      return out;
    });
  }

  asio::awaitable<std::size_t> release_schedules(std::string node,
                                                 const std::vector<schedule_release>& releases,
                                                 const std::vector<job_record>& jobs) override {
    co_return locked(
        [&] {
          const auto node_ix = find_intern(nodes_, node);
          std::vector<entry*> held(releases.size(), nullptr);  // per release: its entry, if held
          for (std::size_t i = 0; i < releases.size(); ++i) {
            auto& r = releases[i];
            // Releases usually follow the last acquire's order: that saves the lookup by id.
            entry* found = i < last_taken_.size() && last_taken_[i]->live && last_taken_[i]->id == r.id
                               ? last_taken_[i]
                               : nullptr;
            if (!found) {
              auto it = index_.find(r.id);
              if (it == index_.end()) continue;
              found = it->second;
            }
            entry& e = *found;
            if (node_ix == 0 || e.lease_owner != node_ix) continue;
            held[i] = &e;
            e.lease_owner = 0;
            e.lease_until = 0;
            leased_.erase(&e);
            e.next_fire = r.next_fire ? us(*r.next_fire) : none;
            if (r.last_fire) e.last_fire = us(*r.last_fire);
            push_due(e);
          }
          // A job's schedule: jobs usually come in the order of their releases (a cursor finds
          // them); otherwise a map of the held entries, built on first need.
          std::size_t cursor = 0;
          std::unordered_map<std::string_view, entry*> by_id;
          auto owner = [&](const std::string& id) -> entry* {
            for (std::size_t k = cursor; k < releases.size() && k < cursor + 2; ++k)
              if (held[k] && releases[k].id == id) {
                cursor = k;
                return held[k];
              }
            if (by_id.empty())
              for (std::size_t k = 0; k < releases.size(); ++k)
                if (held[k]) by_id.emplace(releases[k].id, held[k]);
            auto it = by_id.find(id);
            return it == by_id.end() ? nullptr : it->second;
          };
          std::size_t inserted = 0;
          for (auto& j : jobs)
            if (entry* e = owner(j.schedule_id); e && insert_job(j, e) != 0) ++inserted;
          return inserted;
        },
        !releases.empty());
  }

  asio::awaitable<std::int64_t> add_job(job_record job) override {
    co_return locked([&] { return insert_job(std::move(job)); }, true);
  }

  asio::awaitable<std::vector<job_record>> acquire_jobs(std::string node, time_point now,
                                                        time_point lease_until, std::size_t limit) override {
    co_return locked([&] {
      std::vector<job_record> out;
      out.reserve(std::min(limit, pending_.size()));
      const auto now_us = us(now);
      while (!pending_.empty() && out.size() < limit && pending_.top().first <= now_us) {
        const auto id = pending_.top().second;
        pending_.pop();
        auto it = jobs_.find(id);
        if (it == jobs_.end() || it->second.state != job_state::pending || us(it->second.run_at) > now_us)
          continue;
        job_record& j = it->second;
        j.state = job_state::running;
        j.node = node;
        j.lease_until = lease_until;
        j.started = now;
        running_.insert(id);
        out.push_back(j);
      }
      return out;
    });
  }

  asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) override {
    bool requeued = false;
    locked([&] {
      for (auto& u : jobs) {
        auto it = jobs_.find(u.id);
        if (it == jobs_.end()) continue;
        auto& j = it->second;
        if (j.state != job_state::running || j.node != node) continue;
        j.state = u.state;
        j.run_at = u.run_at;
        j.attempt = u.attempt;
        j.started = u.started;
        j.finished = u.finished;
        j.exit_code = u.exit_code;
        j.signal = u.signal;
        j.error = u.error;
        j.output = u.output;
        j.process = u.process;
        if (j.state != job_state::running) running_.erase(j.id);
        if (j.state == job_state::pending) {
          j.node.clear();
          pending_.emplace(us(j.run_at), j.id);
          requeued = true;
        } else if (is_final(j.state)) {
          retire(j);
        }
      }
      return 0;
    });
    if (requeued) notify();
    co_return;
  }

  asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) override {
    std::size_t n = 0;
    locked([&] {
      const std::unordered_set<std::int64_t> kept(keep.begin(), keep.end());
      for (auto it = running_.begin(); it != running_.end();) {
        job_record& j = jobs_.at(*it);
        if (j.node == node && !kept.count(j.id)) {
          j.state = job_state::pending;
          j.node.clear();
          j.started.reset();
          pending_.emplace(us(j.run_at), j.id);
          it = running_.erase(it);
          ++n;
        } else {
          ++it;
        }
      }
      return 0;
    });
    if (n) notify();
    co_return n;
  }

  asio::awaitable<void> extend_leases(std::string node, time_point until) override {
    locked([&] {
      const auto node_ix = find_intern(nodes_, node);
      for (entry* e : leased_)
        if (node_ix != 0 && e->lease_owner == node_ix) e->lease_until = us(until);
      for (auto id : running_) {
        auto& j = jobs_.at(id);
        if (j.node == node) j.lease_until = until;
      }
      return 0;
    });
    co_return;
  }

  asio::awaitable<void> release_leases(std::string node) override {
    locked(
        [&] {
          const auto node_ix = find_intern(nodes_, node);
          for (auto it = leased_.begin(); it != leased_.end();) {
            entry* e = *it;
            if (node_ix != 0 && e->lease_owner == node_ix) {
              e->lease_owner = 0;
              e->lease_until = 0;
              push_due(*e);
              it = leased_.erase(it);
            } else {
              ++it;
            }
          }
          return 0;
        },
        true);
    co_return;
  }

  asio::awaitable<std::vector<job_record>> recover_abandoned(std::optional<std::string> node,
                                                             time_point now) override {
    bool requeued = false;
    auto out = locked([&] {
      std::vector<job_record> out;
      for (auto it = running_.begin(); it != running_.end();) {
        auto& j = jobs_.at(*it);
        if (j.lease_until < now || (node && j.node == *node)) {
          it = running_.erase(it);
          auto e = index_.find(j.schedule_id);
          const bool rerun =
              e != index_.end() && options_table_[e->second->options].on_abandoned == abandoned_policy::rerun;
          mark_abandoned(j, now, rerun);
          if (rerun) {
            pending_.emplace(us(now), j.id);
            requeued = true;
            out.push_back(j);
          } else {
            out.push_back(j);
            retire(j);  // may drop j when the history bound is 0
          }
        } else {
          ++it;
        }
      }
      return out;
    });
    if (requeued) notify();
    co_return out;
  }

  asio::awaitable<due_times> next_due() override {
    co_return locked([&] {
      due_times d;
      while (!due_.empty()) {
        const heap_item& top = due_.top();
        const entry* e = top.e;
        if (e->gen == top.gen && e->next_fire == top.at && !e->paused && e->lease_owner == 0) {
          d.schedule = from_us(top.at);
          break;
        }
        due_.pop();
      }
      // A leased schedule can be acquired by another node once its lease has expired, i.e.
      // from one microsecond after lease_until.
      for (entry* e : leased_)
        if (e->next_fire != none && !e->paused) {
          const auto t = from_us(std::max(e->next_fire, e->lease_until + 1));
          if (!d.schedule || t < *d.schedule) d.schedule = t;
        }
      while (!pending_.empty()) {
        auto it = jobs_.find(pending_.top().second);
        if (it != jobs_.end() && it->second.state == job_state::pending &&
            us(it->second.run_at) == pending_.top().first) {
          d.job = it->second.run_at;
          break;
        }
        pending_.pop();
      }
      return d;
    });
  }

  asio::awaitable<std::vector<job_record>> list_jobs(job_query q) override {
    co_return locked([&] {
      std::vector<job_record> out;
      for (auto& [id, j] : jobs_) {
        if (q.schedule_id && j.schedule_id != *q.schedule_id) continue;
        if (q.state && j.state != *q.state) continue;
        out.push_back(j);
      }
      std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
        return a.fire_time != b.fire_time ? a.fire_time > b.fire_time : a.id > b.id;
      });
      if (out.size() > q.limit) out.resize(q.limit);
      return out;
    });
  }

  asio::awaitable<std::size_t> purge_jobs(retention r, time_point now) override {
    co_return locked([&] {
      std::size_t n = 0;
      auto purge = [&](std::vector<std::int64_t>& ids) {
        std::vector<std::int64_t> sorted = ids;  // newest fire time first
        std::sort(sorted.begin(), sorted.end(),
                  [&](auto a, auto b) { return jobs_.at(a).fire_time > jobs_.at(b).fire_time; });
        std::unordered_set<std::int64_t> drop;
        for (std::size_t k = 0; k < sorted.size(); ++k) {
          const job_record& j = jobs_.at(sorted[k]);
          const bool too_many = r.keep_last && k >= *r.keep_last;
          const bool too_old = r.max_age && j.finished && *j.finished + *r.max_age < now;
          if (too_many || too_old) drop.insert(sorted[k]);
        }
        for (auto id : drop) jobs_.erase(id);
        std::erase_if(ids, [&](auto id) { return drop.count(id) != 0; });
        n += drop.size();
      };
      for (auto& [id, e] : index_) purge(e->history);
      for (auto& [id, o] : orphans_) purge(o.history);
      return n;
    });
  }

  /// Once unsubscribe_changes() has returned, the callback is neither running (unless
  /// unsubscribe_changes was called from inside it) nor called again. unsubscribe_changes
  /// therefore waits for a call in progress: do not call it while holding a lock the callback takes.
  /// Every operation completes synchronously, without I/O.
  bool may_block() const noexcept override { return false; }

  std::uint64_t subscribe_changes(std::function<void()> on_change) override {
    std::lock_guard lock(subscribers_mutex_);
    subscribers_.emplace_back(++next_handle_, std::make_shared<subscriber>(std::move(on_change)));
    return next_handle_;
  }
  void unsubscribe_changes(std::uint64_t handle) override {
    std::shared_ptr<subscriber> gone;
    {
      std::lock_guard lock(subscribers_mutex_);
      auto it =
          std::find_if(subscribers_.begin(), subscribers_.end(), [&](auto& s) { return s.first == handle; });
      if (it == subscribers_.end()) return;
      gone = std::move(it->second);
      subscribers_.erase(it);
    }
    std::lock_guard call_lock(gone->mutex);  // waits for a call in progress on another thread
    gone->active = false;
  }

  /// Number of schedules held.
  std::size_t schedule_count() const {
    std::lock_guard lock(mutex_);
    return index_.size();
  }
  /// Number of jobs held (live and kept history).
  std::size_t job_count() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
  }

 private:
  static constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::min();

  // One schedule, compact: names are interned, times are raw microseconds.
  struct entry {
    std::string id;
    ::punctual::trigger trig;
    std::unique_ptr<std::string> payload;  // null when empty
    std::int64_t next_fire = none;
    std::int64_t last_fire = never;
    std::int64_t lease_until = 0;
    std::uint32_t task = 0;
    std::uint32_t options = 0;
    std::uint32_t lease_owner = 0;  // index into nodes_, 0 = free
    std::uint32_t gen = 0;          // bumped on reuse, invalidates heap items
    bool paused = false;
    bool live = false;
    std::int64_t max_fire = never;        // newest job fire time (fast uniqueness check)
    std::vector<std::int64_t> live_jobs;  // pending/running job ids
    std::vector<std::int64_t> history;    // final job ids, oldest first
  };
  // A job as held, with the entry of its schedule when inserted (a hint: see with_lists).
  struct stored_job : job_record {
    entry* owner = nullptr;
  };
  struct heap_item {
    std::int64_t at;
    entry* e;
    std::uint32_t gen;
    bool operator>(const heap_item& o) const { return at > o.at; }
  };

  static std::int64_t us(time_point t) { return t.time_since_epoch().count(); }
  static time_point from_us(std::int64_t v) { return time_point{duration{v}}; }

  template <class T>
  static std::uint32_t intern(std::vector<T>& table, const T& value) {
    for (std::uint32_t i = 1; i < table.size(); ++i)
      if (table[i] == value) return i;
    if (table.empty()) table.emplace_back();
    table.push_back(value);
    return static_cast<std::uint32_t>(table.size() - 1);
  }
  static std::uint32_t find_intern(const std::vector<std::string>& table, const std::string& value) {
    for (std::uint32_t i = 1; i < table.size(); ++i)
      if (table[i] == value) return i;
    return 0;
  }

  template <class F>
  std::invoke_result_t<F&> locked(F&& f, bool notify_after = false) {
    std::unique_lock lock(mutex_);
    auto result = f();
    lock.unlock();
    if (notify_after) notify();
    return result;
  }

  void notify() {
    std::vector<std::shared_ptr<subscriber>> copy;
    {
      std::lock_guard lock(subscribers_mutex_);
      if (subscribers_.empty()) return;
      for (auto& s : subscribers_) copy.push_back(s.second);
    }
    for (auto& s : copy) {
      std::lock_guard call_lock(s->mutex);
      if (s->active) s->on_change();
    }
  }

  schedule_record to_record(const entry& e) const {
    schedule_record r;
    r.spec.id = e.id;
    r.spec.task = tasks_[e.task];
    r.spec.trigger = e.trig;
    if (e.payload) r.spec.payload = *e.payload;
    r.spec.options = options_table_[e.options];
    r.spec.paused = e.paused;
    if (e.next_fire != none) r.next_fire = from_us(e.next_fire);
    if (e.last_fire != never) r.last_fire = from_us(e.last_fire);
    if (e.lease_owner != 0) r.lease_owner = nodes_[e.lease_owner];
    r.lease_until = from_us(e.lease_until);
    r.trigger_text = e.trig.to_string();
    return r;
  }

  void assign(entry& e, const schedule_record& r, bool keep_lease) {
    e.trig = r.spec.trigger;
    e.payload = r.spec.payload.empty() ? nullptr : std::make_unique<std::string>(r.spec.payload);
    e.task = intern(tasks_, r.spec.task);
    e.options = intern(options_table_, r.spec.options);
    e.paused = r.spec.paused;
    e.next_fire = r.next_fire ? us(*r.next_fire) : none;
    e.last_fire = r.last_fire ? us(*r.last_fire) : never;
    if (!keep_lease) {
      e.lease_owner = 0;
      e.lease_until = 0;
    }
    push_due(e);
  }

  void push_due(entry& e) {
    if (e.next_fire != none && !e.paused && e.lease_owner == 0) due_.push({e.next_fire, &e, e.gen});
  }

  bool do_add(schedule_record s, conflict_policy on_conflict) {
    auto it = index_.find(s.spec.id);
    if (it != index_.end()) {
      if (on_conflict == conflict_policy::error) throw schedule_conflict(s.spec.id);
      if (on_conflict == conflict_policy::keep) return false;
      entry& e = *it->second;
      const auto last = e.last_fire;
      s.spec.paused = e.paused;  // replace keeps pause state (conflict_policy::replace)
      ++e.gen;                   // drop its heap items
      assign(e, s, /*keep_lease=*/true);
      e.last_fire = last;
      return true;
    }
    entry* e;
    if (!free_.empty()) {
      e = free_.back();
      free_.pop_back();
    } else {
      e = &slots_.emplace_back();
    }
    e->id = s.spec.id;
    e->live = true;
    if (auto o = orphans_.find(e->id); o != orphans_.end()) {  // re-added: its history comes back
      e->max_fire = o->second.max_fire;
      e->history = std::move(o->second.history);
      e->live_jobs = std::move(o->second.live_jobs);
      orphans_.erase(o);
    }
    assign(*e, s, /*keep_lease=*/false);
    index_.emplace(std::string_view(e->id), e);
    return true;
  }

  bool do_remove(const std::string& id) {
    auto it = index_.find(id);
    if (it == index_.end()) return false;
    entry* e = it->second;
    index_.erase(it);
    leased_.erase(e);
    ++e->gen;
    e->live = false;
    e->id.clear();
    e->trig = {};
    e->payload.reset();
    free_.push_back(e);
    auto& orphan = orphans_[id];
    orphan.max_fire = e->max_fire;
    orphan.history = std::move(e->history);
    orphan.live_jobs = std::move(e->live_jobs);
    e->history.clear();
    e->live_jobs.clear();
    e->max_fire = never;
    for (auto jid : std::vector<std::int64_t>(orphan.live_jobs)) {
      auto jt = jobs_.find(jid);
      if (jt != jobs_.end() && jt->second.state == job_state::pending) {
        jt->second.state = job_state::cancelled;
        jt->second.error = "schedule removed";
        retire(jt->second);
      }
    }
    return true;
  }

  // The per-schedule job lists: the live entry's, or an orphan's once the schedule is removed.
  struct job_lists {
    std::int64_t max_fire = never;
    std::vector<std::int64_t> live_jobs;
    std::vector<std::int64_t> history;
  };
  // `owner`, when still the live entry of that schedule, saves the lookup by id.
  template <class F>
  void with_lists(const std::string& schedule_id, F&& f, entry* owner = nullptr) {
    if (owner && owner->live && owner->id == schedule_id) {
      f(owner->max_fire, owner->live_jobs, owner->history);
      return;
    }
    auto it = index_.find(schedule_id);
    if (it != index_.end()) {
      f(it->second->max_fire, it->second->live_jobs, it->second->history);
    } else {
      auto& o = orphans_[schedule_id];
      f(o.max_fire, o.live_jobs, o.history);
    }
  }

  std::int64_t insert_job(job_record j, entry* owner = nullptr) {
    bool duplicate = false;
    const auto f = us(j.fire_time);
    if (!owner)
      if (auto it = index_.find(j.schedule_id); it != index_.end()) owner = it->second;
    auto insert = [&](std::int64_t& max_fire, auto& live, auto& history) {
      if (f <= max_fire) {  // not the newest: look for a job with the same fire time
        for (auto id : live) duplicate = duplicate || jobs_.at(id).fire_time == j.fire_time;
        for (auto id : history) duplicate = duplicate || jobs_.at(id).fire_time == j.fire_time;
      }
      if (duplicate) return;
      max_fire = std::max(max_fire, f);
      j.id = ++next_job_id_;
      live.push_back(j.id);
    };
    with_lists(j.schedule_id, insert, owner);
    if (duplicate) return 0;
    if (j.state == job_state::pending) pending_.emplace(us(j.run_at), j.id);
    const auto id = j.id;
    auto [it, ok] = jobs_.emplace(id, stored_job{std::move(j), owner});
    if (is_final(it->second.state)) retire(it->second);  // may drop it when the history bound is 0
    return id;
  }

  // A job reached a final state: move it from the live list to the bounded history.
  void retire(stored_job& j) {
    const auto id = j.id;
    auto move_to_history = [&](std::int64_t&, auto& live, auto& history) {
      std::erase(live, id);
      history.push_back(id);
      while (history.size() > options_.history_per_schedule) {
        jobs_.erase(history.front());
        history.erase(history.begin());
      }
    };
    with_lists(j.schedule_id, move_to_history, j.owner);
  }

  memory_store_options options_;
  mutable std::mutex mutex_;
  std::deque<entry> slots_;  // stable addresses
  std::vector<entry*> free_;
  std::unordered_map<std::string_view, entry*> index_;
  std::priority_queue<heap_item, std::vector<heap_item>, std::greater<>> due_;
  std::unordered_set<entry*> leased_;
  std::vector<entry*> last_taken_;  // what the last acquire_due_schedules leased, in order
  std::vector<std::string> tasks_;
  std::vector<schedule_options> options_table_;
  std::vector<std::string> nodes_;

  std::unordered_map<std::int64_t, stored_job> jobs_;
  std::priority_queue<std::pair<std::int64_t, std::int64_t>,
                      std::vector<std::pair<std::int64_t, std::int64_t>>, std::greater<>>
      pending_;
  std::unordered_set<std::int64_t> running_;
  std::unordered_map<std::string, job_lists> orphans_;  // job lists of removed schedules
  std::int64_t next_job_id_ = 0;

  // A subscription; its mutex is held while its callback runs, so that unsubscribe_changes can
  // wait for a call in progress (recursive: the callback may unsubscribe itself).
  struct subscriber {
    explicit subscriber(std::function<void()> f) : on_change(std::move(f)) {}
    std::function<void()> on_change;
    std::recursive_mutex mutex;
    bool active = true;
  };
  std::mutex subscribers_mutex_;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<subscriber>>> subscribers_;
  std::uint64_t next_handle_ = 0;
};

PUNCTUAL_END_NAMESPACE
