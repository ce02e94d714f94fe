// A minimal HTTP/1.1 server for punctual-cron's /metrics and /healthz: GET and HEAD only, one
// request per connection, requests bounded in size and time. Runs as coroutines on the
// daemon's io_context, like everything else.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace punctual_cron {

/// Completion token: an awaitable that returns (error_code, results...) instead of throwing.
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// What a handler returns.
struct http_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
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

/// Serves `handler(path)` for GET/HEAD requests until stop().
class http_server {
 public:
  using handler = std::function<http_response(std::string_view path)>;

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
    bool head = false;
    if (ec) {
      if (ec != asio::error::not_found) {  // not_found: the request outgrew the buffer
        deadline->cancel();
        co_return;
      }
      r = {431, "text/plain; charset=utf-8", "request too large\n"};
    } else {
      const std::string_view line(request.data(), request.find("\r\n"));
      const auto sp1 = line.find(' ');
      const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos) {
        r = {400, "text/plain; charset=utf-8", "bad request line\n"};
      } else {
        const auto method = line.substr(0, sp1);
        auto path = line.substr(sp1 + 1, sp2 - sp1 - 1);
        path = path.substr(0, path.find('?'));
        head = method == "HEAD";
        if (method != "GET" && !head)
          r = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
        else
          r = handler_(path);
      }
    }
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
                      "\r\nContent-Type: " + r.content_type +
                      "\r\nContent-Length: " + std::to_string(r.body.size()) +
                      "\r\nConnection: close\r\n\r\n";
    if (!head) out += r.body;
    co_await asio::async_write(*socket, asio::buffer(out), use_tuple);
    deadline->cancel();
    asio::error_code ignored;
    socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  }

  static std::string reason(int status) {
    switch (status) {
      case 200: return "OK";
      case 400: return "Bad Request";
      case 404: return "Not Found";
      case 405: return "Method Not Allowed";
      case 431: return "Request Header Fields Too Large";
      case 503: return "Service Unavailable";
      default: return "Status";
    }
  }

  asio::ip::tcp::acceptor acceptor_;
  handler handler_;
};

}  // namespace punctual_cron
