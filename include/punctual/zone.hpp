/// @file zone.hpp
/// IANA time zones, read from the system's compiled tz database (TZif files), header-only.
///
/// Why not std::chrono::tzdb or date/tz.h: g++ 12's standard library has no tzdb, and
/// date/tz.h in "OS tzdb" mode (Debian's libdate-tz) is a compiled library that ignores the
/// TZif footer, so every zone loses its daylight-saving rule after 2037. This reader applies
/// the footer's POSIX TZ rule past the last listed transition, so far-future fire times are
/// right. PUNCTUAL_ZONEINFO_DIR (config.hpp) or the TZDIR environment variable names the
/// database directory.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/posix_tz.hpp"
#include "punctual/detail/tzif.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// What a trigger does with a wall-clock time that does not exist (the spring-forward gap).
enum class dst_gap {
  shift,  ///< fire once, at the first instant after the gap (default: a daily 02:30 job still runs)
  skip,   ///< do not fire for that day
};

/// What a trigger does with a wall-clock time that occurs twice (the fall-back overlap).
enum class dst_overlap {
  automatic,  ///< once, on the first pass — except cron expressions whose hour field is `*`,
              ///< which fire on both passes so an every-15-minutes job keeps its rhythm (default)
  once,       ///< once, on the first pass, always
  twice,      ///< on both passes, always
};

/// A trigger's daylight-saving policy. Text form: `gap=shift,overlap=auto` (either part may be
/// omitted; the default is `gap=shift,overlap=auto`).
struct dst_policy {
  dst_gap gap = dst_gap::shift;
  dst_overlap overlap = dst_overlap::automatic;
  friend bool operator==(const dst_policy&, const dst_policy&) = default;
};

/// A span of UTC time [begin, end) during which a zone's UTC offset is constant.
/// The first segment begins at time_point::min(), the last ends at time_point::max().
struct zone_segment {
  time_point begin;
  time_point end;
  std::chrono::seconds offset;
};

/// How a civil time maps to UTC in a zone.
struct local_info {
  enum kind_t { unique, nonexistent, ambiguous };
  kind_t kind;
  /// unique: the instant. nonexistent: the first instant after the gap (the transition).
  /// ambiguous: the earlier instant (first pass).
  time_point first;
  /// unique / nonexistent: same as first. ambiguous: the later instant (second pass).
  time_point second;
};

namespace detail {

/// Whole seconds of the earliest / latest instant a time_point can hold.
inline constexpr std::int64_t min_zone_second = -9'223'372'036'854;
inline constexpr std::int64_t max_zone_second = 9'223'372'036'854;

/// UTC second -> time_point, saturating to time_point::min() / max().
constexpr time_point zone_instant(std::int64_t s) noexcept {
  if (s < min_zone_second) return time_point::min();
  if (s > max_zone_second) return time_point::max();
  return time_point{std::chrono::seconds{s}};
}

/// a + b on microsecond counts, saturating instead of overflowing.
constexpr std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  if (b > 0 && a > std::numeric_limits<std::int64_t>::max() - b)
    return std::numeric_limits<std::int64_t>::max();
  if (b < 0 && a < std::numeric_limits<std::int64_t>::min() - b)
    return std::numeric_limits<std::int64_t>::min();
  return a + b;
}

/// Footer-rule transitions are stored in the table up to this year; later ones are computed
/// on demand, so a table stays a few kilobytes.
inline constexpr std::int64_t zone_table_until_year = 2100;

}  // namespace detail

/// An IANA time zone. Immutable; obtained from locate_zone() and valid for the life of the
/// process. Thread safety: all members are const and safe from any thread.
///
/// Offsets come from the zone's transition table; past the last listed transition the TZif
/// footer's POSIX rule applies, for any year. Neighbouring transitions that change only the
/// abbreviation or the DST flag (not the UTC offset) are merged, so every segment boundary is
/// a real change of offset.
class time_zone {
 public:
  /// The IANA name, e.g. "Europe/Berlin".
  const std::string& name() const noexcept { return name_; }
  /// True when the offset is zero at every instant (UTC, Etc/UTC, Etc/GMT, ...).
  bool is_utc() const noexcept { return at_.empty() && initial_ == 0 && !rule_; }

  /// The constant-offset segment that contains `t`: the longest span [begin, end) around `t`
  /// with one UTC offset. Allocation-free and lock-free; a binary search over the table, or a
  /// few date computations past its end.
  zone_segment segment(time_point t) const noexcept {
    const std::int64_t s = detail::floor_div(t.time_since_epoch().count(), 1'000'000);
    const auto idx = static_cast<std::size_t>(std::upper_bound(at_.begin(), at_.end(), s) - at_.begin());
    if (rule_) {
      if (idx == at_.size()) return footer_segment(s);
      if (idx == 0 && rule_everywhere_)
        return rule_segment(s, std::numeric_limits<std::int64_t>::min(), at_.front());
    }
    return {idx == 0 ? time_point::min() : detail::zone_instant(at_[idx - 1]),
            idx == at_.size() ? time_point::max() : detail::zone_instant(at_[idx]),
            std::chrono::seconds{idx == 0 ? initial_ : off_[idx - 1]}};
  }
  /// The UTC offset in force at `t`.
  std::chrono::seconds offset(time_point t) const noexcept { return segment(t).offset; }
  /// The civil time at `t` (saturating at the ends of the time_point range).
  local_time to_local(time_point t) const noexcept {
    const auto us = t.time_since_epoch().count();
    return local_time{duration{detail::saturating_add(us, offset(t).count() * 1'000'000)}};
  }
  /// How the civil time `lt` maps back to UTC: unique, nonexistent (in a gap; `first` is the
  /// transition, i.e. the first instant after the gap) or ambiguous (in an overlap; `first`
  /// is the earlier instant). Works for any offset change, not only DST.
  local_info resolve(local_time lt) const noexcept {
    const std::int64_t l = lt.time_since_epoch().count();
    const std::int64_t lo = detail::saturating_add(l, -std::int64_t{max_off_} * 1'000'000);
    const std::int64_t hi = detail::saturating_add(l, -std::int64_t{min_off_} * 1'000'000);
    // every solution lies in [lo, hi]: visit the segments that intersect it
    zone_segment seg = segment(time_point{duration{lo}});
    std::int64_t found[2] = {0, 0};
    int n = 0;
    bool gap = false;
    std::int64_t gap_at = 0;
    for (int guard = 0; guard < 64; ++guard) {
      const std::int64_t cand = detail::saturating_add(l, -seg.offset.count() * 1'000'000);
      if (seg.begin.time_since_epoch().count() <= cand && cand < seg.end.time_since_epoch().count()) {
        if (n < 2)
          found[n] = cand;
        else
          found[1] = cand;  // more than two passes (absurd data): keep first and last
        ++n;
      }
      if (seg.end == time_point::max() || seg.end.time_since_epoch().count() > hi) break;
      const zone_segment next = segment(seg.end);
      // a gap at the boundary: local times [T + before, T + after) do not exist
      const std::int64_t t = seg.end.time_since_epoch().count();
      if (!gap && next.offset > seg.offset &&
          detail::saturating_add(t, seg.offset.count() * 1'000'000) <= l &&
          l < detail::saturating_add(t, next.offset.count() * 1'000'000)) {
        gap = true;
        gap_at = t;
      }
      seg = next;
    }
    const auto tp = [](std::int64_t us) { return time_point{duration{us}}; };
    if (n == 1) return {local_info::unique, tp(found[0]), tp(found[0])};
    if (n >= 2) return {local_info::ambiguous, tp(found[0]), tp(found[1])};
    if (gap) return {local_info::nonexistent, tp(gap_at), tp(gap_at)};
    const auto t =
        tp(detail::saturating_add(l, -offset(tp(l)).count() * 1'000'000));  // unreachable for sane data
    return {local_info::unique, t, t};
  }

  /// A zone named `name` whose offset is zero at every instant (UTC under another name).
  explicit time_zone(std::string name) : name_(std::move(name)) {}

  /// Builds a zone from the bytes of a TZif file (RFC 8536, versions 1-4). Leap-second records
  /// are ignored. Throws parse_error (field "time zone", text `name`) saying why when the data
  /// is not a well-formed TZif file or its footer is not a valid POSIX TZ string.
  static time_zone from_tzif(std::string name, std::string_view data) {
    const detail::tzif_data d = detail::parse_tzif(data, name);
    time_zone z(std::move(name));
    z.load(d);
    return z;
  }

 private:
  void load(const detail::tzif_data& d) {
    std::int32_t min_off = d.initial_offset, max_off = d.initial_offset;
    for (const auto o : d.all_offsets) {
      min_off = std::min(min_off, o);
      max_off = std::max(max_off, o);
    }
    bool fixed_footer = false;
    std::int32_t fixed_offset = 0;
    if (!d.footer.empty()) {
      try {
        rule_tz_ = detail::parse_posix_tz(d.footer);
      } catch (const parse_error& e) {
        throw parse_error("time zone", name_, 0, "corrupt TZif file: bad footer: " + std::string(e.what()));
      }
      for (const auto o : {rule_tz_.std_offset, rule_tz_.dst_offset}) {
        if (o < -89999 || o > 93599)
          throw parse_error("time zone", name_, 0, "corrupt TZif file: footer UTC offset out of range");
      }
      rule_ = rule_tz_.has_dst && rule_tz_.dst_offset != rule_tz_.std_offset;
      if (rule_) normalize_rule();
      if (rule_) {
        min_off = std::min({min_off, rule_tz_.std_offset, rule_tz_.dst_offset});
        max_off = std::max({max_off, rule_tz_.std_offset, rule_tz_.dst_offset});
      } else {
        fixed_footer = true;
        fixed_offset = rule_tz_.has_dst ? rule_tz_.dst_offset : rule_tz_.std_offset;
        min_off = std::min(min_off, fixed_offset);
        max_off = std::max(max_off, fixed_offset);
      }
    }
    min_off_ = min_off;
    max_off_ = max_off;

    initial_ = d.initial_offset;
    // RFC 8536: with no transitions, the footer (if any) gives local time at every instant
    if (d.at.empty() && fixed_footer) initial_ = fixed_offset;
    auto add = [this](std::int64_t at, std::int32_t off) {
      if (at < detail::min_zone_second) {
        initial_ = off;
        at_.clear();
        off_.clear();
        return;
      }
      if (at > detail::max_zone_second) return;
      if (off == (off_.empty() ? initial_ : off_.back())) return;  // no offset change: merge
      at_.push_back(at);
      off_.push_back(off);
    };
    for (std::size_t k = 0; k < d.at.size(); ++k) add(d.at[k], d.offset[k]);
    if (rule_) {
      rule_everywhere_ = d.at.empty();
      const std::int64_t last = d.at.empty() ? std::numeric_limits<std::int64_t>::min() : d.at.back();
      if (!rule_everywhere_) find_first_rule_change(last);
      std::int64_t y0 = d.at.empty() ? 1900 : detail::year_from_days(detail::floor_div(last, 86400)) - 1;
      y0 = std::max<std::int64_t>(y0, 1800);
      if (d.at.empty()) {
        // before the first rule-generated transition the rule's offset still applies
        std::array<detail::posix_event, 2> ev{};
        detail::posix_events(rule_tz_, y0 - 1, ev);
        initial_ = ev[1].offset;
      }
      for (std::int64_t y = y0; y < detail::zone_table_until_year; ++y) {
        std::array<detail::posix_event, 2> ev{};
        detail::posix_events(rule_tz_, y, ev);
        for (const auto& e : ev)
          if (e.at > last && (at_.empty() || e.at > at_.back())) add(e.at, e.offset);
      }
    }
    at_.shrink_to_fit();
    off_.shrink_to_fit();
  }

  // The rule's first change after the file's last transition `last` that moves the offset away
  // from the one the table ends with (before any rule transitions are appended to the table).
  void find_first_rule_change(std::int64_t last) {
    constexpr auto lowest = std::numeric_limits<std::int64_t>::min();
    constexpr auto highest = std::numeric_limits<std::int64_t>::max();
    const std::chrono::seconds table_offset{off_.empty() ? initial_ : off_.back()};
    std::int64_t t = std::clamp(last, detail::min_zone_second, detail::max_zone_second);
    first_rule_change_ = highest;
    for (int guard = 0; guard < 16; ++guard) {
      const zone_segment r = rule_segment(t, lowest, highest);
      if (r.end == time_point::max()) return;
      t = std::chrono::floor<std::chrono::seconds>(r.end).time_since_epoch().count();
      if (rule_segment(t, lowest, highest).offset != table_offset) {
        first_rule_change_ = t;
        return;
      }
    }
  }

  // A rule whose DST (or standard time) never lasts a positive time is a fixed offset. Also
  // finds whether the rule's changes strictly alternate within each year (DST inside the
  // calendar year, or across the new year), which allows the fast path of rule_segment().
  // Rule dates repeat every 400 years (146097 days, a whole number of weeks), so checking one
  // 400-year cycle covers every year.
  void normalize_rule() {
    bool north = true, south = true;
    std::int64_t s_prev = rule_tz_.dst_start_utc(2000), e_prev = rule_tz_.dst_end_utc(2000);
    for (std::int64_t y = 2001; y <= 2400 && (north || south); ++y) {
      const std::int64_t s = rule_tz_.dst_start_utc(y), e = rule_tz_.dst_end_utc(y);
      north = north && e_prev < s && s < e;
      south = south && s_prev < e && e < s;
      s_prev = s;
      e_prev = e;
    }
    rule_order_ = north ? rule_order::northern : south ? rule_order::southern : rule_order::general;
    if (rule_order_ != rule_order::general) return;  // both offsets last a positive time

    bool seen_std = false, seen_dst = false;
    for (std::int64_t y = 2001; y <= 2400 && !(seen_std && seen_dst); ++y) {
      std::array<detail::posix_event, 6> ev{};
      detail::posix_events(rule_tz_, y - 1, ev);
      for (std::size_t i = 0; i + 1 < ev.size(); ++i) {
        if (ev[i].at == ev[i + 1].at) continue;
        (ev[i].offset == rule_tz_.dst_offset ? seen_dst : seen_std) = true;
      }
    }
    if (seen_std && seen_dst) return;
    rule_ = false;
    rule_tz_.has_dst = seen_dst;  // the only offset that ever lasts
  }

  // Segment at or after the last table entry. As in the reference tzcode, the type of the file's
  // last transition holds until the rule's first change after it (first_rule_change_); from
  // then on the rule alone decides.
  zone_segment footer_segment(std::int64_t s) const noexcept {
    constexpr auto lowest = std::numeric_limits<std::int64_t>::min();
    constexpr auto highest = std::numeric_limits<std::int64_t>::max();
    if (!rule_everywhere_ && s < first_rule_change_) {
      return {at_.empty() ? time_point::min() : detail::zone_instant(at_.back()),
              detail::zone_instant(first_rule_change_),
              std::chrono::seconds{at_.empty() ? initial_ : off_.back()}};
    }
    return rule_segment(s, lowest, highest);
  }

  // The n-th change of a strictly alternating rule: two per year, in time order.
  std::int64_t rule_event(std::int64_t n) const noexcept {
    const std::int64_t y = detail::floor_div(n, 2);
    const bool first = n - 2 * y == 0;
    return first == (rule_order_ == rule_order::northern) ? rule_tz_.dst_start_utc(y)
                                                          : rule_tz_.dst_end_utc(y);
  }

  // Segment from the footer rule around UTC second s, clamped to [lo, hi).
  zone_segment rule_segment(std::int64_t s, std::int64_t lo, std::int64_t hi) const noexcept {
    const std::int64_t y = detail::year_from_days(detail::floor_div(s, 86400));
    if (rule_order_ != rule_order::general) {
      // walk the alternating sequence from the first change of year y: usually 2-3 dates
      std::int64_t n = 2 * y;
      std::int64_t a = rule_event(n);
      std::int64_t b;
      if (a > s) {
        b = a;
        a = rule_event(--n);
        while (a > s) {
          b = a;
          a = rule_event(--n);
        }
      } else {
        b = rule_event(n + 1);
        while (b <= s) {
          a = b;
          b = rule_event(++n + 1);
        }
      }
      const bool dst = (n - 2 * detail::floor_div(n, 2) == 0) == (rule_order_ == rule_order::northern);
      return {detail::zone_instant(std::max(a, lo)), detail::zone_instant(std::min(b, hi)),
              std::chrono::seconds{dst ? rule_tz_.dst_offset : rule_tz_.std_offset}};
    }
    std::array<detail::posix_event, 10> ev{};
    detail::posix_events(rule_tz_, y - 2, ev);
    // year y-2's events all precede s, year y+2's all follow it
    std::size_t k = 0;
    while (k + 1 < ev.size() && ev[k + 1].at <= s) ++k;
    const std::int32_t off = ev[k].offset;
    std::size_t b = k;
    while (b > 0 && ev[b - 1].offset == off) --b;
    std::size_t e = k + 1;
    while (e < ev.size() && ev[e].offset == off) ++e;
    std::int64_t begin = ev[b].at;
    std::int64_t end = e < ev.size() ? ev[e].at : ev.back().at + 1;
    begin = std::max(begin, lo);
    end = std::min(end, hi);
    return {detail::zone_instant(begin), detail::zone_instant(end), std::chrono::seconds{off}};
  }

  std::string name_;
  std::vector<std::int64_t> at_;   // UTC seconds of offset changes, ascending
  std::vector<std::int32_t> off_;  // offset from at_[i] on
  std::int32_t initial_ = 0;       // offset before at_[0]
  std::int32_t min_off_ = 0;
  std::int32_t max_off_ = 0;
  bool rule_ = false;                   // a DST rule governs after at_.back()
  bool rule_everywhere_ = false;        // ... and before at_.front() (no transitions in the file)
  std::int64_t first_rule_change_ = 0;  // the rule's first change after the file's transitions
  enum class rule_order : std::uint8_t { general, northern, southern } rule_order_ = rule_order::general;
  detail::posix_tz rule_tz_;
};

/// The UTC zone; always available, even without a tz database on the machine.
inline const time_zone& utc_zone() {
  static const time_zone z{"UTC"};
  return z;
}

namespace detail {

/// Every zone locate_zone() has loaded, for the life of the process.
struct zone_cache {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<const time_zone>, std::less<>> zones;
};

/// The one process-wide cache (a function-local static: one instance across translation units).
inline zone_cache& zones() {
  static zone_cache c;
  return c;
}

}  // namespace detail

/// Finds a zone by IANA name ("Europe/Berlin", "UTC"), reading the TZif file from $TZDIR or
/// PUNCTUAL_ZONEINFO_DIR. Loaded once and cached for the life of the process (the reference
/// stays valid); thread-safe. "UTC" is built in and needs no tz database.
///
/// Throws parse_error (field "time zone") for a name that is not a plain relative path of
/// `[A-Za-z0-9/_+-]` (column of the bad character), for an unknown zone ("unknown time zone
/// (no such file in <dir>)") and for a corrupt file (with the reason).
inline const time_zone& locate_zone(std::string_view name) {
  if (name == "UTC") return utc_zone();
  detail::validate_zone_name(name);
  auto& cache = detail::zones();
  {
    std::lock_guard lock(cache.mutex);
    if (const auto it = cache.zones.find(name); it != cache.zones.end()) return *it->second;
  }
  std::string n(name);
  std::unique_ptr<const time_zone> z;
  try {
    const std::string data = detail::read_zone_file(detail::zoneinfo_dir(), n);
    z = std::make_unique<const time_zone>(time_zone::from_tzif(n, data));
  } catch (const parse_error&) {
    if (n != "Etc/UTC") throw;
    z = std::make_unique<const time_zone>(n);  // works without tzdata, like "UTC"
  }
  std::lock_guard lock(cache.mutex);
  const auto [it, inserted] = cache.zones.try_emplace(std::move(n), std::move(z));
  return *it->second;
}

/// The host's local time zone, found the way the C library finds it: `$TZ` when it is set and
/// names a zone (a leading ':' is ignored; a TZ that is empty or not a zone name, such as a POSIX
/// rule string, is passed over); else the zone named by the /etc/localtime symlink (the part of
/// its target after ".../zoneinfo/"); else /etc/localtime read as a TZif file (a zone named
/// "localtime"); else utc_zone(). Never throws. Looked up on every call (zones themselves are
/// cached by locate_zone), so a changed TZ is seen; the reference lives for the whole process.
inline const time_zone& host_zone() {
  if (const char* tz = std::getenv("TZ"); tz != nullptr) {
    std::string_view name(tz);
    if (!name.empty() && name.front() == ':') name.remove_prefix(1);
    if (!name.empty()) {
      try {
        return locate_zone(name);
      } catch (const parse_error&) {
        // not a zone name: fall through to /etc/localtime
      }
    }
  }
  std::error_code ec;
  const std::string target = std::filesystem::read_symlink("/etc/localtime", ec).generic_string();
  if (!ec) {
    constexpr std::string_view marker = "zoneinfo/";
    if (const auto at = target.find(marker); at != std::string::npos) {
      try {
        return locate_zone(std::string_view(target).substr(at + marker.size()));
      } catch (const parse_error&) {
        // a link into no known zone: read the file itself
      }
    }
  }
  // The file read as TZif, kept in the zone cache under a key locate_zone() never accepts.
  constexpr std::string_view key = "/etc/localtime";
  auto& cache = detail::zones();
  {
    std::lock_guard lock(cache.mutex);
    if (const auto it = cache.zones.find(key); it != cache.zones.end()) return *it->second;
  }
  try {
    auto z = std::make_unique<const time_zone>(
        time_zone::from_tzif("localtime", detail::read_zone_file("/etc", "localtime")));
    std::lock_guard lock(cache.mutex);
    const auto [it, inserted] = cache.zones.try_emplace(std::string(key), std::move(z));
    return *it->second;
  } catch (const std::exception&) {
    return utc_zone();
  }
}

/// Formats `t` as ISO 8601 with the UTC offset in force in `z`: `2026-03-29T03:00:00+02:00`.
inline std::string format_iso(time_point t, const time_zone& z) {
  return format_iso(z.to_local(t), z.offset(t));
}

/// `shift` or `skip` as a dst_gap; nullopt for any other word.
inline std::optional<dst_gap> dst_gap_from_string(std::string_view word) {
  if (word == "shift") return dst_gap::shift;
  if (word == "skip") return dst_gap::skip;
  return std::nullopt;
}

/// `auto`, `once` or `twice` as a dst_overlap; nullopt for any other word.
inline std::optional<dst_overlap> dst_overlap_from_string(std::string_view word) {
  if (word == "auto") return dst_overlap::automatic;
  if (word == "once") return dst_overlap::once;
  if (word == "twice") return dst_overlap::twice;
  return std::nullopt;
}

/// Parses a dst_policy text `gap=shift|skip,overlap=auto|once|twice`; either part may be left
/// out (it keeps its default) and they may come in any order; "" is the default policy.
/// Throws parse_error (field "DST policy") naming the column of the bad part.
inline dst_policy parse_dst_policy(std::string_view text) {
  dst_policy p;
  bool seen_gap = false, seen_overlap = false;
  const std::string whole(text);
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t comma = text.find(',', i);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(i, comma - i);
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    if (item.empty())
      throw parse_error("DST policy", whole, i + 1, "empty part (expected gap=... or overlap=...)");
    if (eq == std::string_view::npos)
      throw parse_error("DST policy", whole, i + 1, "expected key=value (gap=... or overlap=...)");
    const std::string_view value = item.substr(eq + 1);
    const std::size_t vcol = i + eq + 2;
    if (key == "gap") {
      if (seen_gap) throw parse_error("DST policy", whole, i + 1, "gap given twice");
      seen_gap = true;
      if (auto g = dst_gap_from_string(value))
        p.gap = *g;
      else
        throw parse_error("DST policy", whole, vcol, "gap must be shift or skip");
    } else if (key == "overlap") {
      if (seen_overlap) throw parse_error("DST policy", whole, i + 1, "overlap given twice");
      seen_overlap = true;
      if (auto o = dst_overlap_from_string(value))
        p.overlap = *o;
      else
        throw parse_error("DST policy", whole, vcol, "overlap must be auto, once or twice");
    } else {
      throw parse_error("DST policy", whole, i + 1, "unknown key (expected gap or overlap)");
    }
    if (comma == text.size()) break;
    i = comma + 1;
    if (i == text.size()) throw parse_error("DST policy", whole, i, "trailing ','");
  }
  return p;
}

/// Canonical text of a dst_policy, always both parts: `gap=shift,overlap=auto`.
/// parse_dst_policy(to_string(p)) == p.
inline std::string to_string(dst_policy p) {
  std::string s = p.gap == dst_gap::skip ? "gap=skip" : "gap=shift";
  s += p.overlap == dst_overlap::once    ? ",overlap=once"
       : p.overlap == dst_overlap::twice ? ",overlap=twice"
                                         : ",overlap=auto";
  return s;
}

PUNCTUAL_END_NAMESPACE
