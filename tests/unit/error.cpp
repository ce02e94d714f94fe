// punctual::error and its family: one base for the library's errors, each type carrying its
// data.

#include "punctual/error.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "punctual/crontab.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"

namespace {

using punctual::parse_error;

// Throws `e`, catches it as punctual::error and gives back what was caught, as an E (nothing
// when it is not one).
template <class E>
std::optional<E> as_thrown(const E& e) {
  try {
    throw e;
  } catch (const punctual::error& base) {
    if (const auto* p = dynamic_cast<const E*>(&base)) return *p;
  }
  return std::nullopt;
}

}  // namespace

static_assert(std::is_base_of_v<std::runtime_error, punctual::error>);
static_assert(std::is_base_of_v<punctual::error, punctual::parse_error>);
static_assert(std::is_base_of_v<punctual::error, punctual::invalid_schedule>);
static_assert(std::is_base_of_v<punctual::error, punctual::schedule_conflict>);
static_assert(std::is_base_of_v<punctual::error, punctual::schedule_not_found>);
// one std::exception base only, so catch (const std::exception&) is never ambiguous
static_assert(!std::is_base_of_v<std::invalid_argument, punctual::parse_error>);

TEST_CASE("error: every punctual error is caught as punctual::error and keeps its data", "[error]") {
  SECTION("parse_error, thrown by a parser") {
    try {
      punctual::cron_trigger t("61 * * * *");
      FAIL("accepted");
    } catch (const punctual::error& e) {
      const auto* p = dynamic_cast<const parse_error*>(&e);
      REQUIRE(p != nullptr);
      CHECK(p->field() == "minute field");
      CHECK(p->text() == "61");
      CHECK(p->column() == 1);
      CHECK(p->reason() == "61 is out of range 0-59");
      CHECK(std::string(e.what()) ==
            "\"61 * * * *\": minute field \"61\" at column 1: 61 is out of range 0-59");
    }
  }
  SECTION("invalid_schedule, schedule_conflict, schedule_not_found carry the schedule id") {
    const auto bad = as_thrown(punctual::invalid_schedule("backup", "task name must not be empty"));
    REQUIRE(bad);
    CHECK(bad->id() == "backup");
    CHECK(bad->reason() == "task name must not be empty");
    CHECK(std::string(bad->what()) == "schedule \"backup\": task name must not be empty");
    // without an id the message is the reason alone
    const punctual::invalid_schedule no_id("", "schedule id must not be empty");
    CHECK(no_id.id().empty());
    CHECK(std::string(no_id.what()) == "schedule id must not be empty");

    const auto conflict = as_thrown(punctual::schedule_conflict("nightly"));
    REQUIRE(conflict);
    CHECK(conflict->id() == "nightly");
    CHECK(std::string(conflict->what()) == "schedule \"nightly\" already exists");

    const auto missing = as_thrown(punctual::schedule_not_found("gone"));
    REQUIRE(missing);
    CHECK(missing->id() == "gone");
    CHECK(std::string(missing->what()) == "no schedule \"gone\"");
  }
  SECTION("and still as std::runtime_error / std::exception") {
    CHECK_THROWS_AS(punctual::parse_duration("5x"), std::runtime_error);
    CHECK_THROWS_AS(throw punctual::schedule_conflict("a"), std::runtime_error);
    CHECK_THROWS_AS(throw punctual::invalid_schedule("a", "b"), std::exception);
  }
  SECTION("others' errors are not punctual::error") {
    bool punctual_error = false, other = false;
    try {
      (void)punctual::encode_crontab_payload({}, "a\nb");
    } catch (const punctual::error&) {
      punctual_error = true;
    } catch (const std::invalid_argument&) {
      other = true;
    }
    CHECK_FALSE(punctual_error);
    CHECK(other);
  }
}
