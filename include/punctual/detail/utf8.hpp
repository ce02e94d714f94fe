/// @file detail/utf8.hpp
/// Internals of parse_error: where characters begin and end in UTF-8 text, so that error
/// messages quote whole characters, count columns in characters, and stay valid UTF-8 even
/// when the input is not.
///
/// A "character" here is one valid UTF-8 sequence (one code point, 1-4 bytes) or, where the
/// bytes are not valid UTF-8, one single byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "punctual/config.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

/// The length (2-4) of the valid multi-byte UTF-8 sequence at `s[i]`, or 0 when there is none
/// there: an ASCII byte, a stray continuation byte, an overlong form, a surrogate, a value past
/// U+10FFFF, or a sequence cut short.
constexpr std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  const std::size_t n = b >= 0xC2 && b <= 0xDF   ? 2
                        : b >= 0xE0 && b <= 0xEF ? 3
                        : b >= 0xF0 && b <= 0xF4 ? 4
                                                 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  const unsigned char c = byte(i + 1);
  if ((b == 0xE0 && c < 0xA0) || (b == 0xED && c > 0x9F) || (b == 0xF0 && c < 0x90) ||
      (b == 0xF4 && c > 0x8F))
    return 0;  // overlong, surrogate, or past U+10FFFF
  return n;
}

/// How many bytes the character at `s[i]` takes (1 for ASCII and for a byte that is not
/// valid UTF-8).
constexpr std::size_t utf8_char_size(std::string_view s, std::size_t i) noexcept {
  const std::size_t n = utf8_sequence(s, i);
  return n == 0 ? 1 : n;
}

/// The 1-based column, in characters, of byte `pos` of `text` (pos may be text.size(): the
/// column just past the end).
constexpr std::size_t utf8_column(std::string_view text, std::size_t pos) noexcept {
  std::size_t column = 1;
  for (std::size_t i = 0; i < pos && i < text.size(); i += utf8_char_size(text, i)) ++column;
  return column;
}

/// The bytes [pos, pos + len) of `text`, widened so that they start and end on character
/// boundaries (never a part of a UTF-8 sequence).
constexpr std::string_view utf8_whole(std::string_view text, std::size_t pos, std::size_t len) noexcept {
  if (pos > text.size()) pos = text.size();
  std::size_t end = len > text.size() - pos ? text.size() : pos + len;
  std::size_t begin = pos;
  for (std::size_t i = 0; i < end; i += utf8_char_size(text, i)) {
    const std::size_t next = i + utf8_char_size(text, i);
    if (i < pos && pos < next) begin = i;
    if (i < end && end < next) end = next;
  }
  return text.substr(begin, end - begin);
}

/// `s` with every byte that is not part of a valid UTF-8 sequence written as `\xNN`, so the
/// result is valid UTF-8; valid text comes back unchanged.
inline std::string utf8_printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence(s, i);
    if (n != 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    if (b < 0x80) {
      out += static_cast<char>(b);
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    }
    ++i;
  }
  return out;
}

}  // namespace detail

PUNCTUAL_END_NAMESPACE
