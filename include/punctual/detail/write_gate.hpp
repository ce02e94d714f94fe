/// @file detail/write_gate.hpp
/// Write priority between processes that share one SQLite file. Internal (see
/// sqlite_store_options::write_priority).
///
/// SQLite has no queue for its write lock: a connection that finds it taken sleeps and tries
/// again, so whoever tries at the right moment wins, and under a crowd of short-lived writers
/// (punctual-cron trigger, fifty at a time) a daemon's write could wait seconds, its loops
/// queuing behind it. The gate is a lock file next to the database. A priority writer that has
/// to wait for the write lock *announces* itself with a shared lock on byte 0 of that file
/// until it has the write lock; a low-priority writer does not start a write (nor retry one)
/// while any announcement stands. So a waiting priority writer waits for the write in progress
/// only, not for the crowd behind it.
///
/// Linux's open-file-description locks (F_OFD_SETLK, F_OFD_GETLK) are used where they exist:
/// each gate is independent, also between two stores of one process. Elsewhere classic POSIX
/// record locks are used, which work between processes only (a process never sees its own).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "punctual/config.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// One store's end of the gate (see the file comment). Not thread-safe: the store's worker
/// thread owns it.
class write_gate {
 public:
  write_gate() = default;
  write_gate(const write_gate&) = delete;
  write_gate& operator=(const write_gate&) = delete;
  ~write_gate() { close(); }

  /// Opens `path`, creating it with `mode` (less the umask) when missing; read-only when it
  /// cannot be written (locks work either way). False, and the gate stays off, when it cannot
  /// be opened at all (announcing and yielding then do nothing).
  bool open(const std::string& path, mode_t mode) {
    close();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
    if (fd_ < 0) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    return fd_ >= 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    announced_ = false;
  }
  bool is_open() const noexcept { return fd_ >= 0; }

  /// Announces a priority writer waiting for the write lock; does nothing when announced.
  void announce() {
    if (fd_ < 0 || announced_) return;
    announced_ = lock(F_RDLCK);
  }
  /// Withdraws the announcement (once the write lock is taken, or the wait given up).
  void withdraw() {
    if (fd_ < 0 || !announced_) return;
    lock(F_UNLCK);
    announced_ = false;
  }
  bool announced() const noexcept { return announced_; }

  /// True while a priority writer (another gate on the same file) announces itself.
  bool priority_writer_waiting() const {
    if (fd_ < 0) return false;
    struct flock l = byte_zero(F_WRLCK);
#if defined(F_OFD_GETLK)
    if (::fcntl(fd_, F_OFD_GETLK, &l) != 0) return false;
#else
    if (::fcntl(fd_, F_GETLK, &l) != 0) return false;
#endif
    return l.l_type != F_UNLCK;
  }

 private:
  static struct flock byte_zero(short type) {
    struct flock l {};
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = 0;
    l.l_len = 1;
    return l;  // l_pid stays 0, as open-file-description locks require
  }
  bool lock(short type) {
    struct flock l = byte_zero(type);
#if defined(F_OFD_SETLK)
    return ::fcntl(fd_, F_OFD_SETLK, &l) == 0;
#else
    return ::fcntl(fd_, F_SETLK, &l) == 0;
#endif
  }

  int fd_ = -1;
  bool announced_ = false;
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
