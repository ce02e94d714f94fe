/// @file store/memory_store.hpp
/// The in-memory store: the reference implementation of the store interface, and the
/// scheduler's default. Nothing survives the process.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/store/change_subscribers.hpp"
#include "punctual/store/store.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

// Objects at stable addresses, allocated 2^Bits at a time and recycled through a free list;
// each slot is also reachable by its 32-bit index.
template <class T, unsigned Bits>
class slot_pool {
 public:
  static constexpr std::uint32_t chunk = 1u << Bits;

  T& operator[](std::uint32_t i) { return chunks_[i >> Bits][i & (chunk - 1)]; }
  const T& operator[](std::uint32_t i) const { return chunks_[i >> Bits][i & (chunk - 1)]; }
  // The index of a free slot: a recycled one (as release() left it) or a new, value-initialised one.
  std::uint32_t allocate() {
    if (!free_.empty()) {
      const auto i = free_.back();
      free_.pop_back();
      return i;
    }
    if (used_ == chunks_.size() * chunk) chunks_.push_back(std::make_unique<T[]>(chunk));
    return used_++;
  }
  void release(std::uint32_t i) { free_.push_back(i); }
  // Slots handed out so far, free or not: valid indexes are [0, size()).
  std::uint32_t size() const { return used_; }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::vector<std::uint32_t> free_;
  std::uint32_t used_ = 0;
};

// Linear probing's deletion: empties slot `i` and moves later members of its probe run into the
// hole when their home slot allows, so no tombstones are needed. `home(slot)` is a member's home
// index, `empty(slot)` tells a free slot; the table has a free slot.
template <class Slot, class Home, class Empty>
void backward_shift_erase(std::vector<Slot>& slots, std::size_t i, std::size_t mask, Home home, Empty empty) {
  for (std::size_t j = (i + 1) & mask; !empty(slots[j]); j = (j + 1) & mask) {
    const std::size_t h = home(slots[j]);
    const bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
    if (!stays) {
      slots[i] = slots[j];
      i = j;
    }
  }
  slots[i] = Slot{};
}

// An open-addressing hash index (linear probing, backward-shift deletion) of 32-bit values by a
// 32-bit hash of their key; keys live elsewhere and are compared through a predicate. 8 bytes a slot.
class flat_index {
 public:
  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

  // The value whose hash is `h` and for which eq(value) holds, or npos.
  template <class Eq>
  std::uint32_t find(std::uint32_t h, Eq&& eq) const {
    if (slots_.empty()) return npos;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.value == npos) return npos;
      if (s.hash == h && eq(s.value)) return s.value;
    }
  }
  // Adds `value` (hash `h`); it must not be present.
  void insert(std::uint32_t h, std::uint32_t value) {
    if ((size_ + 1) * 5 > slots_.size() * 4) grow();  // load factor at most 0.8
    place(h, value);
    ++size_;
  }
  // Removes the value found as by find(); false if there is none.
  template <class Eq>
  bool erase(std::uint32_t h, Eq&& eq) {
    if (slots_.empty()) return false;
    std::size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].value == npos) return false;
      if (slots_[i].hash == h && eq(slots_[i].value)) break;
    }
    backward_shift_erase(
        slots_, i, mask_, [&](const slot& s) { return s.hash & mask_; },
        [](const slot& s) { return s.value == npos; });
    --size_;
    return true;
  }
  std::size_t size() const { return size_; }

 private:
  struct slot {
    std::uint32_t hash = 0;
    std::uint32_t value = npos;
  };
  void place(std::uint32_t h, std::uint32_t value) {
    std::size_t i = h & mask_;
    while (slots_[i].value != npos) i = (i + 1) & mask_;
    slots_[i] = {h, value};
  }
  void grow() {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, slot{});
    mask_ = slots_.size() - 1;
    for (const slot& s : old)
      if (s.value != npos) place(s.hash, s.value);
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

// An open-addressing hash map from a positive 64-bit id to a pointer (Fibonacci hashing, linear
// probing, backward-shift deletion). 16 bytes a slot.
template <class T>
class id_map {
 public:
  T* find(std::int64_t id) const {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      if (slots_[i].id == id) return slots_[i].p;
      if (slots_[i].id == 0) return nullptr;
    }
  }
  // Adds `id` (> 0, not present).
  void insert(std::int64_t id, T* p) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();  // load factor at most 0.75
    place(id, p);
    ++size_;
  }
  bool erase(std::int64_t id) {
    if (slots_.empty()) return false;
    std::size_t i = home(id);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].id == id) break;
      if (slots_[i].id == 0) return false;
    }
    backward_shift_erase(
        slots_, i, mask_, [&](const slot& s) { return home(s.id); }, [](const slot& s) { return s.id == 0; });
    --size_;
    return true;
  }
  std::size_t size() const { return size_; }
  // Calls f(T&) for every member, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (const slot& s : slots_)
      if (s.id != 0) f(*s.p);
  }

 private:
  struct slot {
    std::int64_t id = 0;
    T* p = nullptr;
  };
  std::size_t home(std::int64_t id) const {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(id) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void place(std::int64_t id, T* p) {
    std::size_t i = home(id);
    while (slots_[i].id != 0) i = (i + 1) & mask_;
    slots_[i] = {id, p};
  }
  void grow() {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, slot{});
    mask_ = slots_.size() - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots_.size()));
    for (const slot& s : old)
      if (s.id != 0) place(s.id, s.p);
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 63;
  std::size_t size_ = 0;
};

// Job id -> pointer, for ids handed out in increasing order. Recent ids sit in a ring indexed by
// the id itself (no hashing, neighbouring ids in neighbouring slots); ids that stay while many
// newer ones come and go (kept history) move to a hash map once they would make the ring
// mostly holes.
template <class T>
class sequential_id_map {
 public:
  T* find(std::int64_t id) const {
    if (id >= base_ && id < end_) return ring_[static_cast<std::size_t>(id) & mask_];
    return id < base_ ? old_.find(id) : nullptr;
  }
  // Adds `id` (> 0, greater than every id added before).
  void insert(std::int64_t id, T* p) {
    if (id < end_) {  // not in order after all: keep it correct, if slower
      old_.insert(id, p);
      ++size_;
      return;
    }
    if (base_ == end_) base_ = end_ = id;  // an empty window starts anywhere
    while (end_ <= id) {
      if (static_cast<std::size_t>(end_ - base_) == ring_.size()) make_room();
      ring_[static_cast<std::size_t>(end_) & mask_] = end_ == id ? p : nullptr;
      ++end_;
    }
    ++in_ring_;
    ++size_;
  }
  bool erase(std::int64_t id) {
    if (id >= base_ && id < end_) {
      T*& slot = ring_[static_cast<std::size_t>(id) & mask_];
      if (!slot) return false;
      slot = nullptr;
      --in_ring_;
      --size_;
      while (base_ < end_ && !ring_[static_cast<std::size_t>(base_) & mask_]) ++base_;
      return true;
    }
    if (id < base_ && old_.erase(id)) {
      --size_;
      return true;
    }
    return false;
  }
  std::size_t size() const { return size_; }
  // Calls f(T&) for every member, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (auto id = base_; id < end_; ++id)
      if (T* p = ring_[static_cast<std::size_t>(id) & mask_]) f(*p);
    old_.for_each(f);
  }

 private:
  // The ring is full: double it while it is mostly in use, else move its oldest half out.
  void make_room() {
    if (ring_.empty() || in_ring_ * 2 > ring_.size()) {
      std::vector<T*> bigger(ring_.empty() ? 64 : ring_.size() * 2, nullptr);
      const std::size_t mask = bigger.size() - 1;
      for (auto id = base_; id < end_; ++id)
        bigger[static_cast<std::size_t>(id) & mask] = ring_[static_cast<std::size_t>(id) & mask_];
      ring_ = std::move(bigger);
      mask_ = mask;
      return;
    }
    while (static_cast<std::size_t>(end_ - base_) > ring_.size() / 2) {
      T*& slot = ring_[static_cast<std::size_t>(base_) & mask_];
      if (slot) {
        old_.insert(base_, slot);
        slot = nullptr;
        --in_ring_;
      }
      ++base_;
    }
    while (base_ < end_ && !ring_[static_cast<std::size_t>(base_) & mask_]) ++base_;
  }

  std::vector<T*> ring_;  // ids [base_, end_) at id & mask_; null where dropped
  std::size_t mask_ = 0;
  std::int64_t base_ = 0;
  std::int64_t end_ = 0;
  std::size_t in_ring_ = 0;
  std::size_t size_ = 0;
  id_map<T> old_;
};

// A min-heap with four children a node (half the depth of a binary heap: fewer cache misses
// when it is large), ordered by T's operator<.
template <class T>
class quad_heap {
 public:
  bool empty() const { return v_.empty(); }
  std::size_t size() const { return v_.size(); }
  const T& top() const { return v_.front(); }
  void push(const T& x) {
    std::size_t i = v_.size();
    v_.push_back(x);
    sift_up(i, x);
  }
  void pop() {
    const T last = v_.back();
    v_.pop_back();
    const std::size_t n = v_.size();
    if (n == 0) return;
    // Move the hole at the root down along the least children to a leaf, then `last` up from there
    // (it usually belongs near the bottom: fewer comparisons than sifting it down).
    std::size_t i = 0;
    for (std::size_t c = 1; c < n; c = 4 * i + 1) {
      std::size_t m = c;
      const std::size_t end = std::min(c + 4, n);
      for (std::size_t k = c + 1; k < end; ++k)
        if (v_[k] < v_[m]) m = k;
      v_[i] = v_[m];
      i = m;
    }
    sift_up(i, last);
  }

 private:
  void sift_up(std::size_t i, const T& x) {
    while (i > 0) {
      const std::size_t p = (i - 1) / 4;
      if (!(x < v_[p])) break;
      v_[i] = v_[p];
      i = p;
    }
    v_[i] = x;
  }
  std::vector<T> v_;
};

// A priority queue (least first, by operator<) for items that mostly arrive in order: an item
// not less than the last one queued in order goes to a FIFO (O(1)), any other to a heap.
template <class T>
class mostly_ordered_queue {
 public:
  bool empty() const { return count_ == 0 && heap_.empty(); }
  std::size_t size() const { return count_ + heap_.size(); }
  const T& top() const { return from_fifo() ? ring_[head_ & mask_] : heap_.top(); }
  void push(const T& x) {
    if (count_ != 0 && x < ring_[(head_ + count_ - 1) & mask_]) {
      heap_.push(x);
      return;
    }
    if (count_ == ring_.size()) grow();
    ring_[(head_ + count_) & mask_] = x;
    ++count_;
  }
  void pop() {
    if (from_fifo()) {
      ++head_;
      --count_;
    } else {
      heap_.pop();
    }
  }

 private:
  bool from_fifo() const { return count_ != 0 && (heap_.empty() || !(heap_.top() < ring_[head_ & mask_])); }
  void grow() {
    std::vector<T> bigger(ring_.empty() ? 64 : ring_.size() * 2);
    for (std::size_t k = 0; k < count_; ++k) bigger[k] = ring_[(head_ + k) & mask_];
    ring_ = std::move(bigger);
    mask_ = ring_.size() - 1;
    head_ = 0;
  }
  std::vector<T> ring_;  // the FIFO: count_ items from head_ (mod size)
  std::size_t mask_ = 0;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  quad_heap<T> heap_;
};

}  // namespace detail

/// Configuration of a memory_store.
struct memory_store_options {
  /// Final jobs kept per schedule (older ones are dropped as new ones finish). 0 keeps none.
  std::size_t history_per_schedule = 10;
};

/// Schedules and jobs in memory, behind one mutex. Compact: about 220 bytes per schedule plus
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

  asio::awaitable<std::vector<add_outcome>> add_schedules(std::vector<schedule_record> batch,
                                                          conflict_policy on_conflict) override {
    co_return locked(
        [&] {
          // With `error` every id is checked before anything changes: all or nothing.
          if (on_conflict == conflict_policy::error) {
            std::unordered_set<std::string_view> seen;
            for (const auto& s : batch)
              if (find_entry(s.spec.id) || !seen.insert(s.spec.id).second) throw schedule_conflict(s.spec.id);
          }
          std::vector<add_outcome> out;
          out.reserve(batch.size());
          for (auto& s : batch) {
            const bool existed = find_entry(s.spec.id) != nullptr;
            const bool stored = do_add(std::move(s), on_conflict);
            out.push_back(!existed ? add_outcome::added : stored ? add_outcome::replaced : add_outcome::kept);
          }
          return out;
        },
        !batch.empty());
  }

  asio::awaitable<bool> remove_schedule(std::string id) override {
    co_return locked([&] { return do_remove(id); }, true);
  }

  asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) override {
    co_return locked([&]() -> std::optional<schedule_record> {
      entry* e = find_entry(id);
      if (!e) return std::nullopt;
      return to_record(*e);
    });
  }

  asio::awaitable<std::vector<schedule_record>> list_schedules() override {
    co_return locked([&] {
      std::vector<schedule_record> out;
      out.reserve(index_.size());
      for (std::uint32_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].live) out.push_back(to_record(slots_[i]));
      std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.spec.id < b.spec.id; });
      return out;
    });
  }

  asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) override {
    co_return locked(
        [&]() -> std::optional<schedule_record> {
          entry* found = find_entry(id);
          if (!found) return std::nullopt;
          entry& e = *found;
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
      const auto now_us = us(now);
      const auto until_us = us(lease_until);
      const auto node_ix = intern(nodes_, node);
      // Leased schedules this node may take: those whose lease expired without a release (a
      // dead node), and those it holds itself (a retried acquire whose first reply was lost).
      // They are merged with the heap so that the result is earliest next_fire first overall.
      std::vector<entry*>& leased = scratch_entries_;
      leased.clear();
      for (const lease& l : leased_)
        if ((l.until < now_us || l.e->lease_owner == node_ix) && l.e->next_fire <= now_us && !l.e->paused)
          leased.push_back(l.e);
      std::sort(leased.begin(), leased.end(), [](entry* a, entry* b) { return a->next_fire < b->next_fire; });
      last_taken_.clear();
      auto take = [&](entry& e) {
        lease_to(e, node_ix, until_us);
        last_taken_.push_back(&e);
      };
      std::size_t next_leased = 0;
      while (last_taken_.size() < limit) {
        // Drop heap items that no longer describe a free, due schedule.
        while (!due_.empty() && !valid(due_.top())) due_.pop();
        const bool heap_due = !due_.empty() && due_.top().at <= now_us;
        const bool leased_due = next_leased < leased.size();
        if (!heap_due && !leased_due) break;
        if (heap_due && (!leased_due || due_.top().at <= leased[next_leased]->next_fire)) {
          entry& e = slots_[due_.top().slot];
          due_.pop();
          take(e);
        } else {
          take(*leased[next_leased++]);
        }
      }
      std::vector<schedule_record> out(last_taken_.size());
      for (std::size_t i = 0; i < last_taken_.size(); ++i) fill_record(*last_taken_[i], out[i]);
      return out;
    });
  }

  asio::awaitable<std::size_t> release_schedules(std::string node,
                                                 const std::vector<schedule_release>& releases,
                                                 const std::vector<job_record>& jobs) override {
    co_return locked(
        [&] {
          const auto node_ix = find_intern(nodes_, node);
          std::vector<entry*>& held = scratch_entries_;  // per release: its entry, if held
          held.assign(releases.size(), nullptr);
          for (std::size_t i = 0; i < releases.size(); ++i) {
            auto& r = releases[i];
            // Releases usually follow the last acquire's order: that saves the lookup by id.
            entry* found = i < last_taken_.size() && last_taken_[i]->live && last_taken_[i]->id == r.id
                               ? last_taken_[i]
                               : find_entry(r.id);
            if (!found) continue;
            entry& e = *found;
            if (node_ix == 0 || e.lease_owner != node_ix) continue;
            held[i] = &e;
            unlease(e);
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
      const auto now_us = us(now);
      std::vector<stored_job*>& taken = scratch_jobs_;
      taken.clear();
      while (!pending_.empty() && taken.size() < limit && pending_.top().at <= now_us) {
        const pending_item top = pending_.top();
        pending_.pop();
        stored_job& j = job_pool_[top.slot];
        if (j.id != top.id || j.state != job_state::pending || us(j.run_at) > now_us) continue;
        j.state = job_state::running;
        j.node = node;
        j.lease_until = lease_until;
        j.started = now;
        add_running(j);
        taken.push_back(&j);
      }
      std::vector<job_record> out;
      out.reserve(taken.size());
      for (stored_job* j : taken) {
        out.push_back(*j);
        const entry* e = owner_of(*j);
        out.back().options = options_table_[e ? e->options : 0];
      }
      return out;
    });
  }

  asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) override {
    bool requeued = false;
    locked([&] {
      for (auto& u : jobs) {
        stored_job* found = jobs_.find(u.id);
        if (!found) continue;
        stored_job& j = *found;
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
        if (j.state != job_state::running) remove_running(j);
        if (j.state == job_state::pending) {
          j.node.clear();
          push_pending(j);
          requeued = true;
        } else if (is_final(j.state)) {
          retire(j);
        }
      }
      return 0;
    });
    if (requeued) changes_.notify();
    co_return;
  }

  asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) override {
    std::size_t n = 0;
    locked([&] {
      const std::unordered_set<std::int64_t> kept(keep.begin(), keep.end());
      for (std::size_t i = running_.size(); i-- > 0;) {  // backwards: remove_running moves the last in
        stored_job& j = *running_[i];
        if (j.node == node && !kept.count(j.id)) {
          j.state = job_state::pending;
          j.node.clear();
          j.started.reset();
          remove_running(j);
          push_pending(j);
          ++n;
        }
      }
      return 0;
    });
    if (n) changes_.notify();
    co_return n;
  }

  asio::awaitable<void> extend_leases(std::string node, time_point until) override {
    locked([&] {
      const auto node_ix = find_intern(nodes_, node);
      for (lease& l : leased_)
        if (node_ix != 0 && l.e->lease_owner == node_ix) l.until = us(until);
      for (stored_job* j : running_)
        if (j->node == node) j->lease_until = until;
      return 0;
    });
    co_return;
  }

  asio::awaitable<void> release_leases(std::string node) override {
    locked(
        [&] {
          const auto node_ix = find_intern(nodes_, node);
          for (std::size_t i = leased_.size(); i-- > 0;) {  // backwards: unlease moves the last in
            entry& e = *leased_[i].e;
            if (node_ix != 0 && e.lease_owner == node_ix) {
              unlease(e);
              push_due(e);
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
      for (std::size_t i = running_.size(); i-- > 0;) {  // backwards: remove_running moves the last in
        stored_job& j = *running_[i];
        if (j.lease_until < now || (node && j.node == *node)) {
          remove_running(j);
          entry* e = find_entry(j.schedule_id);
          const bool rerun = e && options_table_[e->options]->on_abandoned == abandoned_policy::rerun;
          mark_abandoned(j, now, rerun);
          if (rerun) {
            push_pending(j);  // run_at is now
            requeued = true;
            out.push_back(j);
          } else {
            out.push_back(j);
            retire(j);  // may drop j when the history bound is 0
          }
        }
      }
      return out;
    });
    if (requeued) changes_.notify();
    co_return out;
  }

  asio::awaitable<due_times> next_due() override {
    co_return locked([&] {
      due_times d;
      while (!due_.empty()) {
        if (valid(due_.top())) {
          d.schedule = from_us(due_.top().at);
          break;
        }
        due_.pop();
      }
      // A leased schedule can be acquired by another node once its lease has expired, i.e.
      // from one microsecond after lease_until.
      for (const lease& l : leased_)
        if (l.e->next_fire != none && !l.e->paused) {
          const auto t = from_us(std::max(l.e->next_fire, l.until + 1));
          if (!d.schedule || t < *d.schedule) d.schedule = t;
        }
      while (!pending_.empty()) {
        const pending_item& top = pending_.top();
        const stored_job& j = job_pool_[top.slot];
        if (j.id == top.id && j.state == job_state::pending && us(j.run_at) == top.at) {
          d.job = j.run_at;
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
      jobs_.for_each([&](const stored_job& j) {
        if (q.schedule_id && j.schedule_id != *q.schedule_id) return;
        if (q.state && j.state != *q.state) return;
        out.push_back(j);
      });
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
        std::vector<stored_job*> sorted;  // newest fire time first
        sorted.reserve(ids.size());
        for (auto id : ids) sorted.push_back(jobs_.find(id));
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->fire_time > b->fire_time; });
        std::unordered_set<std::int64_t> drop;
        for (std::size_t k = 0; k < sorted.size(); ++k) {
          const job_record& j = *sorted[k];
          const bool too_many = r.keep_last && k >= *r.keep_last;
          const bool too_old = r.max_age && j.finished && *j.finished + *r.max_age < now;
          if (too_many || too_old) drop.insert(j.id);
        }
        for (auto* j : sorted)
          if (drop.count(j->id)) drop_job(*j);
        std::erase_if(ids, [&](auto id) { return drop.count(id) != 0; });
        n += drop.size();
      };
      for (std::uint32_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].live) purge(slots_[i].history);
      for (auto& [id, o] : orphans_) purge(o.history);
      return n;
    });
  }

  /// Every operation completes synchronously, without I/O.
  bool may_block() const noexcept override { return false; }

  /// Callbacks run on the thread of the operation that made the change, after the store's lock
  /// is released. See change_subscribers for what unsubscribe_changes() waits for.
  std::uint64_t subscribe_changes(std::function<void()> on_change) override {
    return changes_.subscribe(std::move(on_change));
  }
  void unsubscribe_changes(std::uint64_t handle) override { changes_.unsubscribe(handle); }

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

  // One schedule, compact: names are interned, times are raw microseconds. Lives in slots_, at
  // index `slot`; its lease (when lease_owner != 0) is leased_[leased_pos].
  struct entry {
    std::string id;
    ::punctual::trigger trig;
    std::unique_ptr<std::string> payload;  // null when empty
    std::int64_t next_fire = none;
    std::int64_t last_fire = never;
    std::int64_t max_fire = never;  // newest job fire time (fast uniqueness check)
    std::uint32_t slot = 0;
    std::uint32_t task = 0;
    std::uint32_t options = 0;
    std::uint32_t lease_owner = 0;  // index into nodes_, 0 = free
    std::uint32_t leased_pos = 0;
    std::uint32_t gen = 0;       // bumped on removal, invalidates heap items
    std::uint32_t text_off = 0;  // its trigger's canonical text: texts_[text_off, + text_len)
    std::uint32_t text_len = 0;
    bool paused = false;
    bool live = false;
    std::vector<std::int64_t> live_jobs;  // pending/running job ids
    std::vector<std::int64_t> history;    // final job ids, oldest first
  };
  struct lease {
    entry* e;
    std::int64_t until;
  };
  static constexpr std::uint32_t not_running = std::numeric_limits<std::uint32_t>::max();
  // A job as held, with the entry of its schedule when inserted and that entry's gen then (a hint,
  // valid while the entry is live with that gen: see owner_of). Lives in job_pool_ at index
  // `slot`; once acquired and until it leaves the running state it is running_[running_pos].
  struct stored_job : job_record {
    entry* owner = nullptr;
    std::uint32_t owner_gen = 0;
    std::uint32_t slot = 0;
    std::uint32_t running_pos = not_running;
  };
  struct heap_item {
    std::int64_t at;
    std::uint32_t slot;
    std::uint32_t gen;
    bool operator<(const heap_item& o) const { return at < o.at; }
  };
  struct pending_item {
    std::int64_t at;  // run_at
    std::int64_t id;
    std::uint32_t slot;
    bool operator<(const pending_item& o) const { return at != o.at ? at < o.at : id < o.id; }
  };

  static std::int64_t us(time_point t) { return t.time_since_epoch().count(); }
  static time_point from_us(std::int64_t v) { return time_point{duration{v}}; }
  static std::uint32_t hash_id(std::string_view id) {
    return static_cast<std::uint32_t>(std::hash<std::string_view>{}(id));
  }

  template <class T>
  static std::uint32_t intern(std::vector<T>& table, const T& value) {
    for (std::uint32_t i = 1; i < table.size(); ++i)
      if (table[i] == value) return i;
    if (table.empty()) table.emplace_back();
    table.push_back(value);
    return static_cast<std::uint32_t>(table.size() - 1);
  }
  std::uint32_t intern_options(const schedule_options& o) {
    for (std::uint32_t i = 0; i < options_table_.size(); ++i)
      if (*options_table_[i] == o) return i;
    options_table_.push_back(std::make_shared<const schedule_options>(o));
    return static_cast<std::uint32_t>(options_table_.size() - 1);
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
    if (notify_after) changes_.notify();
    return result;
  }

  entry* find_entry(std::string_view id) {
    const auto ix = index_.find(hash_id(id), [&](std::uint32_t i) { return slots_[i].id == id; });
    return ix == detail::flat_index::npos ? nullptr : &slots_[ix];
  }

  std::int64_t lease_until_of(const entry& e) const {
    return e.lease_owner ? leased_[e.leased_pos].until : 0;
  }
  void lease_to(entry& e, std::uint32_t node_ix, std::int64_t until) {
    if (e.lease_owner == 0) {
      e.leased_pos = static_cast<std::uint32_t>(leased_.size());
      leased_.push_back({&e, until});
    } else {
      leased_[e.leased_pos].until = until;
    }
    e.lease_owner = node_ix;
  }
  void unlease(entry& e) {
    if (e.lease_owner == 0) return;
    const auto pos = e.leased_pos;
    leased_[pos] = leased_.back();
    leased_[pos].e->leased_pos = pos;
    leased_.pop_back();
    e.lease_owner = 0;
  }

  void add_running(stored_job& j) {
    j.running_pos = static_cast<std::uint32_t>(running_.size());
    running_.push_back(&j);
  }
  void remove_running(stored_job& j) {
    const auto pos = j.running_pos;
    if (pos == not_running) return;  // inserted as running (add_job), never acquired
    running_[pos] = running_.back();
    running_[pos]->running_pos = pos;
    running_.pop_back();
    j.running_pos = not_running;
  }

  void fill_record(const entry& e, schedule_record& r) const {
    r.spec.id = e.id;
    r.spec.task = tasks_[e.task];
    r.spec.trigger = e.trig;
    if (e.payload) r.spec.payload = *e.payload;
    r.spec.options = *options_table_[e.options];
    r.spec.paused = e.paused;
    if (e.next_fire != none) r.next_fire = from_us(e.next_fire);
    if (e.last_fire != never) r.last_fire = from_us(e.last_fire);
    if (e.lease_owner != 0) r.lease_owner = nodes_[e.lease_owner];
    r.lease_until = from_us(lease_until_of(e));
    r.trigger_text = text_of(e);
  }
  schedule_record to_record(const entry& e) const {
    schedule_record r;
    fill_record(e, r);
    return r;
  }

  void assign(entry& e, const schedule_record& r, bool keep_lease) {
    e.trig = r.spec.trigger;
    set_text(e);
    e.payload = r.spec.payload.empty() ? nullptr : std::make_unique<std::string>(r.spec.payload);
    e.task = intern(tasks_, r.spec.task);
    e.options = intern_options(r.spec.options);
    e.paused = r.spec.paused;
    e.next_fire = r.next_fire ? us(*r.next_fire) : none;
    e.last_fire = r.last_fire ? us(*r.last_fire) : never;
    if (!keep_lease) unlease(e);
    push_due(e);
  }

  // Trigger texts are kept rather than formatted on every read (acquire_due_schedules returns
  // them with each fire): back to back in one buffer, 8 bytes an entry plus the text. Texts of
  // removed or replaced triggers are garbage until the buffer is packed again.
  std::string_view text_of(const entry& e) const { return {texts_.data() + e.text_off, e.text_len}; }
  void set_text(entry& e) {
    const std::string text = e.trig.to_string();
    drop_text(e);
    if (text_garbage_ > 4096 && text_garbage_ * 2 > texts_.size()) pack_texts();
    if (texts_.size() + text.size() > std::numeric_limits<std::uint32_t>::max())
      throw std::length_error("memory_store: trigger texts exceed 4 GiB");
    e.text_off = static_cast<std::uint32_t>(texts_.size());
    e.text_len = static_cast<std::uint32_t>(text.size());
    // Grow by a quarter, not double: the buffer is most of what a schedule costs beyond its entry.
    if (texts_.size() + text.size() > texts_.capacity())
      texts_.reserve(std::max(texts_.size() + text.size(), texts_.size() + texts_.size() / 4 + 256));
    texts_.insert(texts_.end(), text.begin(), text.end());
  }
  void drop_text(entry& e) {
    text_garbage_ += e.text_len;
    e.text_len = 0;
  }
  void pack_texts() {
    std::vector<char> packed;
    packed.reserve(texts_.size() - text_garbage_ + 256);
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      entry& e = slots_[i];
      if (e.text_len == 0) continue;
      const auto off = static_cast<std::uint32_t>(packed.size());
      const auto text = text_of(e);
      packed.insert(packed.end(), text.begin(), text.end());
      e.text_off = off;
    }
    texts_ = std::move(packed);
    text_garbage_ = 0;
  }

  bool valid(const heap_item& h) const {
    const entry& e = slots_[h.slot];
    return e.gen == h.gen && e.next_fire == h.at && !e.paused && e.lease_owner == 0;
  }
  void push_due(entry& e) {
    if (e.next_fire != none && !e.paused && e.lease_owner == 0) due_.push({e.next_fire, e.slot, e.gen});
  }

  bool do_add(schedule_record s, conflict_policy on_conflict) {
    if (entry* found = find_entry(s.spec.id)) {
      if (on_conflict == conflict_policy::error) throw schedule_conflict(s.spec.id);
      if (on_conflict == conflict_policy::keep) return false;
      entry& e = *found;
      const auto last = e.last_fire;
      s.spec.paused = e.paused;  // replace keeps pause state (conflict_policy::replace)
      ++e.gen;                   // drop its heap items
      assign(e, s, /*keep_lease=*/true);
      e.last_fire = last;
      return true;
    }
    const auto ix = slots_.allocate();
    entry& e = slots_[ix];
    e.slot = ix;
    e.id = std::move(s.spec.id);
    e.live = true;
    if (auto o = orphans_.find(e.id); o != orphans_.end()) {  // re-added: its history comes back
      e.max_fire = o->second.max_fire;
      e.history = std::move(o->second.history);
      e.live_jobs = std::move(o->second.live_jobs);
      orphans_.erase(o);
    }
    assign(e, s, /*keep_lease=*/false);
    index_.insert(hash_id(e.id), ix);
    return true;
  }

  bool do_remove(const std::string& id) {
    entry* found = find_entry(id);
    if (!found) return false;
    entry& e = *found;
    index_.erase(hash_id(id), [&](std::uint32_t i) { return i == e.slot; });
    unlease(e);
    ++e.gen;
    e.live = false;
    e.id.clear();
    e.trig = {};
    drop_text(e);
    e.payload.reset();
    slots_.release(e.slot);
    auto& orphan = orphans_[id];
    orphan.max_fire = e.max_fire;
    orphan.history = std::move(e.history);
    orphan.live_jobs = std::move(e.live_jobs);
    e.history.clear();
    e.live_jobs.clear();
    e.max_fire = never;
    for (auto jid : std::vector<std::int64_t>(orphan.live_jobs)) {
      stored_job* j = jobs_.find(jid);
      if (j && j->state == job_state::pending) {
        j->state = job_state::cancelled;
        j->error = "schedule removed";
        retire(*j);
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
  // The live entry of a job's schedule, or null once the schedule is removed. The hint saves the
  // lookup by id: gen changes whenever the entry stops being that schedule's (removal, replace).
  entry* owner_of(const stored_job& j) {
    if (j.owner && j.owner->live && j.owner->gen == j.owner_gen) return j.owner;
    return find_entry(j.schedule_id);
  }
  // Calls f(max_fire, live_jobs, history) with the lists of schedule `schedule_id`, whose live entry
  // is `owner` (null: removed or never added, the lists are an orphan's).
  template <class F>
  void with_lists(const std::string& schedule_id, F&& f, entry* owner) {
    if (owner) {
      f(owner->max_fire, owner->live_jobs, owner->history);
    } else {
      auto& o = orphans_[schedule_id];
      f(o.max_fire, o.live_jobs, o.history);
    }
  }

  // Inserts `j` (copied, or moved from when an rvalue). Returns its id, or 0 for a duplicate.
  // `owner`: the live entry of j's schedule when the caller has it (else it is looked up).
  template <class Job>
  std::int64_t insert_job(Job&& j, entry* owner = nullptr) {
    std::int64_t new_id = 0;
    bool duplicate = false;
    const auto f = us(j.fire_time);
    if (!owner) owner = find_entry(j.schedule_id);
    auto insert = [&](std::int64_t& max_fire, auto& live, auto& history) {
      if (f <= max_fire) {  // not the newest: look for a job with the same fire time
        for (auto id : live) duplicate = duplicate || jobs_.find(id)->fire_time == j.fire_time;
        for (auto id : history) duplicate = duplicate || jobs_.find(id)->fire_time == j.fire_time;
      }
      if (duplicate) return;
      max_fire = std::max(max_fire, f);
      new_id = ++next_job_id_;
      live.push_back(new_id);
    };
    with_lists(j.schedule_id, insert, owner);
    if (duplicate) return 0;
    const auto ix = job_pool_.allocate();
    stored_job& s = job_pool_[ix];
    static_cast<job_record&>(s) = std::forward<Job>(j);
    s.options.reset();  // not kept: acquire_jobs hands out the schedule's options of the moment
    s.id = new_id;
    s.owner = owner;
    s.owner_gen = owner ? owner->gen : 0;
    s.slot = ix;
    s.running_pos = not_running;
    const auto id = s.id;
    jobs_.insert(id, &s);
    if (s.state == job_state::pending) push_pending(s);
    if (is_final(s.state)) retire(s);  // may drop it when the history bound is 0
    return id;
  }

  void push_pending(const stored_job& j) { pending_.push({us(j.run_at), j.id, j.slot}); }

  // Forgets a job (final, not running) and recycles its slot. The next job moved into the slot
  // overwrites every field; until then id 0 marks the queue items that still name it as stale.
  // Large buffers are let go now; small strings stay for the next job to reuse.
  void drop_job(stored_job& j) {
    jobs_.erase(j.id);
    j.id = 0;
    for (std::string* text : {&j.schedule_id, &j.task, &j.payload, &j.node, &j.error, &j.output})
      if (text->capacity() > 64) std::string().swap(*text);
    j.owner = nullptr;
    job_pool_.release(j.slot);
  }

  // A job reached a final state: move it from the live list to the bounded history.
  void retire(stored_job& j) {
    const auto id = j.id;
    auto move_to_history = [&](std::int64_t&, auto& live, auto& history) {
      std::erase(live, id);
      if (options_.history_per_schedule == 0) {
        drop_job(j);
        return;
      }
      history.push_back(id);
      while (history.size() > options_.history_per_schedule) {
        drop_job(*jobs_.find(history.front()));
        history.erase(history.begin());
      }
    };
    with_lists(j.schedule_id, move_to_history, owner_of(j));
  }

  memory_store_options options_;
  mutable std::mutex mutex_;
  detail::slot_pool<entry, 4> slots_;
  detail::flat_index index_;                     // schedule id -> index in slots_
  detail::mostly_ordered_queue<heap_item> due_;  // schedules by next_fire (stale items skipped)
  std::vector<lease> leased_;                    // the leased schedules, in no order
  std::vector<entry*> last_taken_;               // what the last acquire_due_schedules leased, in order
  std::vector<entry*> scratch_entries_;
  std::vector<char> texts_;  // trigger texts (see text_of)
  std::size_t text_garbage_ = 0;
  std::vector<std::string> tasks_;
  // The distinct options in use, shared with the jobs acquire_jobs returns; [0] are the defaults.
  std::vector<std::shared_ptr<const schedule_options>> options_table_{
      std::make_shared<const schedule_options>()};
  std::vector<std::string> nodes_;

  detail::slot_pool<stored_job, 7> job_pool_;
  detail::sequential_id_map<stored_job> jobs_;          // job id -> job
  detail::mostly_ordered_queue<pending_item> pending_;  // pending jobs by run_at (stale items skipped)
  std::vector<stored_job*> running_;                    // the running jobs, in no order
  std::vector<stored_job*> scratch_jobs_;
  std::unordered_map<std::string, job_lists> orphans_;  // job lists of removed schedules
  std::int64_t next_job_id_ = 0;

  change_subscribers changes_;
};

PUNCTUAL_END_NAMESPACE
