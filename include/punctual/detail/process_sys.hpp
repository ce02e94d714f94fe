/// @file detail/process_sys.hpp
/// Thin Linux system-call helpers for run/process.hpp: pidfd, close_range, /proc/<pid>/stat.
/// Everything named `*_signal_safe` may be called between fork/clone and exec.
#pragma once

#if !defined(__linux__)
#error "punctual's child-process support needs Linux (process groups, pidfd, /proc)"
#endif

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

#include "punctual/config.hpp"

// The generic system-call numbers of these calls are the same on every Linux architecture that
// has them (they were added after the tables were unified), so older headers can be completed.
#if !defined(SYS_pidfd_send_signal)
#define SYS_pidfd_send_signal 424
#endif
#if !defined(SYS_pidfd_open)
#define SYS_pidfd_open 434
#endif
#if !defined(SYS_close_range)
#define SYS_close_range 436
#endif

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// Tests set this to exercise the fallback used on kernels without pidfd_open (before 5.3).
inline std::atomic<bool> pidfd_disabled_for_testing{false};

/// pidfd_open(2); -1 with errno ENOSYS where the kernel lacks it (or tests disabled it).
inline int pidfd_open_fd(pid_t pid) noexcept {
  if (pidfd_disabled_for_testing.load(std::memory_order_relaxed)) {
    errno = ENOSYS;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
}

/// pidfd_send_signal(2) with `flags`; -1 with errno on failure.
inline int pidfd_signal(int pidfd, int sig, unsigned flags = 0) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
}

/// Closes every descriptor in [first, last]; async-signal-safe (close_range(2) where the
/// kernel has it, 5.9+, else a close() loop up to the descriptor limit).
inline void close_fds_signal_safe(unsigned first, unsigned last) noexcept {
  if (first > last) return;
  if (::syscall(SYS_close_range, first, last, 0u) == 0) return;
  rlimit rl{};
  unsigned limit = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576)
    limit = static_cast<unsigned>(rl.rlim_cur);
  for (unsigned fd = first; fd <= last && fd < limit; ++fd) ::close(static_cast<int>(fd));
}

/// Closes every descriptor >= first except `keep`; async-signal-safe.
inline void close_fds_except_signal_safe(unsigned first, int keep) noexcept {
  if (keep < static_cast<int>(first)) {
    close_fds_signal_safe(first, ~0u);
    return;
  }
  if (static_cast<unsigned>(keep) > first) close_fds_signal_safe(first, static_cast<unsigned>(keep) - 1);
  close_fds_signal_safe(static_cast<unsigned>(keep) + 1, ~0u);
}

/// Moves `fd` to a number >= 3 (keeping close-on-exec), so that it cannot collide with the
/// standard descriptors a child is given. Returns false (fd closed) on failure.
inline bool lift_above_stdio(int& fd) noexcept {
  if (fd >= 3) return true;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  fd = moved;
  errno = saved;
  return moved >= 0;
}

/// Owns one file descriptor.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// The fields of /proc/<pid>/stat that punctual uses.
struct proc_stat {
  char state = '?';              ///< R, S, D, Z, T, ...
  pid_t ppid = 0;                ///< field 4
  pid_t pgrp = 0;                ///< field 5
  pid_t session = 0;             ///< field 6
  std::uint64_t start_time = 0;  ///< field 22: clock ticks after boot
};

/// Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so parsing starts after the *last* ')'.
inline std::optional<proc_stat> parse_proc_stat(std::string_view text) {
  auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  proc_stat st;
  // Field 3 (state) is the first token after ')'; starttime is field 22.
  int field = 3;
  while (!rest.empty() && field <= 22) {
    auto b = rest.find_first_not_of(' ');
    if (b == std::string_view::npos) break;
    rest.remove_prefix(b);
    auto e = rest.find_first_of(" \n");
    std::string_view tok = rest.substr(0, e);
    rest.remove_prefix(e == std::string_view::npos ? rest.size() : e);
    auto num = [&](auto& out) {
      auto r = std::from_chars(tok.data(), tok.data() + tok.size(), out);
      return r.ec == std::errc{} && r.ptr == tok.data() + tok.size();
    };
    bool ok = true;
    switch (field) {
      case 3: st.state = tok.empty() ? '?' : tok.front(); break;
      case 4: ok = num(st.ppid); break;
      case 5: ok = num(st.pgrp); break;
      case 6: ok = num(st.session); break;
      case 22: ok = num(st.start_time); break;
      default: break;
    }
    if (!ok) return std::nullopt;
    ++field;
  }
  if (field <= 22) return std::nullopt;
  return st;
}

/// Reads /proc/<pid>/stat; nullopt when there is no such process (or /proc is unavailable).
inline std::optional<proc_stat> read_proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  char path[64] = "/proc/";
  auto r = std::to_chars(path + 6, path + sizeof path - 6, pid);
  const char* suffix = "/stat";
  char* p = r.ptr;
  while (*suffix) *p++ = *suffix++;
  *p = '\0';
  unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[1024];
  std::size_t len = 0;
  while (len < sizeof buf) {
    ssize_t n = ::read(fd.get(), buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  return parse_proc_stat(std::string_view(buf, len));
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
