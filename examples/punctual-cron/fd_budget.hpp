// How many descriptors punctual-cron may open and how many of them its HTTP server may hold, so
// that starting a job never fails because HTTP clients took the descriptors.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>

namespace punctual_cron {

/// Descriptors kept for the daemon itself before the rest is shared out: stdin/stdout/stderr,
/// the store (SQLite's database, journal or WAL and shared-memory files; or a PostgreSQL
/// connection), the process monitor's socket, the io_context's epoll, eventfd and timerfd,
/// the listening socket, the crontab while it is read, with room to spare.
inline constexpr rlim_t daemon_descriptor_reserve = 64;

/// The highest soft RLIMIT_NOFILE the daemon raises itself to: plenty for any HTTP cap and
/// thousands of running jobs, yet not a huge limit for the jobs, which inherit it.
inline constexpr rlim_t descriptor_limit_ceiling = 65536;

/// Raises the soft RLIMIT_NOFILE to the hard limit where allowed (at most
/// descriptor_limit_ceiling; never lowers it). Returns the soft limit in force afterwards.
inline rlim_t raise_descriptor_limit() {
  rlimit now{};
  if (::getrlimit(RLIMIT_NOFILE, &now) != 0) return 1024;
  if (now.rlim_cur == RLIM_INFINITY) return descriptor_limit_ceiling;
  const rlim_t want = now.rlim_max == RLIM_INFINITY ? descriptor_limit_ceiling
                                                    : std::min(now.rlim_max, descriptor_limit_ceiling);
  if (now.rlim_cur < want) {
    const rlimit raised{want, now.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) now.rlim_cur = want;
  }
  return now.rlim_cur;
}

/// The most connections the HTTP server may hold open under a descriptor limit of `limit`:
/// half of what is left after daemon_descriptor_reserve (at least 1). The other half is the
/// jobs': a running job holds 3 descriptors (the read ends of its stdout and stderr pipes and
/// a pidfd) and starting one takes 5 for a moment (both pipes, and /dev/null in the child).
inline std::size_t http_connection_budget(rlim_t limit) {
  if (limit <= daemon_descriptor_reserve + 2) return 1;
  return static_cast<std::size_t>((std::min(limit, descriptor_limit_ceiling) - daemon_descriptor_reserve) /
                                  2);
}

}  // namespace punctual_cron
