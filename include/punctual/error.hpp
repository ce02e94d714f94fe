/// @file error.hpp
/// punctual's exceptions: `punctual::error`, the base of every error the library reports about
/// what it was given, and the types derived from it.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "punctual/config.hpp"
#include "punctual/detail/utf8.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// The base of the exceptions punctual throws for bad input or a request it cannot carry out:
/// parse_error, invalid_schedule, schedule_conflict, schedule_not_found. Catch it to tell the
/// library's errors apart from others:
///
/// @code
/// try {
///   co_await sched.async_add_schedule(spec, asio::use_awaitable);
/// } catch (const punctual::error& e) {  // a bad spec, an id in use, a text that does not parse
///   report(e.what());
/// }
/// @endcode
///
/// It derives from std::runtime_error (only from it, so `catch (const std::exception&)` and
/// `catch (const std::runtime_error&)` still catch it). Not derived from it: failures of the
/// system or of other code (std::system_error, std::bad_alloc, a store's database errors, what
/// a task throws) and the std::invalid_argument of encode_crontab_payload.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown when text (a cron expression, a trigger's canonical form, a duration, a time zone
/// name, an ISO 8601 instant, schedule options) cannot be parsed. The message says what, where
/// and why: `"61 * * * *": minute field "61" at column 1: 61 is out of range 0-59`.
///
/// **Columns** are 1-based into the text given to the parser and count characters, not bytes:
/// a valid UTF-8 sequence is one column (`０` is one column, though three bytes), and so is each
/// byte that is not valid UTF-8; a tab is one column. 0 means the error concerns the whole text
/// (e.g. an expression that can never fire).
///
/// **Quoting.** text() holds whole characters (never part of a UTF-8 sequence), and what() is
/// valid UTF-8 even when the input is not: bytes that are not valid UTF-8 appear there as
/// `\xNN`. field(), text() and reason() keep the bytes as they were.
class parse_error : public error {
 public:
  /// `column` counts characters (see above); `whole`, when given, is quoted at the start of
  /// the message.
  parse_error(std::string field, std::string text, std::size_t column, std::string reason,
              std::string whole = {})
      : error(make_message(field, text, column, reason, whole)),
        field_(std::move(field)),
        text_(std::move(text)),
        column_(column),
        reason_(std::move(reason)) {}

  /// Which part of the input was wrong ("minute field", "time zone", "duration", ...).
  const std::string& field() const noexcept { return field_; }
  /// The offending text.
  const std::string& text() const noexcept { return text_; }
  /// 1-based column, in characters, of the offending text in the parsed input (0: the whole
  /// input).
  std::size_t column() const noexcept { return column_; }
  /// Why it is wrong, without the location.
  const std::string& reason() const noexcept { return reason_; }

 private:
  static std::string make_message(const std::string& field, const std::string& text, std::size_t column,
                                  const std::string& reason, const std::string& whole) {
    std::string m;
    if (!whole.empty()) m += "\"" + whole + "\": ";
    m += field;
    if (!text.empty()) m += " \"" + text + "\"";
    if (column != 0) m += " at column " + std::to_string(column);
    m += ": " + reason;
    return detail::utf8_printable(m);
  }

  std::string field_;
  std::string text_;
  std::size_t column_;
  std::string reason_;
};

/// Thrown when a schedule_spec cannot be added as it is: an empty id or task, no trigger, or
/// options that contradict each other (max_running 0, end before start, ...). The message is
/// `schedule "<id>": <reason>` (just the reason when the id is empty).
class invalid_schedule : public error {
 public:
  invalid_schedule(std::string id, std::string reason)
      : error(id.empty() ? reason : "schedule \"" + id + "\": " + reason),
        id_(std::move(id)),
        reason_(std::move(reason)) {}

  /// The id of the schedule ("" when the id itself is what is missing).
  const std::string& id() const noexcept { return id_; }
  /// What is wrong with it, without the id.
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string id_;
  std::string reason_;
};

/// Thrown by async_add_schedule with conflict_policy::error when the id exists.
class schedule_conflict : public error {
 public:
  explicit schedule_conflict(const std::string& id)
      : error("schedule \"" + id + "\" already exists"), id_(id) {}
  /// The id that is already taken.
  const std::string& id() const noexcept { return id_; }

 private:
  std::string id_;
};

/// Thrown when an operation names a schedule that does not exist.
class schedule_not_found : public error {
 public:
  explicit schedule_not_found(const std::string& id) : error("no schedule \"" + id + "\""), id_(id) {}
  /// The id that was not found.
  const std::string& id() const noexcept { return id_; }

 private:
  std::string id_;
};

PUNCTUAL_END_NAMESPACE
