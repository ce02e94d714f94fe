// Runs the punctual-next example binary and checks its output and exit status.
// PUNCTUAL_NEXT_BINARY (the binary's path) is defined by tests/CMakeLists.txt when the
// examples are built; without it this file contributes no tests.
#include <catch2/catch.hpp>

#if defined(PUNCTUAL_NEXT_BINARY)

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct result {
  int status = -1;
  std::vector<std::string> lines;  // stdout, one entry per line
  std::string err;                 // stderr
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

result run(const std::vector<std::string>& args) {
  const std::string err_file = "/tmp/punctual-next-test-" + std::to_string(::getpid()) + ".err";
  std::string cmd = quote(PUNCTUAL_NEXT_BINARY);
  for (const auto& a : args) cmd += ' ' + quote(a);
  cmd += " 2>" + quote(err_file);
  result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int raw = ::pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) r.lines.push_back(line);
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
  std::remove(err_file.c_str());
  return r;
}

using lines = std::vector<std::string>;

}  // namespace

TEST_CASE("punctual-next prints the next fire times across a Berlin DST gap", "[punctual-next][dst]") {
  const auto r = run({"--tz", "Europe/Berlin", "--from", "2026-03-28T00:00:00+01:00", "--count", "3", "30",
                      "2", "*", "*", "*"});
  CHECK(r.status == 0);
  CHECK(r.lines ==
        lines{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"});
  CHECK(r.err.empty());
  // The same with gap=skip drops the 29th; --from without offset is Berlin local time.
  const auto s =
      run({"--tz=Europe/Berlin", "--from=2026-03-28T00:00", "--count=2", "--dst", "gap=skip", "30 2 * * *"});
  CHECK(s.status == 0);
  CHECK(s.lines == lines{"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"});
}

TEST_CASE("punctual-next joins trigger words and defaults to 5 lines", "[punctual-next]") {
  const auto words = run({"--from", "2026-01-02T10:00:00Z", "0", "9", "*", "*", "MON-FRI"});
  const auto quoted = run({"--from", "2026-01-02T10:00:00Z", "0 9 * * MON-FRI"});
  CHECK(words.status == 0);
  CHECK(words.lines.size() == 5);
  CHECK(words.lines == quoted.lines);
  CHECK(words.lines.front() == "2026-01-05T09:00:00+00:00");
  CHECK(words.lines.back() == "2026-01-09T09:00:00+00:00");
}

TEST_CASE("punctual-next shows a canonical trigger in its own zone, or in --tz", "[punctual-next]") {
  const std::string cal = "calendar:months=1 at=09:00 start=2026-01-31 tz=Europe/Berlin";
  const auto own = run({"--from", "2026-02-01T00:00:00Z", "--count", "2", cal});
  CHECK(own.status == 0);
  CHECK(own.lines == lines{"2026-02-28T09:00:00+01:00", "2026-03-31T09:00:00+02:00"});
  const auto ny = run({"--tz", "America/New_York", "--from", "2026-02-01T00:00:00Z", "--count", "1", cal});
  CHECK(ny.lines == lines{"2026-02-28T03:00:00-05:00"});
  const auto interval = run({"--from", "2026-01-01T00:00:00Z", "--count", "2", "interval:90m"});
  CHECK(interval.lines == lines{"2026-01-01T01:30:00+00:00", "2026-01-01T03:00:00+00:00"});
}

TEST_CASE("punctual-next prints fewer lines when the trigger ends", "[punctual-next]") {
  const auto r = run({"--from", "2026-01-01T00:00:00Z", "--count", "4", "once:2026-06-01T12:00:00Z"});
  CHECK(r.status == 0);
  CHECK(r.lines == lines{"2026-06-01T12:00:00+00:00"});
  CHECK(r.err.find("never fires again") != std::string::npos);
  const auto zero = run({"--count", "0", "@daily"});
  CHECK(zero.status == 0);
  CHECK(zero.lines.empty());
}

TEST_CASE("punctual-next exits 2 with the error on stderr for bad input", "[punctual-next][error]") {
  struct bad {
    std::vector<std::string> args;
    std::string expect;  // part of the stderr text
  };
  const std::vector<bad> cases = {
      {{"61 * * * *"}, "column 1"},
      {{"any_of(interval:1h; interval:0s)"}, "column 30"},
      {{"every:5m"}, "unknown kind"},
      {{"--tz", "Mars/Olympus", "0 9 * * *"}, "time zone"},
      {{"--bogus", "0 9 * * *"}, "unknown option"},
      {{"--count", "many", "0 9 * * *"}, "--count"},
      {{"--count"}, "needs a value"},
      {{"--from", "2026-02-30T00:00:00Z", "0 9 * * *"}, "ISO 8601"},
      {{"--dst", "gap=later", "0 9 * * *"}, "DST policy"},
      {{"--dst", "gap=skip", "interval:1h"}, "--dst"},
      {{}, "no trigger"},
  };
  for (const auto& c : cases) {
    INFO(c.expect);
    const auto r = run(c.args);
    CHECK(r.status == 2);
    CHECK(r.lines.empty());
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("punctual-next --help prints usage and exits 0", "[punctual-next]") {
  const auto r = run({"--help"});
  CHECK(r.status == 0);
  REQUIRE_FALSE(r.lines.empty());
  CHECK(r.lines.front().find("usage: punctual-next") == 0);
  std::string all;
  for (const auto& l : r.lines) all += l + '\n';
  CHECK(all.find("never fires again") != std::string::npos);
}

#endif  // PUNCTUAL_NEXT_BINARY
