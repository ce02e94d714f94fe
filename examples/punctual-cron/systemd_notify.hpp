// systemd's readiness and watchdog protocol (sd_notify), spoken directly over the datagram
// socket named by $NOTIFY_SOCKET, so punctual-cron needs no libsystemd.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace punctual_cron {

/// Sends state lines ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...") to the service
/// manager. Does nothing when $NOTIFY_SOCKET is unset (not started by systemd with
/// Type=notify). A failed send is reported by notify()'s return value, never thrown.
class systemd_notifier {
 public:
  systemd_notifier() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || path[0] == '\0') return;
    std::string p(path);
    if (p[0] != '/' && p[0] != '@') return;  // not a socket address we understand
    if (p.size() >= sizeof(addr_.sun_path)) return;
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, p.data(), p.size());
    if (p[0] == '@') addr_.sun_path[0] = '\0';  // abstract namespace
    addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size() + (p[0] == '/' ? 1 : 0));
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  }
  systemd_notifier(const systemd_notifier&) = delete;
  systemd_notifier& operator=(const systemd_notifier&) = delete;
  ~systemd_notifier() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool enabled() const { return fd_ >= 0; }

  /// Sends `state` (one or more NAME=value lines). True when sent (or disabled).
  bool notify(std::string_view state) const {
    if (fd_ < 0) return true;
    const auto n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                            reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
    return n == static_cast<ssize_t>(state.size());
  }

  /// How often to send WATCHDOG=1: half of $WATCHDOG_USEC, when the watchdog is enabled for
  /// this process ($WATCHDOG_PID absent or equal to our pid).
  static std::optional<std::chrono::microseconds> watchdog_interval() {
    const char* usec = std::getenv("WATCHDOG_USEC");
    if (usec == nullptr) return std::nullopt;
    if (const char* pid = std::getenv("WATCHDOG_PID");
        pid != nullptr && std::strtoll(pid, nullptr, 10) != ::getpid())
      return std::nullopt;
    char* end = nullptr;
    const long long v = std::strtoll(usec, &end, 10);
    if (end == usec || *end != '\0' || v <= 0) return std::nullopt;
    return std::chrono::microseconds{v / 2};
  }

 private:
  int fd_ = -1;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
};

}  // namespace punctual_cron
