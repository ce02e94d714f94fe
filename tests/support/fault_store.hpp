// punctual::testing::fault_store: a store wrapper that makes chosen calls fail, for testing
// that the scheduler survives store failures without losing or duplicating work.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/job.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/store.hpp"
#include "punctual/time.hpp"

namespace punctual::testing {

/// How a faulty call fails.
enum class fault_mode {
  /// Throws std::runtime_error("injected fault: <op> call #<n>") before the inner store is
  /// touched: nothing happened.
  fail,
  /// Never completes until cancelled (the inner store is not touched); on cancellation it
  /// throws asio::system_error(operation_aborted). Use with a timeout (`op || timer`).
  hang,
  /// Runs the inner operation to completion — it committed — then throws as `fail` does: the
  /// reply was lost. A correct caller's retry must not duplicate work.
  fail_after_commit,
  /// Runs the inner operation to completion, then hangs as `hang` does.
  hang_after_commit,
};

/// Wraps another store and injects faults into chosen calls of chosen operations. Operations
/// are named like the store methods ("acquire_due_schedules", "release_schedules", ...; see
/// operations()). Calls are counted per operation from 1, every call counts (failed ones too).
///
/// Results pass through unchanged (acquire_jobs' options included). may_block() keeps the
/// default (true) whatever the inner store says: a `hang` fault suspends, and only the
/// scheduler's store_timeout, armed for stores that may block, ends it.
///
/// Thread safety: like any store, every member may be called from any thread.
///
/// @code
/// auto faulty = std::make_shared<fault_store>(std::make_shared<memory_store>());
/// faulty->inject("release_schedules", fault_mode::fail_after_commit, 3, 2);  // calls #3 and #4
/// @endcode
class fault_store : public store {
 public:
  explicit fault_store(std::shared_ptr<store> inner) : inner_(std::move(inner)) {
    if (!inner_) throw std::invalid_argument("fault_store: no inner store");
  }

  /// The names of the operations faults can be injected into: every awaitable of `store`.
  static const std::vector<std::string>& operations() {
    static const std::vector<std::string> names{
        "add_schedule",   "add_schedules",   "remove_schedule",       "get_schedule",
        "list_schedules", "modify_schedule", "acquire_due_schedules", "release_schedules",
        "add_job",        "acquire_jobs",    "update_jobs",           "release_jobs",
        "extend_leases",  "release_leases",  "recover_abandoned",     "next_due",
        "list_jobs",      "purge_jobs"};
    return names;
  }

  /// Makes calls number first_call .. first_call + count - 1 of `op` fail in `mode` (a fault
  /// window; count 0 means forever). Windows of one operation add up; a later window wins
  /// where they overlap. Throws std::invalid_argument for an unknown operation name or
  /// first_call 0.
  void inject(const std::string& op, fault_mode mode, std::uint64_t first_call, std::uint64_t count = 1) {
    check_name(op);
    if (first_call == 0) throw std::invalid_argument("fault_store: calls are numbered from 1");
    std::lock_guard lock(mutex_);
    windows_[op].push_back({mode, first_call, count});
  }
  /// Makes the next `count` calls of `op` fail (count 0: every following call).
  void inject_next(const std::string& op, fault_mode mode, std::uint64_t count = 1) {
    check_name(op);
    std::lock_guard lock(mutex_);
    windows_[op].push_back({mode, calls_[op] + 1, count});
  }
  /// Removes every fault window: from now on every call reaches the inner store. Calls already
  /// hanging keep hanging until cancelled.
  void heal() {
    std::lock_guard lock(mutex_);
    windows_.clear();
  }
  /// Removes the fault windows of `op` only (the other operations keep failing as injected).
  void heal(const std::string& op) {
    check_name(op);
    std::lock_guard lock(mutex_);
    windows_.erase(op);
  }

  /// How many calls of `op` were made so far (faulty ones included).
  std::uint64_t calls(const std::string& op) const {
    check_name(op);
    std::lock_guard lock(mutex_);
    auto it = calls_.find(op);
    return it == calls_.end() ? 0 : it->second;
  }
  /// How many calls of `op` were made faulty so far.
  std::uint64_t faults(const std::string& op) const {
    check_name(op);
    std::lock_guard lock(mutex_);
    auto it = faults_.find(op);
    return it == faults_.end() ? 0 : it->second;
  }
  /// The wrapped store.
  store& inner() const noexcept { return *inner_; }

  // ---- store -------------------------------------------------------------------------------

  asio::awaitable<bool> add_schedule(schedule_record s, conflict_policy on_conflict) override {
    co_return co_await guard("add_schedule", [&] { return inner_->add_schedule(std::move(s), on_conflict); });
  }
  asio::awaitable<std::vector<add_outcome>> add_schedules(std::vector<schedule_record> batch,
                                                          conflict_policy on_conflict) override {
    co_return co_await guard("add_schedules",
                             [&] { return inner_->add_schedules(std::move(batch), on_conflict); });
  }
  asio::awaitable<bool> remove_schedule(std::string id) override {
    co_return co_await guard("remove_schedule", [&] { return inner_->remove_schedule(std::move(id)); });
  }
  asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) override {
    co_return co_await guard("get_schedule", [&] { return inner_->get_schedule(std::move(id)); });
  }
  asio::awaitable<std::vector<schedule_record>> list_schedules() override {
    co_return co_await guard("list_schedules", [&] { return inner_->list_schedules(); });
  }
  asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) override {
    co_return co_await guard("modify_schedule",
                             [&] { return inner_->modify_schedule(std::move(id), std::move(change)); });
  }
  asio::awaitable<std::vector<schedule_record>> acquire_due_schedules(std::string node, time_point now,
                                                                      time_point lease_until,
                                                                      std::size_t limit) override {
    co_return co_await guard("acquire_due_schedules", [&] {
      return inner_->acquire_due_schedules(std::move(node), now, lease_until, limit);
    });
  }
  asio::awaitable<std::size_t> release_schedules(std::string node,
                                                 const std::vector<schedule_release>& releases,
                                                 const std::vector<job_record>& jobs) override {
    co_return co_await guard("release_schedules",
                             [&] { return inner_->release_schedules(std::move(node), releases, jobs); });
  }
  asio::awaitable<std::int64_t> add_job(job_record job) override {
    co_return co_await guard("add_job", [&] { return inner_->add_job(std::move(job)); });
  }
  asio::awaitable<std::vector<job_record>> acquire_jobs(std::string node, time_point now,
                                                        time_point lease_until, std::size_t limit) override {
    co_return co_await guard("acquire_jobs",
                             [&] { return inner_->acquire_jobs(std::move(node), now, lease_until, limit); });
  }
  asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) override {
    co_await guard("update_jobs", [&] { return inner_->update_jobs(std::move(node), jobs); });
  }
  asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) override {
    co_return co_await guard("release_jobs",
                             [&] { return inner_->release_jobs(std::move(node), std::move(keep)); });
  }
  asio::awaitable<void> extend_leases(std::string node, time_point until) override {
    co_await guard("extend_leases", [&] { return inner_->extend_leases(std::move(node), until); });
  }
  asio::awaitable<void> release_leases(std::string node) override {
    co_await guard("release_leases", [&] { return inner_->release_leases(std::move(node)); });
  }
  asio::awaitable<std::vector<job_record>> recover_abandoned(std::optional<std::string> node,
                                                             time_point now) override {
    co_return co_await guard("recover_abandoned",
                             [&] { return inner_->recover_abandoned(std::move(node), now); });
  }
  asio::awaitable<due_times> next_due() override {
    co_return co_await guard("next_due", [&] { return inner_->next_due(); });
  }
  asio::awaitable<std::vector<job_record>> list_jobs(job_query q) override {
    co_return co_await guard("list_jobs", [&] { return inner_->list_jobs(std::move(q)); });
  }
  asio::awaitable<std::size_t> purge_jobs(retention r, time_point now) override {
    co_return co_await guard("purge_jobs", [&] { return inner_->purge_jobs(r, now); });
  }
  /// Never faulty: passed straight to the inner store.
  std::uint64_t subscribe_changes(std::function<void()> on_change) override {
    return inner_->subscribe_changes(std::move(on_change));
  }
  void unsubscribe_changes(std::uint64_t handle) override { inner_->unsubscribe_changes(handle); }

 private:
  struct window {
    fault_mode mode;
    std::uint64_t first;
    std::uint64_t count;  // 0: forever
    bool covers(std::uint64_t n) const { return n >= first && (count == 0 || n - first < count); }
  };

  static void check_name(const std::string& op) {
    const auto& ops = operations();
    if (std::find(ops.begin(), ops.end(), op) == ops.end())
      throw std::invalid_argument("fault_store: unknown operation \"" + op + "\"");
  }

  // Counts the call and returns its number and fault, if any.
  std::pair<std::uint64_t, std::optional<fault_mode>> enter(const char* op) {
    std::lock_guard lock(mutex_);
    const auto n = ++calls_[op];
    std::optional<fault_mode> mode;
    if (auto it = windows_.find(op); it != windows_.end())
      for (auto& w : it->second)
        if (w.covers(n)) mode = w.mode;
    if (mode) ++faults_[op];
    return {n, mode};
  }

  static std::runtime_error injected(const char* op, std::uint64_t n) {
    return std::runtime_error("injected fault: " + std::string(op) + " call #" + std::to_string(n));
  }

  // Waits until cancelled, then throws; never returns normally.
  static asio::awaitable<void> hang() {
    asio::steady_timer timer(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
    for (;;) {
      co_await timer.async_wait(asio::use_awaitable);  // throws operation_aborted when cancelled
      // A wait that ends without error (it cannot: the expiry is never reached) hangs again,
      // unless cancellation was requested meanwhile.
      if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
        throw std::system_error(asio::error::operation_aborted);
    }
  }

  // Runs `start()` (which returns the inner operation's awaitable) unless the call is faulty.
  template <class Start>
  std::invoke_result_t<Start&> guard(const char* op, Start start) {
    using result = typename std::invoke_result_t<Start&>::value_type;
    const auto [n, mode] = enter(op);
    if (mode == fault_mode::fail) throw injected(op, n);
    if (mode == fault_mode::hang) co_await hang();
    if constexpr (std::is_void_v<result>) {
      co_await start();
      if (mode == fault_mode::fail_after_commit) throw injected(op, n);
      if (mode == fault_mode::hang_after_commit) co_await hang();
    } else {
      result r = co_await start();
      if (mode == fault_mode::fail_after_commit) throw injected(op, n);
      if (mode == fault_mode::hang_after_commit) co_await hang();
      co_return r;
    }
  }

  std::shared_ptr<store> inner_;
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t, std::less<>> calls_;
  std::map<std::string, std::uint64_t, std::less<>> faults_;
  std::map<std::string, std::vector<window>, std::less<>> windows_;
};

}  // namespace punctual::testing
