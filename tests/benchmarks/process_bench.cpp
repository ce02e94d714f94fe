// Cost of punctual::async_run against a plain posix_spawn + waitpid loop, in the same run:
//   1. sequential: spawn-to-exit time per `/bin/true` job, one job at a time;
//   2. concurrent: jobs per second with 8 jobs in flight.
// Usage: punctual-bench-process_bench [jobs=200] [rounds=7]. Prints one JSON line per figure with
// the time ratio punctual / posix_spawn (target: at most 1.5x), the best of `rounds` interleaved
// rounds each. Nothing is asserted.

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <string>

#include <asio/io_context.hpp>

#include "punctual/run/process.hpp"

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

pid_t plain_spawn() {
  static char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  pid_t pid = 0;
  if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) std::abort();
  return pid;
}

void plain_wait(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
}

double plain_sequential(int jobs) {
  auto t = clock_type::now();
  for (int i = 0; i < jobs; ++i) plain_wait(plain_spawn());
  return seconds_since(t);
}

double plain_concurrent(int jobs, int width) {
  auto t = clock_type::now();
  std::deque<pid_t> running;
  int started = 0;
  while (started < jobs || !running.empty()) {
    while (started < jobs && static_cast<int>(running.size()) < width) {
      running.push_back(plain_spawn());
      ++started;
    }
    plain_wait(running.front());
    running.pop_front();
  }
  return seconds_since(t);
}

double punctual_run(int jobs, int width) {
  asio::io_context io;
  const punctual::command cmd{"/bin/true"};
  int started = 0, finished = 0;
  std::function<void()> start_one = [&] {
    ++started;
    punctual::async_run(io.get_executor(), cmd, {}, [&](punctual::process_result r) {
      if (r.exit_code != 0) std::abort();
      ++finished;
      if (started < jobs) start_one();
    });
  };
  auto t = clock_type::now();
  for (int i = 0; i < width && started < jobs; ++i) start_one();
  io.run();
  if (finished != jobs) std::abort();
  return seconds_since(t);
}

}  // namespace

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 200;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  punctual::start_process_monitor();
  // Warm up both paths (page cache, the monitor, Asio's reactor).
  plain_sequential(20);
  punctual_run(20, 1);

  // The variants are interleaved round by round and the best round of each is reported, so
  // that load from other processes on the machine biases none of them.
  double ps = 1e9, us = 1e9, pc = 1e9, uc = 1e9;
  for (int r = 0; r < rounds; ++r) {
    ps = std::min(ps, plain_sequential(jobs));
    us = std::min(us, punctual_run(jobs, 1));
    pc = std::min(pc, plain_concurrent(jobs, 8));
    uc = std::min(uc, punctual_run(jobs, 8));
  }
  std::printf(
      "{\"part\": \"sequential\", \"jobs\": %d, \"rounds\": %d, \"posix_spawn_us_per_job\": %.2f, "
      "\"punctual_us_per_job\": %.2f, \"time_ratio\": %.4f}\n",
      jobs, rounds, ps / jobs * 1e6, us / jobs * 1e6, us / ps);
  std::printf(
      "{\"part\": \"concurrent\", \"jobs\": %d, \"rounds\": %d, \"width\": 8, "
      "\"posix_spawn_jobs_per_second\": %.1f, \"punctual_jobs_per_second\": %.1f, \"time_ratio\": "
      "%.4f}\n",
      jobs, rounds, jobs / pc, jobs / uc, uc / pc);
  return 0;
}
