// punctual-cron's plain-words trigger descriptions (examples/punctual-cron/describe.hpp), as the
// dashboard shows them next to each schedule's trigger.
#include <catch2/catch.hpp>

#include "../../examples/punctual-cron/describe.hpp"

using punctual_cron::describe_trigger;

TEST_CASE("describe_trigger words daily and weekly cron triggers with their zone", "[describe]") {
  CHECK(describe_trigger("cron:30 2 * * * tz=Europe/Berlin") == "at 02:30 every day, Europe/Berlin");
  CHECK(describe_trigger("cron:0 9 * * MON-FRI") == "at 09:00 on Monday to Friday, UTC");
  CHECK(describe_trigger("cron:0 9 * * 1-5 tz=America/New_York") ==
        "at 09:00 on Monday to Friday, America/New_York");
  CHECK(describe_trigger("cron:15 8,17 * * 1,4") == "at 08:15 and 17:15 on Monday and Thursday, UTC");
  CHECK(describe_trigger("cron:0 0 * * 7") == "at 00:00 on Sunday, UTC");
  CHECK(describe_trigger("cron:0 6 1 * *") == "at 06:00 on day 1 of every month, UTC");
  CHECK(describe_trigger("cron:0 0 25 dec *") == "at 00:00 on December 25 every year, UTC");
}

TEST_CASE("describe_trigger words sub-daily cron triggers and macros", "[describe]") {
  CHECK(describe_trigger("cron:*/15 * * * *") == "every 15 minutes, UTC");
  CHECK(describe_trigger("cron:* * * * *") == "every minute, UTC");
  CHECK(describe_trigger("cron:5 * * * * tz=Europe/Paris") == "every hour at minute 5, Europe/Paris");
  CHECK(describe_trigger("cron:0 */6 * * *") == "every 6 hours at minute 0, UTC");
  CHECK(describe_trigger("cron:*/10 * * * 1-5") == "every 10 minutes on Monday to Friday, UTC");
  CHECK(describe_trigger("cron:@daily tz=Europe/Berlin") == "at 00:00 every day, Europe/Berlin");
  CHECK(describe_trigger("cron:@hourly") == "every hour, on the hour, UTC");
  CHECK(describe_trigger("cron:@weekly") == "at 00:00 on Sunday, UTC");
  CHECK(describe_trigger("cron:@yearly") == "at 00:00 on January 1 every year, UTC");
  CHECK(describe_trigger("cron:30 2 * * * tz=Europe/Berlin gap=skip") == "at 02:30 every day, Europe/Berlin");
}

TEST_CASE("describe_trigger words plain intervals", "[describe]") {
  CHECK(describe_trigger("interval:90m") == "every 90m");
  CHECK(describe_trigger("interval:1s") == "every 1s");
}

TEST_CASE("describe_trigger falls back to the trigger text for shapes it does not know", "[describe]") {
  for (const char* text : {
           "cron:0 30 2 * * *",                           // seconds field
           "cron:0 2 1 * MON",                            // day of month or weekday
           "cron:0 2 L * *",                              // last day of month
           "cron:1-10 2 * * *",                           // a range of minutes
           "cron:0 2 * * MON#2",                          // nth weekday
           "cron:0 25 * * *",                             // out of range (not describable)
           "interval:1h start=2026-01-01T00:00:00Z",      // anchored
           "once:2026-01-01T00:00:00Z",                   // other kinds
           "any_of(cron:0 9 * * *;cron:0 17 * * *)", "",  // combinations, nothing
       }) {
    INFO(text);
    CHECK(describe_trigger(text) == text);
  }
}
