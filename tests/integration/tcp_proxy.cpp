// tests/support/tcp_proxy.hpp against a tiny echo server on loopback: each mode does what it
// says to connections open when it is set and to new ones. Real sockets, so the only waits are
// short bounded ones for bytes that must (or must not) arrive.
#include "../support/tcp_proxy.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

using namespace std::chrono_literals;
using punctual::testing::proxy_mode;
using punctual::testing::tcp_proxy;
using tcp = asio::ip::tcp;

namespace {

/// Echoes every byte back, on its own thread; counts what it received.
class echo_server {
 public:
  echo_server() {
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address_v4("127.0.0.1"), 0});
    acceptor_.listen();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~echo_server() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::uint64_t received() const { return received_.load(); }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(co_await acceptor_.async_accept(asio::use_awaitable));
      asio::co_spawn(io_, echo(socket), asio::detached);
    }
  }
  asio::awaitable<void> echo(std::shared_ptr<tcp::socket> socket) {
    char buffer[4096];
    try {
      for (;;) {
        const auto n = co_await socket->async_read_some(asio::buffer(buffer), asio::use_awaitable);
        received_ += n;
        co_await asio::async_write(*socket, asio::buffer(buffer, n), asio::use_awaitable);
      }
    } catch (const std::system_error&) {
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<std::uint64_t> received_{0};
  std::thread thread_;
};

/// A client connection driven from the test's thread, every operation bounded by a timeout.
class client {
 public:
  /// Connects to the proxy; the error (connection_refused, ...) or {} on success.
  std::error_code connect(std::uint16_t port) {
    std::optional<std::error_code> result;
    socket_.async_connect({asio::ip::make_address_v4("127.0.0.1"), port},
                          [&](std::error_code ec) { result = ec; });
    run(2s, result);
    return result.value_or(asio::error::timed_out);
  }

  /// Sends `text`.
  void send(const std::string& text) {
    std::optional<std::error_code> result;
    asio::async_write(socket_, asio::buffer(text), [&](std::error_code ec, std::size_t) { result = ec; });
    run(2s, result);
    REQUIRE(result == std::error_code{});
  }

  /// Waits up to `timeout` for `n` bytes: the bytes, the error that ended the read (EOF,
  /// reset), or nullopt (the reset of the pair) when the time ran out first.
  std::pair<std::optional<std::string>, std::error_code> receive(std::size_t n,
                                                                 std::chrono::milliseconds timeout) {
    std::string data(n, '\0');
    std::optional<std::error_code> result;
    asio::async_read(socket_, asio::buffer(data), [&](std::error_code ec, std::size_t) { result = ec; });
    if (!run(timeout, result)) return {std::nullopt, {}};
    if (*result) return {std::nullopt, *result};
    return {data, {}};
  }

  /// Sends `text` and waits up to `timeout` for as many bytes back.
  std::optional<std::string> round_trip(const std::string& text, std::chrono::milliseconds timeout = 2s) {
    send(text);
    return receive(text.size(), timeout).first;
  }

 private:
  /// Runs the io_context until `done` is set or `timeout` passes; on a timeout cancels the
  /// socket's operations and lets them finish. True when `done` was set in time.
  template <class T>
  bool run(std::chrono::milliseconds timeout, const std::optional<T>& done) {
    io_.restart();
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!done && std::chrono::steady_clock::now() < until)
      io_.run_one_for(until - std::chrono::steady_clock::now());
    const bool in_time = done.has_value();
    if (!in_time) {
      socket_.cancel();
      io_.restart();
      io_.run();
    }
    return in_time;
  }

  asio::io_context io_;
  tcp::socket socket_{io_};
};

}  // namespace

TEST_CASE("tcp_proxy forwards both ways in pass mode", "[tcp_proxy]") {
  echo_server echo;
  tcp_proxy proxy("127.0.0.1", echo.port());
  client c;
  REQUIRE(c.connect(proxy.port()) == std::error_code{});
  CHECK(c.round_trip("hello") == "hello");
  CHECK(c.round_trip(std::string(100000, 'x')) == std::string(100000, 'x'));
  CHECK(echo.received() == 100005);
  CHECK(proxy.bytes_forwarded() == 2 * 100005);
  CHECK(proxy.accepted() == 1);
}

TEST_CASE("tcp_proxy delay mode holds every chunk back, each way, then forwards it intact", "[tcp_proxy]") {
  echo_server echo;
  tcp_proxy proxy("127.0.0.1", echo.port());
  client c;
  REQUIRE(c.connect(proxy.port()) == std::error_code{});
  proxy.set_mode(proxy_mode::delay, 150ms);
  const auto start = std::chrono::steady_clock::now();
  CHECK(c.round_trip("slow", 3s) == "slow");
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 300ms);  // 150 ms on the way there, 150 ms on the way back
  CHECK(took < 2s);
  proxy.set_mode(proxy_mode::pass);
  const auto again = std::chrono::steady_clock::now();
  CHECK(c.round_trip("fast") == "fast");
  CHECK(std::chrono::steady_clock::now() - again < 150ms);
}

TEST_CASE("tcp_proxy drop mode closes every connection and refuses new ones until another mode",
          "[tcp_proxy]") {
  echo_server echo;
  tcp_proxy proxy("127.0.0.1", echo.port());
  const auto port = proxy.port();
  client open;
  REQUIRE(open.connect(port) == std::error_code{});
  REQUIRE(open.round_trip("before") == "before");
  REQUIRE(proxy.open_connections() == 1);

  proxy.set_mode(proxy_mode::drop);
  const auto [data, error] = open.receive(1, 2s);
  CHECK_FALSE(data);
  CHECK((error == asio::error::eof || error == asio::error::connection_reset));
  CHECK(proxy.open_connections() == 0);
  client refused;
  CHECK(refused.connect(port) == asio::error::connection_refused);

  proxy.set_mode(proxy_mode::pass);
  CHECK(proxy.port() == port);
  client after;
  REQUIRE(after.connect(port) == std::error_code{});
  CHECK(after.round_trip("after") == "after");
}

TEST_CASE("tcp_proxy black-hole mode reads but never forwards or answers, and keeps sockets open",
          "[tcp_proxy]") {
  echo_server echo;
  tcp_proxy proxy("127.0.0.1", echo.port());
  client open;
  REQUIRE(open.connect(proxy.port()) == std::error_code{});
  REQUIRE(open.round_trip("before") == "before");
  const auto echoed = echo.received();

  proxy.set_mode(proxy_mode::black_hole);
  open.send("lost");
  {
    const auto [data, error] = open.receive(1, 300ms);
    CHECK_FALSE(data);
    CHECK_FALSE(error);  // nothing came back, not even an end of stream: the time ran out
  }
  client fresh;  // accepted, read from, never answered
  REQUIRE(fresh.connect(proxy.port()) == std::error_code{});
  fresh.send("also lost");
  {
    const auto [data, error] = fresh.receive(1, 300ms);
    CHECK_FALSE(data);
    CHECK_FALSE(error);
  }
  CHECK(echo.received() == echoed);
  CHECK(proxy.bytes_swallowed() == 4 + 9);
  CHECK(proxy.open_connections() == 2);

  // After a switch back the black holes stay black holes; new connections forward.
  proxy.set_mode(proxy_mode::pass);
  open.send("still lost");
  CHECK_FALSE(open.receive(1, 200ms).first);
  client after;
  REQUIRE(after.connect(proxy.port()) == std::error_code{});
  CHECK(after.round_trip("after") == "after");
  CHECK(echo.received() == echoed + 5);
}
