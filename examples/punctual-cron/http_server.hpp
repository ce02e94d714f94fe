// A minimal HTTP/1.1 server for punctual-cron's /metrics, /healthz, dashboard and JSON API:
// GET, HEAD and POST, one request per connection, requests bounded in size and time; a
// response may stream (server-sent events). Runs as coroutines on the daemon's io_context,
// like everything else.
#pragma once

#include <cstdint>
#include <functional>
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

/// Splits "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces). Throws std::invalid_argument
/// saying what is wrong.
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
  asio::ip::address addr = asio::ip::address_v4::any();
  if (host == "localhost") {
    addr = asio::ip::address_v4::loopback();
  } else if (!host.empty()) {
    asio::error_code ec;
    addr = asio::ip::make_address(std::string(host), ec);
    if (ec) throw fail("\"" + std::string(host) + "\" is not an IP address");
  }
  return {addr, static_cast<std::uint16_t>(value)};
}

/// Serves `handler(request)` for GET/HEAD/POST requests until stop().
class http_server {
 public:
  using handler = std::function<asio::awaitable<http_response>(const http_request&)>;

  /// Binds and listens at once (so errors such as "address in use" surface here, as
  /// std::system_error); serving starts with start().
  http_server(asio::any_io_executor ex, asio::ip::tcp::endpoint at, handler h)
      : acceptor_(ex), handler_(std::move(h)) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen();
  }

  asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start() { asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached); }

  void stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      asio::ip::tcp::socket socket(acceptor_.get_executor());
      auto [ec] = co_await acceptor_.async_accept(socket, use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) continue;  // e.g. too many open files: try the next one
      asio::co_spawn(acceptor_.get_executor(),
                     serve(std::make_shared<asio::ip::tcp::socket>(std::move(socket))), asio::detached);
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<asio::ip::tcp::socket> socket) {
    // A client gets 5 seconds to send its request; then the connection is closed.
    auto deadline = std::make_shared<asio::steady_timer>(socket->get_executor(), std::chrono::seconds{5});
    deadline->async_wait([socket](asio::error_code ec) {
      if (!ec) socket->close(ec);
    });
    std::string request;
    auto [ec, n] =
        co_await asio::async_read_until(*socket, asio::dynamic_buffer(request, 16384), "\r\n\r\n", use_tuple);
    http_response r;
    http_request q;
    if (ec) {
      if (ec != asio::error::not_found) {  // not_found: the request outgrew the buffer
        deadline->cancel();
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
          if (q.body.size() < want) {
            std::string rest(want - q.body.size(), '\0');
            auto [rec, got] = co_await asio::async_read(*socket, asio::buffer(rest), use_tuple);
            if (rec) {
              deadline->cancel();
              co_return;
            }
            q.body += rest.substr(0, got);
          }
        }
      }
      if (body_ok) r = co_await handler_(q);
    }
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
                      "\r\nContent-Type: " + r.content_type;
    if (!r.stream) out += "\r\nContent-Length: " + std::to_string(r.body.size());
    for (const auto& [name, value] : r.headers) out += "\r\n" + name + ": " + value;
    out += "\r\nConnection: close\r\n\r\n";
    if (q.method != "HEAD") out += r.body;
    auto [wec, written] = co_await asio::async_write(*socket, asio::buffer(out), use_tuple);
    deadline->cancel();
    if (!wec && r.stream && q.method != "HEAD") co_await r.stream(*socket);
    asio::error_code ignored;
    socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
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
  handler handler_;
};

}  // namespace punctual_cron
