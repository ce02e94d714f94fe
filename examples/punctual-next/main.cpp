// punctual-next: prints the next fire times of a trigger. See usage() or run with --help.
#include <charconv>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/punctual.hpp"

namespace {

constexpr const char* usage_text =
    R"(usage: punctual-next [--tz ZONE] [--from ISO8601] [--count N] [--dst POLICY] TRIGGER...

Prints the next N fire times of TRIGGER, strictly after --from, one per line, in ISO 8601
with the UTC offset in force (2026-03-29T03:00:00+02:00).

TRIGGER    a cron expression or macro ("0 9 * * MON-FRI", "@daily"), or a trigger's
           canonical text: cron:..., interval:..., once:..., calendar:..., any_of(...),
           all_of(...). Several words are joined with single spaces, so
           punctual-next 0 9 '*' '*' MON-FRI  and  punctual-next '0 9 * * MON-FRI'  agree.

options:
  --tz ZONE        IANA zone (Europe/Berlin). A bare cron expression is evaluated in it
                   (default UTC); a canonical text keeps its own tz=. Output offsets are
                   those of --tz if given, else of the trigger's zone (cron:, calendar:),
                   else UTC.
  --from ISO8601   start instant (default: now). Without an offset it is a local time in
                   the output zone (--tz, else the trigger's zone, else UTC); a local time
                   in a DST gap means the end of the gap, one that occurs twice the first.
  --count N        how many fire times (default 5, 0-100000).
  --dst POLICY     gap=shift|skip,overlap=auto|once|twice for a bare cron expression (a
                   canonical text carries its own gap=/overlap=; --dst with one is an error).
  --help           this text.

Exit status: 0 on success, also when the trigger ends before N fire times: then fewer
lines are printed and "punctual-next: never fires again" goes to stderr. 2 for bad input
(bad trigger, option or zone), with the error on stderr.
)";

struct bad_usage {
  std::string message;
};

struct options {
  std::optional<std::string> tz;
  std::optional<std::string> from;
  std::optional<std::string> dst;
  long count = 5;
  std::string trigger_text;
  bool help = false;
};

options parse_args(int argc, char** argv) {
  options o;
  std::vector<std::string> words;
  bool only_words = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (only_words || arg.size() < 2 || arg.substr(0, 2) != "--") {
      words.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_words = true;
      continue;
    }
    if (arg == "--help") {
      o.help = true;
      continue;
    }
    // --name VALUE or --name=VALUE
    std::string_view name = arg;
    std::optional<std::string> value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    if (name != "--tz" && name != "--from" && name != "--count" && name != "--dst")
      throw bad_usage{"unknown option " + std::string(arg) + " (see --help)"};
    if (!value) {
      if (i + 1 >= argc) throw bad_usage{"option " + std::string(name) + " needs a value"};
      value = argv[++i];
    }
    if (name == "--tz") {
      o.tz = *value;
    } else if (name == "--from") {
      o.from = *value;
    } else if (name == "--dst") {
      o.dst = *value;
    } else {
      long n = -1;
      const auto* end = value->data() + value->size();
      const auto [p, ec] = std::from_chars(value->data(), end, n);
      if (ec != std::errc{} || p != end || n < 0 || n > 100000)
        throw bad_usage{"--count \"" + *value + "\": expected a number 0-100000"};
      o.count = n;
    }
  }
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i != 0) o.trigger_text += ' ';
    o.trigger_text += words[i];
  }
  return o;
}

int run(const options& o) {
  using punctual::time_zone;
  if (o.trigger_text.empty()) throw bad_usage{"no trigger given (see --help)"};

  const time_zone* tz = o.tz ? &punctual::locate_zone(*o.tz) : nullptr;
  punctual::trigger t = punctual::parse_trigger(o.trigger_text);
  // A cron trigger from text without the "cron:" prefix: --tz and --dst apply to it.
  const auto first = o.trigger_text.find_first_not_of(" \t");
  const bool bare_cron =
      t.target<punctual::cron_trigger>() != nullptr && o.trigger_text.compare(first, 5, "cron:") != 0;
  if (bare_cron) {
    const punctual::dst_policy policy = o.dst ? punctual::parse_dst_policy(*o.dst) : punctual::dst_policy{};
    t = punctual::cron_trigger(o.trigger_text, tz ? *tz : punctual::utc_zone(), policy);
  } else if (o.dst) {
    throw bad_usage{"--dst applies to a bare cron expression only; put gap=/overlap= in the canonical text"};
  }

  // Zone for display and for a --from without offset.
  const time_zone* out = tz;
  if (!out) {
    if (const auto* c = t.target<punctual::cron_trigger>())
      out = &c->zone();
    else if (const auto* k = t.target<punctual::calendar_interval_trigger>())
      out = &k->zone();
    else
      out = &punctual::utc_zone();
  }

  punctual::time_point from = punctual::system_clock::instance().now();
  if (o.from) {
    const auto parts = punctual::parse_iso_parts(*o.from);
    if (parts.offset) {
      from = punctual::time_point{parts.local.time_since_epoch()} - *parts.offset;
    } else {
      from = out->resolve(parts.local).first;
    }
  }

  for (long i = 0; i < o.count; ++i) {
    const auto next = t.next(from);
    if (!next) {
      std::cerr << "punctual-next: never fires again\n";
      break;
    }
    std::cout << punctual::format_iso(*next, *out) << '\n';
    from = *next;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse_args(argc, argv);
    if (o.help) {
      std::cout << usage_text;
      return 0;
    }
    return run(o);
  } catch (const bad_usage& e) {
    std::cerr << "punctual-next: " << e.message << '\n';
  } catch (const punctual::parse_error& e) {
    std::cerr << "punctual-next: " << e.what() << '\n';
  } catch (const std::exception& e) {
    std::cerr << "punctual-next: " << e.what() << '\n';
  }
  return 2;
}
