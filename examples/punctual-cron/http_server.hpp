// A minimal HTTP/1.1 server for punctual-cron's /metrics, /healthz, dashboard and JSON API:
// GET, HEAD and POST, one request per connection, requests bounded in size and time,
// connections bounded in number; a response may stream (server-sent events). Runs as
// coroutines on the daemon's io_context, like everything else.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace punctual_cron {

/// Completion token: an awaitable that returns (error_code, results...) instead of throwing.
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// What a handler gets.
struct http_request {
  std::string method;                          ///< "GET", "HEAD" or "POST"
  std::string path;                            ///< without the query
  std::string query;                           ///< after '?' ("" when none)
  std::map<std::string, std::string> headers;  ///< names in lower case
  std::string body;                            ///< POST: up to 64 KiB (Content-Length)

  /// The value of header `name` (lower case), "" when absent.
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// What a handler returns.
struct http_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  /// Extra header lines ("Name", "value").
  std::vector<std::pair<std::string, std::string>> headers = {};
  /// Set for a streaming response (no Content-Length, e.g. text/event-stream): after the
  /// headers the server awaits it with the socket; it writes until it returns or a write fails.
  std::function<asio::awaitable<void>(asio::ip::tcp::socket&)> stream = {};
};

/// Splits "HOST:PORT", "[V6]:PORT" or ":PORT". A bare ":PORT" (or "localhost:PORT") is the
/// loopback address 127.0.0.1: every interface must be asked for explicitly, "0.0.0.0:PORT" or
/// "[::]:PORT". Throws std::invalid_argument saying what is wrong.
inline asio::ip::tcp::endpoint parse_listen_address(std::string_view text) {
  const auto fail = [&](std::string_view why) {
    return std::invalid_argument("--http \"" + std::string(text) + "\": " + std::string(why) +
                                 " (expected HOST:PORT, e.g. 127.0.0.1:9100)");
  };
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw fail("unterminated [IPv6] address");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  if (port.empty() || port.size() > 5) throw fail("bad port");
  for (char c : port) {
    if (c < '0' || c > '9') throw fail("bad port");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) throw fail("port out of range 0-65535");
  asio::ip::address addr = asio::ip::address_v4::loopback();
  if (!host.empty() && host != "localhost") {
    asio::error_code ec;
    addr = asio::ip::make_address(std::string(host), ec);
    if (ec) throw fail("\"" + std::string(host) + "\" is not an IP address");
  }
  return {addr, static_cast<std::uint16_t>(value)};
}

/// How many connections the HTTP server holds and how long it waits for them.
struct http_limits {
  /// Connections open at once. A connection accepted at the cap makes room by closing the one
  /// that has waited longest for its request; when every connection is being answered, the new
  /// one gets "503 Service Unavailable" and is closed at once.
  std::size_t max_connections = 64;
  /// A connection that sends no byte for this long before its request is whole is closed.
  std::chrono::milliseconds idle_timeout{5000};
  /// The whole request head must arrive within this time of the connection's acceptance,
  /// however it trickles in (slowloris clients are closed then, without an answer).
  std::chrono::milliseconds header_timeout{10000};
  /// The answer must be written within this time of the request.
  std::chrono::milliseconds write_timeout{10000};
  /// How long the accept loop pauses after a failed accept (EMFILE, ENFILE, ENOBUFS...), so a
  /// full descriptor table never makes it spin.
  std::chrono::milliseconds accept_pause{100};
  /// Where the server reports the cap reached and failed accepts (once per streak each); may
  /// be empty.
  std::function<void(std::string_view)> log;
};

/// Serves `handler(request)` for GET/HEAD/POST requests until stop(), within `http_limits`.
/// Each connection carries one request: the answer says "Connection: close" and the server
/// closes it after writing (keep-alive requests included), so no connection outlives its
/// timeouts — except a streaming answer (server-sent events), which lasts until the stream ends
/// or a write fails; streams count towards the cap and are never closed to make room.
/// Single-threaded: its state is touched only from the io_context's one thread.
class http_server {
 public:
  using handler = std::function<asio::awaitable<http_response>(const http_request&)>;

  /// Binds and listens at once (so errors such as "address in use" surface here, as
  /// std::system_error); serving starts with start().
  http_server(asio::any_io_executor ex, asio::ip::tcp::endpoint at, handler h, http_limits limits = {})
      : acceptor_(ex), pause_(ex), handler_(std::move(h)), limits_(std::move(limits)) {
    if (limits_.max_connections == 0)
      throw std::invalid_argument("http_server: max_connections must be >= 1");
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen();
  }

  asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start() { asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached); }

  /// Stops accepting and closes every open connection.
  void stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    pause_.cancel();
    while (!connections_.empty()) close(*connections_.front());
  }

 private:
  using clock = std::chrono::steady_clock;

  /// One accepted connection; listed in connections_ (oldest first) while open.
  struct connection {
    explicit connection(asio::ip::tcp::socket s)
        : socket(std::move(s)),
          deadline_timer(socket.get_executor()),
          accepted(clock::now()),
          last_byte(accepted) {}
    asio::ip::tcp::socket socket;
    asio::steady_timer deadline_timer;  // closes the connection at deadline()
    clock::time_point accepted, last_byte, write_by;
    bool reading = true;  // still waiting for its request head: may make room for a new one
    bool open = true;
    std::list<std::shared_ptr<connection>>::iterator at;
  };

  clock::time_point deadline(const connection& c) const {
    if (!c.reading) return c.write_by;
    return std::min(c.accepted + limits_.header_timeout, c.last_byte + limits_.idle_timeout);
  }

  /// (Re)arms `c`'s timer for its deadline; when it fires and the deadline (which may have
  /// moved later meanwhile) has passed, the connection is closed.
  void watch(const std::shared_ptr<connection>& c) {
    c->deadline_timer.expires_at(deadline(*c));
    c->deadline_timer.async_wait([this, c](asio::error_code ec) {
      if (ec || !c->open) return;  // re-armed or closed
      if (clock::now() >= deadline(*c))
        close(*c);
      else
        watch(c);
    });
  }

  void close(connection& c) {
    if (!c.open) return;
    c.open = false;
    asio::error_code ignored;
    c.socket.close(ignored);
    c.deadline_timer.cancel();
    connections_.erase(c.at);  // last: may drop the list's reference to `c`
  }

  void log(std::string_view message) const {
    if (limits_.log) limits_.log(message);
  }

  /// Makes room for one more connection by closing the one waiting longest for its request,
  /// passing over those whose request has arrived but is not read yet (they are about to be
  /// answered) unless all are such. False when every open connection is being answered.
  bool make_room() {
    connection* oldest_reading = nullptr;
    for (const auto& c : connections_) {
      if (!c->reading) continue;
      if (oldest_reading == nullptr) oldest_reading = c.get();
      asio::error_code ec;
      if (c->socket.available(ec) == 0 || ec) {
        close(*c);
        return true;
      }
    }
    if (oldest_reading == nullptr) return false;
    close(*oldest_reading);
    return true;
  }

  /// Answers 503 without waiting (the answer fits any socket buffer) and closes.
  static void refuse(asio::ip::tcp::socket& socket) {
    static constexpr std::string_view busy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n";
    asio::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(busy), ignored);
    socket.close(ignored);
  }

  asio::awaitable<void> accept_loop() {
    std::size_t failures = 0;
    for (;;) {
      asio::ip::tcp::socket socket(acceptor_.get_executor());
      auto [ec] = co_await acceptor_.async_accept(socket, use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec == asio::error::connection_aborted) continue;  // that client left: the next one
      if (ec) {
        // Out of descriptors or memory: the pending connection stays queued, so retrying at
        // once would spin. Pause, and say so once per streak.
        if (failures++ == 0)
          log("http: cannot accept connections (" + ec.message() + "); retrying every " +
              std::to_string(limits_.accept_pause.count()) + " ms");
        pause_.expires_after(limits_.accept_pause);
        co_await pause_.async_wait(use_tuple);
        if (!acceptor_.is_open()) co_return;
        continue;
      }
      if (failures != 0) {
        log("http: accepting connections again after " + std::to_string(failures) + " failed tries");
        failures = 0;
      }
      if (connections_.size() >= limits_.max_connections) {
        if (!at_cap_) {
          at_cap_ = true;
          log("http: " + std::to_string(limits_.max_connections) +
              " connections open (the cap): a new one closes the one waiting longest for its request");
        }
        if (!make_room()) {
          refuse(socket);
          continue;
        }
      } else if (connections_.size() < limits_.max_connections / 2) {
        at_cap_ = false;
      }
      auto c = std::make_shared<connection>(std::move(socket));
      c->at = connections_.insert(connections_.end(), c);
      watch(c);
      asio::co_spawn(acceptor_.get_executor(), serve(std::move(c)), asio::detached);
    }
  }

  /// Reads into `request` up to the end of the request head (a blank line), noting each
  /// arrival for the idle timeout; like async_read_until, completes with the head's length
  /// (blank line included; `request` may hold more), with asio::error::not_found when the
  /// head outgrows 16 KiB, or with the read's error (e.g. when the deadline closed the socket).
  asio::awaitable<std::pair<asio::error_code, std::size_t>> read_request_head(connection& c,
                                                                              std::string& request) {
    constexpr std::size_t max_head = 16384;
    for (std::size_t old_size = 0;;) {
      // The blank line ends in what was just read, possibly starting up to 3 bytes before it.
      if (const auto end = request.find("\r\n\r\n", old_size < 3 ? 0 : old_size - 3);
          end != std::string::npos)
        co_return std::pair(asio::error_code{}, end + 4);
      if (request.size() >= max_head)
        co_return std::pair(asio::error_code(asio::error::not_found), std::size_t{0});
      old_size = request.size();
      request.resize(max_head);
      auto [ec, n] = co_await c.socket.async_read_some(
          asio::buffer(request.data() + old_size, max_head - old_size), use_tuple);
      request.resize(old_size + n);
      if (ec) co_return std::pair(ec, std::size_t{0});
      c.last_byte = clock::now();
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<connection> c) {
    std::string request;
    const auto [ec, n] = co_await read_request_head(*c, request);
    http_response r;
    http_request q;
    if (ec) {
      if (ec != asio::error::not_found) {  // not_found: the request outgrew the buffer
        close(*c);
        co_return;
      }
      r = {431, "text/plain; charset=utf-8", "request too large\n"};
    } else if (!parse_head(std::string_view(request.data(), n), q)) {
      r = {400, "text/plain; charset=utf-8", "bad request line\n"};
    } else if (q.method != "GET" && q.method != "HEAD" && q.method != "POST") {
      r = {405, "text/plain; charset=utf-8", "only GET, HEAD and POST\n"};
    } else {
      bool body_ok = true;
      if (const auto length = q.header("content-length"); !length.empty()) {
        if (length.size() > 5 || length.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(length) > 65536) {
          r = {413, "text/plain; charset=utf-8", "request body too large (at most 64 KiB)\n"};
          body_ok = false;
        } else {
          const auto want = std::stoul(length);
          q.body = request.substr(n, want);
          if (q.body.size() < want) {  // the rest of the body, still under the header timeout
            std::string rest(want - q.body.size(), '\0');
            auto [rec, got] = co_await asio::async_read(c->socket, asio::buffer(rest), use_tuple);
            if (rec) {
              close(*c);
              co_return;
            }
            q.body += rest.substr(0, got);
          }
        }
      }
      if (body_ok) {
        // The request is in: from here the answer (handler and write) has write_timeout.
        c->reading = false;
        c->write_by = clock::now() + limits_.write_timeout;
        watch(c);
        r = co_await handler_(q);
      }
    }
    if (!c->open) co_return;  // closed meanwhile (stop())
    c->reading = false;
    c->write_by = clock::now() + limits_.write_timeout;
    watch(c);
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
                      "\r\nContent-Type: " + r.content_type;
    if (!r.stream) out += "\r\nContent-Length: " + std::to_string(r.body.size());
    for (const auto& [name, value] : r.headers) out += "\r\n" + name + ": " + value;
    out += "\r\nConnection: close\r\n\r\n";
    if (q.method != "HEAD") out += r.body;
    auto [wec, written] = co_await asio::async_write(c->socket, asio::buffer(out), use_tuple);
    if (!wec && c->open && r.stream && q.method != "HEAD") {
      // A stream has no write deadline: it ends when its writer returns or a write fails.
      c->write_by = clock::time_point::max();
      watch(c);
      co_await r.stream(c->socket);
    }
    if (c->open) {
      asio::error_code ignored;
      c->socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    }
    close(*c);
  }

  /// Parses the request line and headers of `head` into `q`; false when malformed.
  static bool parse_head(std::string_view head, http_request& q) {
    const auto line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return false;
    q.method = std::string(line.substr(0, sp1));
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto mark = target.find('?');
    q.path = std::string(target.substr(0, mark));
    if (mark != std::string_view::npos) q.query = std::string(target.substr(mark + 1));
    for (auto at = line_end + 2; at < head.size();) {
      const auto end = head.find("\r\n", at);
      const auto h = head.substr(at, end - at);
      at = end == std::string_view::npos ? head.size() : end + 2;
      const auto colon = h.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(h.substr(0, colon));
      for (auto& c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      auto value = h.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      q.headers[name] = std::string(value);
    }
    return true;
  }

  static std::string reason(int status) {
    switch (status) {
      case 200: return "OK";
      case 400: return "Bad Request";
      case 401: return "Unauthorized";
      case 403: return "Forbidden";
      case 404: return "Not Found";
      case 405: return "Method Not Allowed";
      case 409: return "Conflict";
      case 413: return "Content Too Large";
      case 431: return "Request Header Fields Too Large";
      case 503: return "Service Unavailable";
      default: return "Status";
    }
  }

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer pause_;  // the accept loop's pause after a failed accept
  handler handler_;
  http_limits limits_;
  std::list<std::shared_ptr<connection>> connections_;  // open ones, oldest first
  bool at_cap_ = false;                                 // the cap was logged in this streak
};

}  // namespace punctual_cron
