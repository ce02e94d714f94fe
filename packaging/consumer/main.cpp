// A scheduler on the memory store (or, with CONSUMER_WITH_SQLITE, on an SQLite store in memory):
// one coroutine task, one interval schedule; stops after the task has run three times.
// Exit status 0 when it did, 1 otherwise.
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/scheduler.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/version.hpp"
#ifdef CONSUMER_WITH_SQLITE
#include "punctual/store/sqlite_store.hpp"
#endif
#ifdef CONSUMER_WITH_POSTGRES
#include <libpq-fe.h>

#include "punctual/store/postgres_store.hpp"
#endif

using namespace std::chrono_literals;

int main() {
  asio::io_context io;
  punctual::scheduler_options options;
  const char* store_name = "memory";
#ifdef CONSUMER_WITH_SQLITE
  options.job_store = punctual::sqlite_store::open(":memory:");
  store_name = "sqlite";
#endif
  punctual::scheduler sched{io.get_executor(), options};
  // A bound: a package that builds but never runs the task must fail, not hang.
  asio::steady_timer limit{io, 30s};
  limit.async_wait([&](const std::error_code& ec) {
    if (!ec) io.stop();
  });
  int runs = 0;
  sched.tasks().add("tick", [&](punctual::job_context&) -> asio::awaitable<void> {
    if (++runs == 3) {
      limit.cancel();
      asio::co_spawn(io, sched.async_stop(asio::use_awaitable), asio::detached);
    }
    co_return;
  });
  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await sched.async_add_schedule(
            {.id = "ticks", .task = "tick", .trigger = punctual::interval_trigger{20ms}},
            asio::use_awaitable);
      },
      rethrow);
  sched.start();
  io.run();  // returns once the scheduler has stopped (or the bound ran out)
  std::printf("punctual %s: %d runs of the interval schedule on the %s store\n", PUNCTUAL_VERSION_STRING,
              runs, store_name);
#ifdef CONSUMER_WITH_POSTGRES
  std::printf("punctual::postgres links libpq %d\n", PQlibVersion());
#endif
  return runs >= 3 ? 0 : 1;
}
