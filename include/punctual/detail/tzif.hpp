/// @file detail/tzif.hpp
/// Reader for compiled IANA time-zone files (TZif, RFC 8536), versions 1 to 4. Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/error.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// The parts of a TZif file that matter for UTC offsets.
struct tzif_data {
  /// UTC seconds of each transition, strictly ascending.
  std::vector<std::int64_t> at;
  /// Offset (seconds east of UTC) in force from at[i] on.
  std::vector<std::int32_t> offset;
  /// Offset before the first transition (time type 0).
  std::int32_t initial_offset = 0;
  /// Every offset any time type uses.
  std::vector<std::int32_t> all_offsets;
  /// The footer's POSIX TZ string; empty for version 1 files or an empty footer.
  std::string footer;
};

/// Parses TZif bytes. Leap-second records are skipped (times are taken as POSIX times, which
/// is wrong by up to 27 s for "right/" zones but never fails). Throws parse_error (field
/// "time zone", text `name`) with a reason when the data is not a well-formed TZif file.
inline tzif_data parse_tzif(std::string_view bytes, const std::string& name) {
  auto fail = [&](const std::string& why) -> void {
    throw parse_error("time zone", name, 0, "corrupt TZif file: " + why);
  };
  std::size_t pos = 0;
  auto need = [&](std::size_t n, const char* what) {
    if (bytes.size() - pos < n) fail(std::string("truncated ") + what);
  };
  auto u8 = [&](std::size_t p) { return static_cast<std::uint8_t>(bytes[p]); };
  auto be32 = [&](std::size_t p) {
    return static_cast<std::uint32_t>(u8(p)) << 24 | static_cast<std::uint32_t>(u8(p + 1)) << 16 |
           static_cast<std::uint32_t>(u8(p + 2)) << 8 | static_cast<std::uint32_t>(u8(p + 3));
  };
  auto be64 = [&](std::size_t p) { return static_cast<std::uint64_t>(be32(p)) << 32 | be32(p + 4); };

  struct header {
    char version;
    std::uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
  };
  auto read_header = [&]() {
    need(44, "header");
    if (bytes.substr(pos, 4) != "TZif") fail("bad magic (not a TZif file)");
    header h{};
    h.version = bytes[pos + 4];
    if (h.version != 0 && (h.version < '2' || h.version > '9')) fail("unknown version");
    h.isutcnt = be32(pos + 20);
    h.isstdcnt = be32(pos + 24);
    h.leapcnt = be32(pos + 28);
    h.timecnt = be32(pos + 32);
    h.typecnt = be32(pos + 36);
    h.charcnt = be32(pos + 40);
    pos += 44;
    if (h.typecnt == 0) fail("no local time types");
    if (h.typecnt > 256) fail("more than 256 local time types");
    if (h.charcnt == 0) fail("no abbreviation characters");
    if (h.isutcnt != 0 && h.isutcnt != h.typecnt) fail("UT/local indicator count mismatch");
    if (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) fail("standard/wall indicator count mismatch");
    return h;
  };
  // size of a data block; 64-bit counts cannot overflow with 32-bit inputs
  auto block_size = [](const header& h, std::uint64_t time_size) {
    return static_cast<std::uint64_t>(h.timecnt) * time_size + h.timecnt + std::uint64_t{h.typecnt} * 6 +
           h.charcnt + std::uint64_t{h.leapcnt} * (time_size + 4) + h.isstdcnt + h.isutcnt;
  };

  header h = read_header();
  std::size_t time_size = 4;
  if (h.version != 0) {
    const std::uint64_t v1 = block_size(h, 4);
    if (v1 > bytes.size() - pos) fail("truncated version 1 data block");
    pos += static_cast<std::size_t>(v1);
    const char v = h.version;
    h = read_header();
    if (h.version != v) fail("version mismatch between the two headers");
    time_size = 8;
  }
  const std::uint64_t size = block_size(h, time_size);
  if (size > bytes.size() - pos) fail("truncated data block");

  tzif_data out;
  const std::size_t times = pos;
  const std::size_t idx = times + h.timecnt * time_size;
  const std::size_t types = idx + h.timecnt;
  std::vector<std::int32_t> type_offset(h.typecnt);
  for (std::uint32_t k = 0; k < h.typecnt; ++k) {
    const std::size_t p = types + k * 6;
    const auto utoff = static_cast<std::int32_t>(be32(p));
    // RFC 8536: more than -25 hours and less than 26 hours
    if (utoff < -89999 || utoff > 93599) fail("UTC offset out of range");
    if (u8(p + 4) > 1) fail("bad DST flag");
    if (u8(p + 5) >= h.charcnt) fail("abbreviation index out of range");
    type_offset[k] = utoff;
  }
  out.all_offsets = type_offset;
  out.initial_offset = type_offset[0];
  out.at.reserve(h.timecnt);
  out.offset.reserve(h.timecnt);
  for (std::uint32_t k = 0; k < h.timecnt; ++k) {
    const auto t = time_size == 8 ? static_cast<std::int64_t>(be64(times + k * 8))
                                  : static_cast<std::int64_t>(static_cast<std::int32_t>(be32(times + k * 4)));
    if (k > 0 && t <= out.at.back()) fail("transition times not ascending");
    const std::uint8_t type = u8(idx + k);
    if (type >= h.typecnt) fail("transition type index out of range");
    out.at.push_back(t);
    out.offset.push_back(type_offset[type]);
  }
  pos += static_cast<std::size_t>(size);

  if (h.version != 0) {
    if (pos >= bytes.size() || bytes[pos] != '\n') fail("missing footer");
    const std::size_t nl = bytes.find('\n', pos + 1);
    if (nl == std::string_view::npos) fail("unterminated footer");
    out.footer.assign(bytes.substr(pos + 1, nl - pos - 1));
  }
  return out;
}

/// Where zone files are read from: $TZDIR if set and non-empty, else PUNCTUAL_ZONEINFO_DIR.
inline std::string zoneinfo_dir() {
  const char* env = std::getenv("TZDIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(PUNCTUAL_ZONEINFO_DIR);
}

/// Checks that `name` can only name a file below the zoneinfo directory: non-empty, not
/// absolute, only `[A-Za-z0-9/_+-]`, no empty path component. Throws parse_error.
inline void validate_zone_name(std::string_view name) {
  const std::string n(name);
  if (name.empty()) throw parse_error("time zone", n, 0, "is empty");
  if (name.size() > 255) throw parse_error("time zone", n, 0, "is too long");
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
                    c == '_' || c == '+' || c == '-';
    if (!ok) {
      throw parse_error("time zone", n, i + 1,
                        c == '.' ? "'.' is not allowed in a time zone name"
                                 : "only letters, digits and / _ + - are allowed in a time zone name");
    }
    if (c == '/' && (i == 0 || i + 1 == name.size() || name[i - 1] == '/'))
      throw parse_error(
          "time zone", n, i + 1,
          i == 0 ? "absolute paths are not allowed" : "empty path component in a time zone name");
  }
}

/// Reads the zone file for `name` (already validated) from `dir`. Throws parse_error when
/// there is no such regular file or it cannot be read.
inline std::string read_zone_file(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(dir) / name;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::is_regular_file(st))
    throw parse_error("time zone", name, 0, "unknown time zone (no such file in " + dir + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw parse_error("time zone", name, 0, "unknown time zone (cannot read " + path.string() + ")");
  constexpr std::size_t max_size = std::size_t{1} << 22;
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<std::size_t>(in.gcount()));
    if (data.size() > max_size) throw parse_error("time zone", name, 0, "zone file is too large");
  }
  if (in.bad())
    throw parse_error("time zone", name, 0, "unknown time zone (cannot read " + path.string() + ")");
  return data;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
