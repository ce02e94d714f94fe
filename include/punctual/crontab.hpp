/// @file crontab.hpp
/// The crontab file of the `punctual-cron` daemon: parse_crontab() turns its text into
/// schedule_spec values ready for scheduler::async_add_schedule, and reports every problem with its
/// line and column.
///
/// # Crontab format
///
/// A crontab is read line by line. Lines may end in `\n` or `\r\n`; a line may be at most
/// 64 KiB. Bytes that are not valid UTF-8 are passed through untouched. Columns in error
/// messages count characters from 1, as parse_error's do (a UTF-8 sequence, a tab, and a byte
/// that is not valid UTF-8 are one column each). Blanks are spaces and tabs.
///
/// ```
/// # comments start with '#'
/// SHELL=/bin/bash
/// MAILTO=""
/// CRON_TZ=Europe/Berlin
///
/// # every weekday at 09:00, Berlin time
/// 0 9 * * MON-FRI    /usr/local/bin/report --daily
///
/// #@ id=backup timeout=2h retries=3 retry_backoff=1m
/// #@ tz=UTC misfire=30m
/// @daily             /usr/local/bin/backup
///
/// @every 90s         curl -fsS http://localhost:8080/health
/// @seconds */5 * * * * *   date +%s >> /tmp/ticks
/// ```
///
/// **Comments and blank lines.** A line that is empty, blank, or whose first non-blank
/// character is `#` is a comment — except option lines, which start with `#@`.
///
/// **Entries.** Each entry is one line: a schedule, blanks, then the command.
///  - `MIN HOUR DOM MON DOW command`: exactly five cron fields (see cron_trigger for their
///    syntax: ranges, steps, names, `L`, `W`, `#`, ...). A plain entry always has five fields:
///    the sixth word starts the command.
///  - `@yearly` (= `@annually`), `@monthly`, `@weekly`, `@daily` (= `@midnight`), `@hourly`,
///    then the command. Macro names are case-insensitive.
///  - `@every DURATION command`: every DURATION of elapsed time (`30s`, `1h30m`, `250ms`; see
///    parse_duration), as an interval_trigger without a start: fire times are aligned to the
///    Unix epoch (`@every 15m` fires at :00, :15, :30, :45 UTC), so they do not depend on when
///    the daemon started. The duration must be longer than 0. Time zones and `dst` do not
///    apply.
///  - `@seconds SEC MIN HOUR DOM MON DOW command`: six cron fields, seconds first. This is the
///    one way to give a seconds field.
///  - `@reboot` is rejected: punctual-cron runs entries on a schedule, not at startup.
///
/// The command is the rest of the line with leading and trailing blanks removed; it must not
/// be empty. It is passed **verbatim** to the shell: unlike Vixie cron, `%` is not turned
/// into a newline or standard input (so `date +%s` works as written), and a `#` after the
/// schedule is part of the command (the shell treats it as a comment there).
///
/// **Environment.** A line `NAME=value` (NAME is `[A-Za-z_][A-Za-z0-9_]*`, blanks allowed
/// around `=`) sets a variable for the entries below it. The value is the rest of the line,
/// trimmed; a value in matching single or double quotes has them removed (`MAILTO=""` is
/// empty); an opening quote without its closing one is an error. A later assignment of the
/// same name replaces the earlier one for the entries after it. `TZ` is an ordinary variable
/// (it is handed to the command, it does not change the schedule).
///
/// **Time zones.** `CRON_TZ=Zone` (an IANA name such as `Europe/Berlin`, checked at that line)
/// sets the zone the cron fields of the following entries are read in; `CRON_TZ=` (empty)
/// returns to the default zone (crontab_options::zone, else the host's zone, host_zone()).
/// CRON_TZ is not part of the entries' environment. An entry's `#@ tz=Zone` overrides it.
/// When a CRON_TZ line is wrong, the entries that would use it are left out until the next
/// valid CRON_TZ (the error is reported once, at the CRON_TZ line).
///
/// **Option lines.** `#@ key=value key=value ...` (blanks after `#@` optional) gives options to
/// the next entry. Several option lines before one entry add up; comments, blank lines and
/// NAME=value lines may come between them and the entry. Each key may be given once per entry.
/// Keys:
///  - `id`: the schedule id, non-empty, only `A-Z a-z 0-9 . _ : -`. Without it the id is
///    derived from the schedule and the command (crontab_entry_id), so it stays the same as
///    long as they do; two entries with the same schedule and command then need an `id`.
///  - `tz`: the zone of this entry (overrides CRON_TZ).
///  - `dst`: the daylight-saving policy of this entry, as parse_dst_policy reads it:
///    `dst=gap=skip,overlap=once`.
///  - every key of options_text.hpp: `misfire`, `coalesce`, `max_catch_up`, `max_running`,
///    `overlap`, `jitter`, `timeout`, `retries`, `retry_backoff`, `retry_backoff_max`, `start`,
///    `end` (not before `start`), `on_abandoned`, with the values listed there.
///
/// An option line with no entry after it (at the end of the file) is an error. When an option
/// line has an error, the entry it belongs to is left out (its own errors are still reported).
///
/// **Errors.** parse_crontab never throws for bad content: every problem is reported, in line
/// order, and the entries concerned are left out; the rest of the file is still used.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/detail/utf8.hpp"
#include "punctual/error.hpp"
#include "punctual/options_text.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/trigger.hpp"
#include "punctual/zone.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// One problem found in a crontab: 1-based line and column in characters (column 0 = whole
/// line), and why. The message is valid UTF-8: bytes of the file that are not are quoted as
/// `\xNN`.
struct crontab_diagnostic {
  std::size_t line = 0;
  std::size_t column = 0;
  std::string message;
  friend bool operator==(const crontab_diagnostic&, const crontab_diagnostic&) = default;
};

/// "FILE:LINE:COLUMN: message" (the form compilers use); "FILE:LINE: message" when the column
/// is 0.
inline std::string format_diagnostic(std::string_view file, const crontab_diagnostic& d) {
  std::string out(file);
  out += ':';
  out += std::to_string(d.line);
  if (d.column != 0) {
    out += ':';
    out += std::to_string(d.column);
  }
  out += ": ";
  out += d.message;
  return out;
}

/// One entry (one command line of the file).
struct crontab_entry {
  std::size_t line = 0;  ///< 1-based line of the entry
  schedule_spec spec;    ///< id, task, trigger, payload, options — ready for scheduler::async_add_schedule
  std::string command;   ///< the command text, as written (trimmed)
  /// NAME=value assignments in effect, each name once, in the order of its latest assignment
  /// (CRON_TZ is not included).
  std::vector<std::pair<std::string, std::string>> env;
  bool explicit_id = false;  ///< id came from `#@ id=`
};

/// A parsed crontab: the good entries in file order, and every problem found.
struct crontab {
  std::vector<crontab_entry> entries;
  std::vector<crontab_diagnostic> errors;
};

/// How parse_crontab builds the specs.
struct crontab_options {
  std::string task = "crontab";     ///< task name put into every spec.task
  const time_zone* zone = nullptr;  ///< zone of entries without CRON_TZ / tz= (nullptr: host_zone())
};

/// The stable id of an entry without `#@ id=`: "job-" followed by 12 lowercase hex digits, the
/// 64-bit FNV-1a hash of `trigger_text`, a NUL byte and `command`, folded to 48 bits. It depends
/// on the trigger's canonical text and the command only (not env, not options), and is the same
/// in every process and run.
inline std::string crontab_entry_id(std::string_view trigger_text, std::string_view command) {
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;
  };
  for (const char c : trigger_text) mix(static_cast<unsigned char>(c));
  mix(0);
  for (const char c : command) mix(static_cast<unsigned char>(c));
  const std::uint64_t folded = (h ^ (h >> 48)) & 0xFFFF'FFFF'FFFFULL;
  static constexpr char digits[] = "0123456789abcdef";
  std::string id = "job-";
  for (int shift = 44; shift >= 0; shift -= 4) id += digits[(folded >> shift) & 0xF];
  return id;
}

/// The payload a crontab entry's spec carries: env lines "NAME=value\n"... followed by the
/// command (the last line, with no newline after it). decode_crontab_payload gives back both.
/// Throws std::invalid_argument when a name is empty or contains '=' or a newline, or a value
/// or the command contains a newline (parse_crontab never produces such values).
inline std::string encode_crontab_payload(const std::vector<std::pair<std::string, std::string>>& env,
                                          std::string_view command) {
  std::string out;
  for (const auto& [name, value] : env) {
    if (name.empty() || name.find_first_of("=\n") != std::string::npos)
      throw std::invalid_argument("crontab payload: bad environment variable name \"" + name + "\"");
    if (value.find('\n') != std::string::npos)
      throw std::invalid_argument("crontab payload: the value of " + name + " contains a newline");
    out += name;
    out += '=';
    out += value;
    out += '\n';
  }
  if (command.find('\n') != std::string_view::npos)
    throw std::invalid_argument("crontab payload: the command contains a newline");
  out += command;
  return out;
}

/// A decoded crontab payload.
struct crontab_payload {
  std::vector<std::pair<std::string, std::string>> env;
  std::string command;
};

/// Splits a payload made by encode_crontab_payload: the last line is the command, every line
/// before it `NAME=value` (split at the first '='). Throws parse_error (field "crontab
/// payload") for a line before the command without a name and '='.
inline crontab_payload decode_crontab_payload(std::string_view payload) {
  crontab_payload out;
  const std::size_t last = payload.rfind('\n');
  if (last == std::string_view::npos) {
    out.command = std::string(payload);
    return out;
  }
  out.command = std::string(payload.substr(last + 1));
  std::size_t i = 0;
  while (i < last) {
    const std::size_t nl = payload.find('\n', i);
    const std::string_view line = payload.substr(i, nl - i);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0)
      throw parse_error("crontab payload", std::string(line), 0, "expected NAME=value before the command");
    out.env.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    i = nl + 1;
  }
  return out;
}

namespace detail {

/// Longest line parse_crontab accepts, in bytes (without the line end).
inline constexpr std::size_t crontab_max_line = 64 * 1024;

inline bool crontab_blank(char c) { return c == ' ' || c == '\t'; }

inline std::string_view crontab_trim(std::string_view s) {
  while (!s.empty() && crontab_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && crontab_blank(s.back())) s.remove_suffix(1);
  return s;
}

/// A parse_error as a crontab message: `hour field "25": 25 is out of range 0-23`.
inline std::string crontab_message(const parse_error& e) {
  std::string m = e.field();
  if (!e.text().empty()) m += " \"" + e.text() + "\"";
  m += ": " + e.reason();
  return m;
}

/// The file column of a parse_error raised for text that starts `offset` characters into the
/// line: enclosing_column, except that a column of 0 ("the whole text") is the text's first
/// column even at the start of the line (a column of 0 would mean the whole line).
inline std::size_t crontab_column(const parse_error& e, std::size_t offset) {
  const std::size_t column = enclosing_column(e.column(), offset);
  return column == 0 ? 1 : column;
}

inline bool crontab_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

inline constexpr std::string_view crontab_macros[] = {
    "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every", "@seconds"};

inline std::string crontab_option_key_list() { return "id, tz, dst, " + schedule_option_key_list(); }

/// The state of one parse_crontab call.
class crontab_parser {
 public:
  explicit crontab_parser(const crontab_options& o) : options_(o) {}

  crontab run(std::string_view text) {
    std::size_t pos = 0;
    std::size_t number = 0;
    while (pos < text.size()) {
      std::size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      std::string_view line = text.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      pos = nl + 1;
      ++number;
      line_ = number;
      line_text_ = line;
      parse_line(line);
    }
    for (const auto& [line, column] : pending_.lines)
      error(line, column, "option line without an entry after it");
    std::stable_sort(
        out_.errors.begin(), out_.errors.end(),
        [](const crontab_diagnostic& a, const crontab_diagnostic& b) { return a.line < b.line; });
    return std::move(out_);
  }

 private:
  // Options gathered from the `#@` lines before an entry.
  struct pending_options {
    schedule_options options;
    std::optional<std::string> id;
    std::size_t id_line = 0, id_column = 0;
    const time_zone* zone = nullptr;
    std::optional<dst_policy> dst;
    std::size_t end_line = 0, end_column = 0;
    bool bad = false;
    std::map<std::string, std::size_t, std::less<>> keys;    // key -> line
    std::vector<std::pair<std::size_t, std::size_t>> lines;  // (line, column of "#@")
  };

  // Messages quote the file's text; bytes there that are not valid UTF-8 become \xNN.
  void error(std::size_t line, std::size_t column, const std::string& message) {
    out_.errors.push_back({line, column, utf8_printable(message)});
  }
  void error(std::size_t column, const std::string& message) { error(line_, column, message); }

  // The 1-based column (in characters) of byte `pos` of the current line.
  std::size_t column_at(std::size_t pos) const { return utf8_column(line_text_, pos); }
  // The line column of `e`, raised for text that starts at byte `pos` of the current line.
  std::size_t column_of(const parse_error& e, std::size_t pos) const {
    return crontab_column(e, column_at(pos) - 1);
  }

  const time_zone& default_zone() {
    if (default_zone_ == nullptr) default_zone_ = options_.zone != nullptr ? options_.zone : &host_zone();
    return *default_zone_;
  }

  void parse_line(std::string_view line) {
    if (line.size() > crontab_max_line) {
      error(0, "line is longer than " + std::to_string(crontab_max_line) + " bytes");
      pending_ = {};  // it may have been an entry: its options go with it
      return;
    }
    std::size_t i = 0;
    while (i < line.size() && crontab_blank(line[i])) ++i;
    if (i == line.size()) return;
    if (line.substr(i, 2) == "#@") return parse_option_line(line, i);
    if (line[i] == '#') return;
    if (parse_assignment(line, i)) return;
    parse_entry(line);
  }

  void parse_option_line(std::string_view line, std::size_t hash) {
    pending_.lines.emplace_back(line_, column_at(hash));
    const std::size_t body = hash + 2;
    for (const text_word& w : split_words(line.substr(body))) {
      const std::size_t at = body + w.pos;  // 0-based byte offset of the word in the line
      const std::size_t eq = w.text.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        pending_.bad = true;
        error(column_at(at), "expected key=value in an option line, got \"" + std::string(w.text) + "\"");
        continue;
      }
      const std::string_view key = w.text.substr(0, eq);
      const std::string_view value = w.text.substr(eq + 1);
      const std::size_t value_at = at + eq + 1;
      bool known = key == "id" || key == "tz" || key == "dst";
      for (const auto k : schedule_option_keys) known = known || k == key;
      if (!known) {
        pending_.bad = true;
        error(column_at(at), "unknown option \"" + std::string(key) +
                                 "\" (expected one of: " + crontab_option_key_list() + ")");
        continue;
      }
      if (const auto it = pending_.keys.find(key); it != pending_.keys.end()) {
        pending_.bad = true;
        error(column_at(at), "option \"" + std::string(key) + "\" is given more than once for this entry (" +
                                 (it->second == line_ ? std::string("earlier on this line")
                                                      : "also on line " + std::to_string(it->second)) +
                                 ")");
        continue;
      }
      pending_.keys.emplace(std::string(key), line_);
      try {
        apply_option(key, value, value_at);
      } catch (const parse_error& e) {
        pending_.bad = true;
        error(column_of(e, value_at), crontab_message(e));
      }
    }
  }

  void apply_option(std::string_view key, std::string_view value, std::size_t value_at) {
    if (key == "id") {
      if (value.empty()) throw parse_error("option id", "", 0, "must not be empty");
      for (std::size_t k = 0; k < value.size(); ++k) {
        if (!crontab_id_char(value[k]))
          throw parse_error("option id", std::string(value), utf8_column(value, k),
                            "only letters, digits and . _ : - are allowed in an id");
      }
      pending_.id = std::string(value);
      pending_.id_line = line_;
      pending_.id_column = column_at(value_at);
    } else if (key == "tz") {
      pending_.zone = &locate_zone(value);
    } else if (key == "dst") {
      pending_.dst = parse_dst_policy(value);
    } else {
      apply_schedule_option(pending_.options, key, value);
      if (key == "end") {
        pending_.end_line = line_;
        pending_.end_column = column_at(value_at);
      }
    }
  }

  // A `NAME=value` line; false when the line is not one.
  bool parse_assignment(std::string_view line, std::size_t begin) {
    std::size_t i = begin;
    const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!alpha(line[i])) return false;
    while (i < line.size() && (alpha(line[i]) || (line[i] >= '0' && line[i] <= '9'))) ++i;
    const std::string_view name = line.substr(begin, i - begin);
    while (i < line.size() && crontab_blank(line[i])) ++i;
    if (i == line.size() || line[i] != '=') return false;
    ++i;
    while (i < line.size() && crontab_blank(line[i])) ++i;
    std::string_view value = crontab_trim(line.substr(i));
    std::size_t value_at = i;
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      if (value.size() < 2 || value.back() != value.front()) {
        error(column_at(i),
              std::string("missing closing ") + value.front() + " in the value of " + std::string(name));
        if (name == "CRON_TZ") cron_tz_bad_ = true;
        return true;
      }
      value = value.substr(1, value.size() - 2);
      ++value_at;
    }
    if (name == "CRON_TZ") {
      cron_tz_ = nullptr;
      cron_tz_bad_ = false;
      if (value.empty()) return true;
      try {
        cron_tz_ = &locate_zone(value);
      } catch (const parse_error& e) {
        cron_tz_bad_ = true;
        error(column_of(e, value_at), "CRON_TZ: " + crontab_message(e));
      }
      return true;
    }
    std::erase_if(env_, [&](const auto& kv) { return kv.first == name; });
    env_.emplace_back(std::string(name), std::string(value));
    return true;
  }

  void parse_entry(std::string_view line) {
    pending_options p = std::move(pending_);
    pending_ = {};
    bool bad = p.bad;
    const std::vector<text_word> words = split_words(line);
    const text_word& first = words.front();

    // Which words are the schedule: [from, to) of `words`.
    std::size_t from = 0, to = 5;
    std::string macro;
    if (first.text.front() == '@') {
      for (const char c : first.text) macro += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      if (macro == "@reboot") {
        error(column_at(first.pos),
              "@reboot is not supported: punctual-cron runs entries on a schedule, not at startup");
        return;
      }
      if (std::find(std::begin(crontab_macros), std::end(crontab_macros), macro) ==
          std::end(crontab_macros)) {
        std::string list;
        for (const auto m : crontab_macros) list += (list.empty() ? "" : ", ") + std::string(m);
        error(column_at(first.pos),
              "unknown macro \"" + std::string(first.text) + "\" (expected one of: " + list + ")");
        return;
      }
      if (macro == "@every") {
        from = 1;
        to = 2;
      } else if (macro == "@seconds") {
        from = 1;
        to = 7;
      } else {
        to = 1;
      }
    }
    if (words.size() < to) {
      const std::size_t got = words.size() - from;
      if (macro == "@every")
        error(0, "@every needs an interval and a command, e.g. \"@every 5m command\"");
      else if (macro == "@seconds")
        error(0,
              "@seconds needs 6 time fields (second minute hour day-of-month month day-of-week) and a "
              "command, got " +
                  std::to_string(got) + " words");
      else
        error(0, "expected 5 time fields (minute hour day-of-month month day-of-week) and a command, got " +
                     std::to_string(got) + (got == 1 ? " word" : " words"));
      return;
    }

    // The schedule text as it stands in the line (columns of errors are relative to it).
    const std::size_t expr_at = words[from].pos;
    const std::size_t expr_end = words[to - 1].pos + words[to - 1].text.size();
    const std::string_view expr = line.substr(expr_at, expr_end - expr_at);
    std::string command;
    if (words.size() > to)
      command = std::string(crontab_trim(line.substr(words[to].pos)));
    else
      bad = true;

    ::punctual::trigger trigger;
    try {
      if (macro == "@every") {
        duration every;
        try {
          every = parse_duration(expr);
        } catch (const parse_error& e) {
          throw parse_error("@every interval", std::string(expr), e.column(), e.reason());
        }
        if (every.count() <= 0)
          throw parse_error("@every interval", std::string(expr), 0, "must be longer than 0");
        trigger = interval_trigger(every);
      } else {
        const time_zone* zone = p.zone;
        if (zone == nullptr) {
          if (cron_tz_bad_) bad = true;  // reported at the CRON_TZ line
          zone = cron_tz_ != nullptr ? cron_tz_ : cron_tz_bad_ ? &utc_zone() : &default_zone();
        }
        const std::string_view text = macro.empty() || macro == "@seconds" ? expr : std::string_view(macro);
        trigger = cron_trigger(text, *zone, p.dst.value_or(dst_policy{}));
      }
    } catch (const parse_error& e) {
      bad = true;
      error(column_of(e, expr_at), crontab_message(e));
    }
    if (words.size() <= to) error(column_at(expr_end), "missing command");

    if (p.options.start && p.options.end && *p.options.end < *p.options.start) {
      bad = true;
      error(p.end_line, p.end_column, "option end \"" + format_iso(*p.options.end) + "\" is before start");
    }
    if (bad) return;

    crontab_entry entry;
    entry.line = line_;
    entry.explicit_id = p.id.has_value();
    entry.spec.id = p.id ? *p.id : crontab_entry_id(trigger.to_string(), command);
    if (const auto it = ids_.find(entry.spec.id); it != ids_.end()) {
      if (!entry.explicit_id && !it->second.second)
        error(0, "duplicate id \"" + entry.spec.id + "\" (line " + std::to_string(it->second.first) +
                     " has the same schedule and command); give one an explicit \"#@ id=...\"");
      else
        error(
            entry.explicit_id ? p.id_line : line_, entry.explicit_id ? p.id_column : 0,
            "duplicate id \"" + entry.spec.id + "\" (also on line " + std::to_string(it->second.first) + ")");
      return;
    }
    ids_.emplace(entry.spec.id, std::pair(line_, entry.explicit_id));
    entry.spec.task = options_.task;
    entry.spec.trigger = std::move(trigger);
    entry.spec.payload = encode_crontab_payload(env_, command);
    entry.spec.options = p.options;
    entry.command = std::move(command);
    entry.env = env_;
    out_.entries.push_back(std::move(entry));
  }

  const crontab_options& options_;
  crontab out_;
  std::size_t line_ = 0;
  std::string_view line_text_;  // the line being parsed
  pending_options pending_;
  std::vector<std::pair<std::string, std::string>> env_;
  const time_zone* cron_tz_ = nullptr;  // nullptr: the default zone
  bool cron_tz_bad_ = false;            // the last CRON_TZ line was wrong
  const time_zone* default_zone_ = nullptr;
  std::map<std::string, std::pair<std::size_t, bool>, std::less<>> ids_;  // id -> (line, explicit)
};

}  // namespace detail

/// Parses a whole crontab (the format is described in this file's comment). Never throws for
/// bad content: every problem goes to `errors` (all of them, in line order), and the entries
/// concerned are left out. Entries come in file order, each with a spec ready for
/// scheduler::async_add_schedule.
///
/// @code
/// auto tab = punctual::parse_crontab(text, {.task = "crontab", .zone = &punctual::utc_zone()});
/// for (const auto& e : tab.errors) std::cerr << punctual::format_diagnostic(path, e) << '\n';
/// @endcode
inline crontab parse_crontab(std::string_view text, const crontab_options& o = {}) {
  return detail::crontab_parser(o).run(text);
}

PUNCTUAL_END_NAMESPACE
