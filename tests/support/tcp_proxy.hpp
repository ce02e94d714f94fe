// punctual::testing::tcp_proxy: a loopback TCP proxy whose behaviour can be switched while it
// runs, for testing what a client (a database store, say) does when the network misbehaves.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace punctual::testing {

/// What a tcp_proxy does with its connections.
enum class proxy_mode {
  /// Forwards bytes both ways as they come.
  pass,
  /// Forwards every chunk read (either way) only after the proxy's delay.
  delay,
  /// Closes every connection at once and stops listening: new connections are refused
  /// (ECONNREFUSED) until another mode is set, which listens again on the same port.
  drop,
  /// A half-open server: accepts connections and reads what they send, but never forwards or
  /// answers anything, and keeps their sockets open. Connections open when this mode is set,
  /// and those accepted while it lasts, stay black holes for good (what they sent is lost, so
  /// their streams could not be resumed); after a switch back only new connections forward.
  black_hole,
};

/// A TCP proxy on 127.0.0.1 (an ephemeral port) that forwards every connection to a target
/// host:port, in the mode set by set_mode(). It runs on its own io_context thread.
///
/// Thread safety: every member may be called from any thread except the proxy's own (set_mode
/// and open_connections wait for that thread). The destructor closes every connection.
class tcp_proxy {
 public:
  /// Listens at once (port() is valid when the constructor returns); connects to the target
  /// for each accepted connection. Throws std::system_error when it cannot listen.
  tcp_proxy(std::string target_host, std::uint16_t target_port)
      : host_(std::move(target_host)), target_port_(target_port) {
    listen(0);
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  ~tcp_proxy() {
    on_thread([this] { close_all(); });
    work_.reset();
    thread_.join();  // every operation ends once its sockets and the acceptor are closed
  }

  /// The port the proxy listens on (127.0.0.1), the same in every mode.
  std::uint16_t port() const noexcept { return port_; }

  /// Switches the mode; `delay` is the wait per chunk in proxy_mode::delay. Applied when this
  /// returns: after drop every connection is closed and the port refuses connections.
  /// Throws std::system_error when leaving drop cannot listen on the port again.
  void set_mode(proxy_mode m, std::chrono::milliseconds delay = std::chrono::milliseconds{0}) {
    on_thread([this, m, delay] {
      const auto previous = mode_.load();
      delay_ = delay;
      mode_ = m;
      if (m == proxy_mode::drop) {
        close_all();
      } else if (previous == proxy_mode::drop) {
        listen(port_);
        asio::co_spawn(io_, accept_loop(), asio::detached);
      }
      if (m == proxy_mode::black_hole)
        for (auto& weak : sessions_)
          if (auto s = weak.lock()) s->black_hole = true;
    });
  }

  /// The current mode.
  proxy_mode mode() const noexcept { return mode_.load(); }
  /// Connections accepted since construction.
  std::size_t accepted() const noexcept { return accepted_.load(); }
  /// Bytes forwarded (both ways together; counted when handed to the receiving socket).
  std::uint64_t bytes_forwarded() const noexcept { return forwarded_.load(); }
  /// Bytes read and thrown away by black-hole connections (both ways together).
  std::uint64_t bytes_swallowed() const noexcept { return swallowed_.load(); }
  /// Connections whose client side is open now.
  std::size_t open_connections() {
    std::size_t n = 0;
    on_thread([&] {
      for (auto& weak : sessions_)
        if (auto s = weak.lock(); s && s->client.is_open()) ++n;
    });
    return n;
  }

 private:
  struct session {
    explicit session(asio::ip::tcp::socket c) : client(std::move(c)), upstream(client.get_executor()) {}
    asio::ip::tcp::socket client;
    asio::ip::tcp::socket upstream;
    bool black_hole = false;  // for good, once set
    void close() {
      std::error_code ignored;
      client.close(ignored);
      upstream.close(ignored);
    }
  };

  /// Runs `f` on the proxy's thread and waits for it; rethrows what it threw.
  template <class F>
  void on_thread(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      try {
        f();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    done.get_future().get();
  }

  void listen(std::uint16_t port) {
    const asio::ip::tcp::endpoint at(asio::ip::make_address_v4("127.0.0.1"), port);
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen();
  }

  void close_all() {
    std::error_code ignored;
    acceptor_.close(ignored);
    for (auto& weak : sessions_)
      if (auto s = weak.lock()) s->close();
    sessions_.clear();
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      std::shared_ptr<session> s;
      try {
        s = std::make_shared<session>(co_await acceptor_.async_accept(asio::use_awaitable));
      } catch (const std::system_error&) {
        co_return;  // the acceptor was closed (drop, destruction)
      }
      ++accepted_;
      std::erase_if(sessions_, [](const std::weak_ptr<session>& w) { return w.expired(); });
      sessions_.push_back(s);
      s->black_hole = mode_ == proxy_mode::black_hole;
      asio::co_spawn(io_, start(s), asio::detached);
    }
  }

  asio::awaitable<void> start(std::shared_ptr<session> s) {
    if (!s->black_hole) {
      try {
        asio::ip::tcp::resolver resolver(io_);
        auto targets =
            co_await resolver.async_resolve(host_, std::to_string(target_port_), asio::use_awaitable);
        co_await asio::async_connect(s->upstream, targets, asio::use_awaitable);
      } catch (const std::system_error&) {
        s->close();  // the target is down: so is this connection
        co_return;
      }
      asio::co_spawn(io_, pump(s, s->upstream, s->client, false), asio::detached);
    }
    co_await pump(s, s->client, s->upstream, true);
  }

  /// Moves bytes from `from` to `to` until `from` ends, as the mode says.
  asio::awaitable<void> pump(std::shared_ptr<session> s, asio::ip::tcp::socket& from,
                             asio::ip::tcp::socket& to, bool from_client) {
    std::array<char, 16384> buffer;
    try {
      for (;;) {
        const std::size_t n = co_await from.async_read_some(asio::buffer(buffer), asio::use_awaitable);
        if (!s->black_hole && mode_ == proxy_mode::delay) {
          asio::steady_timer wait(io_, delay_);
          co_await wait.async_wait(asio::use_awaitable);
        }
        if (s->black_hole) {  // checked after the delay: the mode may have changed meanwhile
          swallowed_ += n;
          continue;
        }
        forwarded_ += n;  // before the write: the peer may have the bytes before it completes
        co_await asio::async_write(to, asio::buffer(buffer.data(), n), asio::use_awaitable);
      }
    } catch (const std::system_error&) {
      // End of stream or a closed socket: handled below.
    }
    // The client leaving ends the connection; the target leaving ends it unless it is a black
    // hole, whose client must see a server that stays silent, not one that closes.
    if (from_client || !s->black_hole) s->close();
  }

  const std::string host_;
  const std::uint16_t target_port_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  asio::ip::tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  std::atomic<proxy_mode> mode_{proxy_mode::pass};
  std::chrono::milliseconds delay_{0};            // proxy thread only
  std::vector<std::weak_ptr<session>> sessions_;  // proxy thread only
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::uint64_t> forwarded_{0};
  std::atomic<std::uint64_t> swallowed_{0};
  std::thread thread_;
};

}  // namespace punctual::testing
