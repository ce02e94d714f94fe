// punctual::error and its family: one base for the library's errors, each type carrying its
// data; and parse errors that quote whole UTF-8 characters, count columns in characters and
// stay valid UTF-8 whatever the input.

#include "punctual/error.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "punctual/crontab.hpp"
#include "punctual/detail/utf8.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/parse.hpp"

namespace {

using punctual::parse_error;

// Well-formed UTF-8 per the Unicode standard's table of well-formed byte sequences, written out
// range by range (independently of detail::utf8_sequence).
bool valid_utf8(std::string_view s) {
  struct range {
    unsigned char lo, hi;
  };
  struct form {
    range lead;
    range second;
    int tail;  // continuation bytes 80-BF after the second byte
  };
  static constexpr form forms[] = {
      {{0xC2, 0xDF}, {0x80, 0xBF}, 0}, {{0xE0, 0xE0}, {0xA0, 0xBF}, 1}, {{0xE1, 0xEC}, {0x80, 0xBF}, 1},
      {{0xED, 0xED}, {0x80, 0x9F}, 1}, {{0xEE, 0xEF}, {0x80, 0xBF}, 1}, {{0xF0, 0xF0}, {0x90, 0xBF}, 2},
      {{0xF1, 0xF3}, {0x80, 0xBF}, 2}, {{0xF4, 0xF4}, {0x80, 0x8F}, 2},
  };
  auto in = [](unsigned char c, range r) { return c >= r.lo && c <= r.hi; };
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const form* f = nullptr;
    for (const form& x : forms)
      if (in(c, x.lead)) f = &x;
    if (f == nullptr || i + 2 + static_cast<std::size_t>(f->tail) > s.size()) return false;
    if (!in(static_cast<unsigned char>(s[i + 1]), f->second)) return false;
    for (int k = 0; k < f->tail; ++k)
      if (!in(static_cast<unsigned char>(s[i + 2 + static_cast<std::size_t>(k)]), {0x80, 0xBF})) return false;
    i += 2 + static_cast<std::size_t>(f->tail);
  }
  return true;
}

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

template <class F>
parse_error caught(F&& f) {
  try {
    f();
  } catch (const parse_error& e) {
    return e;
  }
  FAIL("no parse_error thrown");
  throw;  // unreachable: FAIL throws
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

TEST_CASE("error: a parse error quotes whole UTF-8 characters and is valid UTF-8", "[error][utf8]") {
  SECTION("cron expression: a fullwidth digit (3 bytes) is quoted whole, at its character column") {
    const auto e = caught([] { punctual::cron_trigger t("0 0 \xEF\xBC\x93 * *"); });  // U+FF13
    CHECK(e.field() == "day-of-month field");
    CHECK(e.text() == "\xEF\xBC\x93");
    CHECK(e.column() == 5);
    CHECK(e.reason() == "unexpected U+FF13 '\xEF\xBC\x93' (expected a number)");
    CHECK(valid_utf8(e.what()));
    CHECK(std::string(e.what()).find("\"\xEF\xBC\x93\"") != std::string::npos);
  }
  SECTION("cron expression: a 4-byte character in a step") {
    const auto e = caught([] { punctual::cron_trigger t("*/\xF0\x9F\x98\x80 * * * *"); });  // U+1F600
    CHECK(e.text() == "\xF0\x9F\x98\x80");
    CHECK(e.column() == 3);
    CHECK(e.reason().find("U+1F600") != std::string::npos);
    CHECK(valid_utf8(e.what()));
  }
  SECTION("cron expression: a byte that is not UTF-8 appears as \\xNN in what()") {
    const auto e = caught([] { punctual::cron_trigger t("0 0 1,\xEF * *"); });
    CHECK(e.text() == "\xEF");  // the bytes themselves are kept
    CHECK(e.column() == 7);
    CHECK(e.reason() == "unexpected byte 0xEF (expected a number)");
    CHECK(valid_utf8(e.what()));
    CHECK(std::string(e.what()) ==
          "\"0 0 1,\\xEF * *\": day-of-month field \"\\xEF\" at column 7: unexpected byte 0xEF (expected a "
          "number)");
  }
  SECTION("duration") {
    const auto e = caught([] { (void)punctual::parse_duration("1\xEF\xBD\x88"); });  // "1" + U+FF48
    CHECK(e.text() == "1\xEF\xBD\x88");
    CHECK(e.column() == 2);
    CHECK(valid_utf8(e.what()));
    CHECK(std::string(e.what()).find("1\xEF\xBD\x88") != std::string::npos);
  }
  SECTION("trigger text: columns count characters, also after a multi-byte one") {
    // tz= is checked before the expression: the zone is 19 characters in (21 bytes)
    const auto e = caught([] { (void)punctual::parse_trigger("cron:\xEF\xBC\x90 0 * * * tz=Nope/X"); });
    CHECK(e.field() == "time zone");
    CHECK(e.column() == 19);
    CHECK(valid_utf8(e.what()));
  }
  SECTION("crontab line") {
    const auto tab = punctual::parse_crontab("0 0 \xEF\xBC\x93 * * true\n", {.zone = &punctual::utc_zone()});
    REQUIRE(tab.errors.size() == 1);
    CHECK(tab.errors[0].column == 5);
    CHECK(valid_utf8(tab.errors[0].message));
    CHECK(tab.errors[0].message.find("\"\xEF\xBC\x93\"") != std::string::npos);
  }
  SECTION("crontab: bytes that are not UTF-8 are quoted as \\xNN") {
    const auto tab = punctual::parse_crontab("#@ id=a\xFF\n@daily true\n", {.zone = &punctual::utc_zone()});
    REQUIRE(tab.errors.size() == 1);
    CHECK(tab.errors[0].column == 8);
    CHECK(valid_utf8(tab.errors[0].message));
    CHECK(tab.errors[0].message.find("a\\xFF") != std::string::npos);
  }
}

TEST_CASE("error: the UTF-8 helpers find character boundaries", "[error][utf8]") {
  using punctual::detail::utf8_column;
  using punctual::detail::utf8_printable;
  using punctual::detail::utf8_sequence;
  using punctual::detail::utf8_whole;
  CHECK(utf8_sequence("a", 0) == 0);
  CHECK(utf8_sequence("\xC3\xA9", 0) == 2);          // U+00E9
  CHECK(utf8_sequence("\xC3\xA9", 1) == 0);          // a continuation byte alone
  CHECK(utf8_sequence("\xC0\xAF", 0) == 0);          // overlong '/'
  CHECK(utf8_sequence("\xE0\x80\xAF", 0) == 0);      // overlong, 3 bytes
  CHECK(utf8_sequence("\xED\xA0\x80", 0) == 0);      // surrogate D800
  CHECK(utf8_sequence("\xF4\x90\x80\x80", 0) == 0);  // past U+10FFFF
  CHECK(utf8_sequence("\xF4\x8F\xBF\xBF", 0) == 4);  // U+10FFFF
  CHECK(utf8_sequence("\xE2\x82", 0) == 0);          // cut short
  // columns: a character is one, a stray byte is one
  CHECK(utf8_column("a\xC3\xA9z", 0) == 1);
  CHECK(utf8_column("a\xC3\xA9z", 3) == 3);
  CHECK(utf8_column("\xFF\xFFz", 2) == 3);
  CHECK(utf8_column("ab", 2) == 3);
  // widening: any byte of a character selects the whole character
  CHECK(utf8_whole("x\xE2\x82\xACy", 2, 1) == "\xE2\x82\xAC");
  CHECK(utf8_whole("x\xE2\x82\xACy", 1, 1) == "\xE2\x82\xAC");
  CHECK(utf8_whole("x\xE2\x82\xACy", 0, 2) == "x\xE2\x82\xAC");
  CHECK(utf8_whole("x\xE2\x82\xACy", 4, 1) == "y");
  CHECK(utf8_whole("x\xFF\x82y", 1, 1) == "\xFF");  // not a sequence: bytes stay bytes
  CHECK(utf8_printable("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(utf8_printable("a\xFF\xC3") == "a\\xFF\\xC3");
}
