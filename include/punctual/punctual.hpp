/// @file punctual.hpp
/// Umbrella header: everything in punctual that needs only Asio and the standard library.
/// The optional store backends (store/sqlite_store.hpp, store/postgres_store.hpp) are never
/// included from here; include them yourself and link SQLite3 / libpq.
#pragma once

#include "punctual/config.hpp"
#include "punctual/error.hpp"
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
