/// @file detail/cron_spec.hpp
/// Internals of cron_trigger: a parsed cron expression as per-field bitsets (cron_spec), its
/// parser, and the civil-time search that finds the first matching wall-clock second at or
/// after a given one by carrying between fields — never by stepping second by second.
///
/// Civil times here are "civil seconds": wall-clock seconds since 1970-01-01T00:00:00 in
/// whatever zone the caller works in (no offset is involved at this level).
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/detail/utf8.hpp"
#include "punctual/error.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

inline constexpr int cron_first_year = 1970;
inline constexpr int cron_last_year = PUNCTUAL_MAX_YEAR;
static_assert(PUNCTUAL_MAX_YEAR >= 1971 && PUNCTUAL_MAX_YEAR <= 9999,
              "PUNCTUAL_MAX_YEAR must be in 1971..9999");
inline constexpr std::size_t cron_year_words =
    static_cast<std::size_t>(cron_last_year - cron_first_year + 1 + 63) / 64;
/// What the civil search returns when nothing matches up to the end of cron_last_year.
inline constexpr std::int64_t cron_never = std::numeric_limits<std::int64_t>::max();

/// a / b rounded towards negative infinity (b > 0).
constexpr std::int64_t cron_floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
/// a / b rounded towards positive infinity (b > 0).
constexpr std::int64_t cron_ceil_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && a > 0) ? q + 1 : q;
}

/// Day number (days since 1970-01-01) of a civil date.
constexpr std::int64_t cron_day_number(int y, unsigned m, unsigned d) noexcept {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
}

/// The seven fields of a cron expression.
enum class cron_field : std::uint8_t { second, minute, hour, day_of_month, month, day_of_week, year };

/// A parsed cron expression: one bitset per field plus the day-of-month / day-of-week
/// specials. Plain data; copying is cheap.
struct cron_spec {
  std::uint64_t seconds = 0;              ///< bit s: second s (0-59)
  std::uint64_t minutes = 0;              ///< bit m: minute m (0-59)
  std::uint32_t hours = 0;                ///< bit h: hour h (0-23)
  std::uint32_t dom = 0;                  ///< bit d: day of month d (1-31)
  std::uint32_t dom_last = 0;             ///< bit n: `L-n` (n days before the last day; `L` is n = 0)
  std::uint32_t dom_nearest = 0;          ///< bit n: `nW` (weekday nearest to day n)
  std::uint16_t months = 0;               ///< bit m: month m (1-12)
  std::uint8_t dow = 0;                   ///< bit w: weekday w (0 = Sunday ... 6 = Saturday)
  std::uint8_t dow_last = 0;              ///< bit w: `wL` (last weekday w of the month)
  std::array<std::uint8_t, 5> dow_nth{};  ///< [n-1] bit w: `w#n` (n-th weekday w of the month)
  bool dom_last_weekday = false;          ///< `LW`
  bool dom_star = true;                   ///< day-of-month starts with `*` or is `?`
  bool dow_star = true;                   ///< day-of-week starts with `*` or is `?`
  bool dom_special = false;               ///< any of L, L-n, LW, nW
  bool dow_special = false;               ///< any of wL, w#n
  std::array<std::uint64_t, cron_year_words> years{};  ///< bit y - 1970: year y

  /// True when the hour field matches all 24 hours.
  bool all_hours() const noexcept { return hours == 0xFFFFFFu; }

  bool has_year(int y) const noexcept {
    const auto i = static_cast<unsigned>(y - cron_first_year);
    return (years[i >> 6] >> (i & 63)) & 1u;
  }

  /// First selected year >= y, or 0 when there is none.
  int year_at_or_after(int y) const noexcept {
    if (y > cron_last_year) return 0;
    auto i = static_cast<unsigned>(y - cron_first_year);
    std::size_t w = i >> 6;
    std::uint64_t bits = years[w] & (~std::uint64_t{0} << (i & 63));
    for (;;) {
      if (bits != 0)
        return cron_first_year + static_cast<int>(w * 64 + static_cast<unsigned>(std::countr_zero(bits)));
      if (++w == cron_year_words) return 0;
      bits = years[w];
    }
  }

  /// The days (bit d = day d) of a month that match the day fields, given the weekday of its
  /// first day (`first`, 0 = Sunday) and its length `len`.
  std::uint32_t day_mask(unsigned first, unsigned len) const noexcept {
    const auto valid = static_cast<std::uint32_t>(((std::uint64_t{1} << len) - 1) << 1);
    // a field whose values cover every day matches every day, whatever its specials add
    const bool dom_all = (dom & 0xFFFFFFFEu) == 0xFFFFFFFEu;
    const bool dow_all = (dow & 0x7Fu) == 0x7Fu;
    const bool both_restricted = !dom_star && !dow_star;
    if (both_restricted ? dom_all || dow_all : dom_all && dow_all) return valid;
    const unsigned last_wd = (first + len - 1) % 7;  // weekday of the last day
    std::uint32_t dm = valid;
    std::uint32_t wm = valid;
    if (!dom_all) {
      dm = dom & valid;
      if (dom_special) {
        for (std::uint32_t b = dom_last; b != 0; b &= b - 1) {
          const auto n = static_cast<unsigned>(std::countr_zero(b));
          if (n < len) dm |= 1u << (len - n);
        }
        if (dom_last_weekday) dm |= 1u << (len - (last_wd == 6 ? 1 : last_wd == 0 ? 2 : 0));
        for (std::uint32_t b = dom_nearest; b != 0; b &= b - 1) {
          const auto n = static_cast<unsigned>(std::countr_zero(b));
          if (n > len) continue;  // no day n in this month: nothing to be near to
          const unsigned wd = (first + n - 1) % 7;
          unsigned d = n;
          if (wd == 6)
            d = n == 1 ? 3 : n - 1;  // Saturday: Friday before, or Monday 3rd
          else if (wd == 0)
            d = n == len ? n - 2 : n + 1;  // Sunday: Monday after, or Friday before
          dm |= 1u << d;
        }
      }
    }
    if (!dow_all) {
      // bit i of r: whether day i+1 has a selected weekday; the pattern repeats every 7 days
      const unsigned r =
          ((static_cast<unsigned>(dow) >> first) | (static_cast<unsigned>(dow) << (7 - first))) & 0x7Fu;
      const std::uint64_t rep = std::uint64_t{r} | std::uint64_t{r} << 7 | std::uint64_t{r} << 14 |
                                std::uint64_t{r} << 21 | std::uint64_t{r} << 28;
      wm = static_cast<std::uint32_t>(rep << 1) & valid;
      if (dow_special) {
        for (unsigned b = dow_last; b != 0; b &= b - 1) {
          const auto x = static_cast<unsigned>(std::countr_zero(b));
          wm |= 1u << (len - (last_wd + 7 - x) % 7);
        }
        for (unsigned n = 0; n < 5; ++n) {
          for (unsigned b = dow_nth[n]; b != 0; b &= b - 1) {
            const auto x = static_cast<unsigned>(std::countr_zero(b));
            const unsigned d = 1 + (x + 7 - first) % 7 + 7 * n;
            if (d <= len) wm |= 1u << d;
          }
        }
      }
    }
    // Vixie cron's rule: when both fields are restricted either may match; when one starts
    // with '*' (or is '?') both must, so `*/2` still filters by its values
    return both_restricted ? dm | wm : dm & wm;
  }

  /// The first civil second >= `t` (clamped to 1970-01-01T00:00:00) that matches every field,
  /// or cron_never when there is none up to the end of cron_last_year. Carries from field to
  /// field; its cost is bounded by the number of (year, month) pairs it has to reject.
  std::int64_t first_at_or_after(std::int64_t t) const noexcept {
    using namespace std::chrono;
    if (t < 0) t = 0;
    const std::int64_t dn = t / 86400;
    const auto sod = static_cast<unsigned>(t - dn * 86400);
    const year_month_day ymd{sys_days{days{dn}}};
    int y = static_cast<int>(ymd.year());
    if (y > cron_last_year) return cron_never;
    unsigned m = static_cast<unsigned>(ymd.month());
    unsigned d = static_cast<unsigned>(ymd.day());
    unsigned h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
    unsigned cached = 0;  // y * 16 + m of the month whose day mask is in `dmask`
    std::uint32_t dmask = 0;
    std::int64_t day1 = 0;  // day number of the 1st of that month
    for (;;) {
      if (!has_year(y)) {
        y = year_at_or_after(y + 1);
        if (y == 0) return cron_never;
        m = d = 1;
        h = mi = s = 0;
      }
      const unsigned mm = static_cast<unsigned>(months) >> m;
      if (mm == 0) {
        if (++y > cron_last_year) return cron_never;
        m = d = 1;
        h = mi = s = 0;
        continue;
      }
      if (const unsigned nm = m + static_cast<unsigned>(std::countr_zero(mm)); nm != m) {
        m = nm;
        d = 1;
        h = mi = s = 0;
      }
      const unsigned key = static_cast<unsigned>(y) * 16 + m;
      if (key != cached) {
        cached = key;
        day1 = cron_day_number(y, m, 1);
        const auto first = static_cast<unsigned>((day1 + 4) % 7);  // 1970-01-01 was a Thursday (4)
        constexpr unsigned char lengths[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        dmask = day_mask(first, lengths[m] + (m == 2 && leap ? 1u : 0u));
      }
      const std::uint64_t dd = std::uint64_t{dmask} >> d;
      if (dd == 0) {
        if (++m > 12) {
          m = 1;
          if (++y > cron_last_year) return cron_never;
        }
        d = 1;
        h = mi = s = 0;
        continue;
      }
      if (const unsigned nd = d + static_cast<unsigned>(std::countr_zero(dd)); nd != d) {
        d = nd;
        h = mi = s = 0;
      }
      const std::uint32_t hh = hours >> h;
      if (hh == 0) {
        ++d;
        h = mi = s = 0;
        continue;
      }
      if (const unsigned nh = h + static_cast<unsigned>(std::countr_zero(hh)); nh != h) {
        h = nh;
        mi = s = 0;
      }
      const std::uint64_t mn = minutes >> mi;
      if (mn == 0) {
        ++h;
        mi = s = 0;
        continue;
      }
      if (const unsigned nmi = mi + static_cast<unsigned>(std::countr_zero(mn)); nmi != mi) {
        mi = nmi;
        s = 0;
      }
      const std::uint64_t sc = seconds >> s;
      if (sc == 0) {
        ++mi;
        s = 0;
        continue;
      }
      s += static_cast<unsigned>(std::countr_zero(sc));
      return (day1 + d - 1) * 86400 + h * 3600 + mi * 60 + s;
    }
  }
};

/// One whitespace-separated word of a cron expression: offset and length in the parsed text.
struct cron_token {
  std::size_t pos = 0;
  std::size_t len = 0;
};

/// Splits `text` into whitespace-separated words; stores at most `max` of them in `out` and
/// returns how many there are in all.
inline std::size_t cron_split(std::string_view text, cron_token* out, std::size_t max) noexcept {
  std::size_t n = 0;
  std::size_t i = 0;
  auto blank = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  while (i < text.size()) {
    while (i < text.size() && blank(text[i])) ++i;
    if (i == text.size()) break;
    const std::size_t start = i;
    while (i < text.size() && !blank(text[i])) ++i;
    if (n < max) out[n] = {start, i - start};
    ++n;
  }
  return n;
}

/// Parses the fields of a cron expression. `text` is the text that error columns refer to,
/// `tokens` its words (at most 7 are looked at; `count` is how many there are in all).
/// Throws parse_error; the message quotes `text`.
class cron_parser {
 public:
  explicit cron_parser(std::string_view text) noexcept : text_(text) {}

  cron_spec parse(const cron_token* tokens, std::size_t count) {
    if (count == 0) fail_whole("is empty (expected 5, 6 or 7 fields, or a macro such as @daily)");
    if (text_[tokens[0].pos] == '@') return parse_macro(tokens, count);
    if (count < 5 || count > 7) fail_whole("expected 5, 6 or 7 fields, got " + std::to_string(count));
    cron_spec spec;
    std::size_t k = 0;
    if (count >= 6) {
      parse_field(cron_field::second, tokens[k++], spec);
    } else {
      spec.seconds = 1;  // 5 fields: at second 0
    }
    parse_field(cron_field::minute, tokens[k++], spec);
    parse_field(cron_field::hour, tokens[k++], spec);
    parse_field(cron_field::day_of_month, tokens[k++], spec);
    parse_field(cron_field::month, tokens[k++], spec);
    parse_field(cron_field::day_of_week, tokens[k++], spec);
    if (count == 7) {
      parse_field(cron_field::year, tokens[k++], spec);
    } else {
      spec.years.fill(~std::uint64_t{0});
      constexpr unsigned tail = static_cast<unsigned>(cron_last_year - cron_first_year + 1) % 64;
      if constexpr (tail != 0) spec.years.back() = (std::uint64_t{1} << tail) - 1;
    }
    if (spec.first_at_or_after(0) == cron_never) never_fires(spec, tokens, count);
    return spec;
  }

 private:
  struct field_def {
    const char* name;
    int lo;
    int hi;   // largest value accepted (7 for day-of-week)
    int top;  // largest value of the natural cycle (6 for day-of-week)
  };

  static constexpr field_def def(cron_field f) noexcept {
    switch (f) {
      case cron_field::second: return {"second field", 0, 59, 59};
      case cron_field::minute: return {"minute field", 0, 59, 59};
      case cron_field::hour: return {"hour field", 0, 23, 23};
      case cron_field::day_of_month: return {"day-of-month field", 1, 31, 31};
      case cron_field::month: return {"month field", 1, 12, 12};
      case cron_field::day_of_week: return {"day-of-week field", 0, 7, 6};
      case cron_field::year: break;
    }
    return {"year field", cron_first_year, cron_last_year, cron_last_year};
  }

  using bits = std::array<std::uint64_t, cron_year_words>;

  // Throws for the bytes [pos, pos + len) of the text, widened to whole characters.
  [[noreturn]] void fail(cron_field f, std::size_t pos, std::size_t len, std::string reason) const {
    const std::string_view bad = utf8_whole(text_, pos, len);
    throw parse_error(def(f).name, std::string(bad),
                      utf8_column(text_, static_cast<std::size_t>(bad.data() - text_.data())),
                      std::move(reason), std::string(text_));
  }
  [[noreturn]] void fail_whole(std::string reason) const {
    std::size_t b = 0, e = text_.size();
    while (b < e && static_cast<unsigned char>(text_[b]) <= ' ') ++b;
    while (e > b && static_cast<unsigned char>(text_[e - 1]) <= ' ') --e;
    throw parse_error("cron expression", std::string(text_.substr(b, e - b)), 0, std::move(reason));
  }

  static char upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
  static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
  static bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

  // The character at s[i] for a message: 'x', U+FF13 '３', or byte 0xEF (a control character
  // or a byte that is not valid UTF-8).
  static std::string describe(std::string_view s, std::size_t i) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const auto u = static_cast<unsigned char>(s[i]);
    if (const std::size_t n = utf8_sequence(s, i); n != 0) {
      std::uint32_t cp = u & (0x7Fu >> n);
      for (std::size_t k = 1; k < n; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
      std::string out = "U+";
      for (int shift = cp > 0xFFFFF ? 20 : cp > 0xFFFF ? 16 : 12; shift >= 0; shift -= 4)
        out += hex[cp >> shift & 15];
      return out + " '" + std::string(s.substr(i, n)) + "'";
    }
    if (u < 0x20 || u >= 0x7F) return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
    return std::string("'") + s[i] + "'";
  }

  cron_spec parse_macro(const cron_token* tokens, std::size_t count) {
    const std::string_view word = text_.substr(tokens[0].pos, tokens[0].len);
    if (count > 1)
      throw parse_error("cron expression", std::string(text_.substr(tokens[1].pos, tokens[1].len)),
                        tokens[1].pos + 1, "a macro such as " + std::string(word) + " must stand alone",
                        std::string(text_));
    std::string lower(word);
    for (auto& c : lower) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    std::string_view expansion;
    if (lower == "@yearly" || lower == "@annually")
      expansion = "0 0 1 1 *";
    else if (lower == "@monthly")
      expansion = "0 0 1 * *";
    else if (lower == "@weekly")
      expansion = "0 0 * * 0";
    else if (lower == "@daily" || lower == "@midnight")
      expansion = "0 0 * * *";
    else if (lower == "@hourly")
      expansion = "0 * * * *";
    else if (lower == "@reboot")
      throw parse_error("cron expression", std::string(word), tokens[0].pos + 1,
                        "@reboot is not supported (a trigger has fire times, not boot events)",
                        std::string(text_));
    else
      throw parse_error("cron expression", std::string(word), tokens[0].pos + 1,
                        "unknown macro " + std::string(word) +
                            " (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
                        std::string(text_));
    cron_token t[5];
    const std::size_t n = cron_split(expansion, t, 5);
    return cron_parser(expansion).parse(t, n);
  }

  // Reads a number or a name at item[k]; advances k. Names are 3 letters (a day-of-week name
  // may be followed directly by L, as in FRIL).
  int read_value(cron_field f, std::string_view item, std::size_t base, std::size_t& k) const {
    const field_def fd = def(f);
    if (k >= item.size())
      fail(f, base, item.size(), "expected a value after '" + std::string(1, item[k - 1]) + "'");
    const std::size_t start = k;
    if (is_digit(item[k])) {
      long long v = 0;
      while (k < item.size() && is_digit(item[k])) {
        if (v < 100'000'000) v = v * 10 + (item[k] - '0');
        ++k;
      }
      if (v < fd.lo || v > fd.hi) {
        const std::string digits(item.substr(start, k - start));
        fail(f, base + start, k - start,
             (v >= 100'000'000 ? digits : std::to_string(v)) + " is out of range " + std::to_string(fd.lo) +
                 "-" + std::to_string(fd.hi));
      }
      return static_cast<int>(v);
    }
    if (is_alpha(item[k])) {
      std::size_t e = k;
      while (e < item.size() && is_alpha(item[e])) ++e;
      const std::string_view run = item.substr(k, e - k);
      if (f == cron_field::month || f == cron_field::day_of_week) {
        static constexpr const char* month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
        static constexpr const char* day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
        const bool fits =
            run.size() == 3 || (f == cron_field::day_of_week && run.size() == 4 && upper(run[3]) == 'L');
        if (fits) {
          const char* const* names = f == cron_field::month ? month_names : day_names;
          const int n = f == cron_field::month ? 12 : 7;
          for (int i = 0; i < n; ++i) {
            if (upper(run[0]) == names[i][0] && upper(run[1]) == names[i][1] &&
                upper(run[2]) == names[i][2]) {
              k += 3;
              return f == cron_field::month ? i + 1 : i;
            }
          }
        }
        fail(f, base + k, run.size(),
             "unknown name " + std::string(run) +
                 (f == cron_field::month ? " (expected JAN-DEC or 1-12)" : " (expected SUN-SAT or 0-7)"));
      }
      if (run.size() <= 2 && (upper(run[0]) == 'L' || upper(run[0]) == 'W')) {
        if (f == cron_field::day_of_month)
          fail(f, base + k, run.size(), std::string(run) + " cannot be part of a range or step");
        fail(f, base + k, run.size(),
             std::string(run) + " is only allowed in the day-of-month" +
                 (upper(run[0]) == 'L' && run.size() == 1 ? " and day-of-week fields" : " field"));
      }
      fail(f, base + k, run.size(), "unknown name " + std::string(run) + " (this field takes numbers only)");
    }
    fail(f, base + k, 1, "unexpected " + describe(item, k) + " (expected a number)");
  }

  // Reads "/n" at item[k] (k points at '/') to the end of the item.
  int read_step(cron_field f, std::string_view item, std::size_t base, std::size_t k) const {
    const field_def fd = def(f);
    const int span = fd.top - fd.lo + 1;
    const std::size_t start = k + 1;
    if (start == item.size()) fail(f, base, item.size(), "expected a step after '/'");
    long long v = 0;
    std::size_t i = start;
    for (; i < item.size() && is_digit(item[i]); ++i)
      if (v < 100'000'000) v = v * 10 + (item[i] - '0');
    if (i != item.size() || i == start)
      fail(f, base + (i == start ? start : i), 1,
           "unexpected " + describe(item, i) + " in step (expected a number)");
    if (v == 0) fail(f, base, item.size(), "step 0 (a step must be 1 or more)");
    if (v > span)
      fail(f, base + start, item.size() - start,
           "step " + std::string(item.substr(start)) + " is larger than the field's range " +
               std::to_string(fd.lo) + "-" + std::to_string(fd.top));
    return static_cast<int>(v);
  }

  static void set_bit(cron_field f, bits& b, int v) noexcept {
    if (f == cron_field::day_of_week) v %= 7;
    if (f == cron_field::year) v -= cron_first_year;
    b[static_cast<unsigned>(v) >> 6] |= std::uint64_t{1} << (static_cast<unsigned>(v) & 63);
  }

  void add_range(cron_field f, bits& b, int a, int z, int step, std::size_t base,
                 std::string_view item) const {
    if (a <= z) {
      for (int v = a; v <= z; v += step) set_bit(f, b, v);
      return;
    }
    // a reversed range wraps around the field's cycle: 22-2 is 22,23,0,1,2; FRI-MON is Fri..Mon
    if (f == cron_field::year)
      fail(f, base, item.size(),
           "reversed range " + std::to_string(a) + "-" + std::to_string(z) + " (years do not wrap around)");
    const field_def fd = def(f);
    const int span = fd.top - fd.lo + 1;
    for (int v = a; v <= z + span; v += step) set_bit(f, b, fd.lo + (v - fd.lo) % span);
  }

  void parse_item(cron_field f, std::string_view item, std::size_t base, bits& b, cron_spec& spec) const {
    const field_def fd = def(f);
    const char c0 = upper(item[0]);
    if (c0 == '*') {
      if (item.size() == 1) return add_range(f, b, fd.lo, fd.top, 1, base, item);
      if (item[1] != '/')
        fail(f, base + 1, 1, "unexpected " + describe(item, 1) + " after '*' (expected '/')");
      return add_range(f, b, fd.lo, fd.top, read_step(f, item, base, 1), base, item);
    }
    if (c0 == '?') {
      if (f == cron_field::day_of_month || f == cron_field::day_of_week)
        fail(f, base, item.size(), "'?' must be the whole field");
      fail(f, base, 1, "'?' is only allowed in the day-of-month and day-of-week fields");
    }
    if (f == cron_field::day_of_month && c0 == 'L') {
      spec.dom_special = true;
      if (item.size() == 1) {
        spec.dom_last |= 1u;
      } else if (item.size() == 2 && upper(item[1]) == 'W') {
        spec.dom_last_weekday = true;
      } else if (item[1] == '-') {
        std::size_t k = 2;
        if (k == item.size() || !is_digit(item[k])) fail(f, base, item.size(), "expected L-n with n = 0-30");
        long long n = 0;
        for (; k < item.size() && is_digit(item[k]); ++k)
          if (n < 100'000'000) n = n * 10 + (item[k] - '0');
        if (k != item.size()) fail(f, base + k, 1, "unexpected " + describe(item, k) + " after L-n");
        if (n > 30)
          fail(f, base + 2, item.size() - 2, std::string(item.substr(2)) + " is out of range 0-30 (in L-n)");
        spec.dom_last |= 1u << n;
      } else {
        fail(f, base, item.size(), "unexpected text after L (expected L, L-n or LW)");
      }
      return;
    }
    if (f == cron_field::day_of_month && c0 == 'W')
      fail(f, base, item.size(), "W needs a day before it, e.g. 15W");
    if (f == cron_field::day_of_week && c0 == 'L' && item.size() == 1) {
      b[0] |= 1u << 6;  // a lone L in day-of-week is the last day of the week: Saturday
      return;
    }
    std::size_t k = 0;
    const int a = read_value(f, item, base, k);
    if (k == item.size()) return set_bit(f, b, a);
    const char c = upper(item[k]);
    if (c == '-') {
      ++k;
      const int z = read_value(f, item, base, k);
      int step = 1;
      if (k < item.size()) {
        if (item[k] != '/')
          fail(f, base + k, 1, "unexpected " + describe(item, k) + " after a range (expected '/' or ',')");
        step = read_step(f, item, base, k);
      }
      return add_range(f, b, a, z, step, base, item);
    }
    if (c == '/') return add_range(f, b, a, fd.top, read_step(f, item, base, k), base, item);
    if (f == cron_field::day_of_month && c == 'W' && k + 1 == item.size()) {
      spec.dom_special = true;
      spec.dom_nearest |= 1u << a;
      return;
    }
    if (f == cron_field::day_of_week && c == 'L' && k + 1 == item.size()) {
      spec.dow_special = true;
      spec.dow_last = static_cast<std::uint8_t>(spec.dow_last | 1u << (a % 7));
      return;
    }
    if (f == cron_field::day_of_week && c == '#') {
      std::size_t i = k + 1;
      long long n = 0;
      for (; i < item.size() && is_digit(item[i]); ++i)
        if (n < 100'000'000) n = n * 10 + (item[i] - '0');
      if (i == k + 1) fail(f, base, item.size(), "expected a week number 1-5 after '#'");
      if (i != item.size()) fail(f, base + i, 1, "unexpected " + describe(item, i) + " after x#n");
      if (n < 1 || n > 5) fail(f, base, item.size(), "week number must be 1-5");
      spec.dow_special = true;
      spec.dow_nth[static_cast<std::size_t>(n - 1)] |= static_cast<std::uint8_t>(1u << (a % 7));
      return;
    }
    fail(f, base + k, 1, "unexpected " + describe(item, k));
  }

  void parse_field(cron_field f, cron_token t, cron_spec& spec) const {
    const std::string_view field = text_.substr(t.pos, t.len);
    const bool any = field == "*" || field == "?";
    if (field == "?" && f != cron_field::day_of_month && f != cron_field::day_of_week)
      fail(f, t.pos, 1, "'?' is only allowed in the day-of-month and day-of-week fields");
    // as in Vixie cron, a day field that starts with '*' (`*`, `*/2`, `*,15`) is not
    // "restricted" for the day-of-month / day-of-week OR (see cron_spec::day_mask)
    const bool star = field[0] == '*' || field == "?";
    if (f == cron_field::day_of_month) spec.dom_star = star;
    if (f == cron_field::day_of_week) spec.dow_star = star;
    bits b{};
    if (any) {
      const field_def fd = def(f);
      add_range(f, b, fd.lo, fd.top, 1, t.pos, field);
    } else {
      std::size_t i = 0;
      for (;;) {
        std::size_t j = field.find(',', i);
        if (j == std::string_view::npos) j = field.size();
        if (j == i) fail(f, t.pos, field.size(), "empty list item (a ',' at the start or two in a row)");
        parse_item(f, field.substr(i, j - i), t.pos + i, b, spec);
        if (j == field.size()) break;
        i = j + 1;
        if (i == field.size()) fail(f, t.pos, field.size(), "trailing ','");
      }
    }
    switch (f) {
      case cron_field::second: spec.seconds = b[0]; break;
      case cron_field::minute: spec.minutes = b[0]; break;
      case cron_field::hour: spec.hours = static_cast<std::uint32_t>(b[0]); break;
      case cron_field::day_of_month: spec.dom = static_cast<std::uint32_t>(b[0]); break;
      case cron_field::month: spec.months = static_cast<std::uint16_t>(b[0]); break;
      case cron_field::day_of_week: spec.dow = static_cast<std::uint8_t>(b[0]); break;
      case cron_field::year: spec.years = b; break;
    }
  }

  // Throws the "can never fire" error, explaining the simple cases precisely.
  [[noreturn]] void never_fires(const cron_spec& spec, const cron_token* tokens, std::size_t count) const {
    const std::size_t dom_i = count == 5 ? 2 : 3;
    const auto dom_text = std::string(text_.substr(tokens[dom_i].pos, tokens[dom_i].len));
    const auto mon_text = std::string(text_.substr(tokens[dom_i + 1].pos, tokens[dom_i + 1].len));
    // When both day fields must match (one starts with '*') and the day-of-month holds plain
    // days, ask whether the day-of-month, month and year fields alone already exclude every
    // date: then they are the reason, whatever the day-of-week says.
    cron_spec any_weekday = spec;
    any_weekday.dow = 0x7F;
    any_weekday.dow_special = false;
    if ((spec.dom_star || spec.dow_star) && !spec.dom_special &&
        any_weekday.first_at_or_after(0) == cron_never) {
      // longest length of each month over all years (February: 29)
      constexpr unsigned longest[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      bool possible = false;
      for (unsigned m = 1; m <= 12; ++m)
        if ((spec.months >> m & 1u) && (spec.dom & (((std::uint64_t{1} << longest[m]) - 1) << 1)) != 0)
          possible = true;
      if (!possible)
        fail_whole("can never fire: day-of-month " + dom_text + " does not occur in month " + mon_text);
      fail_whole("can never fire: February 29 is the only matching date and no selected year is a leap year");
    }
    fail_whole("can never fire: no date from " + std::to_string(cron_first_year) + " to " +
               std::to_string(cron_last_year) +
               " matches the day-of-month, month, day-of-week and year fields");
  }

  std::string_view text_;
};

}  // namespace detail

PUNCTUAL_END_NAMESPACE
