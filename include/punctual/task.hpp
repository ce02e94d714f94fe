/// @file task.hpp
/// Tasks: named ways to run work, registered in code. Stores keep task *names* and a payload
/// string, never code.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/job.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// What a task sees of the run it performs.
///
/// Thread safety: a blocking task may read it and call set_output / record_process / stop
/// checks from its pool thread; the scheduler reads the output after the task returned.
class job_context {
 public:
  job_context(job_record job, asio::any_io_executor executor)
      : job_(std::move(job)), executor_(std::move(executor)) {}

  std::int64_t job_id() const noexcept { return job_.id; }
  const std::string& schedule_id() const noexcept { return job_.schedule_id; }
  const std::string& task() const noexcept { return job_.task; }
  /// The schedule's payload string (arguments, a command line, JSON — the task decides).
  const std::string& payload() const noexcept { return job_.payload; }
  /// The trigger's fire time this run is for.
  time_point fire_time() const noexcept { return job_.fire_time; }
  /// 1 for the first attempt, 2 for the first retry, ...
  std::uint32_t attempt() const noexcept { return job_.attempt; }
  /// When this attempt started (scheduler clock).
  time_point started() const noexcept { return job_.started.value_or(job_.run_at); }
  /// How late this attempt started after the trigger's fire time: started() - fire_time().
  /// Jitter counts (it delays the start on purpose); for a retry (attempt() > 1) it includes
  /// the earlier attempts and the retry backoff. The scheduler's lateness histogram counts
  /// first attempts only.
  duration lateness() const noexcept { return started() - job_.fire_time; }
  /// The scheduler's executor (a strand); coroutine tasks run on it.
  const asio::any_io_executor& executor() const noexcept { return executor_; }

  /// Requested when the run is cancelled or times out. Coroutine tasks are cancelled through
  /// Asio's cancellation as well; blocking tasks can only notice it here.
  std::stop_token stop_token() const {
    std::lock_guard lock(mutex_);
    if (!stop_.stop_possible()) {  // its shared state is made on first use, not for every run
      stop_ = std::stop_source();
      if (stop_flag_.load()) stop_.request_stop();
    }
    return stop_.get_token();
  }
  bool stop_requested() const noexcept { return stop_flag_.load(); }

  /// Text kept with the job as its output (bounded by the store's column, keep it short).
  void set_output(std::string text) {
    std::lock_guard lock(mutex_);
    output_ = std::move(text);
  }
  std::string output() const {
    std::lock_guard lock(mutex_);
    return output_;
  }

  /// Called by process runners once a child process group exists, so the scheduler can record
  /// it in the store (and a later incarnation can kill it if it survives).
  void record_process(process_identity p) {
    process_hook hook;
    {
      std::lock_guard lock(mutex_);
      process_ = p;
      hook = on_process_;
    }
    if (hook.call) hook.call(hook.target, p);
  }
  process_identity process() const {
    std::lock_guard lock(mutex_);
    return process_;
  }

  /// The job as it was acquired (internal use and diagnostics).
  const job_record& record() const noexcept { return job_; }

  // -- for the scheduler -----------------------------------------------------------------
  /// Called by record_process (from any thread): `call(target, identity)`. A plain pointer
  /// pair, so a run costs no allocation for a hook most tasks never use; `target` must
  /// outlive the context.
  struct process_hook {
    void (*call)(void* target, process_identity) = nullptr;
    void* target = nullptr;
  };
  void request_stop() {
    stop_flag_.store(true);
    std::lock_guard lock(mutex_);
    if (stop_.stop_possible()) stop_.request_stop();
  }
  void on_process(process_hook hook) {
    std::lock_guard lock(mutex_);
    on_process_ = hook;
  }
  /// Moves the record, the output and the process identity out once the task has ended and
  /// nothing else uses the context any more (it is left without them).
  job_record take_record() {
    std::lock_guard lock(mutex_);
    job_record r = std::move(job_);
    r.output = std::move(output_);
    r.process = process_;
    return r;
  }

 private:
  job_record job_;
  asio::any_io_executor executor_;
  mutable std::stop_source stop_{std::nostopstate};
  std::atomic<bool> stop_flag_{false};
  mutable std::mutex mutex_;
  std::string output_;
  process_identity process_;
  process_hook on_process_;
};

/// How a run ended, as a runner reports it (command runners fill exit_code / signal).
struct job_outcome {
  job_state state = job_state::succeeded;  ///< succeeded, failed, timed_out or cancelled
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string error;
  std::string output;
};

/// A coroutine task: runs on the scheduler's strand; throwing means failed. Until it first
/// suspends it holds the strand (other runs start when it awaits something or returns): keep
/// CPU-heavy work in blocking tasks.
using coroutine_task = std::function<asio::awaitable<void>(job_context&)>;
/// A blocking task: runs on the scheduler's thread pool; throwing means failed.
using blocking_task = std::function<void(job_context&)>;
/// A runner: the general seam (command jobs plug in here); reports its own outcome.
using runner_task = std::function<asio::awaitable<job_outcome>(job_context&)>;

/// One registered task.
struct task_entry {
  enum kind_t { coroutine, blocking, runner };
  kind_t kind;
  coroutine_task co;
  blocking_task block;
  runner_task run;
};

/// The named tasks a scheduler can run. Registering a name again replaces it.
/// Thread safety: all members may be called from any thread, also while the scheduler runs.
class task_registry {
 public:
  /// Registers a coroutine task.
  void add(std::string name, coroutine_task fn) {
    put(std::move(name), {task_entry::coroutine, std::move(fn), {}, {}});
  }
  /// Registers a blocking task (it runs on the scheduler's thread pool, never on the io thread).
  void add_blocking(std::string name, blocking_task fn) {
    put(std::move(name), {task_entry::blocking, {}, std::move(fn), {}});
  }
  /// Registers a runner, which reports its own outcome (see run/command_task.hpp for commands).
  void add_runner(std::string name, runner_task fn) {
    put(std::move(name), {task_entry::runner, {}, {}, std::move(fn)});
  }
  /// Removes a task; runs already started are not affected. False if there was none.
  bool remove(const std::string& name) {
    std::lock_guard lock(mutex_);
    return tasks_.erase(name) != 0;
  }
  /// The task registered under `name`, or null.
  std::shared_ptr<const task_entry> find(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = tasks_.find(name);
    return it == tasks_.end() ? nullptr : it->second;
  }
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  /// The registered names, sorted.
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (auto& [n, t] : tasks_) out.push_back(n);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  void put(std::string name, task_entry e) {
    std::lock_guard lock(mutex_);
    tasks_[std::move(name)] = std::make_shared<const task_entry>(std::move(e));
  }
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const task_entry>> tasks_;
};

PUNCTUAL_END_NAMESPACE
