// A program that uses punctual the way a consumer project does: it only sees what the build
// system (CMake package, add_subdirectory, pkg-config or Meson subproject) hands it.
#include <cstdio>
#include <string>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "punctual/time.hpp"
#include "punctual/version.hpp"
#if __has_include("punctual/punctual.hpp")
#include "punctual/punctual.hpp"
#endif

int main() {
  asio::io_context io;
  std::string written;
  asio::post(io, [&] {
    const auto t = punctual::parse_iso("2026-03-29T03:00:00+02:00");
    written = punctual::format_iso(t + punctual::parse_duration("1h30m"));
  });
  io.run();
  const std::string expected = "2026-03-29T02:30:00Z";
#ifdef CONSUMER_EXPECTED_VERSION
  if (std::string(PUNCTUAL_VERSION_STRING) != CONSUMER_EXPECTED_VERSION) {
    std::fprintf(stderr, "version.hpp says %s, the package says %s\n", PUNCTUAL_VERSION_STRING,
                 CONSUMER_EXPECTED_VERSION);
    return 1;
  }
#endif
  std::printf("punctual %s: %s\n", PUNCTUAL_VERSION_STRING, written.c_str());
  if (written != expected) {
    std::fprintf(stderr, "expected %s\n", expected.c_str());
    return 1;
  }
  return 0;
}
