// Integration tests of run/process.hpp: real child processes on a real io_context.
// Every wait is bounded: operations run with io_context::run_for, and the few places that must
// observe other processes disappear poll /proc against a deadline.

#include "punctual/run/process.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

namespace {

using namespace std::chrono_literals;
using punctual::command;
using punctual::process_info;
using punctual::process_options;
using punctual::process_result;

/// Runs one command to completion on a fresh io_context, giving up after `limit`.
process_result run(const command& cmd, process_options opts = {}, std::chrono::seconds limit = 30s) {
  asio::io_context io;
  std::optional<process_result> out;
  punctual::async_run(io.get_executor(), cmd, std::move(opts), [&](process_result r) { out = std::move(r); });
  io.run_for(limit);
  REQUIRE(out.has_value());
  return std::move(*out);
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long p = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && p > 0) pids.push_back(static_cast<pid_t>(p));
  }
  ::closedir(d);
  return pids;
}

/// A process that exists and is not a zombie.
bool running(pid_t pid) {
  auto st = punctual::detail::read_proc_stat(pid);
  return st && st->state != 'Z';
}

/// Non-zombie processes in group `pgid`.
std::vector<pid_t> running_in_group(pid_t pgid) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    auto st = punctual::detail::read_proc_stat(p);
    if (st && st->state != 'Z' && st->pgrp == pgid) out.push_back(p);
  }
  return out;
}

std::string cmdline_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (char& c : s)
    if (c == '\0') c = ' ';
  return s;
}

/// Non-zombie processes whose command line contains `marker` (never this test process).
std::vector<pid_t> running_with_marker(const std::string& marker) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids())
    if (p != ::getpid() && running(p) && cmdline_of(p).find(marker) != std::string::npos) out.push_back(p);
  return out;
}

/// Zombie children of this process among `pids`.
std::vector<pid_t> zombie_children(const std::vector<pid_t>& pids) {
  std::vector<pid_t> out;
  for (pid_t p : pids) {
    auto st = punctual::detail::read_proc_stat(p);
    if (st && st->state == 'Z' && st->ppid == ::getpid()) out.push_back(p);
  }
  return out;
}

/// Reaps zombie children that are not punctual's (used while this process is a subreaper).
void reap_adopted_zombies() {
  for (pid_t p : all_pids()) {
    auto st = punctual::detail::read_proc_stat(p);
    if (st && st->state == 'Z' && st->ppid == ::getpid()) ::waitpid(p, nullptr, WNOHANG);
  }
}

int open_fd_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory's own descriptor
}

/// Polls `done` until it is true or `limit` passes; returns its last value.
template <typename F>
bool eventually(F done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

std::string unique_marker() {
  std::random_device rd;
  return "punctual-test-marker-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
}

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("punctual-process-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

/// The punctual-process-host program: $PUNCTUAL_PROCESS_HOST, else next to this executable.
std::string host_program() {
  if (const char* env = std::getenv("PUNCTUAL_PROCESS_HOST")) return env;
#if defined(PUNCTUAL_PROCESS_HOST)
  return PUNCTUAL_PROCESS_HOST;
#else
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "punctual-process-host").string();
#endif
}

}  // namespace

TEST_CASE("a command's exit code is reported", "[process]") {
  process_result ok = run(command{"true"});
  CHECK(ok.exit_code == 0);
  CHECK_FALSE(ok.signal);
  CHECK(ok.succeeded());
  CHECK(ok.info.pid > 0);
  CHECK(ok.info.pgid == ok.info.pid);
  CHECK(ok.info.start_time > 0);
  CHECK(ok.describe() == "exited with code 0");

  process_result three = run(command::shell("exit 3"));
  CHECK(three.exit_code == 3);
  CHECK_FALSE(three.succeeded());
  CHECK(three.describe() == "exited with code 3");
}

TEST_CASE("a command killed by a signal reports the signal", "[process]") {
  process_result r = run(command::shell("kill -TERM $$"));
  CHECK_FALSE(r.exit_code);
  CHECK(r.signal == SIGTERM);
  CHECK_FALSE(r.timed_out);
  CHECK(r.describe() == "killed by signal 15 (SIGTERM)");
}

TEST_CASE("stdout and stderr are captured into the tail and delivered line by line", "[process]") {
  std::vector<std::pair<std::string, bool>> lines;
  process_options o;
  o.on_line = [&](std::string_view l, bool is_err) { lines.emplace_back(std::string(l), is_err); };
  process_result r = run(command::shell("echo one; echo two >&2; sleep 0.05; printf 'three\\nfour'"), o);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output_tail.find("one\n") != std::string::npos);
  CHECK(r.output_tail.find("two\n") != std::string::npos);
  CHECK(r.output_tail.find("three\nfour") != std::string::npos);
  CHECK(r.output_bytes == r.output_tail.size());
  std::vector<std::pair<std::string, bool>> expected = {
      {"one", false}, {"two", true}, {"three", false}, {"four", false}};
  std::sort(lines.begin(), lines.end());
  std::sort(expected.begin(), expected.end());
  CHECK(lines == expected);
}

TEST_CASE("overlong lines are delivered in pieces of max_line_bytes", "[process]") {
  std::vector<std::string> lines;
  process_options o;
  o.max_line_bytes = 4;
  o.on_line = [&](std::string_view l, bool) { lines.emplace_back(l); };
  process_result r = run(command::shell("printf 'abcdefghij\\nxy\\nwxyz\\n'"), o);
  REQUIRE(r.exit_code == 0);
  CHECK(lines == std::vector<std::string>{"abcd", "efgh", "ij", "xy", "wxyz"});
}

TEST_CASE("megabytes of output neither deadlock nor grow the tail past its bound", "[process]") {
  process_options o;
  o.output_tail_bytes = 1000;
  process_result r =
      run(command::shell("head -c 3000000 /dev/zero >&2; head -c 20000000 /dev/zero; printf END"), o, 60s);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output_bytes == 23000003);
  CHECK(r.output_tail.size() == 1000);
  CHECK(r.output_tail.substr(997) == "END");
}

TEST_CASE("a command that closes its output early is still waited for", "[process]") {
  process_result r = run(command::shell("echo bye; exec >&- 2>&-; sleep 0.2; exit 5"));
  CHECK(r.exit_code == 5);
  CHECK(r.output_tail == "bye\n");
  CHECK(r.elapsed >= 200ms);
}

TEST_CASE("output held open by a process that left the group is closed after drain_timeout", "[process]") {
  process_options o;
  o.drain_timeout = 200ms;
  // The leader only exits once the background process has its own session (sid == pid).
  process_result r = run(
      command::shell(
          "setsid sleep 30 & while [ \"$(cut -d' ' -f6 /proc/$!/stat)\" != \"$!\" ]; do :; done; echo $!"),
      o);
  pid_t escaped = std::stoi(r.output_tail);
  CHECK(r.exit_code == 0);
  CHECK(r.elapsed >= 200ms);
  CHECK(r.elapsed < 5s);
  ::kill(escaped, SIGKILL);  // outside punctual's guarantees by construction: clean up here
}

TEST_CASE("jobs on an io_context run by several threads", "[process]") {
  asio::io_context io;
  std::mutex m;
  std::vector<process_result> results;
  std::atomic<int> lines{0};
  for (int i = 0; i < 40; ++i) {
    process_options o;
    o.on_line = [&](std::string_view, bool) { ++lines; };
    punctual::async_run(io.get_executor(), command::shell("echo a; echo b >&2; echo c"), o,
                        [&](process_result r) {
                          std::lock_guard lock(m);
                          results.push_back(std::move(r));
                        });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run_for(60s); });
  for (auto& t : threads) t.join();
  REQUIRE(results.size() == 40);
  for (const auto& r : results) {
    CHECK(r.exit_code == 0);
    CHECK(r.output_bytes == 6);
  }
  CHECK(lines == 120);
}

TEST_CASE("a missing program is a spawn failure with errno text", "[process]") {
  process_result r = run(command{"punctual-no-such-program", "x"});
  CHECK(r.spawn_failed);
  CHECK(r.spawn_error == std::error_code(ENOENT, std::system_category()));
  CHECK(r.error == "cannot run 'punctual-no-such-program': No such file or directory");
  CHECK(r.describe() == r.error);
  CHECK_FALSE(r.exit_code);
  CHECK(r.info.pid == 0);

  process_result empty = run(command{});
  CHECK(empty.spawn_failed);
  CHECK(empty.error == "cannot run an empty command");
}

TEST_CASE("a program without execute permission is a spawn failure", "[process]") {
  auto file = temp_dir() / "not-executable.sh";
  std::ofstream(file) << "#!/bin/sh\necho hi\n";
  std::filesystem::permissions(file,
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  process_result r = run(command{file.string()});
  CHECK(r.spawn_failed);
  CHECK(r.spawn_error == std::error_code(EACCES, std::system_category()));
  CHECK(r.error == "cannot run '" + file.string() + "': Permission denied");
  std::filesystem::remove_all(file.parent_path());
}

TEST_CASE("a missing working directory is a spawn failure naming it", "[process]") {
  command c{"true"};
  c.working_dir = "/punctual/no/such/dir";
  process_result r = run(c);
  CHECK(r.spawn_failed);
  CHECK(r.error ==
        "cannot run 'true': cannot change to directory '/punctual/no/such/dir': No such file or directory");
}

TEST_CASE("environment and working directory are applied; PATH comes from the child's environment",
          "[process]") {
  command c{"/usr/bin/env"};
  c.inherit_env = false;
  c.env = {{"PUNCTUAL_X", "1"}, {"PUNCTUAL_Y", "2"}, {"PUNCTUAL_X", "3"}};
  process_result r = run(c);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output_tail == "PUNCTUAL_X=3\nPUNCTUAL_Y=2\n");

  ::setenv("PUNCTUAL_INHERITED", "yes", 1);
  command inherit = command::shell("echo \"$PUNCTUAL_INHERITED\"; pwd");
  inherit.working_dir = "/";
  r = run(inherit);
  CHECK(r.output_tail == "yes\n/\n");
  ::unsetenv("PUNCTUAL_INHERITED");

  auto dir = temp_dir();
  auto tool = dir / "punctual-test-tool";
  std::ofstream(tool) << "#!/bin/sh\necho found \"$1\"\n";
  std::filesystem::permissions(tool, std::filesystem::perms::owner_all);
  command lookup{"punctual-test-tool", "it"};
  lookup.env = {{"PATH", "/punctual/nowhere:" + dir.string()}};
  r = run(lookup);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "found it\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("the child gets only descriptors 0, 1 and 2, stdin is /dev/null", "[process]") {
  int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leaked >= 0);
  process_result r = run(command::shell("ls /proc/$$/fd; readlink /proc/$$/fd/0; cat"));
  ::close(leaked);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "0\n1\n2\n/dev/null\n");
}

TEST_CASE("the child starts with default signal dispositions and an empty signal mask", "[process]") {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);  // network hosts commonly ignore SIGPIPE
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  process_result r = run(command{"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"});
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old, nullptr);
  CHECK(r.exit_code == 0);
  CHECK(r.output_tail == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST_CASE("a timeout stops the group with SIGTERM", "[process]") {
  process_options o;
  o.timeout = 100ms;
  o.kill_grace = 10s;
  process_result r = run(command{"sleep", "30"}, o);
  CHECK(r.timed_out);
  CHECK_FALSE(r.cancelled);
  CHECK(r.signal == SIGTERM);
  CHECK(r.elapsed >= 100ms);
  CHECK(r.elapsed < 5s);
  CHECK_FALSE(r.succeeded());
  CHECK(r.describe() == "killed by signal 15 (SIGTERM) after timing out");
}

TEST_CASE("a timed-out command that ignores SIGTERM is killed after the grace", "[process]") {
  process_options o;
  o.timeout = 500ms;  // ample time for the shell to set its trap first
  o.kill_grace = 300ms;
  std::optional<process_info> info;
  o.on_started = [&](const process_info& i) { info = i; };
  process_result r = run(command::shell("trap '' TERM; sleep 30 & sleep 30; echo never"), o);
  CHECK(r.timed_out);
  CHECK(r.signal == SIGKILL);
  CHECK(r.elapsed >= 800ms);
  CHECK(r.elapsed < 5s);
  REQUIRE(info);
  CHECK(eventually([&] { return running_in_group(info->pgid).empty(); }, 2000ms));
}

TEST_CASE("processes the command left in its group are killed when it exits", "[process]") {
  process_result r = run(command::shell("sleep 30 & echo $!"));
  REQUIRE(r.exit_code == 0);
  pid_t background = std::stoi(r.output_tail);
  CHECK(r.elapsed < 5s);  // the background sleep held the pipe; it was killed, not waited for
  CHECK(eventually([&] { return !running(background); }, 2000ms));
}

TEST_CASE("cancellation through a bound cancellation slot stops the process", "[process]") {
  asio::io_context io;
  asio::cancellation_signal cancel;
  std::optional<process_result> out;
  process_options o;
  o.kill_grace = 200ms;
  o.on_line = [&](std::string_view line, bool) {
    if (line == "ready") cancel.emit(asio::cancellation_type::terminal);  // SIGTERM is ignored by now
  };
  punctual::async_run(
      io.get_executor(), command::shell("trap '' TERM; echo ready; sleep 30"), o,
      asio::bind_cancellation_slot(cancel.slot(), [&](process_result r) { out = std::move(r); }));
  io.run_for(20s);
  REQUIRE(out);
  CHECK(out->cancelled);
  CHECK_FALSE(out->timed_out);
  CHECK(out->signal == SIGKILL);
  CHECK(out->elapsed >= 200ms);
  CHECK(out->describe() == "killed by signal 9 (SIGKILL) after being cancelled");
}

TEST_CASE("awaitable operators cancel the process when the other side wins", "[process]") {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context io;
  std::optional<process_info> info;
  bool timer_won = false;
  auto body = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    process_options o;
    o.on_started = [&](const process_info& i) { info = i; };
    asio::steady_timer timer(ex, 100ms);
    command sleep{"sleep", "30"};  // not inside the co_await expression: see command's note on GCC 12
    auto v = co_await (punctual::async_run(ex, sleep, o, asio::use_awaitable) ||
                       timer.async_wait(asio::use_awaitable));
    timer_won = v.index() == 1;
  };
  asio::co_spawn(io, body(), asio::detached);
  io.run_for(20s);
  CHECK(timer_won);
  REQUIRE(info);
  // The operation only completed after reaping: the pid is gone, not a zombie.
  CHECK_FALSE(punctual::detail::read_proc_stat(info->pid));
}

TEST_CASE("co_await yields the result; use_future works too", "[process]") {
  asio::io_context io;
  std::optional<process_result> got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        got = co_await punctual::async_run(ex, command::shell("exit 7"), {}, asio::use_awaitable);
      },
      asio::detached);
  io.run_for(20s);
  REQUIRE(got);
  CHECK(got->exit_code == 7);

  asio::io_context io2;
  auto fut = punctual::async_run(io2.get_executor(), command{"true"}, {}, asio::use_future);
  io2.run_for(20s);
  REQUIRE(fut.wait_for(0s) == std::future_status::ready);
  CHECK(fut.get().exit_code == 0);
}

TEST_CASE("a throwing line callback is reported, not propagated", "[process]") {
  int calls = 0;
  process_options o;
  o.on_line = [&](std::string_view, bool) {
    ++calls;
    throw std::runtime_error("boom");
  };
  process_result r = run(command::shell("echo a; echo b; exit 4"), o);
  CHECK(r.exit_code == 4);
  CHECK(calls == 1);
  CHECK(r.error == "on_line threw: boom");
  CHECK(r.output_tail == "a\nb\n");
}

TEST_CASE("100 concurrent jobs leave no zombie and no descriptor behind", "[process]") {
  asio::io_context io;
  // Warm up: the monitor's socket and Asio's reactor descriptors are opened once, on first use.
  punctual::async_run(io.get_executor(), command{"true"}, {}, [](process_result) {});
  io.run_for(10s);
  io.restart();
  int fds_before = open_fd_count();
  std::vector<process_result> results;
  std::vector<pid_t> pids;
  for (int i = 0; i < 100; ++i) {
    process_options o;
    o.on_started = [&](const process_info& info) { pids.push_back(info.pid); };
    punctual::async_run(io.get_executor(),
                        command::shell("echo " + std::to_string(i) + "; exit " + std::to_string(i % 5)), o,
                        [&](process_result r) { results.push_back(std::move(r)); });
  }
  io.run_for(60s);
  REQUIRE(results.size() == 100);
  std::set<std::string> outputs;
  for (const auto& r : results) {
    REQUIRE(r.exit_code);
    CHECK(*r.exit_code == std::stoi(r.output_tail) % 5);
    outputs.insert(r.output_tail);
  }
  CHECK(outputs.size() == 100);
  REQUIRE(pids.size() == 100);
  CHECK(zombie_children(pids).empty());
  for (pid_t p : pids) CHECK_FALSE(punctual::detail::read_proc_stat(p));  // reaped, not just dead
  CHECK(open_fd_count() == fds_before);
}

TEST_CASE("without pidfd, exit is found by polling", "[process]") {
  punctual::detail::pidfd_disabled_for_testing = true;
  process_result three = run(command::shell("sleep 0.1; exit 3"));
  process_options o;
  o.timeout = 500ms;
  o.kill_grace = 100ms;
  process_result stopped = run(command::shell("trap '' TERM; sleep 30"), o);
  punctual::detail::pidfd_disabled_for_testing = false;
  CHECK(three.exit_code == 3);
  CHECK(stopped.timed_out);
  CHECK(stopped.signal == SIGKILL);
  CHECK(stopped.elapsed < 5s);
}

TEST_CASE("running out of descriptors is a spawn failure, not an exception", "[process]") {
  run(command{"true"});
  asio::io_context io;
  std::optional<process_result> out;
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(open_fd_count() + 1);  // not even room for one pipe
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  punctual::async_run(io.get_executor(), command{"true"}, {}, [&](process_result r) { out = std::move(r); });
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  io.run_for(10s);
  REQUIRE(out);
  CHECK(out->spawn_failed);
  CHECK(out->spawn_error == std::error_code(EMFILE, std::system_category()));
  CHECK(out->error == "cannot run 'true': cannot create a pipe: Too many open files");
}

TEST_CASE("a process monitor that died is replaced, and reaped, at the next spawn", "[process]") {
  run(command{"true"});
  auto& monitor = punctual::detail::process_monitor::instance();
  pid_t first = monitor.pid();
  REQUIRE(first > 0);
  REQUIRE(running(first));
  CHECK(punctual::detail::read_proc_stat(first)->pgrp == first);  // in a group of its own
  REQUIRE(::kill(first, SIGKILL) == 0);
  REQUIRE(eventually([&] { return !running(first); }, 2000ms));
  process_result r = run(command{"true"});
  CHECK(r.exit_code == 0);
  pid_t second = monitor.pid();
  CHECK(second > 0);
  CHECK(second != first);
  CHECK(running(second));
  CHECK_FALSE(punctual::detail::read_proc_stat(first));
}

TEST_CASE("destroying the io_context with a job running kills and reaps it", "[process]") {
  std::optional<process_info> info;
  {
    asio::io_context io;
    process_options o;
    o.on_started = [&](const process_info& i) { info = i; };
    punctual::async_run(io.get_executor(), command{"sleep", "30"}, o, [](process_result) {});
    io.run_for(50ms);
  }
  REQUIRE(info);
  CHECK_FALSE(punctual::detail::read_proc_stat(info->pid));
}

TEST_CASE("/proc/<pid>/stat is parsed after the last parenthesis", "[process]") {
  std::string text = "4242 (a) b (c)) S 17 4242 4200 0 -1 4194560";
  for (int f = 10; f <= 21; ++f) text += " " + std::to_string(f);
  text += " 987654 more fields\n";
  auto st = punctual::detail::parse_proc_stat(text);
  REQUIRE(st);
  CHECK(st->state == 'S');
  CHECK(st->ppid == 17);
  CHECK(st->pgrp == 4242);
  CHECK(st->session == 4200);
  CHECK(st->start_time == 987654u);
  CHECK_FALSE(punctual::detail::parse_proc_stat("4242 (x) S 1 2"));
  CHECK_FALSE(punctual::detail::parse_proc_stat("no parenthesis"));
}

TEST_CASE("kill_process_group_if_alive kills a recorded group, and only that group", "[process]") {
  asio::io_context io;
  std::optional<process_info> info;
  std::optional<process_result> out;
  process_options o;
  o.on_started = [&](const process_info& i) { info = i; };
  punctual::async_run(io.get_executor(), command::shell("sleep 30 & sleep 30"), o,
                      [&](process_result r) { out = std::move(r); });
  REQUIRE(info);

  process_info other = *info;
  other.start_time += 1;  // as if the pid had been reused by another process
  CHECK_FALSE(punctual::kill_process_group_if_alive(other));
  CHECK(running(info->pid));
  process_info empty;
  CHECK_FALSE(punctual::kill_process_group_if_alive(empty));

  CHECK(punctual::kill_process_group_if_alive(*info));
  io.run_for(10s);
  REQUIRE(out);
  CHECK(out->signal == SIGKILL);
  CHECK(eventually([&] { return running_in_group(info->pgid).empty(); }, 2000ms));
  CHECK_FALSE(punctual::kill_process_group_if_alive(*info));  // gone now
}

TEST_CASE("kill_process_group_if_alive finds survivors of a group whose leader is gone", "[process]") {
  // A group started outside punctual, whose leader exits and leaves a member behind: the
  // situation a restarted host finds when a job's main process died with the old host.
  int p[2];
  REQUIRE(::pipe(p) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  const char* argv[] = {"/bin/sh", "-c", "sleep 30 >/dev/null & echo $!; read x", nullptr};
  pid_t leader = 0;
  REQUIRE(::posix_spawn(&leader, "/bin/sh", &fa, &attr, const_cast<char* const*>(argv), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(p[1]);
  char buf[32] = {};
  REQUIRE(::read(p[0], buf, sizeof buf - 1) > 0);
  ::close(p[0]);
  pid_t member = std::atoi(buf);
  auto st = punctual::detail::read_proc_stat(leader);
  REQUIRE(st);
  process_info recorded{leader, leader, st->session, st->start_time};
  ::kill(leader, SIGKILL);
  ::waitpid(leader, nullptr, 0);
  REQUIRE(running(member));

  process_info wrong_session = recorded;
  wrong_session.sid += 1;
  CHECK_FALSE(punctual::kill_process_group_if_alive(wrong_session));
  CHECK(running(member));

  CHECK(punctual::kill_process_group_if_alive(recorded));
  CHECK(eventually([&] { return !running(member); }, 2000ms));
}

// --- host death ---------------------------------------------------------------------------------

namespace {

struct host_run {
  std::vector<pid_t> job_pgids;
  process_result host;
};

/// Runs punctual-process-host in `mode` with a job tagged `marker`; returns once the host is dead.
host_run run_host(const std::string& mode, const std::string& marker) {
  host_run out;
  process_options o;
  o.on_line = [&](std::string_view line, bool is_err) {
    if (!is_err && line.rfind("pgid ", 0) == 0)
      out.job_pgids.push_back(std::stoi(std::string(line.substr(5))));
  };
  out.host = run(command{host_program(), mode, marker}, o, 30s);
  return out;
}

}  // namespace

TEST_CASE("the job tree dies with the host, however the host dies", "[process][host]") {
  REQUIRE(std::filesystem::exists(host_program()));
  // Orphans are re-parented to this process, so that they can be reaped and not linger as
  // zombies of a container's init that does not reap.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
  for (std::string mode : {"kill", "kill-stubborn", "abort", "throw", "exit", "return", "monitor-restart"}) {
    INFO("host dies by: " << mode);
    std::string marker = unique_marker();
    host_run h = run_host(mode, marker);
    INFO(h.host.describe() << "\n" << h.host.output_tail);
    REQUIRE(h.job_pgids.size() == (mode == "monitor-restart" ? 2u : 1u));
    for (pid_t g : h.job_pgids) REQUIRE(g > 1);
    if (mode == "kill" || mode == "kill-stubborn" || mode == "monitor-restart")
      CHECK(h.host.signal == SIGKILL);
    if (mode == "abort" || mode == "throw") CHECK(h.host.signal == SIGABRT);
    if (mode == "exit" || mode == "return") CHECK(h.host.exit_code == 0);
    auto all_gone = [&] {
      for (pid_t g : h.job_pgids)
        if (!running_in_group(g).empty()) return false;
      return running_with_marker(marker).empty();
    };
    bool gone = eventually(
        [&] {
          reap_adopted_zombies();
          return all_gone();
        },
        2000ms);
    CHECK(gone);
    if (!gone)
      for (pid_t g : h.job_pgids) ::kill(-g, SIGKILL);
  }
  reap_adopted_zombies();
  ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

TEST_CASE("a host that stops normally kills a job ignoring SIGTERM after the grace", "[process][host]") {
  REQUIRE(std::filesystem::exists(host_program()));
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
  std::string marker = unique_marker();
  std::string result_line;
  process_options o;
  o.on_line = [&](std::string_view line, bool) {
    if (line.rfind("result ", 0) == 0) result_line = line.substr(7);
  };
  process_result host = run(command{host_program(), "stop", marker}, o, 30s);
  CHECK(host.exit_code == 0);
  CHECK(result_line == "killed by signal 9 (SIGKILL) after being cancelled; elapsed>=grace");
  CHECK(eventually(
      [&] {
        reap_adopted_zombies();
        return running_with_marker(marker).empty();
      },
      2000ms));
  reap_adopted_zombies();
  ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}
