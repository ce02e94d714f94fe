// The punctual-cron crontab parser (crontab.hpp): every line kind, env and zones, stable ids,
// payloads, and every error with its line and column. Also host_zone() (zone.hpp).
#include "punctual/crontab.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "punctual/error.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/zone.hpp"

namespace {

using namespace std::chrono_literals;
using punctual::crontab;
using punctual::crontab_diagnostic;
using punctual::crontab_options;
using punctual::parse_crontab;
using env_list = std::vector<std::pair<std::string, std::string>>;

punctual::time_point at(std::string_view iso) { return punctual::parse_iso(iso); }

crontab_options zone_options(const punctual::time_zone& z) {
  crontab_options o;
  o.zone = &z;
  return o;
}

// Parses with UTC as the default zone, so results do not depend on the host.
crontab parse(std::string_view text) { return parse_crontab(text, zone_options(punctual::utc_zone())); }

// The next fire time of entry `i` after `from`, as ISO 8601 UTC ("never" when none).
std::string next_of(const crontab& tab, std::size_t i, std::string_view from) {
  const auto t = tab.entries.at(i).spec.trigger.next(at(from));
  return t ? punctual::format_iso(*t) : "never";
}

// The (line, column) of every error.
std::vector<std::pair<std::size_t, std::size_t>> places(const crontab& tab) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const auto& e : tab.errors) out.emplace_back(e.line, e.column);
  return out;
}

// The only error of a one-problem crontab.
crontab_diagnostic only_error(std::string_view text) {
  const crontab tab = parse(text);
  INFO(text);
  REQUIRE(tab.errors.size() == 1);
  return tab.errors.front();
}

}  // namespace

TEST_CASE("a five-field entry becomes a spec with trigger, task, payload and derived id", "[crontab]") {
  const crontab tab = parse(
      "# a comment\n"
      "\n"
      "   \t  # an indented comment\n"
      "0 9 * * MON-FRI    /usr/local/bin/report --daily   \n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 1);
  const auto& e = tab.entries[0];
  CHECK(e.line == 4);
  CHECK(e.command == "/usr/local/bin/report --daily");
  CHECK(e.env.empty());
  CHECK_FALSE(e.explicit_id);
  CHECK(e.spec.task == "crontab");
  CHECK(e.spec.trigger.to_string() == "cron:0 9 * * MON-FRI");
  CHECK(e.spec.payload == "/usr/local/bin/report --daily");
  CHECK(e.spec.id == punctual::crontab_entry_id("cron:0 9 * * MON-FRI", "/usr/local/bin/report --daily"));
  CHECK(e.spec.options == punctual::schedule_options{});
  CHECK_FALSE(e.spec.paused);
  CHECK(next_of(tab, 0, "2026-01-03T12:00:00Z") == "2026-01-05T09:00:00Z");  // Saturday -> Monday
}

TEST_CASE("the task name comes from crontab_options", "[crontab]") {
  crontab_options o = zone_options(punctual::utc_zone());
  o.task = "shell";
  const crontab tab = parse_crontab("* * * * * true\n", o);
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].spec.task == "shell");
}

TEST_CASE("a plain line always has five fields: the sixth word starts the command", "[crontab]") {
  const crontab tab = parse("*/5 * * * * * echo six\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].spec.trigger.to_string() == "cron:*/5 * * * *");
  CHECK(tab.entries[0].command == "* echo six");
}

TEST_CASE("the command is kept verbatim: % and # are not special", "[crontab]") {
  const crontab tab = parse("0 0 * * *\tdate +%s%N >> /tmp/x # trailing\n");
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].command == "date +%s%N >> /tmp/x # trailing");
}

TEST_CASE("macros map to their cron expressions, case-insensitively", "[crontab]") {
  const crontab tab =
      parse("@yearly a\n@annually b\n@monthly c\n@weekly d\n@daily e\n@midnight f\n@hourly g\n@DAILY h\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 8);
  const char* from = "2026-03-14T10:20:00Z";  // a Saturday
  CHECK(next_of(tab, 0, from) == "2027-01-01T00:00:00Z");
  CHECK(next_of(tab, 1, from) == "2027-01-01T00:00:00Z");
  CHECK(next_of(tab, 2, from) == "2026-04-01T00:00:00Z");
  CHECK(next_of(tab, 3, from) == "2026-03-15T00:00:00Z");
  CHECK(next_of(tab, 4, from) == "2026-03-15T00:00:00Z");
  CHECK(next_of(tab, 5, from) == "2026-03-15T00:00:00Z");
  CHECK(next_of(tab, 6, from) == "2026-03-14T11:00:00Z");
  CHECK(next_of(tab, 7, from) == "2026-03-15T00:00:00Z");
  CHECK(tab.entries[7].spec.trigger.to_string() == "cron:@daily");
  CHECK(tab.entries[6].command == "g");
}

TEST_CASE("@every makes an epoch-aligned interval trigger", "[crontab]") {
  const crontab tab = parse("@every 1s tick\n@every   1h30m   long job\n@every 250ms fast\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 3);
  const auto* every = tab.entries[1].spec.trigger.target<punctual::interval_trigger>();
  REQUIRE(every != nullptr);
  CHECK(every->every() == 90min);
  CHECK_FALSE(every->start().has_value());
  CHECK(tab.entries[1].command == "long job");
  CHECK(tab.entries[1].spec.trigger.to_string() == "interval:1h30m");
  CHECK(next_of(tab, 0, "2026-01-01T10:10:00.5Z") == "2026-01-01T10:10:01Z");
  CHECK(next_of(tab, 0, "2026-01-01T10:10:01Z") == "2026-01-01T10:10:02Z");
  // 2026-01-01T00:00:00Z is a multiple of 90 minutes since the epoch: fires at 09:00, 10:30, ...
  CHECK(next_of(tab, 1, "2026-01-01T10:10:00Z") == "2026-01-01T10:30:00Z");
  CHECK(next_of(tab, 1, "2026-01-01T10:30:00Z") == "2026-01-01T12:00:00Z");
  CHECK(tab.entries[2].spec.trigger.next(at("2026-01-01T00:00:00.1Z")) == at("2026-01-01T00:00:00.25Z"));
}

TEST_CASE("@seconds takes six fields with the seconds first", "[crontab]") {
  const crontab tab = parse("@seconds */5 * * * * * date +%s\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].command == "date +%s");
  CHECK(tab.entries[0].spec.trigger.to_string() == "cron:*/5 * * * * *");
  std::vector<std::string> fires;
  auto t = std::optional(at("2026-01-01T10:00:02Z"));
  for (int i = 0; i < 4; ++i) {
    t = tab.entries[0].spec.trigger.next(*t);
    REQUIRE(t);
    fires.push_back(punctual::format_iso(*t));
  }
  CHECK(fires == std::vector<std::string>{"2026-01-01T10:00:05Z", "2026-01-01T10:00:10Z",
                                          "2026-01-01T10:00:15Z", "2026-01-01T10:00:20Z"});
}

TEST_CASE("environment lines accumulate, later ones replace earlier ones, quotes are stripped", "[crontab]") {
  const crontab tab = parse(
      "A=1\n"
      "  B = \"two words\"  \n"
      "C='x=y'\n"
      "EMPTY=\"\"\n"
      "TZ=Europe/Berlin\n"
      "0 0 * * * one\n"
      "A=3\n"
      "1 0 * * * two\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 2);
  CHECK(tab.entries[0].env ==
        env_list{{"A", "1"}, {"B", "two words"}, {"C", "x=y"}, {"EMPTY", ""}, {"TZ", "Europe/Berlin"}});
  CHECK(tab.entries[1].env ==
        env_list{{"B", "two words"}, {"C", "x=y"}, {"EMPTY", ""}, {"TZ", "Europe/Berlin"}, {"A", "3"}});
  // TZ is an ordinary variable: the schedule stays in the default zone
  CHECK(tab.entries[0].spec.trigger.to_string() == "cron:0 0 * * *");
  const auto payload = punctual::decode_crontab_payload(tab.entries[1].spec.payload);
  CHECK(payload.env == tab.entries[1].env);
  CHECK(payload.command == "two");
}

TEST_CASE("CRON_TZ and tz= choose the zone of the cron fields", "[crontab]") {
  const auto& tokyo = punctual::locate_zone("Asia/Tokyo");
  const crontab tab = parse_crontab(
      "0 9 * * * in-default\n"
      "CRON_TZ=Europe/Berlin\n"
      "0 9 * * * in-berlin\n"
      "#@ tz=America/New_York\n"
      "0 9 * * * in-new-york\n"
      "#@ tz=UTC\n"
      "0 9 * * * in-utc\n"
      "CRON_TZ=\n"
      "0 9 * * * back-to-default\n",
      zone_options(tokyo));
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 5);
  const char* from = "2026-01-15T00:00:00Z";
  CHECK(next_of(tab, 0, from) == "2026-01-16T00:00:00Z");  // 09:00 in Tokyo (+09)
  CHECK(next_of(tab, 1, from) == "2026-01-15T08:00:00Z");  // 09:00 in Berlin (+01)
  CHECK(next_of(tab, 2, from) == "2026-01-15T14:00:00Z");  // 09:00 in New York (-05)
  CHECK(next_of(tab, 3, from) == "2026-01-15T09:00:00Z");
  CHECK(next_of(tab, 4, from) == "2026-01-16T00:00:00Z");
  CHECK(tab.entries[1].spec.trigger.to_string() == "cron:0 9 * * * tz=Europe/Berlin");
  CHECK(tab.entries[1].env.empty());  // CRON_TZ is not passed on
}

TEST_CASE("the default zone is the host's zone when none is given", "[crontab]") {
  const crontab tab = parse_crontab("0 9 * * * x\n");
  REQUIRE(tab.entries.size() == 1);
  const auto* c = tab.entries[0].spec.trigger.target<punctual::cron_trigger>();
  REQUIRE(c != nullptr);
  CHECK(c->zone().name() == punctual::host_zone().name());
}

TEST_CASE("#@ dst sets the daylight-saving policy of the next entry", "[crontab]") {
  const crontab tab = parse("#@ tz=Europe/Berlin dst=gap=skip,overlap=once\n30 2 * * * x\n30 2 * * * y\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 2);
  const auto* c = tab.entries[0].spec.trigger.target<punctual::cron_trigger>();
  REQUIRE(c != nullptr);
  CHECK(c->policy() == punctual::dst_policy{punctual::dst_gap::skip, punctual::dst_overlap::once});
  CHECK(tab.entries[0].spec.trigger.to_string() == "cron:30 2 * * * tz=Europe/Berlin gap=skip overlap=once");
  // 2026-03-29 02:30 does not exist in Berlin: skipped, next is the 30th at 02:30 CEST
  CHECK(next_of(tab, 0, "2026-03-28T12:00:00Z") == "2026-03-30T00:30:00Z");
  // the options went to the first entry only
  CHECK(tab.entries[1].spec.trigger.to_string() == "cron:30 2 * * *");
}

TEST_CASE("option lines add up and apply to the next entry only", "[crontab]") {
  const crontab tab = parse(
      "#@ timeout=5m retries=3\n"
      "# a comment between\n"
      "\n"
      "#@misfire=30s\tcoalesce=all max_catch_up=7\n"
      "PATH=/bin\n"
      "#@ max_running=2 overlap=queue jitter=10s retry_backoff=2s retry_backoff_max=1m on_abandoned=rerun\n"
      "#@ start=2026-01-01T00:00:00Z end=2027-01-01T00:00:00+01:00\n"
      "0 0 * * * first\n"
      "0 1 * * * second\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 2);
  punctual::schedule_options want;
  want.timeout = 5min;
  want.retries = 3;
  want.misfire_grace = 30s;
  want.coalesce = punctual::coalesce_policy::all;
  want.max_catch_up = 7;
  want.max_running = 2;
  want.overlap = punctual::overlap_policy::queue;
  want.max_jitter = 10s;
  want.retry_backoff = 2s;
  want.retry_backoff_max = 1min;
  want.on_abandoned = punctual::abandoned_policy::rerun;
  want.start = at("2026-01-01T00:00:00Z");
  want.end = at("2026-12-31T23:00:00Z");
  CHECK(punctual::to_string(tab.entries[0].spec.options) == punctual::to_string(want));
  CHECK(tab.entries[0].spec.options == want);
  CHECK(tab.entries[0].env == env_list{{"PATH", "/bin"}});
  CHECK(tab.entries[1].spec.options == punctual::schedule_options{});
}

TEST_CASE("derived ids are stable and depend on schedule and command only", "[crontab]") {
  const std::string text = "0 0 * * * backup\n*/5 * * * * poll\n@every 1m ping\n";
  const crontab a = parse(text);
  const crontab b = parse(text);
  REQUIRE(a.entries.size() == 3);
  REQUIRE(b.entries.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(a.entries[i].spec.id == b.entries[i].spec.id);
    CHECK(a.entries[i].spec.id.size() == 16);
    CHECK(a.entries[i].spec.id.rfind("job-", 0) == 0);
    CHECK(a.entries[i].spec.id.find_first_not_of("0123456789abcdef", 4) == std::string::npos);
  }
  CHECK(a.entries[0].spec.id != a.entries[1].spec.id);
  CHECK(a.entries[1].spec.id != a.entries[2].spec.id);

  const crontab other_command = parse("0 0 * * * backup --full\n");
  const crontab other_schedule = parse("0 1 * * * backup\n");
  const crontab other_zone = parse("CRON_TZ=Europe/Berlin\n0 0 * * * backup\n");
  const crontab env_and_options = parse("X=1\n#@ timeout=1m retries=2\n0 0 * * * backup\n");
  const crontab spacing = parse("  0   0 * *\t*   backup  \n");
  CHECK(other_command.entries.at(0).spec.id != a.entries[0].spec.id);
  CHECK(other_schedule.entries.at(0).spec.id != a.entries[0].spec.id);
  CHECK(other_zone.entries.at(0).spec.id != a.entries[0].spec.id);
  CHECK(env_and_options.entries.at(0).spec.id == a.entries[0].spec.id);
  CHECK(spacing.entries.at(0).spec.id == a.entries[0].spec.id);
}

TEST_CASE("crontab_entry_id is 48 bits of FNV-1a over trigger text, NUL, command", "[crontab]") {
  // FNV-1a 64 of the single byte 0 is 0xaf63bd4c8601b7df; folded: 0xbd4c8601b7df ^ 0xaf63
  CHECK(punctual::crontab_entry_id("", "") == "job-bd4c860118bc");
  CHECK(punctual::crontab_entry_id("ab", "c") != punctual::crontab_entry_id("a", "bc"));
  CHECK(punctual::crontab_entry_id("cron:0 0 * * *", "x") ==
        punctual::crontab_entry_id("cron:0 0 * * *", "x"));
}

TEST_CASE("#@ id sets an explicit id", "[crontab]") {
  const crontab tab = parse("#@ id=nightly.backup:v2-A_1\n0 0 * * * backup\n0 0 * * * backup\n");
  REQUIRE(tab.errors.empty());  // the derived id of the second one differs from the explicit one
  REQUIRE(tab.entries.size() == 2);
  CHECK(tab.entries[0].spec.id == "nightly.backup:v2-A_1");
  CHECK(tab.entries[0].explicit_id);
  CHECK(tab.entries[1].spec.id == punctual::crontab_entry_id("cron:0 0 * * *", "backup"));
  CHECK_FALSE(tab.entries[1].explicit_id);
}

TEST_CASE("duplicate ids are reported on the second entry, which is left out", "[crontab]") {
  const crontab derived = parse("0 0 * * * backup\nX=1\n0 0 * * *   backup\n");
  REQUIRE(derived.entries.size() == 1);
  REQUIRE(derived.errors.size() == 1);
  const std::string id = punctual::crontab_entry_id("cron:0 0 * * *", "backup");
  CHECK(derived.errors[0] ==
        crontab_diagnostic{3, 0,
                           "duplicate id \"" + id +
                               "\" (line 1 has the same schedule and command); give one an explicit "
                               "\"#@ id=...\""});

  const crontab explicit_ids = parse("#@ id=job\n0 0 * * * a\n\n#@ timeout=1s  id=job\n0 1 * * * b\n");
  REQUIRE(explicit_ids.entries.size() == 1);
  CHECK(explicit_ids.entries[0].command == "a");
  REQUIRE(explicit_ids.errors.size() == 1);
  CHECK(explicit_ids.errors[0] == crontab_diagnostic{4, 19, "duplicate id \"job\" (also on line 2)"});
}

TEST_CASE("payloads round-trip env and command", "[crontab]") {
  const env_list env{{"A", "x=y=z"}, {"EMPTY", ""}, {"PATH", "/usr/bin:/bin"}};
  const std::string p = punctual::encode_crontab_payload(env, "echo a=b | tr = -");
  CHECK(p == "A=x=y=z\nEMPTY=\nPATH=/usr/bin:/bin\necho a=b | tr = -");
  const auto d = punctual::decode_crontab_payload(p);
  CHECK(d.env == env);
  CHECK(d.command == "echo a=b | tr = -");

  const std::string bare = punctual::encode_crontab_payload({}, "FOO=bar cmd");
  CHECK(bare == "FOO=bar cmd");
  const auto db = punctual::decode_crontab_payload(bare);
  CHECK(db.env.empty());
  CHECK(db.command == "FOO=bar cmd");

  const auto empty = punctual::decode_crontab_payload("");
  CHECK(empty.env.empty());
  CHECK(empty.command.empty());

  CHECK_THROWS_AS(punctual::decode_crontab_payload("no-equals\ncmd"), punctual::parse_error);
  CHECK_THROWS_AS(punctual::encode_crontab_payload({{"A", "1\n2"}}, "x"), std::invalid_argument);
  CHECK_THROWS_AS(punctual::encode_crontab_payload({{"A=B", "1"}}, "x"), std::invalid_argument);
  CHECK_THROWS_AS(punctual::encode_crontab_payload({}, "a\nb"), std::invalid_argument);
}

TEST_CASE("cron field errors point at the field's column", "[crontab]") {
  CHECK(only_error("61 * * * * cmd") ==
        crontab_diagnostic{1, 1, "minute field \"61\": 61 is out of range 0-59"});
  CHECK(only_error("0 25 * * * cmd") ==
        crontab_diagnostic{1, 3, "hour field \"25\": 25 is out of range 0-23"});
  CHECK(only_error("# x\n  0  25 * * * cmd") ==
        crontab_diagnostic{2, 6, "hour field \"25\": 25 is out of range 0-23"});
  const auto never = only_error("0 0 30 2 * cmd");
  CHECK(never.line == 1);
  CHECK(never.column == 1);
  CHECK(never.message.find("can never fire") != std::string::npos);
  const auto seconds = only_error("@seconds 0 0 0 32 * * cmd");
  CHECK(seconds.column == 16);
  CHECK(seconds.message.find("day-of-month") != std::string::npos);
}

TEST_CASE("option line errors point at the key or inside the value", "[crontab]") {
  const auto unknown = only_error("#@ timeout=5m frobnicate=1\n0 0 * * * x");
  CHECK(unknown.line == 1);
  CHECK(unknown.column == 15);
  CHECK(unknown.message.rfind("unknown option \"frobnicate\" (expected one of: id, tz, dst, misfire,", 0) ==
        0);

  const auto value = only_error("#@ timeout=5x\n0 0 * * * x");
  CHECK(value.line == 1);
  CHECK(value.column == 13);
  CHECK(value.message.rfind("option timeout \"5x\": not a duration: unknown unit \"x\"", 0) == 0);

  CHECK(only_error("#@ retries=many\n0 0 * * * x") ==
        crontab_diagnostic{1, 12, "option retries \"many\": expected a whole number"});
  CHECK(only_error("#@ id=bad/id\n0 0 * * * x") ==
        crontab_diagnostic{1, 10,
                           "option id \"bad/id\": only letters, digits and . _ : - are allowed in an id"});
  CHECK(only_error("#@ id=\n0 0 * * * x") == crontab_diagnostic{1, 7, "option id: must not be empty"});
  CHECK(only_error("#@ dst=gap=maybe\n0 0 * * * x") ==
        crontab_diagnostic{1, 12, "DST policy \"gap=maybe\": gap must be shift or skip"});
  const auto tz = only_error("#@ tz=Mars/Olympus\n0 0 * * * x");
  CHECK(tz.column == 7);
  CHECK(tz.message.rfind("time zone \"Mars/Olympus\": unknown time zone", 0) == 0);
  CHECK(only_error("#@ timeout\n0 0 * * * x") ==
        crontab_diagnostic{1, 4, "expected key=value in an option line, got \"timeout\""});
  CHECK(
      only_error("#@ retries=1\n#@ retries=2\n0 0 * * * x") ==
      crontab_diagnostic{2, 4, "option \"retries\" is given more than once for this entry (also on line 1)"});
  CHECK(only_error("#@ start=2026-02-01T00:00:00Z end=2026-01-01T00:00:00Z\n0 0 * * * x") ==
        crontab_diagnostic{1, 35, "option end \"2026-01-01T00:00:00Z\" is before start"});
}

TEST_CASE("an entry whose options are wrong is left out; the next entry is not affected", "[crontab]") {
  const crontab tab = parse("#@ id=a timeout=nope\n0 0 * * * x\n0 1 * * * y\n");
  REQUIRE(tab.errors.size() == 1);
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].command == "y");
  CHECK(tab.entries[0].spec.options == punctual::schedule_options{});
  CHECK_FALSE(tab.entries[0].explicit_id);
}

TEST_CASE("an option line without an entry after it is an error", "[crontab]") {
  const crontab tab = parse("0 0 * * * x\n  #@ timeout=1m\n# trailing comment\nA=1\n");
  CHECK(tab.entries.size() == 1);
  REQUIRE(tab.errors.size() == 1);
  CHECK(tab.errors[0] == crontab_diagnostic{2, 3, "option line without an entry after it"});
}

TEST_CASE("environment line errors", "[crontab]") {
  const auto zone = only_error("CRON_TZ=Mars/Olympus\n0 0 * * * x");
  CHECK(zone.line == 1);
  CHECK(zone.column == 9);
  CHECK(zone.message.rfind("CRON_TZ: time zone \"Mars/Olympus\": unknown time zone", 0) == 0);
  const auto quoted = only_error("CRON_TZ = \"Europe/Ber.lin\"\n");
  CHECK(quoted.column == 22);
  CHECK(quoted.message.find("'.' is not allowed") != std::string::npos);
  CHECK(only_error("A=\"open\n") == crontab_diagnostic{1, 3, "missing closing \" in the value of A"});
}

TEST_CASE("entries after a bad CRON_TZ are left out until a good one", "[crontab]") {
  const crontab tab = parse(
      "CRON_TZ=Nowhere/Land\n0 0 * * * a\n@every 1m b\n#@ tz=UTC\n0 0 * * * c\nCRON_TZ=UTC\n0 0 * * * d\n");
  REQUIRE(tab.errors.size() == 1);
  CHECK(tab.errors[0].line == 1);
  REQUIRE(tab.entries.size() == 3);
  CHECK(tab.entries[0].command == "b");
  CHECK(tab.entries[1].command == "c");
  CHECK(tab.entries[2].command == "d");
}

TEST_CASE("entry shape errors", "[crontab]") {
  CHECK(only_error("0 0 * * *") == crontab_diagnostic{1, 10, "missing command"});
  CHECK(only_error("@daily   ") == crontab_diagnostic{1, 7, "missing command"});
  CHECK(only_error("0 0 * *") ==
        crontab_diagnostic{1, 0,
                           "expected 5 time fields (minute hour day-of-month month day-of-week) and a "
                           "command, got 4 words"});
  CHECK(only_error("@reboot /usr/bin/start") ==
        crontab_diagnostic{
            1, 1, "@reboot is not supported: punctual-cron runs entries on a schedule, not at startup"});
  CHECK(
      only_error("  @often x") ==
      crontab_diagnostic{1, 3,
                         "unknown macro \"@often\" (expected one of: @yearly, @annually, @monthly, @weekly, "
                         "@daily, @midnight, @hourly, @every, @seconds)"});
  CHECK(only_error("@every 0s x") ==
        crontab_diagnostic{1, 8, "@every interval \"0s\": must be longer than 0"});
  const auto unit = only_error("@every 5x x");
  CHECK(unit.column == 9);
  CHECK(unit.message.rfind("@every interval \"5x\": unknown unit \"x\"", 0) == 0);
  CHECK(only_error("@every") ==
        crontab_diagnostic{1, 0, "@every needs an interval and a command, e.g. \"@every 5m command\""});
  CHECK(only_error("@seconds * * * * cmd").column == 0);
  CHECK(only_error(std::string(70 * 1024, 'x')) ==
        crontab_diagnostic{1, 0, "line is longer than 65536 bytes"});
}

TEST_CASE("every error is reported, in line order, and the good entries are kept", "[crontab]") {
  const crontab tab = parse(
      "0 0 * * * good-1\n"               // 1
      "61 0 * * * bad-minute\n"          // 2
      "#@ id=x/y\n"                      // 3
      "0 0 * * * has-bad-option\n"       // 4
      "CRON_TZ=UTC\n"                    // 5
      "@reboot x\n"                      // 6
      "0 25 * * *\n"                     // 7: two errors
      "@every 1m good-2\n"               // 8
      "#@ nope=1 retries=x\n"            // 9: two errors
      "0 0 * * * has-two-bad-options\n"  // 10
      "#@ timeout=1m\n");                // 11: no entry after it
  CHECK(places(tab) == std::vector<std::pair<std::size_t, std::size_t>>{
                           {2, 1}, {3, 8}, {6, 1}, {7, 3}, {7, 11}, {9, 4}, {9, 19}, {11, 1}});
  REQUIRE(tab.entries.size() == 2);
  CHECK(tab.entries[0].command == "good-1");
  CHECK(tab.entries[1].command == "good-2");
  CHECK(tab.entries[1].line == 8);
}

TEST_CASE("CRLF line endings are accepted", "[crontab]") {
  const crontab tab = parse("A=1\r\n#@ timeout=1m\r\n0 0 * * * echo hi\r\n\r\n0 25 * * * x\r\n");
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].command == "echo hi");
  CHECK(tab.entries[0].env == env_list{{"A", "1"}});
  CHECK(tab.entries[0].spec.options.timeout == std::optional<punctual::duration>(1min));
  REQUIRE(tab.errors.size() == 1);
  CHECK(tab.errors[0].line == 5);
  CHECK(tab.errors[0].column == 3);
}

TEST_CASE("columns count characters, not bytes", "[crontab]") {
  // "Zürich" is rejected at its 'ü' (column 8); timeout=bad starts 22 characters in (23 bytes)
  const crontab tab = parse("#@ tz=Z\xc3\xbcrich timeout=bad\n0 0 * * * x\n");
  CHECK(places(tab) == std::vector<std::pair<std::size_t, std::size_t>>{{1, 8}, {1, 22}});
  // an id character that is not allowed: the 'é' of "café", at column 10
  CHECK(only_error("#@ id=caf\xc3\xa9\n0 0 * * * x") ==
        crontab_diagnostic{
            1, 10, "option id \"caf\xc3\xa9\": only letters, digits and . _ : - are allowed in an id"});
  // a fullwidth digit in a cron field is quoted whole
  CHECK(
      only_error("GREETING=gr\xc3\xbc\xc3\x9f dich\n0 0 \xef\xbc\x93 * * x") ==
      crontab_diagnostic{2, 5,
                         "day-of-month field \"\xef\xbc\x93\": unexpected U+FF13 '\xef\xbc\x93' (expected a "
                         "number)"});
}

TEST_CASE("non-UTF-8 bytes pass through; empty text has nothing", "[crontab]") {
  const crontab tab = parse("V=\xff\xfe\n0 0 * * * echo \xc3\x28\n");
  REQUIRE(tab.errors.empty());
  REQUIRE(tab.entries.size() == 1);
  CHECK(tab.entries[0].command == "echo \xc3\x28");
  CHECK(tab.entries[0].env == env_list{{"V", "\xff\xfe"}});
  const crontab none = parse("");
  CHECK(none.entries.empty());
  CHECK(none.errors.empty());
}

TEST_CASE("format_diagnostic writes FILE:LINE:COLUMN: message", "[crontab]") {
  CHECK(punctual::format_diagnostic("/etc/punctual/crontab", {7, 3, "hour field \"25\": bad"}) ==
        "/etc/punctual/crontab:7:3: hour field \"25\": bad");
  CHECK(punctual::format_diagnostic("tab", {12, 0, "duplicate id"}) == "tab:12: duplicate id");
}

TEST_CASE("host_zone follows TZ, ignoring a leading ':' and values that are not zone names",
          "[crontab][zone]") {
  const char* saved = std::getenv("TZ");
  const std::optional<std::string> old = saved ? std::optional<std::string>(saved) : std::nullopt;
  ::unsetenv("TZ");
  const std::string without_tz = punctual::host_zone().name();
  CHECK_FALSE(without_tz.empty());
  ::setenv("TZ", "Europe/Berlin", 1);
  const std::string berlin = punctual::host_zone().name();
  ::setenv("TZ", ":Asia/Tokyo", 1);
  const std::string tokyo = punctual::host_zone().name();
  ::setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
  const std::string posix_rule = punctual::host_zone().name();
  ::setenv("TZ", "", 1);
  const std::string empty = punctual::host_zone().name();
  if (old)
    ::setenv("TZ", old->c_str(), 1);
  else
    ::unsetenv("TZ");
  CHECK(berlin == "Europe/Berlin");
  CHECK(tokyo == "Asia/Tokyo");
  CHECK(posix_rule == without_tz);
  CHECK(empty == without_tz);
}
