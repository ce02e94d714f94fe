/// @file error.hpp
/// Exceptions thrown for bad input.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "punctual/config.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// Thrown when text (a cron expression, a trigger's canonical form, a duration, a time zone
/// name, an ISO 8601 instant) cannot be parsed. The message says what, where and why:
/// `cron expression "61 * * * *": minute field "61" at column 1: 61 is out of range 0-59`.
///
/// `column()` is 1-based into the text given to the parser; 0 when the error concerns the
/// whole text (e.g. an expression that can never fire).
class parse_error : public std::invalid_argument {
 public:
  parse_error(std::string field, std::string text, std::size_t column, std::string reason,
              std::string whole = {})
      : std::invalid_argument(make_message(field, text, column, reason, whole)),
        field_(std::move(field)),
        text_(std::move(text)),
        column_(column),
        reason_(std::move(reason)) {}

  /// Which part of the input was wrong ("minute field", "time zone", "duration", ...).
  const std::string& field() const noexcept { return field_; }
  /// The offending text.
  const std::string& text() const noexcept { return text_; }
  /// 1-based column of the offending text in the parsed input (0: the whole input).
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
    return m;
  }

  std::string field_;
  std::string text_;
  std::size_t column_;
  std::string reason_;
};

PUNCTUAL_END_NAMESPACE
