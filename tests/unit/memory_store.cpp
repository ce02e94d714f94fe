// The memory store: the conformance suite, plus what only the memory store promises.
#include "punctual/store/memory_store.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "store_conformance.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::testing::conformance_detail::at;
using punctual::testing::conformance_detail::blocking_store;
using punctual::testing::conformance_detail::make_job;
using punctual::testing::conformance_detail::make_schedule;

}  // namespace

TEST_CASE("memory store passes the store conformance suite", "[store][memory]") {
  punctual::testing::store_conformance([] {
    // The suite keeps more history per schedule than the default bound.
    return std::make_shared<punctual::memory_store>(punctual::memory_store_options{1000});
  });
}

TEST_CASE("memory store keeps at most history_per_schedule final jobs per schedule", "[store][memory]") {
  auto store = std::make_shared<punctual::memory_store>(punctual::memory_store_options{3});
  blocking_store st{store};
  REQUIRE(st.add(make_schedule("a", at(0s))));
  REQUIRE(st.add(make_schedule("b", at(0s))));
  std::vector<punctual::testing::conformance_detail::final_job> spec;
  for (int k = 1; k <= 5; ++k) spec.push_back({"a", at(k * 10s), at(k * 10s + 1s)});
  spec.push_back({"b", at(10s), at(11s)});
  punctual::testing::conformance_detail::make_final_jobs(st, spec);
  // the oldest finished ones were dropped as newer ones finished
  CHECK(punctual::testing::conformance_detail::fires_of(st.jobs_of("a")) ==
        std::vector<punctual::time_point>{at(50s), at(40s), at(30s)});
  CHECK(st.jobs_of("b").size() == 1);
  // pending and running jobs are not history: never dropped
  for (int k = 6; k <= 10; ++k) REQUIRE(st.add_job(make_job("a", at(k * 10s))) > 0);
  CHECK(st.jobs_of("a").size() == 8);
  CHECK(store->job_count() == 9);
  // the bound also holds for a removed schedule's history
  REQUIRE(st.remove("a"));  // its 5 pending jobs are cancelled: final, so bounded too
  CHECK(st.jobs_of("a").size() == 3);
  CHECK(store->job_count() == 4);
}

TEST_CASE("memory store with history_per_schedule 0 keeps no final job, on every path", "[store][memory]") {
  auto store = std::make_shared<punctual::memory_store>(punctual::memory_store_options{0});
  blocking_store st{store};
  REQUIRE(st.add(make_schedule("a", at(10s))));
  // a final job inserted by a release
  REQUIRE(st.acquire("n1", at(20s), at(50s)).size() == 1);
  auto missed = make_job("a", at(10s));
  missed.state = punctual::job_state::missed;
  CHECK(st.release("n1", {{"a", at(30s), at(20s)}}, {missed, make_job("a", at(20s))}) == 2);
  CHECK(store->job_count() == 1);
  // a job finished by update_jobs
  auto j = st.acquire_jobs("n1", at(20s), at(50s)).at(0);
  j.state = punctual::job_state::succeeded;
  st.update("n1", {j});
  CHECK(store->job_count() == 0);
  // a job recorded abandoned: still returned to the caller, then dropped
  const auto id = st.add_job(make_job("a", at(30s)));
  REQUIRE(st.acquire_jobs("n1", at(30s), at(60s)).size() == 1);
  auto recovered = st.recover(std::string("n1"), at(40s));
  REQUIRE(recovered.size() == 1);
  CHECK(recovered[0].id == id);
  CHECK(recovered[0].state == punctual::job_state::abandoned);
  CHECK(store->job_count() == 0);
}

TEST_CASE("memory store counts its schedules and jobs", "[store][memory]") {
  auto store = std::make_shared<punctual::memory_store>();
  blocking_store st{store};
  CHECK(store->schedule_count() == 0);
  CHECK(store->job_count() == 0);
  for (std::string id : {"a", "b", "c"}) REQUIRE(st.add(make_schedule(id, at(10s))));
  REQUIRE_FALSE(st.add(make_schedule("a", at(10s)), punctual::conflict_policy::keep));
  CHECK(store->schedule_count() == 3);
  REQUIRE(st.add_job(make_job("a", at(10s))) > 0);
  REQUIRE(st.add_job(make_job("b", at(10s))) > 0);
  REQUIRE(st.add_job(make_job("b", at(10s))) == 0);
  CHECK(store->job_count() == 2);
  REQUIRE(st.remove("b"));
  CHECK(store->schedule_count() == 2);
  CHECK(store->job_count() == 2);  // b's cancelled job is history, kept
}

TEST_CASE("memory store reuses a removed schedule's slot without its old due time", "[store][memory]") {
  blocking_store st{std::make_shared<punctual::memory_store>()};
  REQUIRE(st.add(make_schedule("a", at(10s))));
  REQUIRE(st.remove("a"));
  REQUIRE(st.add(make_schedule("b", at(20s))));  // takes a's slot
  CHECK(st.acquire("n1", at(15s), at(40s)).empty());
  CHECK(st.next_due().schedule == at(20s));
  CHECK(punctual::testing::conformance_detail::ids_of(st.acquire("n1", at(20s), at(40s))) ==
        std::vector<std::string>{"b"});
}
