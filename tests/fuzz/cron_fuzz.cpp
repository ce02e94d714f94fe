// libFuzzer target for cron_trigger: any input must either parse or throw parse_error, and a
// parsed trigger's next() must terminate, move strictly forward and round-trip its text.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       tests/fuzz/cron_fuzz.cpp -o cron_fuzz && ./cron_fuzz -max_total_time=60
//
// Input layout: byte 0 picks the zone and DST policy, bytes 1-8 the instant for next(), the
// rest is the expression (or, when byte 0 is odd, a canonical body for parse_canonical).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/zone.hpp"

namespace {

const punctual::time_zone& pick_zone(unsigned k) {
  static const char* const names[] = {
      "UTC",          "Europe/Berlin",   "America/New_York", "Australia/Lord_Howe",
      "Pacific/Apia", "Pacific/Chatham", "Antarctica/Troll", "Africa/Casablanca"};
  try {
    return punctual::locate_zone(names[k % 8]);
  } catch (const punctual::parse_error&) {
    return punctual::utc_zone();  // no tz database on this machine
  }
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cron_fuzz: %s\n", what);
    std::abort();
  }
}

void exercise(const punctual::cron_trigger& t, punctual::time_point after) {
  std::optional<punctual::time_point> cur = after;
  for (int i = 0; i < 4 && cur; ++i) {
    const auto n = t.next(*cur);
    if (n) check(*n > *cur, "next() did not move forward");
    cur = n;
  }
  const std::string text = t.to_string();
  check(text.rfind("cron:", 0) == 0, "to_string() lacks the cron: prefix");
  const auto back = punctual::cron_trigger::parse_canonical(std::string_view(text).substr(5));
  check(back.to_string() == text, "to_string() does not round-trip");
  check(back.next(after) == t.next(after), "the round-tripped trigger fires differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 9) return 0;
  const unsigned sel = data[0];
  std::int64_t raw = 0;
  std::memcpy(&raw, data + 1, sizeof raw);
  // mostly instants between 1960 and 2320, sometimes anything at all
  const std::int64_t span = 11'360'000'000LL * 1'000'000;  // ~360 years in microseconds
  const std::int64_t us =
      (sel & 0x80)
          ? raw
          : -315'619'200'000'000LL + static_cast<std::int64_t>(static_cast<std::uint64_t>(raw) % span);
  const punctual::time_point after{punctual::duration{us}};
  const std::string_view text(reinterpret_cast<const char*>(data + 9), size - 9);
  const punctual::dst_policy policy{(sel & 0x08) ? punctual::dst_gap::skip : punctual::dst_gap::shift,
                                    static_cast<punctual::dst_overlap>((sel >> 4) % 3)};
  try {
    if (sel & 1) {
      exercise(punctual::cron_trigger::parse_canonical(text), after);
    } else {
      exercise(punctual::cron_trigger(text, pick_zone(sel >> 1), policy), after);
    }
  } catch (const punctual::parse_error& e) {
    check(e.column() <= text.size() + 1, "error column past the end of the text");
    check(!e.reason().empty(), "error without a reason");
  }
  return 0;
}
