/// @file detail/process_monitor.hpp
/// The per-host process monitor: a small process forked from the host that kills every job
/// process group still registered with it when the host goes away, however it goes away.
///
/// How it works
/// - The host and the monitor share an AF_UNIX SOCK_SEQPACKET socket pair. The monitor holds
///   one end, the host the other (close-on-exec, so it is not inherited by anything the host
///   executes). Each job child registers its own process group with the monitor *before* it
///   calls exec, and the host deregisters the group once the job's leader has exited and its
///   group was killed. Registering from the child closes the window in which the host could
///   die after starting a job but before telling the monitor: until the child has executed,
///   it holds a copy of the host's end, so the monitor cannot see end-of-file before it has
///   received the registration.
/// - When the host dies (exit, exception, abort, SIGKILL, exec), the kernel closes its end;
///   the monitor's recv() returns 0. As second lines of defence, the monitor also watches a
///   pidfd of the host (which works even if the host leaked its end into a forked child) and
///   re-checks getppid() on PR_SET_PDEATHSIG and once a second.
/// - The monitor then sends SIGTERM to every registered group, waits up to
///   PUNCTUAL_ORPHAN_KILL_GRACE_MS for them to disappear and sends SIGKILL to what remains.
///   SIGTERM first gives jobs the same chance to clean up as a timeout does; the grace is short
///   because nothing supervises the jobs any more.
/// - The monitor sits in its own process group (a terminal's Ctrl-C or a kill of the host's
///   group does not take it down before it has done its work) and ignores the usual
///   termination signals; it only exits once the host is gone. Between fork and its exit it
///   only makes async-signal-safe calls; it keeps no descriptor but its socket end.
///
/// Why one monitor per host rather than one per job: a fork per job would roughly double the
/// cost of starting a job (page tables of the host are copied on every fork), while one
/// monitor costs one fork for the host's lifetime and one small message per job. Because the
/// monitor is a fork of the host it shares the host's memory copy-on-write; call
/// punctual::start_process_monitor() early (before the host grows) to keep that small.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <unordered_set>

#include "punctual/config.hpp"
#include "punctual/detail/process_sys.hpp"

/// How long the monitor waits, after sending SIGTERM to the jobs of a dead host, before it sends
/// SIGKILL to whatever is left of them (milliseconds).
#if !defined(PUNCTUAL_ORPHAN_KILL_GRACE_MS)
#define PUNCTUAL_ORPHAN_KILL_GRACE_MS 1000
#endif

/// How many job process groups one host may have running at once (the monitor's table size).
#if !defined(PUNCTUAL_MAX_PROCESS_GROUPS)
#define PUNCTUAL_MAX_PROCESS_GROUPS 65536
#endif

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// One message from the host (or a job child) to the monitor.
struct monitor_message {
  std::int32_t op;    ///< monitor_add or monitor_remove
  std::int32_t pgid;  ///< the job's process group
};
inline constexpr std::int32_t monitor_add = 1;
inline constexpr std::int32_t monitor_remove = 2;

/// The monitor's table of registered groups, in memory the monitor mapped for itself.
struct monitor_table {
  pid_t* groups = nullptr;
  std::size_t size = 0;

  void add(pid_t g) noexcept {
    if (size < PUNCTUAL_MAX_PROCESS_GROUPS) groups[size++] = g;
  }
  void remove(pid_t g) noexcept {
    for (std::size_t i = 0; i < size; ++i) {
      if (groups[i] == g) {
        groups[i] = groups[--size];
        return;
      }
    }
  }
  void signal_all(int sig) const noexcept {
    for (std::size_t i = 0; i < size; ++i) ::kill(-groups[i], sig);
  }
  bool any_alive() const noexcept {
    for (std::size_t i = 0; i < size; ++i)
      if (::kill(-groups[i], 0) == 0 || errno == EPERM) return true;
    return false;
  }
};

inline void monitor_wakeup_handler(int) noexcept {}

/// Applies every message already queued on `fd`; new groups get `sig` at once if it is non-zero.
/// Returns false once the socket reports end-of-file or an error.
inline bool monitor_drain_signal_safe(int fd, monitor_table& table, int sig) noexcept {
  for (;;) {
    monitor_message m{};
    ssize_t n = ::recv(fd, &m, sizeof m, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;
    if (n != static_cast<ssize_t>(sizeof m) || m.pgid <= 1) continue;
    if (m.op == monitor_add) {
      table.add(m.pgid);
      if (sig != 0) ::kill(-m.pgid, sig);
    } else if (m.op == monitor_remove) {
      table.remove(m.pgid);
    }
  }
}

/// The monitor process's whole life. Only async-signal-safe calls (and mmap, a plain system
/// call) happen here: it runs in a fork of a possibly multi-threaded host.
[[noreturn]] inline void monitor_main(int fd, pid_t host) noexcept {
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("punctual-mon"), 0, 0, 0);

  // Signal dispositions: the host's handlers mean nothing here.
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  for (int s : {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGUSR2, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU})
    ::sigaction(s, &sa, nullptr);
  // The death signal only interrupts poll(); getppid() decides (it also fires when merely the
  // host *thread* that forked the monitor exits).
  sa.sa_handler = monitor_wakeup_handler;
  ::sigaction(SIGUSR1, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  close_fds_except_signal_safe(0, fd);
  ::prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);

  monitor_table table;
  void* mem = ::mmap(nullptr, sizeof(pid_t) * PUNCTUAL_MAX_PROCESS_GROUPS, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) ::_exit(1);
  table.groups = static_cast<pid_t*>(mem);

  int host_fd = pidfd_open_fd(host);  // may be -1 on old kernels: getppid() polling remains
  if (::getppid() == host) {
    for (;;) {
      pollfd p[2] = {{fd, POLLIN, 0}, {host_fd, POLLIN, 0}};
      int r = ::poll(p, host_fd >= 0 ? 2 : 1, 1000);
      if (r <= 0) {
        if (::getppid() != host) break;
        continue;
      }
      if (p[0].revents != 0 && !monitor_drain_signal_safe(fd, table, 0)) break;
      if (host_fd >= 0 && p[1].revents != 0) break;
    }
  }

  // The host is gone: stop every job still registered.
  monitor_drain_signal_safe(fd, table, 0);
  table.signal_all(SIGTERM);
  constexpr int step_ms = 20;
  for (int waited = 0; waited < PUNCTUAL_ORPHAN_KILL_GRACE_MS; waited += step_ms) {
    // A job child caught between clone and exec when the host died may still register.
    monitor_drain_signal_safe(fd, table, SIGTERM);
    if (!table.any_alive()) break;
    ::poll(nullptr, 0, step_ms);
  }
  monitor_drain_signal_safe(fd, table, SIGKILL);
  table.signal_all(SIGKILL);
  ::_exit(0);
}

/// The host's side of the monitor; one per process (a forked copy of the host starts its own).
/// All members are thread-safe; spawning holds lock() so that registrations, restarts and
/// re-registrations are ordered.
class process_monitor {
 public:
  /// The process-wide instance (never destroyed, so that jobs can still be deregistered from
  /// static destructors).
  static process_monitor& instance() {
    static process_monitor* m = new process_monitor;
    return *m;
  }

  std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(mutex_); }

  /// With lock() held: makes sure a live monitor serves this process and returns the
  /// descriptor a job child sends its registration to; -1 with `ec` set on failure.
  int ensure_locked(std::error_code& ec) {
    ec.clear();
    pid_t self = ::getpid();
    if (fd_ >= 0 && owner_ != self) {
      // We are a fork of the process that started this monitor: it is not ours.
      ::close(fd_);
      fd_ = -1;
      pid_ = -1;
      live_.clear();
    }
    if (fd_ >= 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0 && p.revents != 0) {  // the monitor never writes: it died
        ::close(fd_);
        fd_ = -1;
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
      }
    }
    if (live_.size() >= PUNCTUAL_MAX_PROCESS_GROUPS) {
      ec = std::make_error_code(std::errc::resource_unavailable_try_again);
      return -1;
    }
    if (fd_ >= 0) return fd_;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      ec.assign(errno, std::system_category());
      return -1;
    }
    if (!lift_above_stdio(sv[0]) || !lift_above_stdio(sv[1])) {
      ec.assign(errno, std::system_category());
      if (sv[0] >= 0) ::close(sv[0]);
      if (sv[1] >= 0) ::close(sv[1]);
      return -1;
    }
    // Block every signal around fork so that no host handler runs in the monitor before it has
    // reset the dispositions.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = ::fork();
    if (pid == 0) monitor_main(sv[1], self);
    int fork_errno = errno;
    // The monitor moves to its own group itself too, but it may not have run yet: without this,
    // a kill of the host's group right after we return (a supervisor, a shell) could take the
    // monitor with it.
    if (pid > 0) ::setpgid(pid, pid);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::close(sv[1]);
    if (pid < 0) {
      ::close(sv[0]);
      ec.assign(fork_errno, std::system_category());
      return -1;
    }
    fd_ = sv[0];
    owner_ = self;
    pid_ = pid;
    for (pid_t g : live_) send_locked(monitor_add, g);  // a restarted monitor learns the jobs
    return fd_;
  }

  /// With lock() held: records a group that a job child registered itself.
  void added_locked(pid_t pgid) { live_.insert(pgid); }

  /// With lock() held: deregisters a group.
  void remove_locked(pid_t pgid) {
    live_.erase(pgid);
    if (fd_ >= 0 && owner_ == ::getpid()) send_locked(monitor_remove, pgid);
  }

  /// Deregisters a group (the job's leader has exited and its group was killed).
  void remove(pid_t pgid) {
    std::lock_guard guard(mutex_);
    remove_locked(pgid);
  }

  /// Starts the monitor now if it is not running.
  std::error_code start() {
    std::lock_guard guard(mutex_);
    std::error_code ec;
    ensure_locked(ec);
    return ec;
  }

  /// The monitor's pid, -1 if none was started by this process.
  pid_t pid() {
    std::lock_guard guard(mutex_);
    return owner_ == ::getpid() ? pid_ : -1;
  }

 private:
  process_monitor() = default;

  void send_locked(std::int32_t op, pid_t pgid) noexcept {
    monitor_message m{op, static_cast<std::int32_t>(pgid)};
    while (::send(fd_, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
  }

  std::mutex mutex_;
  pid_t owner_ = 0;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::unordered_set<pid_t> live_;
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
