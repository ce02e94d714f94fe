/// @file run/process.hpp
/// Running a command as a child process on an Asio executor.
///
/// ```cpp
/// punctual::process_options opts;
/// opts.timeout = std::chrono::minutes(5);
/// punctual::process_result r = co_await punctual::async_run(
///     ex, punctual::command::shell("pg_dump app > /backup/app.sql"), opts, asio::use_awaitable);
/// if (!r.succeeded()) log(r.describe(), r.output_tail);
/// ```
///
/// Guarantees
/// - The command runs in a new process group whose leader is the command's process; stdin is
///   /dev/null, stdout and stderr are captured through pipes into a bounded tail (and, if asked,
///   line by line); descriptors >= 3 of the host are never inherited; every signal disposition
///   and the signal mask start at their defaults.
/// - The job's process group dies with the host however the host dies (clean exit, uncaught
///   exception, abort, SIGKILL): a per-host monitor process kills the groups of a dead host
///   (SIGTERM, then SIGKILL after PUNCTUAL_ORPHAN_KILL_GRACE_MS). See
///   detail/process_monitor.hpp for how, and start_process_monitor().
/// - When the command's main process exits, whatever it left running in its group is killed
///   with SIGKILL before the operation completes: a job's lifetime is its main process's.
///   (Processes that leave the group with setsid/setpgid are outside this guarantee.)
/// - Every child is reaped, also on timeout, cancellation and when the io_context is destroyed
///   with the operation pending (the group is then killed with SIGKILL and reaped at once).
/// - Exit is observed without SIGCHLD: with a pidfd (Linux 5.3+) watched on the executor, or,
///   where pidfds are unavailable, by polling waitid(WNOHANG) with a backoff capped at 50 ms.
///   The host must leave its children alone: SIGCHLD set to SIG_IGN or a waitpid(-1) elsewhere
///   takes the exit status away (the result then says so in `error`).
///
/// Linux only.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "punctual/config.hpp"
#include "punctual/detail/process_monitor.hpp"
#include "punctual/detail/process_spawn.hpp"
#include "punctual/detail/process_sys.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// What to run. `argv[0]` is looked up in PATH (the child's PATH if `env` sets one, else the
/// host's, else the system default) unless it contains a '/'; relative paths are resolved in
/// `working_dir`. No shell is involved unless you ask for one with shell().
struct command {
  /// An empty command (fill in argv).
  command() = default;
  /// `command{"tar", "czf", "out.tgz", "dir"}`: program and arguments. (GCC 12 rejects a
  /// braced list of strings inside a co_await expression — "array used as initializer" — so in a
  /// coroutine build the command in a statement of its own.)
  command(std::initializer_list<std::string> program_and_args) : argv(program_and_args) {}
  /// Program and arguments from a vector.
  explicit command(std::vector<std::string> program_and_args) : argv(std::move(program_and_args)) {}

  /// Program and arguments; must not be empty.
  std::vector<std::string> argv;
  /// Variables to set (replacing inherited ones of the same name).
  std::vector<std::pair<std::string, std::string>> env;
  /// Start from the host's environment (true) or from `env` alone (false).
  bool inherit_env = true;
  /// Directory to run in; empty: the host's current directory.
  std::string working_dir;

  /// `shell -c line`: for command lines with pipes, redirections, globs.
  static command shell(std::string line, std::string shell = "/bin/sh") {
    command c;
    c.argv = {std::move(shell), "-c", std::move(line)};
    return c;
  }
};

/// Identifies a started process across restarts of the host: persist it, and pass it to
/// kill_process_group_if_alive() after a crash.
struct process_info {
  pid_t pid = 0;                 ///< the command's process
  pid_t pgid = 0;                ///< its process group (== pid)
  pid_t sid = 0;                 ///< its session (the host's)
  std::uint64_t start_time = 0;  ///< /proc/<pid>/stat field 22 (clock ticks after boot): tells a
                                 ///< reused pid apart from the original process
};

/// How to run a command.
struct process_options {
  /// How many of the last output bytes (stdout and stderr interleaved in arrival order) to keep.
  std::size_t output_tail_bytes = 64 * 1024;
  /// Lines longer than this are delivered to on_line in pieces of this size.
  std::size_t max_line_bytes = 64 * 1024;
  /// On timeout or cancellation the group gets SIGTERM, then SIGKILL after this long (0: SIGKILL
  /// at once).
  duration kill_grace = std::chrono::seconds(5);
  /// Stop the command (as above) after this long; result.timed_out.
  std::optional<duration> timeout;
  /// After the command's group is gone, how long to keep reading output pipes that are still
  /// held open by processes that left the group (then they are closed).
  duration drain_timeout = std::chrono::seconds(1);
  /// Called on the operation's strand for every output line (without the '\n'; a last line
  /// without one is delivered at end of output). If it throws, it is not called again and the
  /// exception's message goes to result.error; the command keeps running.
  std::function<void(std::string_view line, bool is_stderr)> on_line;
  /// Called once, from within async_run's initiation, as soon as the process runs (before any
  /// on_line call and before completion): the place to persist process_info. Exceptions are
  /// handled as for on_line.
  std::function<void(const process_info&)> on_started;
};

/// How a run ended. Exactly one of these holds: spawn_failed; exit_code set; signal set (or,
/// if a foreign waitpid stole the status, neither, with `error` saying so).
struct process_result {
  process_info info;               ///< pid 0 if the process was never started
  std::optional<int> exit_code;    ///< the exit status, if it exited
  std::optional<int> signal;       ///< the terminating signal, if a signal killed it
  bool timed_out = false;          ///< it was stopped because options.timeout elapsed
  bool cancelled = false;          ///< it was stopped because the operation was cancelled
  bool spawn_failed = false;       ///< it never ran: see spawn_error and error
  std::error_code spawn_error;     ///< errno of the failed step (ENOENT, EACCES, EMFILE, ...)
  std::string error;               ///< spawn failure text ("cannot run 'x': No such file or
                                   ///< directory"), or a callback failure
  std::string output_tail;         ///< the last output_tail_bytes of output (not cut inside a
                                   ///< UTF-8 sequence)
  std::uint64_t output_bytes = 0;  ///< all output bytes seen (> tail size: the tail is truncated)
  duration elapsed{};              ///< from start to completion

  /// It ran, exited with 0, and was neither stopped nor cancelled.
  bool succeeded() const noexcept { return exit_code == 0 && !timed_out && !cancelled && !spawn_failed; }

  /// One line for logs and job records: "exited with code 3", "killed by signal 9 (SIGKILL)
  /// after timing out after 5s", "cannot run 'x': No such file or directory".
  std::string describe() const {
    if (spawn_failed) return error;
    std::string s;
    if (exit_code)
      s = "exited with code " + std::to_string(*exit_code);
    else if (signal)
      s = "killed by signal " + std::to_string(*signal) + signal_name(*signal);
    else
      s = "ended with unknown status";
    if (timed_out) s += " after timing out";
    if (cancelled) s += " after being cancelled";
    return s;
  }

 private:
  static std::string signal_name(int sig) {
    switch (sig) {
      case SIGHUP: return " (SIGHUP)";
      case SIGINT: return " (SIGINT)";
      case SIGQUIT: return " (SIGQUIT)";
      case SIGILL: return " (SIGILL)";
      case SIGABRT: return " (SIGABRT)";
      case SIGBUS: return " (SIGBUS)";
      case SIGFPE: return " (SIGFPE)";
      case SIGKILL: return " (SIGKILL)";
      case SIGSEGV: return " (SIGSEGV)";
      case SIGPIPE: return " (SIGPIPE)";
      case SIGALRM: return " (SIGALRM)";
      case SIGTERM: return " (SIGTERM)";
      case SIGUSR1: return " (SIGUSR1)";
      case SIGUSR2: return " (SIGUSR2)";
      case SIGXCPU: return " (SIGXCPU)";
      case SIGXFSZ: return " (SIGXFSZ)";
      default: return {};
    }
  }
};

/// Starts the per-host process monitor now instead of at the first async_run. The monitor is a
/// fork of the host and keeps the host's memory of that moment alive copy-on-write, so a host
/// that will grow large should call this early (e.g. first thing in main). Thread-safe.
inline std::error_code start_process_monitor() { return detail::process_monitor::instance().start(); }

namespace detail {

/// The state of one async_run; everything but delivering the result is independent of the
/// completion handler's type. Lives in a shared_ptr held by its pending handlers; all of its
/// handlers run on one strand.
class process_op : public std::enable_shared_from_this<process_op> {
 public:
  process_op(const asio::any_io_executor& ex, process_options opts)
      : strand_(asio::make_strand(ex)), opts_(std::move(opts)) {}

  process_op(const process_op&) = delete;
  process_op& operator=(const process_op&) = delete;

  virtual ~process_op() {
    if (pid_ > 0 && !reaped_) {
      // Destroyed with the process running (e.g. the io_context went away): take the group down.
      ::kill(-pid_, SIGKILL);
      process_monitor::instance().remove(pid_);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }

  /// Spawns the command and starts watching it. Runs in async_run's initiation.
  void start(const command& cmd, asio::cancellation_slot slot) {
    started_at_ = std::chrono::steady_clock::now();
    auto self = shared_from_this();
    spawned_child child;
    try {
      io_ = std::make_unique<io_objects>(strand_);
      child = spawn_process(cmd.argv, cmd.env, cmd.inherit_env, cmd.working_dir);
    } catch (const std::system_error& e) {
      child.error = e.code();
      child.message = "cannot run '" + (cmd.argv.empty() ? std::string() : cmd.argv.front()) +
                      "': cannot set up its I/O: " + e.code().message();
    }
    if (child.pid <= 0) {
      result_.spawn_failed = true;
      result_.spawn_error = child.error;
      result_.error = std::move(child.message);
      asio::post(strand_, [self] { self->maybe_complete(); });
      return;
    }
    pid_ = child.pid;
    reaped_ = false;
    result_.info.pid = pid_;
    result_.info.pgid = pid_;
    if (auto st = read_proc_stat(pid_)) {
      result_.info.sid = st->session;
      result_.info.start_time = st->start_time;
    } else {
      result_.info.sid = ::getsid(0);
    }

    std::error_code ec;
    io_->out.assign(child.out.get(), ec);
    if (!ec) {
      child.out.release();
      out_open_ = true;
    }
    io_->err.assign(child.err.get(), ec);
    if (!ec) {
      child.err.release();
      err_open_ = true;
    }
    unique_fd pidfd(pidfd_open_fd(pid_));
    if (pidfd) {
      io_->exit_watch.assign(pidfd.get(), ec);
      if (!ec) pidfd.release();
    }

    if (opts_.on_started) {
      try {
        opts_.on_started(result_.info);
      } catch (const std::exception& e) {
        note_error(std::string("on_started threw: ") + e.what());
      } catch (...) {
        note_error("on_started threw a non-standard exception");
      }
    }

    if (slot.is_connected()) {
      slot_ = slot;
      std::weak_ptr<process_op> weak = self;
      slot_.assign([weak](asio::cancellation_type type) {
        if (type == asio::cancellation_type::none) return;
        if (auto op = weak.lock()) asio::post(op->strand_, [op] { op->stop(stop_reason::cancelled); });
      });
    }
    asio::post(strand_, [self] { self->begin(); });
  }

 protected:
  /// Hands the result to the completion handler; called once, on the strand.
  virtual void deliver(process_result&& r) = 0;

 private:
  enum class stop_reason { timed_out, cancelled };
  static constexpr std::size_t read_chunk = 16 * 1024;

  void begin() {
    if (out_open_) read(false);
    if (err_open_) read(true);
    if (io_->exit_watch.is_open()) {
      io_->exit_watch.async_wait(asio::posix::descriptor_base::wait_read,
                                 [self = shared_from_this()](const std::error_code& ec) {
                                   if (ec)
                                     self->poll_exit();  // the pidfd failed us: poll instead
                                   else
                                     self->on_exit_ready();
                                 });
    } else {
      poll_exit();
    }
    if (opts_.timeout) {
      io_->timeout_timer.expires_after(std::max(*opts_.timeout, duration::zero()));
      io_->timeout_timer.async_wait([self = shared_from_this()](const std::error_code& ec) {
        if (!ec) self->stop(stop_reason::timed_out);
      });
    }
  }

  // --- output -------------------------------------------------------------------------------

  void read(bool is_err) {
    auto& desc = is_err ? io_->err : io_->out;
    auto& buf = is_err ? err_buf_ : out_buf_;
    if (!buf) buf = std::make_unique<char[]>(read_chunk);
    desc.async_read_some(asio::buffer(buf.get(), read_chunk),
                         [self = shared_from_this(), is_err](const std::error_code& ec, std::size_t n) {
                           self->on_read(is_err, ec, n);
                         });
  }

  void on_read(bool is_err, const std::error_code& ec, std::size_t n) {
    if (n > 0) consume(std::string_view((is_err ? err_buf_ : out_buf_).get(), n), is_err);
    if (!ec) {
      read(is_err);
      return;
    }
    // End of output (or the pipe was closed after the drain timeout).
    auto& desc = is_err ? io_->err : io_->out;
    std::error_code ignored;
    desc.close(ignored);
    (is_err ? err_open_ : out_open_) = false;
    std::string& part = partial_[is_err ? 1 : 0];
    if (!part.empty()) {
      emit_line(part, is_err);
      part.clear();
    }
    maybe_complete();
  }

  void consume(std::string_view data, bool is_err) {
    result_.output_bytes += data.size();
    const std::size_t cap = opts_.output_tail_bytes;
    if (cap > 0) {
      tail_.append(data.size() > cap ? data.substr(data.size() - cap) : data);
      if (tail_.size() > 2 * cap) tail_.erase(0, tail_.size() - cap);
    }
    if (!opts_.on_line || line_callback_failed_) return;
    std::string& part = partial_[is_err ? 1 : 0];
    const std::size_t max_line = std::max<std::size_t>(opts_.max_line_bytes, 1);
    while (!data.empty() && !line_callback_failed_) {
      auto nl = data.find('\n');
      std::string_view piece = data.substr(0, nl);
      while (part.size() + piece.size() > max_line) {
        std::size_t take = max_line - part.size();
        if (part.empty()) {
          emit_line(piece.substr(0, take), is_err);
        } else {
          part.append(piece.substr(0, take));
          emit_line(part, is_err);
          part.clear();
        }
        piece.remove_prefix(take);
      }
      if (nl == std::string_view::npos) {
        part.append(piece);
        break;
      }
      if (part.empty()) {
        emit_line(piece, is_err);
      } else {
        part.append(piece);
        emit_line(part, is_err);
        part.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }

  void emit_line(std::string_view line, bool is_err) {
    if (!opts_.on_line || line_callback_failed_) return;
    try {
      opts_.on_line(line, is_err);
    } catch (const std::exception& e) {
      line_callback_failed_ = true;
      note_error(std::string("on_line threw: ") + e.what());
    } catch (...) {
      line_callback_failed_ = true;
      note_error("on_line threw a non-standard exception");
    }
  }

  void note_error(const std::string& text) {
    if (!result_.error.empty()) result_.error += "; ";
    result_.error += text;
  }

  // --- exit ---------------------------------------------------------------------------------

  void poll_exit() {
    if (reaped_) return;
    siginfo_t info{};
    int r = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r != 0 || info.si_pid == pid_) {
      on_exit_ready();
      return;
    }
    poll_interval_ = std::min<duration>(poll_interval_ * 2, std::chrono::milliseconds(50));
    io_->poll_timer.expires_after(poll_interval_);
    io_->poll_timer.async_wait([self = shared_from_this()](const std::error_code&) { self->poll_exit(); });
  }

  /// The leader has exited (it is a zombie until reaped here, which keeps its group id from
  /// being reused): kill what is left of the group, deregister it, reap.
  void on_exit_ready() {
    if (reaped_) return;
    siginfo_t info{};
    int r = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid != pid_) {  // not exited after all: keep watching
      poll_exit();
      return;
    }
    // If waitid failed, someone else reaped the child and its number may be reused: no kill.
    if (r == 0) ::kill(-pid_, SIGKILL);
    process_monitor::instance().remove(pid_);
    int status = 0;
    pid_t w;
    do w = ::waitpid(pid_, &status, WNOHANG);
    while (w < 0 && errno == EINTR);
    reaped_ = true;
    if (w == pid_) {
      if (WIFEXITED(status))
        result_.exit_code = WEXITSTATUS(status);
      else if (WIFSIGNALED(status))
        result_.signal = WTERMSIG(status);
    } else {
      note_error("exit status unavailable: the process was reaped outside punctual");
    }
    std::error_code ignored;
    io_->exit_watch.close(ignored);
    io_->timeout_timer.cancel();
    io_->grace_timer.cancel();
    io_->poll_timer.cancel();
    if (out_open_ || err_open_) {
      io_->drain_timer.expires_after(std::max(opts_.drain_timeout, duration::zero()));
      io_->drain_timer.async_wait([self = shared_from_this()](const std::error_code& ec) {
        if (!ec) self->close_pipes();
      });
    }
    maybe_complete();
  }

  void close_pipes() {
    std::error_code ignored;
    if (out_open_) io_->out.cancel(ignored);
    if (err_open_) io_->err.cancel(ignored);
  }

  /// Timeout or cancellation: SIGTERM to the group, SIGKILL after the grace.
  void stop(stop_reason why) {
    if (completed_) return;
    if (reaped_ || pid_ <= 0) {
      // Already over; only output from escaped processes is pending: stop waiting for it.
      if (why == stop_reason::cancelled) close_pipes();
      return;
    }
    if (stopping_) return;
    stopping_ = true;
    (why == stop_reason::timed_out ? result_.timed_out : result_.cancelled) = true;
    if (opts_.kill_grace <= duration::zero()) {
      ::kill(-pid_, SIGKILL);
      return;
    }
    ::kill(-pid_, SIGTERM);
    io_->grace_timer.expires_after(opts_.kill_grace);
    io_->grace_timer.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (!ec && !self->reaped_) ::kill(-self->pid_, SIGKILL);
    });
  }

  void maybe_complete() {
    if (completed_ || out_open_ || err_open_) return;
    if (!result_.spawn_failed && !reaped_) return;
    completed_ = true;
    if (io_) {
      io_->drain_timer.cancel();
      io_->timeout_timer.cancel();
      io_->grace_timer.cancel();
    }
    if (opts_.output_tail_bytes > 0 && tail_.size() > opts_.output_tail_bytes) {
      std::size_t cut = tail_.size() - opts_.output_tail_bytes;
      // Do not start inside a UTF-8 sequence.
      for (int i = 0; i < 3 && cut < tail_.size() && (static_cast<unsigned char>(tail_[cut]) & 0xC0) == 0x80;
           ++i)
        ++cut;
      tail_.erase(0, cut);
    }
    result_.output_tail = std::move(tail_);
    result_.elapsed = std::chrono::duration_cast<duration>(std::chrono::steady_clock::now() - started_at_);
    if (slot_.is_connected()) slot_.clear();
    deliver(std::move(result_));
  }

  /// The I/O objects, created in start(): creating the first of them on an io_context opens
  /// its reactor's descriptors, which can fail (EMFILE) and must become a result, not a throw.
  struct io_objects {
    explicit io_objects(const asio::strand<asio::any_io_executor>& s)
        : out(s), err(s), exit_watch(s), timeout_timer(s), grace_timer(s), drain_timer(s), poll_timer(s) {}
    asio::posix::stream_descriptor out, err, exit_watch;
    asio::steady_timer timeout_timer, grace_timer, drain_timer, poll_timer;
  };

  asio::strand<asio::any_io_executor> strand_;
  process_options opts_;
  std::unique_ptr<io_objects> io_;
  asio::cancellation_slot slot_;
  std::unique_ptr<char[]> out_buf_, err_buf_;
  std::string partial_[2];
  std::string tail_;
  process_result result_;
  std::chrono::steady_clock::time_point started_at_{};
  duration poll_interval_ = std::chrono::microseconds(500);
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool completed_ = false;
  bool stopping_ = false;
  bool out_open_ = false;
  bool err_open_ = false;
  bool line_callback_failed_ = false;
};

/// process_op bound to a completion handler, which it keeps, with work on its executor, until
/// it delivers the result there.
template <typename Handler>
class process_op_for final : public process_op {
 public:
  using handler_executor = asio::associated_executor_t<Handler, asio::any_io_executor>;

  template <typename H>
  process_op_for(const asio::any_io_executor& ex, process_options opts, H&& handler)
      : process_op(ex, std::move(opts)),
        handler_(std::forward<H>(handler)),
        work_(asio::get_associated_executor(handler_, ex)) {}

 private:
  void deliver(process_result&& r) override {
    auto ex = work_.get_executor();
    asio::dispatch(ex, [h = std::move(handler_), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
    work_.reset();
  }

  Handler handler_;
  asio::executor_work_guard<handler_executor> work_;
};

/// async_run's initiation.
struct run_initiation {
  asio::any_io_executor ex;

  using executor_type = asio::any_io_executor;
  executor_type get_executor() const noexcept { return ex; }

  template <typename Handler>
  void operator()(Handler&& handler, command cmd, process_options opts) const {
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto op = std::make_shared<process_op_for<std::decay_t<Handler>>>(ex, std::move(opts),
                                                                      std::forward<Handler>(handler));
    op->start(cmd, slot);
  }
};

}  // namespace detail

/// Runs `cmd` as a child process and completes with its process_result once the process has
/// exited, been reaped, and its output has been read to the end.
///
/// - Completion signature: `void(process_result)`. Every outcome — non-zero exit, signal,
///   timeout, cancellation, a program that cannot be started (missing, not executable, EMFILE,
///   fork failure) — is a result, never an exception, so `co_await async_run(..., use_awaitable)`
///   only throws what Asio itself throws (e.g. std::bad_alloc).
/// - I/O and timers run on a strand of `ex`; the handler is invoked through its associated
///   executor (as if by dispatch), never from inside async_run.
/// - Cancellation: any cancellation type emitted on the handler's associated cancellation slot
///   stops the process like a timeout does (SIGTERM to its group, SIGKILL after
///   options.kill_grace) and sets result.cancelled; the operation completes once the process is
///   reaped. This is what `co_await (async_run(...) || timer.async_wait(...))` relies on.
/// - Thread safety: async_run may be called from any thread; spawns are serialized.
template <typename CompletionToken>
auto async_run(const asio::any_io_executor& ex, command cmd, process_options options,
               CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(process_result)>(detail::run_initiation{ex}, token,
                                                                     std::move(cmd), std::move(options));
}

/// Restart recovery: kills what is left of a job that a previous incarnation of the host
/// started and recorded (its process_info). Returns whether any process was signalled.
///
/// It never signals a process that cannot be the recorded job's:
/// 1. If a process with the recorded pid exists, has the recorded start time (so it is not a
///    reused pid) and is still in the recorded group, the group gets `sig`.
/// 2. Otherwise, if some other process now has the group's number as its pid, the number was
///    reused, which the kernel only does once the old group is empty: nothing is signalled.
/// 3. Otherwise each process still in the recorded group that is in the recorded session and
///    started no earlier than the recorded leader (survivors of the job that outlived its
///    leader) gets `sig` individually, through a pidfd that is re-checked before signalling,
///    so a pid reused between the scan and the signal is never hit.
/// Zombies are ignored. Needs /proc. Never throws for system failures.
inline bool kill_process_group_if_alive(const process_info& recorded, int sig = SIGKILL) {
  if (recorded.pid <= 1 || recorded.pgid <= 1 || recorded.start_time == 0) return false;
  if (recorded.pgid == ::getpgrp()) return false;  // never our own group
  bool signalled = false;
  if (auto leader = detail::read_proc_stat(recorded.pid)) {
    if (leader->start_time == recorded.start_time && leader->state != 'Z' && leader->pgrp == recorded.pgid)
      return ::kill(-recorded.pgid, sig) == 0;
  }
  if (recorded.pgid != recorded.pid) {
    // Not a punctual-recorded job; only the leader rule applies.
    return false;
  }
  if (auto holder = detail::read_proc_stat(recorded.pgid)) {
    if (holder->start_time != recorded.start_time) return false;  // rule 2
  }
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return false;
  std::vector<pid_t> members;
  while (dirent* e = ::readdir(dir)) {
    pid_t p = 0;
    std::string_view name(e->d_name);
    auto r = std::from_chars(name.data(), name.data() + name.size(), p);
    if (r.ec != std::errc{} || r.ptr != name.data() + name.size() || p <= 1) continue;
    members.push_back(p);
  }
  ::closedir(dir);
  for (pid_t p : members) {
    auto st = detail::read_proc_stat(p);
    if (!st || st->state == 'Z' || st->pgrp != recorded.pgid || st->session != recorded.sid ||
        st->start_time < recorded.start_time)
      continue;
    detail::unique_fd pidfd(detail::pidfd_open_fd(p));
    auto again = detail::read_proc_stat(p);  // same process as scanned, now pinned by the pidfd?
    if (!again || again->start_time != st->start_time || again->pgrp != recorded.pgid) continue;
    int rc = pidfd ? detail::pidfd_signal(pidfd.get(), sig) : ::kill(p, sig);
    if (rc == 0) signalled = true;
  }
  return signalled;
}

PUNCTUAL_END_NAMESPACE
