// Shared by the durable store benchmarks (sqlite_bench, postgres_bench): the fake clock's start,
// CPU and wall time, and one scheduling step as the scheduler does it.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/store/store.hpp"
#include "punctual/time.hpp"

namespace punctual_bench {

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

/// Where the fake clock of the fires benchmarks starts: every schedule is first due then.
inline punctual::time_point t0() { return punctual::parse_iso("2026-01-01T00:00:00Z"); }

/// CPU time (user + system) of the whole process so far, all threads.
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

inline double seconds_since(clk::time_point start) {
  return std::chrono::duration<double>(clk::now() - start).count();
}

/// One scheduling step as the scheduler does it: acquire a batch of due schedules as `node`,
/// compute the next fire (every 1 s), release them with one pending job per fire. Returns the
/// fires made.
inline asio::awaitable<std::size_t> fire_batch(punctual::store& st, const std::string& node,
                                               punctual::time_point now, std::size_t batch) {
  auto got = co_await st.acquire_due_schedules(node, now, now + 30s, batch);
  std::vector<punctual::schedule_release> releases;
  std::vector<punctual::job_record> jobs;
  releases.reserve(got.size());
  jobs.reserve(got.size());
  for (auto& s : got) {
    punctual::job_record j;
    j.schedule_id = s.spec.id;
    j.task = s.spec.task;
    j.fire_time = *s.next_fire;
    j.run_at = *s.next_fire;
    jobs.push_back(std::move(j));
    releases.push_back({s.spec.id, s.spec.trigger.next(*s.next_fire), s.next_fire});
  }
  if (!got.empty()) co_await st.release_schedules(node, std::move(releases), std::move(jobs));
  co_return got.size();
}

}  // namespace punctual_bench
