// Command jobs under the scheduler: real child processes, scheduler time on a manual clock.
#include "punctual/run/command_task.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <asio.hpp>

#include "../support/scheduler_harness.hpp"
#include "punctual/run/process.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/trigger/once.hpp"

using namespace punctual;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

// True while a process of group `pgid` exists that is not a zombie (this container's init does
// not reap orphans, so killed members can linger as zombies that kill(-pgid, 0) still sees).
bool group_alive(pid_t pgid) {
  if (pgid <= 0) return false;
  for (auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto st = detail::read_proc_stat(static_cast<pid_t>(std::stol(name)));
    if (st && st->pgrp == pgid && st->state != 'Z') return true;
  }
  return false;
}

// Waits (real time, bounded) until the group has no live member.
bool group_gone(pid_t pgid) {
  for (int i = 0; i < 200; ++i) {
    if (!group_alive(pgid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

command_task_options quick_kill() {
  command_task_options o;
  o.process.kill_grace = 200ms;
  return o;
}

job_record only_job(harness& h, const std::string& id) {
  auto jobs = h.jobs(id);
  REQUIRE(jobs.size() == 1);
  return jobs[0];
}

bool ended(harness& h, const std::string& id) {
  auto jobs = h.jobs(id);
  return jobs.size() == 1 && is_final(jobs[0].state);
}

}  // namespace

TEST_CASE("a shell command job records its exit status and output tail", "[command]") {
  harness h;
  add_shell_task(h.sched->tasks(), "sh", quick_kill());
  REQUIRE(h.add({.id = "ok",
                 .task = "sh",
                 .trigger = once_trigger(t0() + 1s),
                 .payload = "echo hello; echo oops >&2"}));
  REQUIRE(h.add({.id = "three", .task = "sh", .trigger = once_trigger(t0() + 1s), .payload = "exit 3"}));
  REQUIRE(h.add({.id = "missing",
                 .task = "sh",
                 .trigger = once_trigger(t0() + 1s),
                 .payload = "exec /nonexistent/prog"}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] { return ended(h, "ok") && ended(h, "three") && ended(h, "missing"); }));
  auto ok = only_job(h, "ok");
  CHECK(ok.state == job_state::succeeded);
  CHECK(ok.exit_code == 0);
  CHECK(ok.output.find("hello") != std::string::npos);
  CHECK(ok.output.find("oops") != std::string::npos);
  auto three = only_job(h, "three");
  CHECK(three.state == job_state::failed);
  CHECK(three.exit_code == 3);
  CHECK(three.error == "exited with code 3");
  auto missing = only_job(h, "missing");
  CHECK(missing.state == job_state::failed);
  CHECK(missing.exit_code == 127);
}

TEST_CASE("a command job that cannot start fails with the reason, and the scheduler goes on", "[command]") {
  harness h;
  add_command_task(h.sched->tasks(), "nope", command{"/nonexistent/program"}, quick_kill());
  std::vector<time_point> fires;
  h.sched->tasks().add("record", [&](job_context& job) -> asio::awaitable<void> {
    fires.push_back(job.fire_time());
    co_return;
  });
  REQUIRE(h.add({.id = "nope", .task = "nope", .trigger = once_trigger(t0() + 1s)}));
  REQUIRE(h.add({.id = "fine", .task = "record", .trigger = every(1s)}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] { return ended(h, "nope"); }));
  auto j = only_job(h, "nope");
  CHECK(j.state == job_state::failed);
  CHECK(j.error.find("cannot run '/nonexistent/program'") != std::string::npos);
  CHECK(j.error.find("No such file or directory") != std::string::npos);
  h.advance(2s);
  CHECK(fires.size() == 3);
}

TEST_CASE("a command job's process group is recorded in the store while it runs", "[command]") {
  harness h;
  add_shell_task(h.sched->tasks(), "sh", quick_kill());
  REQUIRE(h.add({.id = "long", .task = "sh", .trigger = once_trigger(t0() + 1s), .payload = "sleep 300"}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] {
    auto jobs = h.jobs("long");
    return jobs.size() == 1 && jobs[0].process.pgid != 0;
  }));
  auto j = only_job(h, "long");
  CHECK(j.state == job_state::running);
  CHECK(j.process.pid == j.process.pgid);
  CHECK(j.process.start_time != 0);
  CHECK(group_alive(static_cast<pid_t>(j.process.pgid)));
  h.stop(stop_mode::cancel, 0s);
  CHECK(group_gone(static_cast<pid_t>(j.process.pgid)));
  j = only_job(h, "long");
  CHECK(j.state == job_state::cancelled);
}

TEST_CASE("a command job's timeout terminates its group, SIGKILL after the grace if it ignores SIGTERM",
          "[command]") {
  harness h;
  add_shell_task(h.sched->tasks(), "sh", quick_kill());
  schedule_options o;
  o.timeout = 5s;
  REQUIRE(h.add({.id = "stubborn",
                 .task = "sh",
                 .trigger = once_trigger(t0() + 1s),
                 .payload = "trap '' TERM; sleep 300 & sleep 300",
                 .options = o}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] { return only_job(h, "stubborn").process.pgid != 0; }));
  const auto pgid = static_cast<pid_t>(only_job(h, "stubborn").process.pgid);
  h.advance(5s);
  REQUIRE(h.run_until([&] { return ended(h, "stubborn"); }));
  auto j = only_job(h, "stubborn");
  CHECK(j.state == job_state::timed_out);
  CHECK(j.error == "timed out after 5s");
  CHECK(j.signal == SIGKILL);
  CHECK(group_gone(pgid));
}

TEST_CASE("stop(wait) lets a command finish within the grace; stop(cancel) terminates it",
          "[command][stop]") {
  harness h;
  add_shell_task(h.sched->tasks(), "sh", quick_kill());
  REQUIRE(h.add(
      {.id = "short", .task = "sh", .trigger = once_trigger(t0() + 1s), .payload = "sleep 0.2; exit 0"}));
  h.start();
  h.advance(1s);
  REQUIRE(h.run_until([&] { return only_job(h, "short").process.pgid != 0; }));
  auto f = h.sched->async_stop(stop_mode::wait, 60s, asio::use_future);
  REQUIRE(h.run_until([&] { return f.wait_for(0s) == std::future_status::ready; }));
  f.get();
  CHECK(only_job(h, "short").state == job_state::succeeded);
}

TEST_CASE("at start, a surviving process group of an abandoned command job is killed and the run recorded",
          "[command][recovery]") {
  // A process group that outlived its host (as if the monitor had been killed too): start it
  // the way a job is started and record it as a running job of this node in the store.
  asio::io_context io;
  process_info info;
  process_options po;
  po.on_started = [&](const process_info& p) { info = p; };
  bool done = false;
  process_result result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        command c = command::shell("sleep 300 & sleep 300");
        result = co_await async_run(io.get_executor(), std::move(c), po, asio::use_awaitable);
        done = true;
      },
      asio::detached);
  while (info.pgid == 0) io.run_one_for(10ms);
  REQUIRE(group_alive(info.pgid));

  auto db = std::make_shared<memory_store>(memory_store_options{100});
  {
    harness writer(db, [](scheduler_options& o) { o.allow_unknown_tasks = true; });  // only writes the store
    REQUIRE(writer.add({.id = "orphan", .task = "sh", .trigger = once_trigger(t0() + 1s)}));
    job_record j;
    j.schedule_id = "orphan";
    j.task = "sh";
    j.fire_time = j.run_at = t0() + 1s;
    REQUIRE(writer.await(db->add_job(j)) > 0);
    auto running = writer.await(db->acquire_jobs("test-node", t0() + 1s, t0() + 30s, 10));
    REQUIRE(running.size() == 1);
    running[0].process = {info.pid, info.pgid, info.start_time};
    writer.await(db->update_jobs("test-node", running));
  }
  harness h(db, [](scheduler_options& o) { o.on_abandoned_process = kill_abandoned_process; });
  add_shell_task(h.sched->tasks(), "sh", quick_kill());
  h.start();
  CHECK(h.count(event_kind::job_abandoned) == 1);
  // The group is gone (the runner above reaps its leader).
  while (!done) io.run_one_for(10ms);
  CHECK(result.signal == SIGKILL);
  CHECK(group_gone(info.pgid));
  auto j = only_job(h, "orphan");
  CHECK(j.state == job_state::abandoned);
  CHECK(j.error.find("abandoned") != std::string::npos);
}
