// The store guard on its own (detail/store_guard.hpp), against the fault store, on a manual
// clock: retries, backoff, the error streak and its events, timeouts, and stopping.
#include "punctual/detail/store_guard.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <random>

#include <asio.hpp>

#include "../support/fault_store.hpp"
#include "punctual/store/memory_store.hpp"

using namespace punctual;
using namespace punctual::detail;
using namespace punctual::testing;
using namespace std::chrono_literals;

namespace {

const time_point t0 = parse_iso("2026-01-01T00:00:00Z");

struct guard_fixture {
  asio::io_context io;
  asio::strand<asio::any_io_executor> strand{asio::make_strand(io.get_executor())};
  manual_clock clock{t0};
  sleeper sleep{strand, clock, 1s};
  event_bus events;
  std::vector<event> seen;
  subscription sub = events.subscribe([this](const event& e) { seen.push_back(e); });
  std::mt19937_64 rng{7};
  std::shared_ptr<fault_store> db = std::make_shared<fault_store>(std::make_shared<memory_store>());
  store_guard guard{*db, sleep, events, rng, guard_settings{5s, 1s, 8s}};
  std::uint64_t clock_sub = clock.subscribe([this] { asio::post(strand, [this] { sleep.wake_all(); }); });

  ~guard_fixture() { clock.unsubscribe(clock_sub); }

  // Runs `op` on the strand, moving the clock by `step` whenever nothing is ready, until it ends.
  template <class T>
  T run(asio::awaitable<T> op, duration step = 100ms) {
    auto f = asio::co_spawn(strand, std::move(op), asio::use_future);
    for (int i = 0; i < 10000 && f.wait_for(0s) != std::future_status::ready; ++i) {
      io.restart();
      if (io.poll() == 0) clock.advance(step);
    }
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    return f.get();
  }
  std::vector<event> of(event_kind k) const {
    std::vector<event> v;
    for (auto& e : seen)
      if (e.kind == k) v.push_back(e);
    return v;
  }
};

}  // namespace

TEST_CASE("the guard retries a failing call after a jittered exponential backoff and reports the streak once",
          "[store_guard]") {
  guard_fixture g;
  g.db->inject("next_due", fault_mode::fail, 1, 3);
  g.run(g.guard.guarded("next_due", [&] { return g.db->next_due(); }));
  CHECK(g.db->calls("next_due") == 4);
  const auto errors = g.of(event_kind::store_error);
  REQUIRE(errors.size() == 3);
  for (std::uint32_t k = 0; k < 3; ++k) {
    CHECK(errors[k].attempt == k + 1);
    CHECK(errors[k].op == "next_due");
    CHECK(errors[k].message == "injected fault: next_due call #" + std::to_string(k + 1));
  }
  // The k-th delay is drawn in [d/2, d], d = 1 s * 2^(k-1) (the clock moves in 100 ms steps).
  CHECK(errors[1].at - errors[0].at >= 500ms);
  CHECK(errors[1].at - errors[0].at <= 1100ms);
  CHECK(errors[2].at - errors[1].at >= 1s);
  CHECK(errors[2].at - errors[1].at <= 2100ms);
  const auto recovered = g.of(event_kind::store_recovered);
  REQUIRE(recovered.size() == 1);
  CHECK(recovered[0].count == 3);
  CHECK(recovered[0].at - errors[2].at >= 2s);
  CHECK(recovered[0].at - errors[2].at <= 4100ms);
  CHECK(recovered[0].message.find(
            "after 3 failed calls (last: next_due: injected fault: next_due call #3)") != std::string::npos);
  CHECK(g.guard.status().error_streak == 0);
  CHECK(g.guard.status().last_error == "injected fault: next_due call #3");  // kept after recovery
  CHECK(g.guard.errors() == 3);
}

TEST_CASE("a call that hangs fails after store_timeout on the scheduler clock, then the retry succeeds",
          "[store_guard]") {
  guard_fixture g;
  g.db->inject("next_due", fault_mode::hang, 1, 1);
  g.run(g.guard.guarded("next_due", [&] { return g.db->next_due(); }));
  const auto errors = g.of(event_kind::store_error);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "timed out after 5s");
  CHECK(errors[0].at - t0 >= 5s);
  CHECK(errors[0].at - t0 <= 5100ms);
  CHECK(g.db->calls("next_due") == 2);
  CHECK(g.guard.status().error_streak == 0);
}

TEST_CASE(
    "while stopping, a normal call gives up at once and a critical one retries until the flush deadline",
    "[store_guard]") {
  guard_fixture g;
  g.sleep.stopping = true;
  CHECK_THROWS_AS(g.run(g.guard.guarded("next_due", [&] { return g.db->next_due(); })), stop_requested);
  CHECK(g.db->calls("next_due") == 0);

  g.db->inject("update_jobs", fault_mode::fail, 1, 0);  // fails for ever
  const auto deadline = g.clock.now() + 10s;
  g.guard.flush_deadline = deadline;
  const std::vector<job_record> batch;  // outlives the calls (store writes take it by reference)
  CHECK_THROWS_AS(g.run(g.guard.guarded(
                      "update_jobs", [&] { return g.db->update_jobs("n", batch); }, guard_mode::critical)),
                  stop_requested);
  CHECK(g.db->calls("update_jobs") >= 3);  // tried again and again until the deadline
  CHECK(g.clock.now() > deadline);
  CHECK(g.guard.status().error_streak == g.db->calls("update_jobs"));
}
