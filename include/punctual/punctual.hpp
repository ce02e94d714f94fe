/// @file punctual.hpp
/// Umbrella header: everything in punctual that needs only Asio and the standard library.
/// The optional store backends (store/sqlite_store.hpp, store/postgres_store.hpp) are never
/// included from here; include them yourself and link SQLite3 / libpq.
#pragma once

#include "punctual/config.hpp"
#include "punctual/crontab.hpp"
#include "punctual/error.hpp"
#include "punctual/events.hpp"
#include "punctual/job.hpp"
#include "punctual/options_text.hpp"
#include "punctual/prometheus.hpp"
#include "punctual/schedule.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/memory_store.hpp"
#include "punctual/store/store.hpp"
#include "punctual/task.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/calendar_interval.hpp"
#include "punctual/trigger/combine.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/jitter.hpp"
#include "punctual/trigger/once.hpp"
#include "punctual/trigger/parse.hpp"
#include "punctual/trigger/trigger.hpp"
#include "punctual/version.hpp"
#include "punctual/zone.hpp"

// Command jobs need Linux (process groups, /proc, pidfd).
#if defined(__linux__)
#include "punctual/run/command_task.hpp"
#include "punctual/run/process.hpp"
#endif
