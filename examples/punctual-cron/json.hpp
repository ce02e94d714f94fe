// A small JSON writer for punctual-cron's --json output: objects and arrays of strings,
// numbers, booleans and nulls, written in order, with strings escaped as RFC 8259 requires.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace punctual_cron {

/// Appends `s` to `out` as a JSON string literal (quotes, escapes, control characters as \u00XX).
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

/// Writes one JSON object, member by member: `json_object o(out); o.field("id", "x");`.
class json_object {
 public:
  explicit json_object(std::string& out) : out_(out) { out_ += '{'; }
  json_object(const json_object&) = delete;
  json_object& operator=(const json_object&) = delete;
  ~json_object() { out_ += '}'; }

  json_object& field(std::string_view name, std::string_view value) {
    key(name);
    append_json_string(out_, value);
    return *this;
  }
  json_object& field(std::string_view name, const char* value) {
    return field(name, std::string_view(value));
  }
  json_object& field(std::string_view name, const std::string& value) {
    return field(name, std::string_view(value));
  }
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  json_object& field(std::string_view name, T value) {
    key(name);
    out_ += std::to_string(value);
    return *this;
  }
  json_object& field(std::string_view name, bool value) {
    key(name);
    out_ += value ? "true" : "false";
    return *this;
  }
  /// null when empty.
  template <class T>
  json_object& field(std::string_view name, const std::optional<T>& value) {
    if (value) return field(name, *value);
    key(name);
    out_ += "null";
    return *this;
  }

 private:
  void key(std::string_view name) {
    if (!first_) out_ += ',';
    first_ = false;
    append_json_string(out_, name);
    out_ += ':';
  }
  std::string& out_;
  bool first_ = true;
};

}  // namespace punctual_cron
