// punctual-process-host MODE MARKER: a small host program for tests/integration/process.cpp.
// It starts the job `sh -c '[trap "" TERM;] sleep 300 & echo ready; sleep 300 # MARKER'`, prints
// "pgid <n>", waits until the job says "ready", and then ends as MODE says:
//   kill           SIGKILL to itself
//   kill-stubborn  the same, with a job that ignores SIGTERM
//   abort          std::abort()
//   throw          an exception escapes main (std::terminate)
//   exit           _Exit(0): no destructor runs
//   return         returns from main (the io_context is destroyed with the job running)
//   monitor-restart  kills its process monitor, starts a second job (which starts a new monitor
//                  that must learn about the first job), prints its pgid too, then SIGKILL
//   stop           cancels the job (which ignores SIGTERM, kill_grace 300ms), waits for the
//                  result, prints "result <describe>; elapsed>=grace|elapsed<grace", returns 0
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>

#include "punctual/run/process.hpp"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc != 3) {
    std::fprintf(stderr, "usage: punctual-process-host MODE MARKER\n");
    return 2;
  }
  const std::string mode = argv[1];
  const std::string marker = argv[2];
  const bool stubborn = mode == "kill-stubborn" || mode == "stop";

  asio::io_context io;
  asio::cancellation_signal cancel;
  std::optional<punctual::process_result> result;
  bool ready = false;
  punctual::process_options o;
  o.kill_grace = 300ms;
  o.on_started = [](const punctual::process_info& info) {
    std::printf("pgid %d\n", static_cast<int>(info.pgid));
    std::fflush(stdout);
  };
  o.on_line = [&](std::string_view line, bool) {
    if (line == "ready") ready = true;
  };
  std::string line =
      std::string(stubborn ? "trap '' TERM; " : "") + "sleep 300 & echo ready; sleep 300 # " + marker;
  punctual::async_run(io.get_executor(), punctual::command::shell(line), o,
                      asio::bind_cancellation_slot(
                          cancel.slot(), [&](punctual::process_result r) { result = std::move(r); }));
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!ready && !result && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  if (!ready) {
    std::fprintf(stderr, "the job did not start: %s\n", result ? result->describe().c_str() : "no result");
    return 1;
  }

  if (mode == "monitor-restart") {
    pid_t monitor = punctual::detail::process_monitor::instance().pid();
    ::kill(monitor, SIGKILL);
    while (true) {  // until it is dead (a zombie: the next spawn reaps it)
      auto st = punctual::detail::read_proc_stat(monitor);
      if (!st || st->state == 'Z' || std::chrono::steady_clock::now() > deadline) break;
      ::usleep(1000);
    }
    punctual::async_run(io.get_executor(), punctual::command::shell("sleep 300 # " + marker), o,
                        [](punctual::process_result) {});
    ::kill(::getpid(), SIGKILL);
  }
  if (mode == "kill" || mode == "kill-stubborn") ::kill(::getpid(), SIGKILL);
  if (mode == "abort") std::abort();
  if (mode == "throw") throw std::runtime_error("the host dies of an uncaught exception");
  if (mode == "exit") std::_Exit(0);
  if (mode == "return") return 0;
  if (mode == "stop") {
    cancel.emit(asio::cancellation_type::terminal);
    while (!result && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
    if (!result) return 1;
    std::printf("result %s; %s\n", result->describe().c_str(),
                result->elapsed >= 300ms ? "elapsed>=grace" : "elapsed<grace");
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
