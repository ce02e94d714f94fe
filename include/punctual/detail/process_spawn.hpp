/// @file detail/process_spawn.hpp
/// Starting a job child: clone(CLONE_VM | CLONE_VFORK) + exec, in its own process group,
/// registered with the process monitor before exec.
///
/// Why not posix_spawn: the child must register its process group with the monitor *before*
/// it executes (see process_monitor.hpp), which needs code of ours between clone and exec.
/// Why not fork: a fork copies the host's page tables (slow for a big host). The clone used here
/// is the one glibc's posix_spawn uses: the child shares the host's memory and runs on a stack
/// of its own while the calling thread is suspended until the child has executed or exited.
/// The child therefore only makes async-signal-safe calls and writes nothing but its own stack
/// and the `err`/`stage` fields of its argument block — which is also how an exec failure is
/// reported back: because the parent only resumes after exec or _exit, the error is in place
/// when clone() returns, with no error pipe needed.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/process_monitor.hpp"
#include "punctual/detail/process_sys.hpp"

extern char** environ;  // NOLINT: POSIX

#if defined(__GNUC__) || defined(__clang__)
#define PUNCTUAL_DETAIL_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define PUNCTUAL_DETAIL_NO_SANITIZE
#endif

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// Where a child failed before its program started running.
enum class spawn_stage : int { none, setpgid, monitor, stdio, devnull, chdir, exec };

/// The argument block shared between the parent and the cloned child.
struct spawn_child_args {
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* const* candidates = nullptr;  ///< paths to try, in order
  std::size_t candidate_count = 0;
  const char* working_dir = nullptr;  ///< nullptr: inherit
  int out_fd = -1;                    ///< write end of the stdout pipe (>= 3)
  int err_fd = -1;                    ///< write end of the stderr pipe (>= 3)
  int monitor_fd = -1;                ///< the monitor socket (>= 3)
  int err = 0;                        ///< written by the child on failure
  spawn_stage stage = spawn_stage::none;
};

/// The child's code between clone and exec: async-signal-safe calls only, no sanitizer hooks
/// (it runs on a foreign stack, in the parent's memory).
PUNCTUAL_DETAIL_NO_SANITIZE inline int spawn_child_main(void* arg) noexcept {
  auto* a = static_cast<spawn_child_args*>(arg);
  // Every signal is blocked (the parent blocked them before clone). Reset every disposition to
  // the default: no host handler may run here, and the program must not inherit ignored
  // signals (SIGPIPE is commonly ignored by network hosts).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    struct sigaction old {};
    if (::sigaction(s, nullptr, &old) == 0 && old.sa_handler != SIG_DFL) ::sigaction(s, &dfl, nullptr);
  }
  spawn_stage stage = spawn_stage::setpgid;
  if (::setpgid(0, 0) != 0) goto fail;

  stage = spawn_stage::monitor;
  {
    monitor_message m{monitor_add, static_cast<std::int32_t>(::getpid())};
    ssize_t n;
    do n = ::send(a->monitor_fd, &m, sizeof m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof m)) goto fail;
  }

  stage = spawn_stage::stdio;
  if (::dup2(a->out_fd, 1) < 0 || ::dup2(a->err_fd, 2) < 0) goto fail;
  stage = spawn_stage::devnull;
  {
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0) goto fail;
    if (null_fd != 0) {
      if (::dup2(null_fd, 0) < 0) goto fail;
      ::close(null_fd);
    }
  }
  stage = spawn_stage::chdir;
  if (a->working_dir != nullptr && ::chdir(a->working_dir) != 0) goto fail;

  // Only 0, 1 and 2 go to the program, whatever the host opened without close-on-exec.
  close_fds_signal_safe(3, ~0u);
  {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
  }

  stage = spawn_stage::exec;
  {
    // execvp's rules: try each candidate; remember EACCES; stop at errors other than "not here".
    int err = ENOENT;
    bool saw_eacces = false;
    for (std::size_t i = 0; i < a->candidate_count; ++i) {
      ::execve(a->candidates[i], a->argv, a->envp);
      err = errno;
      if (err == EACCES) {
        saw_eacces = true;
        continue;
      }
      if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) continue;
      break;
    }
    if (saw_eacces && (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT))
      err = EACCES;
    errno = err;
  }
fail:
  a->err = errno != 0 ? errno : EINVAL;
  a->stage = stage;
  ::_exit(127);
}

/// What spawn_process produced.
struct spawned_child {
  pid_t pid = -1;         ///< > 0 on success; the child is also the leader of group `pid`
  unique_fd out;          ///< read end of the child's stdout
  unique_fd err;          ///< read end of the child's stderr
  std::error_code error;  ///< set when the program could not be started
  std::string message;    ///< "cannot run 'x': No such file or directory"
};

/// The PATH a command is looked up in: the child's own PATH if its environment has one, else
/// the default search path.
inline std::string search_path_of(const std::vector<std::string>& env) {
  for (const auto& e : env)
    if (e.rfind("PATH=", 0) == 0) return e.substr(5);
  std::size_t n = ::confstr(_CS_PATH, nullptr, 0);
  std::string p(n, '\0');
  if (n > 0) ::confstr(_CS_PATH, p.data(), n);
  while (!p.empty() && p.back() == '\0') p.pop_back();
  return p.empty() ? std::string("/bin:/usr/bin") : p;
}

/// The paths exec tries for `name`: itself if it contains '/', else name in each PATH entry
/// (an empty entry is the working directory).
inline std::vector<std::string> exec_candidates(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return {name};
  std::vector<std::string> out;
  std::size_t b = 0;
  for (;;) {
    std::size_t e = path.find(':', b);
    std::string_view dir =
        std::string_view(path).substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (dir.empty())
      out.push_back(name);
    else {
      std::string c(dir);
      if (c.back() != '/') c += '/';
      c += name;
      out.push_back(std::move(c));
    }
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

/// The child's environment: the host's (if inherited) with `overrides` replacing or adding.
inline std::vector<std::string> build_environment(
    bool inherit, const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  auto overridden = [&](std::string_view entry) {
    auto eq = entry.find('=');
    std::string_view key = entry.substr(0, eq);
    for (const auto& [k, v] : overrides)
      if (k == key) return true;
    return false;
  };
  if (inherit && environ != nullptr)
    for (char** e = environ; *e != nullptr; ++e)
      if (!overridden(*e)) env.emplace_back(*e);
  for (const auto& [k, v] : overrides) {
    bool dup = false;  // the last of several equal keys wins
    for (auto& existing : env)
      if (existing.size() > k.size() && existing.compare(0, k.size(), k) == 0 && existing[k.size()] == '=') {
        existing = k + "=" + v;
        dup = true;
      }
    if (!dup) env.push_back(k + "=" + v);
  }
  return env;
}

inline std::string spawn_failure_text(const std::string& program, spawn_stage stage, int err,
                                      const std::string& working_dir) {
  std::string m = "cannot run '" + program + "': ";
  switch (stage) {
    case spawn_stage::setpgid: m += "cannot create its process group: "; break;
    case spawn_stage::monitor: m += "cannot register with the process monitor: "; break;
    case spawn_stage::stdio: m += "cannot set up its output: "; break;
    case spawn_stage::devnull: m += "cannot open /dev/null: "; break;
    case spawn_stage::chdir: m += "cannot change to directory '" + working_dir + "': "; break;
    default: break;
  }
  return m + std::system_category().message(err);
}

/// The spawner's reusable child stack; guarded by the monitor's lock (spawns are serialized).
struct spawn_stack {
  static constexpr std::size_t size = 256 * 1024;
  void* base = nullptr;
  void* top() {
    if (base == nullptr) {
      void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      base = p;
    }
    return static_cast<char*>(base) + size;  // stacks grow down on every Linux target we support
  }
  static spawn_stack& instance() {
    static spawn_stack* s = new spawn_stack;
    return *s;
  }
};

/// Starts `argv` as a new process-group leader with stdin = /dev/null and stdout/stderr on
/// fresh pipes, registered with the process monitor. Never throws for system failures (they
/// come back in `error`/`message`); may throw std::bad_alloc while preparing.
inline spawned_child spawn_process(const std::vector<std::string>& argv_in,
                                   const std::vector<std::pair<std::string, std::string>>& env_in,
                                   bool inherit_env, const std::string& working_dir) {
  spawned_child out;
  const std::string program = argv_in.empty() ? std::string() : argv_in.front();
  auto fail = [&](int err, std::string what) {
    out.error.assign(err, std::system_category());
    out.message = "cannot run '" + program + "': " + std::move(what) + std::system_category().message(err);
    return std::move(out);
  };
  if (argv_in.empty() || argv_in.front().empty()) {
    out.error = std::make_error_code(std::errc::invalid_argument);
    out.message = "cannot run an empty command";
    return out;
  }

  // Everything the child reads is prepared here, in the parent, where allocation is allowed.
  std::vector<std::string> env = build_environment(inherit_env, env_in);
  std::vector<std::string> candidates = exec_candidates(program, search_path_of(env));
  std::vector<char*> argv_ptrs, env_ptrs;
  std::vector<const char*> cand_ptrs;
  argv_ptrs.reserve(argv_in.size() + 1);
  for (const auto& a : argv_in) argv_ptrs.push_back(const_cast<char*>(a.c_str()));
  argv_ptrs.push_back(nullptr);
  env_ptrs.reserve(env.size() + 1);
  for (auto& e : env) env_ptrs.push_back(e.data());
  env_ptrs.push_back(nullptr);
  for (const auto& c : candidates) cand_ptrs.push_back(c.c_str());

  process_monitor& monitor = process_monitor::instance();
  auto lock = monitor.lock();
  int po[2], pe[2];
  if (::pipe2(po, O_CLOEXEC) != 0) return fail(errno, "cannot create a pipe: ");
  unique_fd out_r(po[0]), out_w(po[1]);
  if (::pipe2(pe, O_CLOEXEC) != 0) return fail(errno, "cannot create a pipe: ");
  unique_fd err_r(pe[0]), err_w(pe[1]);
  for (unique_fd* f : {&out_r, &out_w, &err_r, &err_w}) {
    int fd = f->release();
    bool ok = lift_above_stdio(fd);
    f->reset(fd);
    if (!ok) return fail(errno, "cannot create a pipe: ");
  }

  void* stack_top = spawn_stack::instance().top();
  if (stack_top == nullptr) return fail(errno, "cannot allocate a stack: ");

  spawn_child_args args;
  pid_t pid = -1;
  // A second attempt only if the child found the monitor dead (ensure_locked then restarts it).
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::error_code mec;
    int monitor_fd = monitor.ensure_locked(mec);
    if (monitor_fd < 0) return fail(mec.value(), "cannot start the process monitor: ");

    args = spawn_child_args{};
    args.argv = argv_ptrs.data();
    args.envp = env_ptrs.data();
    args.candidates = cand_ptrs.data();
    args.candidate_count = cand_ptrs.size();
    args.working_dir = working_dir.empty() ? nullptr : working_dir.c_str();
    args.out_fd = out_w.get();
    args.err_fd = err_w.get();
    args.monitor_fd = monitor_fd;

    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = ::clone(spawn_child_main, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int clone_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) return fail(clone_errno, "cannot create a process: ");
    if (args.stage == spawn_stage::none) break;

    // The child has exited (CLONE_VFORK); its group is pinned until it is reaped.
    if (args.stage > spawn_stage::monitor) monitor.remove_locked(pid);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (args.stage != spawn_stage::monitor || attempt == 1) {
      out.error.assign(args.err, std::system_category());
      out.message = spawn_failure_text(program, args.stage, args.err, working_dir);
      return out;
    }
  }
  out_w.reset();
  err_w.reset();
  monitor.added_locked(pid);
  out.pid = pid;
  out.out = std::move(out_r);
  out.err = std::move(err_r);
  return out;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
