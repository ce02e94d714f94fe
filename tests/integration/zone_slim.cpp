// Compiles the system's tz source (tzdata.zi) with `zic -b slim`, whose files stop listing
// transitions once the footer rule can produce them (in the 1990s-2000s for most zones), and
// checks that every slim zone gives the same offsets and segments as the installed ("fat") zone
// from 1900 to 2037, where fat files list every transition. This exercises the footer-rule code
// on decades that the unit tests' oracle (date/tz.h against fat files) sees only as table
// lookups. (Later years are not compared: an older zic may stop listing predicted transitions,
// e.g. Palestine's, earlier than the zic that built the installed files.)
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/zone.hpp"

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

fs::path find_zic() {
  for (const char* p : {"/usr/sbin/zic", "/usr/bin/zic", "/usr/local/sbin/zic", "/usr/local/bin/zic"})
    if (fs::exists(p)) return p;
  return {};
}

}  // namespace

TEST_CASE("zic -b slim files give the same offsets as the installed files, 1900-2037", "[zone][slim]") {
  const fs::path source = fs::path(PUNCTUAL_ZONEINFO_DIR) / "tzdata.zi";
  const fs::path zic = find_zic();
  if (zic.empty() || !fs::exists(source)) {
    WARN("skipped: needs zic and " << source.string());
    return;
  }
  std::random_device rd;
  const fs::path out = fs::temp_directory_path() / ("punctual-zone-slim-" + std::to_string(rd()));
  struct cleanup {
    fs::path p;
    ~cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } guard{out};
  const std::string cmd = zic.string() + " -b slim -d '" + out.string() + "' '" + source.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);

  using namespace std::chrono;
  const auto from = punctual::parse_iso("1900-01-01T00:00:00Z");
  const auto to = punctual::parse_iso("2038-01-01T00:00:00Z");
  int zones = 0, smaller = 0, mismatches = 0;
  std::string first;
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().lexically_relative(out).generic_string();
    const std::string slim_bytes = read_bytes(entry.path());
    if (!fs::exists(fs::path(PUNCTUAL_ZONEINFO_DIR) / name)) continue;
    const auto slim = punctual::time_zone::from_tzif(name, slim_bytes);
    const auto& fat = punctual::locate_zone(name);
    ++zones;
    if (slim_bytes.size() < fs::file_size(fs::path(PUNCTUAL_ZONEINFO_DIR) / name)) ++smaller;
    // walk the fat zone's segments; the slim zone must have exactly the same ones
    auto seg = fat.segment(from);
    for (;;) {
      const auto probe = std::max(seg.begin, from);
      const auto other = slim.segment(probe);
      const bool same = other.offset == seg.offset && (other.begin == seg.begin || seg.begin < from) &&
                        (other.end == seg.end || seg.end >= to);
      if (!same && mismatches++ < 5)
        first += name + " at " + punctual::format_iso(probe) + ": offset " +
                 std::to_string(other.offset.count()) + " vs " + std::to_string(seg.offset.count()) + "\n";
      if (seg.end >= to) break;
      seg = fat.segment(seg.end);
    }
  }
  INFO(first);
  INFO(zones << " zones, " << smaller << " smaller when slim");
  CHECK(zones > 300);
  CHECK(smaller > 300);
  CHECK(mismatches == 0);
}
