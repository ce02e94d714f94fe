// change_subscribers: the subscriber list every store's change notification is built on.
#include "punctual/store/change_subscribers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using punctual::change_subscribers;

// A one-way signal between threads; wait() gives up after 5 s (and then fails the test).
class signal_flag {
 public:
  void set() {
    std::lock_guard lock(mutex_);
    set_ = true;
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 5s, [&] { return set_; });
  }
  bool is_set() {
    std::lock_guard lock(mutex_);
    return set_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool set_ = false;
};

}  // namespace

TEST_CASE("change_subscribers calls every subscriber until it unsubscribes", "[store][notify]") {
  change_subscribers subs;
  CHECK(subs.empty());
  int a = 0, b = 0;
  const auto ha = subs.subscribe([&] { ++a; });
  const auto hb = subs.subscribe([&] { ++b; });
  CHECK(ha != 0);
  CHECK(hb != 0);
  CHECK(ha != hb);
  CHECK_FALSE(subs.empty());
  subs.notify();
  CHECK(a == 1);
  CHECK(b == 1);
  subs.unsubscribe(ha);
  subs.notify();
  CHECK(a == 1);
  CHECK(b == 2);
  subs.unsubscribe(ha);      // already gone: ignored
  subs.unsubscribe(987654);  // never handed out: ignored
  subs.unsubscribe(hb);
  CHECK(subs.empty());
  subs.notify();
  CHECK(b == 2);
  CHECK(subs.subscribe([] {}) > hb);  // handles are not reused
}

TEST_CASE("change_subscribers: a throwing callback does not stop the others", "[store][notify]") {
  change_subscribers subs;
  int before = 0, after = 0;
  subs.subscribe([&] { ++before; });
  subs.subscribe([] { throw std::runtime_error("subscriber failed"); });
  subs.subscribe([&] { ++after; });
  std::vector<std::string> errors;
  subs.notify([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      errors.push_back(ex.what());
    }
  });
  CHECK(errors == std::vector<std::string>{"subscriber failed"});
  CHECK(before == 1);
  CHECK(after == 1);
  CHECK_NOTHROW(subs.notify());  // without a handler the exception is dropped
  CHECK(after == 2);
  subs.notify([](std::exception_ptr) { throw std::logic_error("the handler failed too"); });
  CHECK(after == 3);
}

TEST_CASE("change_subscribers: a callback may unsubscribe itself, another one, subscribe and notify",
          "[store][notify]") {
  change_subscribers subs;
  SECTION("unsubscribing itself returns at once, and it is not called again") {
    int calls = 0;
    std::uint64_t self = 0;
    self = subs.subscribe([&] {
      ++calls;
      subs.unsubscribe(self);
    });
    subs.notify();
    subs.notify();
    CHECK(calls == 1);
    CHECK(subs.empty());
  }

  SECTION("a callback unsubscribed by an earlier one is not called, even in the same notify") {
    int later_calls = 0;
    std::uint64_t later = 0;
    subs.subscribe([&] { subs.unsubscribe(later); });
    later = subs.subscribe([&] { ++later_calls; });
    subs.notify();
    subs.notify();
    CHECK(later_calls == 0);
  }

  SECTION("unsubscribing an earlier callback does not skip the later ones") {
    int first_calls = 0, third_calls = 0;
    const auto first = subs.subscribe([&] { ++first_calls; });
    subs.subscribe([&] { subs.unsubscribe(first); });
    subs.subscribe([&] { ++third_calls; });
    subs.notify();
    subs.notify();
    CHECK(first_calls == 1);
    CHECK(third_calls == 2);
  }

  SECTION("subscribing from a callback: the new one is called by the next notify") {
    int added_calls = 0;
    bool added = false;
    subs.subscribe([&] {
      if (!added) subs.subscribe([&] { ++added_calls; });
      added = true;
    });
    subs.notify();
    const auto after_first = added_calls;
    subs.notify();
    CHECK(added_calls == after_first + 1);
  }

  SECTION("a callback may notify again, and unsubscribe from inside the nested call") {
    int calls = 0, other_calls = 0;
    std::uint64_t self = 0;
    self = subs.subscribe([&] {
      if (++calls == 1)
        subs.notify();  // calls it again, nested
      else
        subs.unsubscribe(self);  // inside itself twice: must wait for neither call
    });
    subs.subscribe([&] { ++other_calls; });
    subs.notify();
    CHECK(calls == 2);
    CHECK(other_calls == 2);  // once by the nested notify, once by the outer one
    subs.notify();
    CHECK(calls == 2);
    CHECK(other_calls == 3);
  }
}

TEST_CASE("change_subscribers: unsubscribe waits for a call in progress on another thread",
          "[store][notify]") {
  change_subscribers subs;
  signal_flag entered, unsubscribing;
  std::atomic<bool> returned{false};
  std::atomic<bool> returned_during_call{false};
  const auto h = subs.subscribe([&] {
    entered.set();
    unsubscribing.wait();
    // Give unsubscribe time to return early if it wrongly does not wait for this call.
    for (int k = 0; k < 20 && !returned; ++k) std::this_thread::sleep_for(10ms);
    returned_during_call = returned.load();
  });
  std::thread notifier([&] { subs.notify(); });
  REQUIRE(entered.wait());
  std::thread unsubscriber([&] {
    unsubscribing.set();
    subs.unsubscribe(h);
    returned = true;
  });
  unsubscriber.join();
  notifier.join();
  CHECK(returned);
  CHECK_FALSE(returned_during_call);
}

TEST_CASE("change_subscribers: unsubscribing itself still waits for its calls on other threads",
          "[store][notify]") {
  change_subscribers subs;
  signal_flag first_inside, second_unsubscribing;
  std::atomic<int> arrivals{0};
  std::atomic<bool> first_done{false};
  bool first_done_when_returned = false;
  std::uint64_t h = 0;
  h = subs.subscribe([&] {
    if (arrivals++ == 0) {  // the first caller stays inside until the second one unsubscribes
      first_inside.set();
      second_unsubscribing.wait();
      std::this_thread::sleep_for(100ms);
      first_done = true;
    } else {
      second_unsubscribing.set();
      subs.unsubscribe(h);  // waits for the first caller's call, not for this one
      first_done_when_returned = first_done.load();
    }
  });
  std::thread first([&] { subs.notify(); });
  REQUIRE(first_inside.wait());
  std::thread second([&] { subs.notify(); });
  second.join();
  first.join();
  CHECK(arrivals == 2);
  CHECK(first_done_when_returned);
  subs.notify();
  CHECK(arrivals == 2);
}

TEST_CASE("change_subscribers: after unsubscribe returns, the callback is neither running nor called again",
          "[store][notify]") {
  change_subscribers subs;
  std::atomic<bool> stop{false};
  std::vector<std::thread> notifiers;
  for (int t = 0; t < 3; ++t)
    notifiers.emplace_back([&] {
      while (!stop) subs.notify();
    });
  int violations = 0;
  for (int round = 0; round < 200; ++round) {
    auto alive = std::make_shared<std::atomic<bool>>(true);
    std::atomic<int> calls{0}, bad{0};
    const auto h = subs.subscribe([&calls, &bad, alive] {
      if (!*alive) ++bad;
      ++calls;
      std::this_thread::yield();
      if (!*alive) ++bad;
    });
    signal_flag called;
    const auto watcher = subs.subscribe([&] { called.set(); });
    REQUIRE(called.wait());  // the notifiers are running through the list
    subs.unsubscribe(watcher);
    subs.unsubscribe(h);
    *alive = false;  // what the callback uses "is destroyed"
    const int seen = calls;
    std::this_thread::yield();
    violations += bad + (calls - seen);
  }
  stop = true;
  for (auto& t : notifiers) t.join();
  CHECK(violations == 0);
}
