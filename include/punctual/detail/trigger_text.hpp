/// @file detail/trigger_text.hpp
/// Internal helpers shared by the trigger parsers: splitting a canonical body into
/// `key=value` words that remember their column, and re-throwing a nested parse_error with
/// its column moved into the enclosing text. Columns count characters (see parse_error).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/utf8.hpp"
#include "punctual/error.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

/// One space-separated word of a trigger body: `pos` is its 0-based offset in the body in
/// bytes, `column` the 1-based column of its first character in characters (what parse_error
/// reports; see utf8_column).
struct text_word {
  std::string_view text;
  std::size_t pos;
  std::size_t column;
};

/// Splits `body` at runs of spaces/tabs; empty words are dropped.
inline std::vector<text_word> split_words(std::string_view body) {
  std::vector<text_word> out;
  std::size_t i = 0;
  std::size_t column = 1;  // of body[i]
  while (i < body.size()) {
    for (; i < body.size() && (body[i] == ' ' || body[i] == '\t'); ++i) ++column;
    const std::size_t start = i, start_column = column;
    for (; i < body.size() && body[i] != ' ' && body[i] != '\t'; i += utf8_char_size(body, i)) ++column;
    if (i > start) out.push_back({body.substr(start, i - start), start, start_column});
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
  return {w.text.substr(eq + 1), w.pos + eq + 1, w.column + utf8_column(w.text, eq)};
}

/// The column in an enclosing text of column `column` (1-based, 0 = "the whole nested text")
/// of a nested text that starts `offset` characters into the enclosing one. A column of 0
/// becomes the nested text's first column, unless the nested text starts the enclosing one
/// (then it stays 0).
constexpr std::size_t enclosing_column(std::size_t column, std::size_t offset) noexcept {
  if (column != 0) return column + offset;
  return offset != 0 ? offset + 1 : 0;
}

/// Builds a copy of `e` whose column is moved by `offset` characters (the position of the
/// nested text inside the enclosing one; see enclosing_column) and whose message quotes
/// `whole`.
inline parse_error shift_error(const parse_error& e, std::size_t offset, const std::string& whole = {}) {
  return parse_error(e.field(), e.text(), enclosing_column(e.column(), offset), e.reason(), whole);
}

/// Runs `f` (a nested parser over text that starts `offset` characters into the enclosing
/// text, e.g. `word.column - 1`) and re-throws its parse_error with the column moved; see
/// shift_error.
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
  throw parse_error(std::string(field), std::string(w.text), w.column,
                    "unknown setting (expected one of: " + list + ")");
}

}  // namespace detail

PUNCTUAL_END_NAMESPACE
