/// @file detail/trigger_text.hpp
/// Internal helpers shared by the trigger parsers: splitting a canonical body into
/// `key=value` words that remember their column, and re-throwing a nested parse_error with
/// its column moved into the enclosing text.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/error.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

/// One space-separated word of a trigger body; `pos` is its 0-based offset in the body.
struct text_word {
  std::string_view text;
  std::size_t pos;
};

/// Splits `body` at runs of spaces/tabs; empty words are dropped.
inline std::vector<text_word> split_words(std::string_view body) {
  std::vector<text_word> out;
  std::size_t i = 0;
  while (i < body.size()) {
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < body.size() && body[i] != ' ' && body[i] != '\t') ++i;
    if (i > start) out.push_back({body.substr(start, i - start), start});
  }
  return out;
}

/// The part before '=' of a `key=value` word ("" when there is no '=').
inline std::string_view word_key(const text_word& w) {
  const auto eq = w.text.find('=');
  return eq == std::string_view::npos ? std::string_view{} : w.text.substr(0, eq);
}

/// The part after '=' of a `key=value` word, as a word with its own position.
inline text_word word_value(const text_word& w) {
  const auto eq = w.text.find('=');
  return {w.text.substr(eq + 1), w.pos + eq + 1};
}

/// Builds a copy of `e` whose column is moved by `offset` characters (the position of the
/// nested text inside the enclosing one) and whose message quotes `whole`. A column of 0
/// ("concerns the whole nested text") becomes the nested text's first column, unless the
/// nested text starts the enclosing one.
inline parse_error shift_error(const parse_error& e, std::size_t offset, const std::string& whole = {}) {
  std::size_t column = e.column();
  if (column != 0)
    column += offset;
  else if (offset != 0)
    column = offset + 1;
  return parse_error(e.field(), e.text(), column, e.reason(), whole);
}

/// Runs `f` (a nested parser over text that starts `offset` characters into the enclosing
/// text) and re-throws its parse_error with the column moved; see shift_error.
template <class F>
auto parse_nested(std::size_t offset, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const parse_error& e) {
    throw shift_error(e, offset);
  }
}

/// Throws the "unknown key" error for word `w` of a trigger body, listing the known keys.
[[noreturn]] inline void unknown_key(std::string_view field, const text_word& w,
                                     std::initializer_list<std::string_view> known) {
  std::string list;
  for (auto k : known) {
    if (!list.empty()) list += ", ";
    list += k;
  }
  throw parse_error(std::string(field), std::string(w.text), w.pos + 1,
                    "unknown setting (expected one of: " + list + ")");
}

}  // namespace detail

PUNCTUAL_END_NAMESPACE
