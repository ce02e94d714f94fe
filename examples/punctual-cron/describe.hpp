// Plain-words descriptions of triggers for punctual-cron's dashboard: "at 02:30 every day,
// Europe/Berlin", "every 90m", "every 15 minutes, UTC". Works on the canonical trigger text
// (schedule_record::trigger_text) and knows the common shapes of cron and interval triggers;
// anything else is described by its text as it is.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace punctual_cron {

namespace detail {

/// Splits `text` at blanks.
inline std::vector<std::string_view> words_of(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const auto start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

/// `text` as a whole number in [lo, hi], or nullopt.
inline std::optional<int> number_in(std::string_view text, int lo, int hi) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  int v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

/// Case-insensitive equality with an upper-case ASCII name.
inline bool same_name(std::string_view text, std::string_view upper) {
  if (text.size() != upper.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i] >= 'a' && text[i] <= 'z' ? static_cast<char>(text[i] - 'a' + 'A') : text[i];
    if (c != upper[i]) return false;
  }
  return true;
}

/// A day of week (0-7, 7 = Sunday, or SUN..SAT) as 0-6, or nullopt.
inline std::optional<int> weekday_of(std::string_view text) {
  static constexpr std::string_view names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
  for (int i = 0; i < 7; ++i)
    if (same_name(text, names[i])) return i;
  if (const auto n = number_in(text, 0, 7)) return *n % 7;
  return std::nullopt;
}

/// A month (1-12 or JAN..DEC) as 1-12, or nullopt.
inline std::optional<int> month_of(std::string_view text) {
  static constexpr std::string_view names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                               "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
  for (int i = 0; i < 12; ++i)
    if (same_name(text, names[i])) return i + 1;
  return number_in(text, 1, 12);
}

inline constexpr const char* weekday_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                "Thursday", "Friday", "Saturday"};
inline constexpr const char* month_names[] = {"January",   "February", "March",    "April",
                                              "May",       "June",     "July",     "August",
                                              "September", "October",  "November", "December"};

/// "a", "a and b", "a, b and c".
inline std::string join_words(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
    out += items[i];
  }
  return out;
}

/// Splits a cron field at commas.
inline std::vector<std::string_view> list_of(std::string_view field) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = field.find(',', start);
    out.push_back(
        field.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

/// "HH:MM".
inline std::string clock_text(int hour, int minute) {
  const char text[] = {static_cast<char>('0' + hour / 10), static_cast<char>('0' + hour % 10), ':',
                       static_cast<char>('0' + minute / 10), static_cast<char>('0' + minute % 10)};
  return std::string(text, sizeof text);
}

/// The time-of-day part of 5 cron fields ("at 02:30", "every 15 minutes", ...), or nullopt.
inline std::optional<std::string> describe_cron_time(std::string_view minute, std::string_view hour) {
  if (minute == "*" && hour == "*") return "every minute";
  if (minute.substr(0, 2) == "*/" && hour == "*") {
    const auto step = number_in(minute.substr(2), 1, 59);
    if (!step) return std::nullopt;
    return *step == 1 ? std::string("every minute") : "every " + std::to_string(*step) + " minutes";
  }
  const auto m = number_in(minute, 0, 59);
  if (!m) return std::nullopt;
  if (hour == "*")
    return *m == 0 ? std::string("every hour, on the hour") : "every hour at minute " + std::to_string(*m);
  if (hour.substr(0, 2) == "*/") {
    const auto step = number_in(hour.substr(2), 1, 23);
    if (!step) return std::nullopt;
    return "every " + (*step == 1 ? std::string("hour") : std::to_string(*step) + " hours") + " at minute " +
           std::to_string(*m);
  }
  std::vector<std::string> times;
  for (const auto h : list_of(hour)) {
    const auto v = number_in(h, 0, 23);
    if (!v) return std::nullopt;
    times.push_back(clock_text(*v, *m));
  }
  return "at " + join_words(times);
}

/// Weekdays: "Monday", "Monday to Friday", "Monday and Thursday", or nullopt.
inline std::optional<std::string> describe_weekdays(std::string_view field) {
  std::vector<std::string> parts;
  for (const auto item : list_of(field)) {
    const auto dash = item.find('-');
    if (dash == std::string_view::npos) {
      const auto d = weekday_of(item);
      if (!d) return std::nullopt;
      parts.push_back(weekday_names[*d]);
    } else {
      const auto a = weekday_of(item.substr(0, dash)), b = weekday_of(item.substr(dash + 1));
      if (!a || !b) return std::nullopt;
      parts.push_back(std::string(weekday_names[*a]) + " to " + weekday_names[*b]);
    }
  }
  return join_words(parts);
}

/// The days part of 3 cron fields ("every day", "on Monday to Friday", ...), or nullopt.
inline std::optional<std::string> describe_cron_days(std::string_view dom, std::string_view month,
                                                     std::string_view dow) {
  if (dom == "*" && month == "*" && dow == "*") return "every day";
  if (dom == "*" && month == "*") {
    const auto days = describe_weekdays(dow);
    if (!days) return std::nullopt;
    return "on " + *days;
  }
  if (dow != "*") return std::nullopt;  // day of month and weekday together: either matches
  const auto d = number_in(dom, 1, 31);
  if (!d) return std::nullopt;
  if (month == "*") return "on day " + std::to_string(*d) + " of every month";
  const auto m = month_of(month);
  if (!m) return std::nullopt;
  return std::string("on ") + month_names[*m - 1] + " " + std::to_string(*d) + " every year";
}

/// The body of a cron trigger's text (after "cron:"), or nullopt when it is not a common shape.
inline std::optional<std::string> describe_cron(std::string_view body) {
  const auto words = words_of(body);
  std::vector<std::string_view> fields;
  std::string zone = "UTC";
  for (const auto w : words) {
    if (w.substr(0, 3) == "tz=")
      zone = std::string(w.substr(3));
    else if (w.find('=') == std::string_view::npos)
      fields.push_back(w);
  }
  static constexpr std::pair<std::string_view, std::string_view> macros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  if (fields.size() == 1)
    for (const auto& [name, expansion] : macros)
      if (fields[0] == name) {
        const auto expanded = words_of(expansion);
        fields.assign(expanded.begin(), expanded.end());
      }
  if (fields.size() != 5) return std::nullopt;  // with seconds or years: shown as written
  const auto time = describe_cron_time(fields[0], fields[1]);
  const auto days = describe_cron_days(fields[2], fields[3], fields[4]);
  if (!time || !days) return std::nullopt;
  // "every 15 minutes every day" reads badly: a sub-daily time on every day needs no day part.
  const bool daily = fields[2] == "*" && fields[3] == "*" && fields[4] == "*";
  const bool sub_daily = time->rfind("every ", 0) == 0;
  return *time + (daily && sub_daily ? std::string() : " " + *days) + ", " + zone;
}

/// The body of an interval trigger's text (after "interval:"), or nullopt when it has a start
/// or an end.
inline std::optional<std::string> describe_interval(std::string_view body) {
  const auto words = words_of(body);
  if (words.size() != 1) return std::nullopt;
  return "every " + std::string(words[0]);
}

}  // namespace detail

/// A plain-words description of a trigger given as its canonical text: cron triggers of the
/// common shapes ("at 02:30 every day, Europe/Berlin", "every 15 minutes, UTC", "at 09:00 on
/// Monday to Friday, UTC") and plain intervals ("every 90m"); any other trigger (seconds
/// fields, steps in odd places, once:, combinations, jitter) is described by `text` itself.
inline std::string describe_trigger(std::string_view text) {
  std::optional<std::string> words;
  if (text.substr(0, 5) == "cron:") words = detail::describe_cron(text.substr(5));
  if (text.substr(0, 9) == "interval:") words = detail::describe_interval(text.substr(9));
  return words ? *words : std::string(text);
}

}  // namespace punctual_cron
