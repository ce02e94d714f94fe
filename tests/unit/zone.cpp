// Tests of punctual's IANA time-zone reader (zone.hpp, detail/tzif.hpp, detail/posix_tz.hpp).
//
// From 1970 to 2037 every zone on the machine is compared with date/tz.h (libdate-tz, "OS tzdb"
// mode) as an oracle; beyond 2037 date/tz.h knows no rules, so the footer rules are checked by
// hand-computed dates and by the 400-year periodicity of the Gregorian calendar.
#include "punctual/zone.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "punctual/error.hpp"
#include "punctual/time.hpp"

#if defined(PUNCTUAL_TEST_HAVE_DATE_TZ)
#if !defined(USE_OS_TZDB)
#define USE_OS_TZDB 1
#endif
#include <date/tz.h>
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using punctual::local_info;
using instant = punctual::time_point;

instant at(std::string_view iso) { return punctual::parse_iso(iso); }
punctual::local_time local(std::string_view iso) { return punctual::parse_iso_parts(iso).local; }
instant utc(sys_days d, seconds s = seconds{0}) { return instant{d + s}; }
seconds hm(int h, int m = 0) { return hours{h} + minutes{m}; }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool is_tzif(const fs::path& p) { return read_bytes(p).rfind("TZif", 0) == 0; }

/// Every TZif file of the system database, as zone names (posix/ and right/ left out).
std::vector<std::string> system_zone_names() {
  std::vector<std::string> names;
  const fs::path root = PUNCTUAL_ZONEINFO_DIR;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); ++it) {
    const auto rel = it->path().lexically_relative(root).generic_string();
    if (it->is_directory() && (rel == "posix" || rel == "right")) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || !is_tzif(it->path())) continue;
    names.push_back(rel);
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Sets an environment variable for the life of the guard, then restores it.
class env_guard {
 public:
  env_guard(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~env_guard() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

/// A fresh directory under the system temp directory, removed at the end.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("punctual-zone-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& bytes) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
  }

 private:
  fs::path path_;
};

/// Writes TZif files from parts, so tests can build exactly the file they need.
struct tzif_writer {
  struct ttype {
    std::int32_t utoff;
    bool dst;
    std::uint8_t abbr;
  };
  char version = '2';
  std::vector<std::int64_t> times;
  std::vector<std::uint8_t> index;
  std::vector<ttype> types;
  std::string chars;
  std::vector<std::pair<std::int64_t, std::int32_t>> leaps;
  std::string footer;

  static void be(std::string& out, std::uint64_t v, int bytes) {
    for (int k = bytes - 1; k >= 0; --k) out += static_cast<char>((v >> (8 * k)) & 0xff);
  }
  void header(std::string& out, char ver, std::size_t isut, std::size_t isstd, std::size_t leap,
              std::size_t time, std::size_t type, std::size_t chr) const {
    out += "TZif";
    out += ver;
    out.append(15, '\0');
    for (auto n : {isut, isstd, leap, time, type, chr}) be(out, n, 4);
  }
  void block(std::string& out, int tsize) const {
    for (auto t : times) be(out, static_cast<std::uint64_t>(t), tsize);
    for (auto i : index) out += static_cast<char>(i);
    for (const auto& t : types) {
      be(out, static_cast<std::uint32_t>(t.utoff), 4);
      out += static_cast<char>(t.dst ? 1 : 0);
      out += static_cast<char>(t.abbr);
    }
    out += chars;
    for (const auto& [t, c] : leaps) {
      be(out, static_cast<std::uint64_t>(t), tsize);
      be(out, static_cast<std::uint32_t>(c), 4);
    }
    out.append(types.size(), '\0');  // standard/wall indicators
    out.append(types.size(), '\0');  // UT/local indicators
  }
  std::string bytes() const {
    std::string out;
    if (version == 0) {
      header(out, 0, types.size(), types.size(), leaps.size(), times.size(), types.size(), chars.size());
      block(out, 4);
      return out;
    }
    // A decoy version 1 block: one type of -10:00 and one transition, plus leap seconds and
    // indicators, so a reader that does not skip it exactly (or reads it) gets wrong offsets.
    header(out, version, 1, 1, 1, 1, 1, 4);
    be(out, 0, 4);
    out += '\0';
    be(out, static_cast<std::uint32_t>(-36000), 4);
    out += '\0';
    out += '\0';
    out += std::string("BAD\0", 4);
    be(out, 78796800, 4);
    be(out, 1, 4);
    out += '\0';
    out += '\0';
    header(out, version, types.size(), types.size(), leaps.size(), times.size(), types.size(), chars.size());
    block(out, 8);
    out += '\n' + footer + '\n';
    return out;
  }
};

std::string iso(instant t) {
  if (t == instant::min()) return "min";
  if (t == instant::max()) return "max";
  return punctual::format_iso(t);
}

}  // namespace

// --- hand-checked rules beyond 2037 (the footer) ---------------------------------------------

TEST_CASE("Europe/Berlin follows its DST rule in 2100", "[zone]") {
  const auto& z = punctual::locate_zone("Europe/Berlin");
  CHECK(z.name() == "Europe/Berlin");
  CHECK_FALSE(z.is_utc());
  CHECK(z.offset(at("2100-03-28T00:59:59Z")) == hm(1));
  CHECK(z.offset(at("2100-03-28T01:00:00Z")) == hm(2));
  // last Sunday of October 2100, 01:00 UTC
  const auto oct_end = utc(sys_days{year{2100} / October / Sunday[last]}, hm(1));
  CHECK(z.offset(oct_end - seconds{1}) == hm(2));
  CHECK(z.offset(oct_end) == hm(1));
  const auto seg = z.segment(at("2100-07-01T12:00:00Z"));
  CHECK(seg.begin == at("2100-03-28T01:00:00Z"));
  CHECK(seg.end == oct_end);
  CHECK(seg.offset == hm(2));
  CHECK(punctual::format_iso(at("2100-07-01T12:00:00Z"), z) == "2100-07-01T14:00:00+02:00");
  CHECK(punctual::format_iso(at("2050-07-01T00:00:00Z"), z) == "2050-07-01T02:00:00+02:00");
}

TEST_CASE("America/New_York springs forward on the second Sunday of March 2200", "[zone]") {
  const auto& z = punctual::locate_zone("America/New_York");
  const auto t = utc(sys_days{year{2200} / March / Sunday[2]}, hm(7));  // 02:00 EST
  CHECK(z.offset(t - seconds{1}) == -hm(5));
  CHECK(z.offset(t) == -hm(4));
  CHECK(z.segment(t).begin == t);
  CHECK(z.segment(t - microseconds{1}).end == t);
  CHECK(z.to_local(t) == local_days{year{2200} / March / Sunday[2]} + hm(3));
  const auto r = z.resolve(local_days{year{2200} / March / Sunday[2]} + hm(2, 30));
  CHECK(r.kind == local_info::nonexistent);
  CHECK(r.first == t);
  CHECK(r.second == t);
}

TEST_CASE("southern-hemisphere DST spans the new year in 2100", "[zone]") {
  struct zone_case {
    const char* name;
    seconds standard;
    seconds daylight;
  };
  for (const auto& c : {zone_case{"Australia/Sydney", hm(10), hm(11)},
                        zone_case{"Australia/Lord_Howe", hm(10, 30), hm(11)}}) {
    INFO(c.name);
    const auto& z = punctual::locate_zone(c.name);
    // DST from the first Sunday of October 02:00 standard time to the first Sunday of April
    // (02:00 daylight time at Lord Howe, 03:00 in Sydney)
    const auto begin = utc(sys_days{year{2099} / October / Sunday[1]}, hm(2) - c.standard);
    const auto end_local = std::string_view(c.name) == "Australia/Sydney" ? hm(3) : hm(2);
    const auto end = utc(sys_days{year{2100} / April / Sunday[1]}, end_local - c.daylight);
    const auto seg = z.segment(at("2100-01-01T00:00:00Z"));
    CHECK(iso(seg.begin) == iso(begin));
    CHECK(iso(seg.end) == iso(end));
    CHECK(seg.offset == c.daylight);
    CHECK(z.offset(begin - seconds{1}) == c.standard);
    CHECK(z.offset(end) == c.standard);
  }
}

TEST_CASE("Lord Howe's 30-minute DST shift resolves gaps and overlaps", "[zone]") {
  const auto& z = punctual::locate_zone("Australia/Lord_Howe");
  SECTION("2024, from the table") {
    auto r = z.resolve(local("2024-10-06T02:15:00"));
    CHECK(r.kind == local_info::nonexistent);
    CHECK(iso(r.first) == "2024-10-05T15:30:00Z");
    r = z.resolve(local("2024-10-06T02:30:00"));
    CHECK(r.kind == local_info::unique);
    CHECK(iso(r.first) == "2024-10-05T15:30:00Z");
    r = z.resolve(local("2024-04-07T01:45:00"));
    CHECK(r.kind == local_info::ambiguous);
    CHECK(iso(r.first) == "2024-04-06T14:45:00Z");
    CHECK(iso(r.second) == "2024-04-06T15:15:00Z");
    r = z.resolve(local("2024-04-07T02:00:00"));
    CHECK(r.kind == local_info::unique);
    CHECK(iso(r.first) == "2024-04-06T15:30:00Z");
  }
  SECTION("2100, from the footer rule") {
    auto r = z.resolve(local("2099-10-04T02:29:59.999999"));
    CHECK(r.kind == local_info::nonexistent);
    CHECK(iso(r.first) == "2099-10-03T15:30:00Z");
    r = z.resolve(local("2100-04-04T01:30:00"));
    CHECK(r.kind == local_info::ambiguous);
    CHECK(r.second - r.first == minutes{30});
    CHECK(iso(r.first) == "2100-04-03T14:30:00Z");
  }
}

TEST_CASE("zones whose footer has no DST keep their offset forever", "[zone]") {
  for (const auto* name : {"Asia/Tokyo", "Asia/Riyadh", "Asia/Kolkata"}) {
    INFO(name);
    const auto& z = punctual::locate_zone(name);
    const auto seg = z.segment(at("2300-01-01T00:00:00Z"));
    CHECK(seg.end == instant::max());
    CHECK(seg.begin < at("2000-01-01T00:00:00Z"));
    CHECK(z.offset(at("2300-07-01T00:00:00Z")) == z.offset(at("2024-07-01T00:00:00Z")));
  }
  CHECK(punctual::locate_zone("Asia/Kolkata").offset(at("2250-01-01T00:00:00Z")) == hm(5, 30));
}

// --- resolve() -----------------------------------------------------------------------------

TEST_CASE("resolve finds gaps and overlaps in Europe/Berlin", "[zone]") {
  const auto& z = punctual::locate_zone("Europe/Berlin");
  auto r = z.resolve(local("2024-03-31T02:30:00"));
  CHECK(r.kind == local_info::nonexistent);
  CHECK(iso(r.first) == "2024-03-31T01:00:00Z");
  CHECK(r.second == r.first);
  r = z.resolve(local("2024-03-31T01:59:59.999999"));
  CHECK(r.kind == local_info::unique);
  CHECK(iso(r.first) == "2024-03-31T00:59:59.999999Z");
  r = z.resolve(local("2024-03-31T03:00:00"));
  CHECK(r.kind == local_info::unique);
  CHECK(iso(r.first) == "2024-03-31T01:00:00Z");
  r = z.resolve(local("2024-10-27T02:30:00"));
  CHECK(r.kind == local_info::ambiguous);
  CHECK(iso(r.first) == "2024-10-27T00:30:00Z");
  CHECK(iso(r.second) == "2024-10-27T01:30:00Z");
  r = z.resolve(local("2024-10-27T02:00:00"));
  CHECK(r.kind == local_info::ambiguous);
  r = z.resolve(local("2024-10-27T03:00:00"));
  CHECK(r.kind == local_info::unique);
  CHECK(iso(r.first) == "2024-10-27T02:00:00Z");
  r = z.resolve(local("2024-07-01T12:00:00"));
  CHECK(r.kind == local_info::unique);
  CHECK(iso(r.first) == "2024-07-01T10:00:00Z");
  // and in 2150, past the table
  r = z.resolve(local("2150-03-29T02:00:00"));  // last Sunday of March 2150
  CHECK(r.kind == local_info::nonexistent);
  CHECK(iso(r.first) == "2150-03-29T01:00:00Z");
}

TEST_CASE("resolve finds gaps and overlaps in America/New_York", "[zone]") {
  const auto& z = punctual::locate_zone("America/New_York");
  auto r = z.resolve(local("2024-03-10T02:30:00"));
  CHECK(r.kind == local_info::nonexistent);
  CHECK(iso(r.first) == "2024-03-10T07:00:00Z");
  r = z.resolve(local("2024-11-03T01:30:00"));
  CHECK(r.kind == local_info::ambiguous);
  CHECK(iso(r.first) == "2024-11-03T05:30:00Z");
  CHECK(iso(r.second) == "2024-11-03T06:30:00Z");
  r = z.resolve(local("2024-11-03T00:59:59"));
  CHECK(r.kind == local_info::unique);
  CHECK(iso(r.first) == "2024-11-03T04:59:59Z");
}

TEST_CASE("resolve handles offset changes that are not DST", "[zone]") {
  // Samoa skipped 30 December 2011 when it moved from -10:00 to +14:00
  const auto& apia = punctual::locate_zone("Pacific/Apia");
  auto r = apia.resolve(local("2011-12-30T12:00:00"));
  CHECK(r.kind == local_info::nonexistent);
  CHECK(iso(r.first) == "2011-12-30T10:00:00Z");
  CHECK(apia.to_local(r.first) == local("2011-12-31T00:00:00"));
  // North Korea: +09:00 -> +08:30 on 2015-08-15 (overlap), back to +09:00 on 2018-05-04 (gap)
  const auto& pyongyang = punctual::locate_zone("Asia/Pyongyang");
  r = pyongyang.resolve(local("2015-08-14T23:45:00"));
  CHECK(r.kind == local_info::ambiguous);
  CHECK(iso(r.first) == "2015-08-14T14:45:00Z");
  CHECK(iso(r.second) == "2015-08-14T15:15:00Z");
  r = pyongyang.resolve(local("2018-05-04T23:40:00"));
  CHECK(r.kind == local_info::nonexistent);
  CHECK(iso(r.first) == "2018-05-04T15:00:00Z");
}

// --- names, errors, cache --------------------------------------------------------------------

TEST_CASE("UTC zones are recognised", "[zone]") {
  CHECK(punctual::locate_zone("UTC").is_utc());
  CHECK(punctual::locate_zone("UTC").name() == "UTC");
  CHECK(&punctual::locate_zone("UTC") == &punctual::utc_zone());
  CHECK(punctual::locate_zone("Etc/UTC").is_utc());
  CHECK(punctual::locate_zone("Etc/GMT").is_utc());
  CHECK_FALSE(punctual::locate_zone("Etc/GMT-3").is_utc());
  CHECK(punctual::locate_zone("Etc/GMT-3").offset(at("2024-01-01T00:00:00Z")) == hm(3));
  CHECK_FALSE(punctual::locate_zone("Africa/Abidjan").is_utc());  // LMT before 1912
  const punctual::time_zone named{"Custom"};
  CHECK(named.is_utc());
  CHECK(named.segment(at("2024-01-01T00:00:00Z")).begin == instant::min());
}

TEST_CASE("UTC works without any tz database", "[zone]") {
  const temp_dir dir;
  const env_guard tz("TZDIR", dir.path().string());
  CHECK(punctual::locate_zone("UTC").is_utc());
  CHECK_THROWS_AS(punctual::locate_zone("Test/NotThere"), punctual::parse_error);
}

TEST_CASE("locate_zone returns the same cached zone from every thread", "[zone]") {
  std::vector<const punctual::time_zone*> seen(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i)
    threads.emplace_back([&seen, i] {
      try {
        seen[i] = &punctual::locate_zone(i % 2 ? "Europe/Paris" : "Asia/Tehran");
      } catch (const std::exception&) {
        seen[i] = nullptr;
      }
    });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i] != nullptr);
    CHECK(seen[i] == &punctual::locate_zone(i % 2 ? "Europe/Paris" : "Asia/Tehran"));
  }
  CHECK(seen[0] != seen[1]);
}

TEST_CASE("unknown zones throw parse_error naming the directory", "[zone]") {
  try {
    (void)punctual::locate_zone("Mars/Olympus_Mons");
    FAIL("no exception");
  } catch (const punctual::parse_error& e) {
    CHECK(e.field() == "time zone");
    CHECK(e.text() == "Mars/Olympus_Mons");
    CHECK(e.column() == 0);
    CHECK_THAT(e.what(), Catch::Contains("unknown time zone (no such file in"));
  }
  CHECK_THROWS_AS(punctual::locate_zone("Europe"), punctual::parse_error);  // a directory
  CHECK_THROWS_WITH(punctual::locate_zone("leapseconds"), Catch::Contains("not a TZif file"));
}

TEST_CASE("zone names that could leave the zoneinfo directory are rejected", "[zone]") {
  struct bad {
    const char* name;
    std::size_t column;
  };
  for (const auto& b :
       {bad{"../../etc/passwd", 1}, bad{"/etc/localtime", 1}, bad{"Europe/../../etc/passwd", 8},
        bad{"Europe//Berlin", 8}, bad{"Europe/Berlin/", 14}, bad{"Europe/Berlin ", 14},
        bad{"Europe\\Berlin", 7}, bad{"", 0}, bad{"Europe/Berlin\n", 14}}) {
    INFO(b.name);
    try {
      (void)punctual::locate_zone(b.name);
      FAIL("no exception");
    } catch (const punctual::parse_error& e) {
      CHECK(e.field() == "time zone");
      CHECK(e.column() == b.column);
    }
  }
}

// --- synthetic and corrupt files ---------------------------------------------------------------

TEST_CASE("a synthetic version 2 file is read exactly", "[zone]") {
  tzif_writer w;
  w.types = {{1050, false, 0}, {3600, false, 4}, {7200, true, 8}, {3600, false, 12}};
  w.chars = std::string("LMT\0STD\0DST\0ST2\0", 16);
  w.times = {1'000'000'000, 1'100'000'000, 1'200'000'000, 1'258'000'000};
  w.index = {1, 2, 1, 3};
  w.leaps = {{78'796'800, 1}, {94'694'401, 2}};
  // DST from 1 March at -1:00 (so 28 Feb 23:00 standard time) to day 300 (0-based) at 26:00
  w.footer = "<+01>-1<+02>-2,J60/-1,300/26";
  const std::string bytes = w.bytes();

  auto check = [](const punctual::time_zone& z) {
    CHECK_FALSE(z.is_utc());
    CHECK(z.offset(at("1970-01-01T00:00:00Z")) == seconds{1050});
    CHECK(z.offset(instant{seconds{999'999'999}}) == seconds{1050});
    CHECK(z.offset(instant{seconds{1'000'000'000}}) == hm(1));
    CHECK(z.offset(instant{seconds{1'100'000'000}}) == hm(2));
    // the 1'258'000'000 transition changes only the abbreviation: merged away
    const auto seg = z.segment(instant{seconds{1'230'000'000}});
    CHECK(seg.begin == instant{seconds{1'200'000'000}});
    CHECK(iso(seg.end) == "2010-02-28T22:00:00Z");
    CHECK(seg.offset == hm(1));
    for (int y : {2010, 2050, 2099, 2100, 2101, 2300, 2400}) {
      INFO(y);
      const auto start = utc(sys_days{year{y} / March / 1}, hm(-1) - hm(1));
      const auto end = utc(sys_days{year{y} / January / 1} + days{300}, hm(26) - hm(2));
      CHECK(z.offset(start - seconds{1}) == hm(1));
      CHECK(z.offset(start) == hm(2));
      CHECK(z.offset(end - seconds{1}) == hm(2));
      CHECK(z.offset(end) == hm(1));
      CHECK(z.segment(start).begin == start);
      CHECK(z.segment(start).end == end);
    }
  };
  check(punctual::time_zone::from_tzif("Test/Synthetic", bytes));

  const temp_dir dir;
  dir.write("Test/Synthetic", bytes);
  const env_guard tz("TZDIR", dir.path().string());
  check(punctual::locate_zone("Test/Synthetic"));
}

TEST_CASE("a version 1 file without footer keeps its last offset", "[zone]") {
  tzif_writer w;
  w.version = 0;
  w.types = {{10800, false, 0}, {14400, false, 0}};
  w.chars = std::string("ABC\0", 4);
  w.times = {1'500'000'000};
  w.index = {1};
  w.leaps = {{78'796'800, 1}};
  const auto z = punctual::time_zone::from_tzif("Test/V1", w.bytes());
  CHECK(z.offset(instant{seconds{1'499'999'999}}) == hm(3));
  CHECK(z.offset(at("2300-01-01T00:00:00Z")) == hm(4));
  CHECK(z.segment(at("2300-01-01T00:00:00Z")).end == instant::max());
}

TEST_CASE("a footer rule applies at every instant of a file without transitions", "[zone]") {
  tzif_writer w;
  w.types = {{-18000, false, 0}};
  w.chars = std::string("EST\0", 4);
  w.footer = "EST5EDT,M3.2.0,M11.1.0";
  const auto z = punctual::time_zone::from_tzif("Test/RuleOnly", w.bytes());
  CHECK(z.offset(at("1500-07-01T00:00:00Z")) == -hm(4));
  CHECK(z.offset(at("1500-01-01T00:00:00Z")) == -hm(5));
  CHECK(z.offset(at("2024-07-01T00:00:00Z")) == -hm(4));
  CHECK(z.offset(at("2500-07-01T00:00:00Z")) == -hm(4));
  CHECK(z.segment(instant::min()).begin == instant::min());
  CHECK(z.segment(instant::max()).end == instant::max());

  // RFC 8536's example of DST all year is a fixed offset
  w.footer = "EST5EDT,0/0,J365/25";
  const auto all_year = punctual::time_zone::from_tzif("Test/AllYear", w.bytes());
  CHECK(all_year.offset(at("2024-01-01T12:00:00Z")) == -hm(4));
  CHECK(all_year.segment(at("2300-01-01T00:00:00Z")).begin == instant::min());
  CHECK(all_year.segment(at("2300-01-01T00:00:00Z")).end == instant::max());
}

TEST_CASE("a rule whose changes do not alternate every year is applied exactly", "[zone]") {
  // DST starts on 1 April (J91) and ends on the first Sunday of April: in years where that Sunday
  // is 1 April, the end comes first and DST runs until the next year's first Sunday of April.
  tzif_writer w;
  w.types = {{0, false, 0}};
  w.chars = std::string("STD\0", 4);
  w.footer = "STD0DST-1,J91/0,M4.1.0/0";
  const auto z = punctual::time_zone::from_tzif("Test/Irregular", w.bytes());
  const auto rule = punctual::detail::parse_posix_tz(w.footer);
  // brute force: the offset after the latest change at or before t, over three years of changes
  auto expected = [&](std::int64_t s) {
    const auto y = static_cast<int>(year_month_day{floor<days>(sys_seconds{seconds{s}})}.year());
    std::int64_t best = std::numeric_limits<std::int64_t>::min();
    int offset = 0;
    for (int yy = y - 1; yy <= y + 1; ++yy) {
      const std::int64_t start = rule.dst_start_utc(yy), end = rule.dst_end_utc(yy);
      if (start <= s && start >= best) best = start, offset = rule.dst_offset;
      if (end <= s && end >= best) best = end, offset = rule.std_offset;
    }
    return seconds{offset};
  };
  int mismatches = 0, dst_years = 0;
  std::string first;
  for (auto t = at("2001-01-01T00:00:00Z"); t < at("2600-01-01T00:00:00Z"); t += days{1} + minutes{43}) {
    const auto s = floor<seconds>(t).time_since_epoch().count();
    const auto seg = z.segment(t);
    const bool ok =
        seg.offset == expected(s) && seg.begin <= t && t < seg.end &&
        expected(floor<seconds>(seg.begin).time_since_epoch().count()) == seg.offset &&
        expected(floor<seconds>(seg.begin - seconds{1}).time_since_epoch().count()) != seg.offset &&
        expected(floor<seconds>(seg.end).time_since_epoch().count()) != seg.offset;
    if (!ok && mismatches++ == 0) first = iso(t);
    if (month_day{year_month_day{floor<days>(t)}.month(), year_month_day{floor<days>(t)}.day()} ==
            month_day{December / 31} &&
        seg.offset == hm(1))
      ++dst_years;
  }
  INFO(first);
  CHECK(mismatches == 0);
  CHECK(dst_years > 0);  // some years do carry DST over the new year
}

TEST_CASE("POSIX TZ strings of every form parse", "[zone]") {
  using punctual::detail::parse_posix_tz;
  using punctual::detail::posix_date;
  auto tz = parse_posix_tz("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
  CHECK(tz.std_abbrev == "+1030");
  CHECK(tz.std_offset == 37800);
  CHECK(tz.dst_offset == 39600);
  CHECK(tz.start.month == 10);
  CHECK(tz.end.month == 4);
  CHECK(tz.start.time == 7200);
  tz = parse_posix_tz("IST-2IDT,M3.4.4/26,M10.5.0");
  CHECK(tz.start.time == 26 * 3600);
  CHECK(tz.dst_offset == 3 * 3600);  // one hour more than standard when not given
  tz = parse_posix_tz("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1");
  CHECK(tz.std_offset == -3 * 3600);
  CHECK(tz.start.time == -7200);
  tz = parse_posix_tz("<-01>1<+00>0,M3.5.0/0,M10.5.0/1");
  CHECK(tz.dst_offset == 0);
  tz = parse_posix_tz("XXX3YYY2:30:15,J60/167,0/-167:59:59");
  CHECK(tz.dst_offset == -(2 * 3600 + 30 * 60 + 15));
  CHECK(tz.start.kind == posix_date::julian1);
  CHECK(tz.start.day == 60);
  CHECK(tz.start.time == 167 * 3600);
  CHECK(tz.end.kind == posix_date::julian0);
  CHECK(tz.end.time == -(167 * 3600 + 59 * 60 + 59));
  tz = parse_posix_tz("<+03>-3");
  CHECK_FALSE(tz.has_dst);
  CHECK(tz.std_offset == 10800);
  // Jn never counts 29 February, n does
  const auto d0 = punctual::detail::days_from_civil(2024, 1, 1);
  CHECK(parse_posix_tz("A0B,J60,J365").start.days_in(2024) == punctual::detail::days_from_civil(2024, 3, 1));
  CHECK(parse_posix_tz("A0B,J60,J365").end.days_in(2024) == punctual::detail::days_from_civil(2024, 12, 31));
  CHECK(parse_posix_tz("A0B,59,365").start.days_in(2024) == d0 + 59);
  CHECK(parse_posix_tz("A0B,M2.5.4,M12.5.6").start.days_in(2024) ==
        punctual::detail::days_from_civil(2024, 2, 29));
  CHECK(parse_posix_tz("A0B,M2.5.4,M12.5.6").end.days_in(2024) ==
        punctual::detail::days_from_civil(2024, 12, 28));

  struct bad {
    const char* text;
    std::size_t column;
  };
  for (const auto& b :
       {bad{"", 1}, bad{"CET", 4}, bad{"CET-1CEST,M3.5.0", 17}, bad{"CET-1CEST,M13.5.0,M10.5.0", 12},
        bad{"CET-1CEST,M3.6.0,M10.5.0", 14}, bad{"CET-1CEST,M3.5.7,M10.5.0", 16},
        bad{"CET-1CEST,J0,J365", 12}, bad{"<+03-3", 7}, bad{"CET-1CEST,M3.5.0/168,M10.5.0", 18},
        bad{"CET-25", 5}, bad{"CET-1CEST,M3.5.0,M10.5.0x", 25}}) {
    INFO(b.text);
    try {
      (void)parse_posix_tz(b.text);
      FAIL("no exception");
    } catch (const punctual::parse_error& e) {
      CHECK(e.column() == b.column);
    }
  }
}

TEST_CASE("corrupt zone files under TZDIR throw parse_error", "[zone]") {
  const std::string berlin = read_bytes(fs::path(PUNCTUAL_ZONEINFO_DIR) / "Europe/Berlin");
  REQUIRE(berlin.size() > 100);
  const temp_dir dir;
  std::string bad_footer = berlin;
  bad_footer.replace(bad_footer.rfind('\n', bad_footer.size() - 2) + 1, std::string::npos,
                     "CET-1CEST,M3.5.0\n");
  std::string bad_count = berlin;
  bad_count[31] = '\x7f';  // low byte of the version 1 leap-second count
  dir.write("Broken/Truncated", berlin.substr(0, 100));
  dir.write("Broken/Empty", "");
  dir.write("Broken/Magic", "TZiX" + berlin.substr(4));
  dir.write("Broken/Footer", bad_footer);
  dir.write("Broken/NoFooter", berlin.substr(0, berlin.rfind('\n', berlin.size() - 2)));
  dir.write("Broken/Count", bad_count);
  dir.write("Broken/Text", "Europe/Berlin\n");
  dir.write("Good/Berlin", berlin);
  const env_guard tz("TZDIR", dir.path().string());
  for (const auto* name : {"Broken/Truncated", "Broken/Empty", "Broken/Magic", "Broken/Footer",
                           "Broken/NoFooter", "Broken/Count", "Broken/Text"}) {
    INFO(name);
    try {
      (void)punctual::locate_zone(name);
      FAIL("no exception");
    } catch (const punctual::parse_error& e) {
      CHECK(e.field() == "time zone");
      CHECK(e.text() == name);
      CHECK_THAT(e.what(), Catch::Contains("corrupt TZif file") || Catch::Contains("not a TZif file"));
    }
  }
  CHECK_THROWS_WITH(punctual::locate_zone("Broken/Footer"), Catch::Contains("bad footer"));
  CHECK_THROWS_WITH(punctual::locate_zone("Broken/Missing"), Catch::Contains(dir.path().string()));
  const auto& good = punctual::locate_zone("Good/Berlin");
  CHECK(good.offset(at("2100-03-28T01:00:00Z")) == hm(2));
}

TEST_CASE("randomly mutated zone files load or throw parse_error, never crash", "[zone][fuzz]") {
  std::vector<std::string> seeds;
  for (const auto* name : {"Europe/Berlin", "Australia/Lord_Howe", "America/Nuuk", "Asia/Tokyo"})
    seeds.push_back(read_bytes(fs::path(PUNCTUAL_ZONEINFO_DIR) / name));
  std::mt19937_64 rng(20240331);
  const temp_dir dir;
  const env_guard tz("TZDIR", dir.path().string());
  int loaded = 0, rejected = 0;
  const std::vector<instant> probes = {instant::min(),
                                       instant::max(),
                                       at("1900-01-01T00:00:00Z"),
                                       at("2024-03-31T01:00:00Z"),
                                       at("2100-10-31T01:00:00Z"),
                                       at("9999-12-31T23:59:59Z")};
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::string bytes = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const std::size_t pos = rng() % bytes.size();
      switch (rng() % 5) {
        case 0: bytes[pos] = static_cast<char>(rng()); break;                            // any byte
        case 1: bytes[pos] = static_cast<char>(bytes[pos] ^ (1 << (rng() % 8))); break;  // one bit
        case 2: bytes.resize(pos); break;                                                // truncate
        case 3: bytes[pos] = "0123456789,./<>+-MJ\n"[rng() % 20]; break;                 // footer-ish
        default: bytes[std::min(bytes.size() - 1, std::size_t{23} + rng() % 6 * 4)] ^= 1; break;  // counts
      }
    }
    try {
      const auto z = iteration % 40 == 0
                         ? (dir.write("Fuzz/F" + std::to_string(iteration), bytes),
                            std::optional<punctual::time_zone>(
                                punctual::locate_zone("Fuzz/F" + std::to_string(iteration))))
                         : std::optional<punctual::time_zone>(punctual::time_zone::from_tzif("Fuzz", bytes));
      ++loaded;
      for (const auto t : probes) {
        const auto seg = z->segment(t);
        CHECK((seg.begin <= t && (t < seg.end || seg.end == instant::max())));
        (void)z->to_local(t);
        (void)z->resolve(punctual::local_time{t.time_since_epoch()});
      }
    } catch (const punctual::parse_error&) {
      ++rejected;
    }
  }
  CHECK(loaded > 0);
  CHECK(rejected > 0);
}

// --- consistency of the footer beyond the table ----------------------------------------------

TEST_CASE("offsets repeat every 400 years once the footer rule governs", "[zone]") {
  // 400 Gregorian years are exactly 146097 days, so a rule's dates repeat. 2088-2099 comes from
  // the table (footer transitions are stored up to 2099), 2100 on is computed on demand. (Morocco
  // and Palestine list explicit transitions up to 2087, so earlier years are not periodic.)
  constexpr auto cycle = days{146097};
  int zones = 0, mismatches = 0;
  std::string first;
  for (const auto& name : system_zone_names()) {
    const auto& z = punctual::locate_zone(name);
    ++zones;
    for (auto t = at("2088-01-01T00:00:00Z"); t < at("2200-01-01T00:00:00Z"); t += days{3} + minutes{97}) {
      const auto a = z.segment(t), b = z.segment(t + cycle);
      const bool same_begin = a.begin < at("2088-01-01T00:00:00Z") || a.begin + cycle == b.begin;
      if (a.offset != b.offset || !same_begin || (a.end != instant::max() && a.end + cycle != b.end)) {
        if (mismatches++ == 0) first = name + " at " + iso(t);
      }
    }
  }
  INFO(first);
  CHECK(zones > 300);
  CHECK(mismatches == 0);
}

TEST_CASE("segments chain without gaps and every boundary changes the offset", "[zone]") {
  int mismatches = 0;
  std::string first;
  for (const auto& name : system_zone_names()) {
    const auto& z = punctual::locate_zone(name);
    auto seg = z.segment(at("1900-01-01T00:00:00Z"));
    while (seg.end != instant::max() && seg.end < at("2500-01-01T00:00:00Z")) {
      const auto next = z.segment(seg.end);
      const auto mid = z.segment(seg.end - (seg.end - std::max(seg.begin, at("1800-01-01T00:00:00Z"))) / 2);
      if (next.begin != seg.end || next.offset == seg.offset || mid.begin != seg.begin ||
          mid.end != seg.end) {
        if (mismatches++ == 0) first = name + " at " + iso(seg.end);
      }
      seg = next;
    }
  }
  INFO(first);
  CHECK(mismatches == 0);
}

// --- DST policy text -------------------------------------------------------------------------

TEST_CASE("DST policy text round-trips and rejects bad parts", "[zone]") {
  using punctual::dst_gap;
  using punctual::dst_overlap;
  using punctual::parse_dst_policy;
  CHECK(parse_dst_policy("") == punctual::dst_policy{});
  CHECK(parse_dst_policy("gap=skip") == punctual::dst_policy{dst_gap::skip, dst_overlap::automatic});
  CHECK(parse_dst_policy("overlap=twice,gap=skip") ==
        punctual::dst_policy{dst_gap::skip, dst_overlap::twice});
  CHECK(parse_dst_policy("overlap=once") == punctual::dst_policy{dst_gap::shift, dst_overlap::once});
  for (auto g : {dst_gap::shift, dst_gap::skip})
    for (auto o : {dst_overlap::automatic, dst_overlap::once, dst_overlap::twice}) {
      const punctual::dst_policy p{g, o};
      CHECK(parse_dst_policy(punctual::to_string(p)) == p);
    }
  CHECK(punctual::to_string(punctual::dst_policy{}) == "gap=shift,overlap=auto");
  struct bad {
    const char* text;
    std::size_t column;
  };
  for (const auto& b : {bad{"gap=jump", 5}, bad{"gap=skip,overlap=thrice", 18}, bad{"gap=skip,", 9},
                        bad{"gap=skip,gap=shift", 10}, bad{"dst=auto", 1}, bad{",gap=skip", 1}, bad{"gap", 1},
                        bad{"overlap=auto,,gap=skip", 14}}) {
    INFO(b.text);
    try {
      (void)parse_dst_policy(b.text);
      FAIL("no exception");
    } catch (const punctual::parse_error& e) {
      CHECK(e.field() == "DST policy");
      CHECK(e.column() == b.column);
    }
  }
}

// --- oracle: date/tz.h, 1970-2037 --------------------------------------------------------------

#if defined(PUNCTUAL_TEST_HAVE_DATE_TZ)

TEST_CASE("offsets and segment boundaries agree with date/tz.h for every zone, 1970-2037", "[zone][oracle]") {
  (void)date::get_tzdb();
  const auto from = sys_seconds{sys_days{year{1970} / 1 / 1}};
  const auto to = sys_seconds{sys_days{year{2038} / 1 / 1}};
  int zones = 0, skipped = 0, checks = 0, mismatches = 0;
  std::string first;
  auto fail = [&](const std::string& name, sys_seconds t, const std::string& what) {
    if (mismatches++ < 5) first += name + " at " + iso(instant{t}) + ": " + what + "\n";
  };
  for (const auto& name : system_zone_names()) {
    const date::time_zone* dz = nullptr;
    try {
      dz = date::locate_zone(name);
    } catch (const std::exception&) {
      ++skipped;
      continue;
    }
    const auto& z = punctual::locate_zone(name);
    ++zones;
    auto same = [&](sys_seconds t) {
      ++checks;
      const auto ours = z.offset(instant{t});
      const auto theirs = dz->get_info(t).offset;
      if (ours != theirs)
        fail(name, t, "offset " + std::to_string(ours.count()) + " vs " + std::to_string(theirs.count()));
    };
    for (auto t = from; t < to; t += days{10} + seconds{3607}) same(t);
    auto info = dz->get_info(from);
    while (info.end < to) {
      const auto t = info.end;
      same(t - seconds{1});
      same(t);
      same(t + seconds{1});
      const auto next = dz->get_info(t);
      const bool changes = next.offset != info.offset;
      const bool boundary = z.segment(instant{t}).begin == instant{t};
      if (changes != boundary)
        fail(name, t, changes ? "offset change is no segment boundary" : "boundary not merged");
      info = next;
    }
  }
  INFO(first);
  INFO(zones << " zones, " << skipped << " skipped, " << checks << " instants");
  CHECK(zones > 300);
  CHECK(mismatches == 0);
}

TEST_CASE("resolve agrees with date/tz.h around every transition, 1970-2037", "[zone][oracle]") {
  (void)date::get_tzdb();
  const auto from = sys_seconds{sys_days{year{1970} / 1 / 2}};
  const auto to = sys_seconds{sys_days{year{2038} / 1 / 1}};
  int zones = 0, checks = 0, mismatches = 0;
  std::string first;
  for (const auto& name : system_zone_names()) {
    const date::time_zone* dz = nullptr;
    try {
      dz = date::locate_zone(name);
    } catch (const std::exception&) {
      continue;
    }
    const auto& z = punctual::locate_zone(name);
    ++zones;
    auto same = [&](local_seconds lt) {
      ++checks;
      const auto theirs = dz->get_info(date::local_seconds{lt.time_since_epoch()});
      const auto ours = z.resolve(punctual::local_time{lt.time_since_epoch()});
      instant first_t, second_t;
      local_info::kind_t kind;
      switch (theirs.result) {
        case date::local_info::unique:
          kind = local_info::unique;
          first_t = second_t = instant{sys_seconds{lt.time_since_epoch()} - theirs.first.offset};
          break;
        case date::local_info::nonexistent:
          kind = local_info::nonexistent;
          first_t = second_t = instant{theirs.first.end};
          break;
        default:
          kind = local_info::ambiguous;
          first_t = instant{sys_seconds{lt.time_since_epoch()} - theirs.first.offset};
          second_t = instant{sys_seconds{lt.time_since_epoch()} - theirs.second.offset};
          break;
      }
      if (ours.kind != kind || ours.first != first_t || ours.second != second_t) {
        if (mismatches++ < 5)
          first += name + " local " + punctual::format_iso(lt, seconds{0}) + ": kind " +
                   std::to_string(ours.kind) + " vs " + std::to_string(kind) + ", " + iso(ours.first) +
                   " vs " + iso(first_t) + "\n";
      }
    };
    auto info = dz->get_info(from);
    for (auto t = from; t < to; t += days{10} + seconds{3607})
      same(local_seconds{(t + info.offset).time_since_epoch()});
    while (info.end < to) {
      const auto t = info.end;
      const auto next = dz->get_info(t);
      for (const auto base : {t + info.offset, t + next.offset}) {
        const local_seconds l{base.time_since_epoch()};
        same(l - seconds{1});
        same(l);
        same(l + seconds{1});
      }
      same(local_seconds{(t + (info.offset + next.offset) / 2).time_since_epoch()});
      info = next;
    }
  }
  INFO(first);
  INFO(zones << " zones, " << checks << " local times");
  CHECK(zones > 300);
  CHECK(mismatches == 0);
}

#endif
