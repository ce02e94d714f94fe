/// @file run/command_task.hpp
/// Command jobs: tasks that run a child process (run/process.hpp) under the scheduler.
///
/// The process runs in its own process group and dies with the host however the host dies
/// (the per-host monitor of process.hpp). While it runs, its identity (pid, group, start time)
/// is recorded with the job in the store; on restart, kill_abandoned_process() — installed as
/// scheduler_options::on_abandoned_process — kills a group that survived. A timeout, overlap
/// replacement or async_stop cancels the job: SIGTERM to the group, SIGKILL after kill_grace.
///
/// @code
/// punctual::scheduler_options o;
/// o.on_abandoned_process = punctual::kill_abandoned_process;
/// punctual::scheduler sched{io.get_executor(), o};
/// punctual::add_shell_task(sched.tasks(), "sh");   // payload = the command line
/// co_await sched.async_add_schedule({.id = "backup", .task = "sh", .trigger = punctual::cron("0 3 * * *"),
///                              .payload = "tar czf /backup/home.tgz /home"}, asio::use_awaitable);
/// @endcode
#pragma once

#if !defined(__linux__)
#error "punctual/run/command_task.hpp needs Linux (process groups, /proc, pidfd)"
#endif

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/job.hpp"
#include "punctual/run/process.hpp"
#include "punctual/task.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// How command tasks run their processes.
struct command_task_options {
  /// Output tail size, kill grace, line length... (on_started is set by the task; a timeout
  /// comes from the schedule's options, through cancellation).
  process_options process;
  /// Called for every output line (on the scheduler's strand), e.g. to print it prefixed with
  /// the schedule id. Must not block.
  std::function<void(const job_context& job, std::string_view line, bool is_stderr)> on_line;
  /// Extra environment for every command (on top of the host's).
  std::vector<std::pair<std::string, std::string>> env;
  /// Working directory ("" = the host's).
  std::string working_dir;
  /// The shell for add_shell_task.
  std::string shell = "/bin/sh";
};

namespace detail {

inline runner_task make_command_runner(std::function<command(job_context&)> make, command_task_options o) {
  return [make = std::move(make), o = std::move(o)](job_context& ctx) -> asio::awaitable<job_outcome> {
    command cmd = make(ctx);
    for (auto& kv : o.env) cmd.env.push_back(kv);
    if (cmd.working_dir.empty()) cmd.working_dir = o.working_dir;
    process_options po = o.process;
    po.timeout.reset();  // the schedule's timeout cancels the job, which stops the process
    po.on_started = [&ctx](const process_info& p) {
      ctx.record_process({static_cast<std::int64_t>(p.pid), static_cast<std::int64_t>(p.pgid), p.start_time});
    };
    if (o.on_line)
      po.on_line = [&ctx, &cb = o.on_line](std::string_view line, bool err) { cb(ctx, line, err); };
    process_result r = co_await async_run(ctx.executor(), std::move(cmd), std::move(po), asio::use_awaitable);
    job_outcome out;
    out.exit_code = r.exit_code;
    out.signal = r.signal;
    out.output = std::move(r.output_tail);
    out.state = r.succeeded() ? job_state::succeeded : job_state::failed;
    if (!r.succeeded()) out.error = r.describe();
    co_return out;
  };
}

}  // namespace detail

/// Registers `name` as a task that runs each job's payload as a shell command line
/// (`/bin/sh -c payload`). Exit status 0 is success; anything else — non-zero exit, a signal,
/// a program that cannot start — fails the job with a message saying which.
inline void add_shell_task(task_registry& tasks, std::string name, command_task_options options = {}) {
  auto shell = options.shell;
  tasks.add_runner(
      std::move(name),
      detail::make_command_runner([shell](job_context& ctx) { return command::shell(ctx.payload(), shell); },
                                  std::move(options)));
}

/// Registers `name` as a task that runs `cmd` (the payload is passed in the environment
/// variable PUNCTUAL_PAYLOAD, the job's schedule id in PUNCTUAL_SCHEDULE_ID and its fire time
/// in PUNCTUAL_FIRE_TIME).
inline void add_command_task(task_registry& tasks, std::string name, command cmd,
                             command_task_options options = {}) {
  tasks.add_runner(std::move(name), detail::make_command_runner(
                                        [cmd](job_context& ctx) {
                                          command c = cmd;
                                          c.env.emplace_back("PUNCTUAL_PAYLOAD", ctx.payload());
                                          c.env.emplace_back("PUNCTUAL_SCHEDULE_ID", ctx.schedule_id());
                                          c.env.emplace_back("PUNCTUAL_FIRE_TIME",
                                                             format_iso(ctx.fire_time()));
                                          return c;
                                        },
                                        std::move(options)));
}

/// Registers `name` as a task whose command is built for each job by `make` (from the job's
/// payload, schedule id, fire time, ...): e.g. a payload that carries an environment and a
/// command line, as punctual-cron's crontab entries do. `make` runs on the scheduler's strand
/// and must not block; an exception from it fails that job with its message.
inline void add_command_builder_task(task_registry& tasks, std::string name,
                                     std::function<command(job_context&)> make,
                                     command_task_options options = {}) {
  tasks.add_runner(std::move(name), detail::make_command_runner(std::move(make), std::move(options)));
}

/// For scheduler_options::on_abandoned_process: kills what is left of an abandoned command
/// job's process group, if it is still the same process (see kill_process_group_if_alive).
inline void kill_abandoned_process(const job_record& job) {
  process_info p;
  p.pid = static_cast<pid_t>(job.process.pid);
  p.pgid = static_cast<pid_t>(job.process.pgid);
  p.start_time = job.process.start_time;
  kill_process_group_if_alive(p, SIGKILL);
}

PUNCTUAL_END_NAMESPACE
