// cron_trigger against the known answers of four other cron libraries' test suites
// (tests/data/vectors/cron_peers.tsv, a copy of the shared set; README.md there describes the
// columns and dialects).
//
// Every row is accounted for: it is either reproduced exactly (after translating its
// dialect), or listed below by source id with the reason punctual differs and what punctual
// gives instead. The counts at the end make sure no row can silently vanish.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/zone.hpp"

namespace {

using punctual::time_point;

struct vector_row {
  std::string source;  // "<dialect>:<file>:<line>"
  std::string dialect;
  std::string expression;
  std::string zone;
  std::string start;
  std::vector<std::string> expected;
};

std::string read_vectors_file(const std::string& name) {
  std::vector<std::string> dirs;
#ifdef PUNCTUAL_SHARED_VECTORS
  dirs.emplace_back(PUNCTUAL_SHARED_VECTORS);
#endif
  for (const char* d :
       {"../shared/vectors", "../../shared/vectors", "../../../shared/vectors", "../../../../shared/vectors"})
    dirs.emplace_back(d);
  for (const auto& d : dirs) {
    std::ifstream in(d + "/" + name);
    if (in) {
      std::ostringstream s;
      s << in.rdbuf();
      return s.str();
    }
  }
  return {};
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) return out;
    i = j + 1;
  }
}

std::vector<vector_row> load_rows() {
  const std::string text = read_vectors_file("cron_peers.tsv");
  std::vector<vector_row> rows;
  bool header = true;
  for (std::string line : split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (header) {
      header = false;
      continue;
    }
    const auto cols = split(line, '\t');
    REQUIRE(cols.size() >= 5);
    vector_row r;
    r.source = cols[0];
    r.dialect = cols[0].substr(0, cols[0].find(':'));
    r.expression = cols[1];
    r.zone = cols[2];
    r.start = cols[3];
    for (std::size_t i = 4; i < cols.size(); ++i)
      if (!cols[i].empty()) r.expected.push_back(cols[i]);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<std::string> fields_of(const std::string& expr) {
  std::vector<std::string> f;
  std::istringstream in(expr);
  for (std::string w; in >> w;) f.push_back(w);
  return f;
}

std::string join(const std::vector<std::string>& f) {
  std::string s;
  for (const auto& w : f) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Adds `delta` to every number in `field` that is a value (not a step after '/', not a week
// number after '#').
std::string shift_numbers(const std::string& field, int delta) {
  std::string out;
  std::size_t i = 0;
  while (i < field.size()) {
    if (field[i] >= '0' && field[i] <= '9') {
      std::size_t j = i;
      while (j < field.size() && field[j] >= '0' && field[j] <= '9') ++j;
      const int v = std::stoi(field.substr(i, j - i));
      const char before = i == 0 ? '\0' : field[i - 1];
      out += (before == '/' || before == '#') ? std::to_string(v) : std::to_string(v + delta);
      i = j;
    } else {
      out += field[i++];
    }
  }
  return out;
}

// Translates a row's expression into punctual's dialect: croncpp/quartz and croncpp/oracle
// number days of week 1-7 (Sunday = 1), croncpp/oracle numbers months 0-11.
std::string translate(const vector_row& r) {
  auto f = fields_of(r.expression);
  if (r.dialect == "croncpp/quartz" || r.dialect == "croncpp/oracle") {
    REQUIRE(f.size() >= 6);
    f[5] = shift_numbers(f[5], -1);
    if (r.dialect == "croncpp/oracle") f[4] = shift_numbers(f[4], +1);
  }
  return join(f);
}

// Rows whose expression uses syntax outside punctual's dialect: punctual rejects them.
const std::map<std::string, std::string>& unsupported_rows() {
  static const std::map<std::string, std::string> m = [] {
    std::map<std::string, std::string> r;
    // supertinycron's "x#-n" (n-th last weekday x): punctual accepts x#n with n 1-5 only;
    // the last weekday x of a month is written xL.
    for (int line : {512, 513, 514, 515, 522, 523, 524, 525, 532, 533, 534, 535, 542, 543,
                     544, 545, 552, 553, 554, 555, 562, 563, 564, 565, 572, 573, 574, 575})
      r["supertinycron:ccronexpr_test.c:" + std::to_string(line)] = "x#-n is not punctual syntax";
    // supertinycron's lone "W" in day-of-month (any weekday): punctual needs nW; write MON-FRI.
    r["supertinycron:ccronexpr_test.c:612"] = "lone W is not punctual syntax";
    r["supertinycron:ccronexpr_test.c:613"] = "lone W is not punctual syntax";
    // libcron accepts '?' in the hour field; punctual only in day-of-month and day-of-week.
    r["libcron:test/CronScheduleTest.cpp:98"] = "'?' in the hour field is not punctual syntax";
    return r;
  }();
  return m;
}

// Rows where punctual's documented policy gives another answer: source id -> (why, what
// punctual gives instead, in the same order as the row's expected values).
//
// punctual's day rule is Vixie cron's: a day-of-month or day-of-week field that starts with
// '*' (`*/2`) does not make the two fields match with OR. ccronexpr and supertinycron always
// AND, croncpp ORs `*/2` with a restricted field. No row of the set has a day field that starts
// with '*' other than a plain `*` (counted below as star_day_rows), so the rule changes none of
// them; a row that did would be listed here with its reason.
struct difference {
  std::string why;
  std::vector<std::string> punctual_gives;
};

const std::map<std::string, difference>& different_rows() {
  static const std::map<std::string, difference> m = [] {
    std::map<std::string, difference> r;
    // supertinycron reads a lone L in day-of-week as Sunday; punctual (like croncpp) as the
    // last day of the week, Saturday.
    r["supertinycron:ccronexpr_test.c:614"] = {"lone L in day-of-week is Saturday", {"2010-10-30T00:00:00Z"}};
    r["supertinycron:ccronexpr_test.c:615"] = {"lone L in day-of-week is Saturday", {"2010-10-23T00:00:00Z"}};
    r["supertinycron:ccronexpr_test.c:616"] = {"lone L in day-of-week is Saturday", {"2010-10-30T00:00:00Z"}};
    // DST gap, gap=shift: a wall-clock time that does not exist fires once at the first
    // instant after the gap (the peers skip to the next existing match).
    r["supertinycron:ccronexpr_test.c:359"] = {"gap=shift fires at the end of the gap",
                                               {"2024-03-31T03:00:00+02:00"}};
    r["supertinycron:ccronexpr_test.c:363"] = {"gap=shift fires at the end of the gap",
                                               {"2024-03-10T03:00:00-04:00"}};
    r["supertinycron:ccronexpr_test.c:379"] = {
        "gap=shift: Apia skipped 2011-12-30; its 00:00 fires when the day "
        "would have been, at the first instant after the gap",
        {"2011-12-31T00:00:00+14:00"}};
    r["supertinycron:ccronexpr_test.c:390"] = {
        "gap=shift: the daily 02:00 falls in Lord Howe's 30-minute gap and "
        "fires at its end that same day",
        {"2024-10-06T02:30:00+11:00"}};
    return r;
  }();
  return m;
}

// Whether a row's day-of-month or day-of-week field starts with '*' without being `*` alone:
// the fields where punctual's day rule differs from croncpp's.
bool has_star_day_field(const std::string& expr) {
  const auto f = fields_of(expr);
  if (f.size() < 5 || f[0].front() == '@') return false;
  const std::size_t dom = f.size() == 5 ? 2 : 3;
  for (const std::size_t i : {dom, dom + 2})
    if (f[i].front() == '*' && f[i] != "*") return true;
  return false;
}

std::optional<std::string> iso_in(const std::optional<time_point>& t, const punctual::time_zone& z) {
  if (!t) return std::nullopt;
  return z.is_utc() ? punctual::format_iso(*t) : punctual::format_iso(*t, z);
}

}  // namespace

TEST_CASE("cron_trigger reproduces the peers' test vectors in the dialect it shares", "[cron][vectors]") {
  const auto rows = load_rows();
  // FAIL, not skip: a missing file must not pass silently
  REQUIRE_FALSE(rows.empty());
  REQUIRE(rows.size() == 471);

  std::size_t matched = 0, documented = 0, rejected = 0, values_checked = 0, zoned = 0, star_day_rows = 0;
  std::set<std::string> seen;
  std::map<std::string, std::size_t> per_dialect;
  for (const auto& r : rows) {
    ++per_dialect[r.dialect];
    INFO(r.source << "  [" << r.expression << "]  " << r.zone << "  from " << r.start);
    REQUIRE(seen.insert(r.source + "|" + r.start).second);  // row ids are unique
    const std::string expr = translate(r);
    if (has_star_day_field(expr)) ++star_day_rows;
    const auto& zone = punctual::locate_zone(r.zone);  // every zone must be available
    if (r.zone != "UTC") ++zoned;

    if (const auto u = unsupported_rows().find(r.source); u != unsupported_rows().end()) {
      INFO("unsupported: " << u->second);
      REQUIRE_THROWS_AS(punctual::cron_trigger(expr, zone), punctual::parse_error);
      ++rejected;
      continue;
    }
    std::optional<punctual::cron_trigger> parsed;
    try {
      parsed.emplace(expr, zone);
    } catch (const punctual::parse_error& e) {
      FAIL_CHECK("rejected: " << e.what());
      continue;
    }
    const punctual::cron_trigger& t = *parsed;
    std::vector<std::string> want = r.expected;
    if (const auto d = different_rows().find(r.source); d != different_rows().end()) {
      INFO("documented difference: " << d->second.why);
      REQUIRE(d->second.punctual_gives.size() == r.expected.size());
      REQUIRE(d->second.punctual_gives != r.expected);
      want = d->second.punctual_gives;
      ++documented;
    } else {
      ++matched;
    }
    // libcron's "next" is inclusive: the first value may equal the start instant
    const time_point start = punctual::parse_iso(r.start);
    time_point after = r.dialect == "libcron" ? start - std::chrono::microseconds{1} : start;
    for (const auto& w : want) {
      const auto got = t.next(after);
      CHECK(iso_in(got, zone) == w);
      if (!got) break;
      CHECK(*got == punctual::parse_iso(w));
      after = *got;
      ++values_checked;
    }
  }
  // rows cannot silently vanish or change category
  CHECK(matched == 433);
  CHECK(documented == 7);
  CHECK(rejected == 28 + 2 + 1);
  CHECK(matched + documented + rejected == rows.size());
  CHECK(per_dialect == std::map<std::string, std::size_t>{{"ccronexpr", 60},
                                                          {"croncpp/oracle", 2},
                                                          {"croncpp/quartz", 5},
                                                          {"croncpp/standard", 122},
                                                          {"libcron", 27},
                                                          {"supertinycron", 255}});
  CHECK(zoned == 22);
  CHECK(star_day_rows == 0);  // see different_rows
  CHECK(values_checked == 482);
  // the lists above name only rows that exist
  auto exists = [&](const std::string& id) {
    return std::any_of(rows.begin(), rows.end(), [&](const vector_row& r) { return r.source == id; });
  };
  for (const auto& entry : unsupported_rows()) CHECK(exists(entry.first));
  for (const auto& entry : different_rows()) CHECK(exists(entry.first));
}

TEST_CASE("the peers' sources file describes every dialect the vectors use", "[cron][vectors]") {
  const std::string text = read_vectors_file("cron_peers_sources.tsv");
  REQUIRE_FALSE(text.empty());
  for (const char* d :
       {"ccronexpr", "supertinycron", "croncpp/standard", "croncpp/quartz", "croncpp/oracle", "libcron"})
    CHECK(text.find(std::string("\n") + d + "\t") != std::string::npos);
}
