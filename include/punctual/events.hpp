/// @file events.hpp
/// Typed events: what the scheduler tells its listeners, as callbacks or as an awaitable
/// stream. A listener that throws is reported (`listener_error`) and never stops anything.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/experimental/channel.hpp>

#include "punctual/config.hpp"
#include "punctual/job.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// What happened. Each kind documents which event fields it fills.
enum class event_kind : std::uint8_t {
  scheduler_started,     ///< start() ran
  scheduler_stopped,     ///< stop completed; `message`: how
  schedule_added,        ///< schedule_id
  schedule_removed,      ///< schedule_id
  schedule_modified,     ///< schedule_id (replaced definition or options)
  schedule_paused,       ///< schedule_id
  schedule_resumed,      ///< schedule_id
  schedule_quarantined,  ///< schedule_id, message: why its stored row cannot be used
  schedule_finished,     ///< schedule_id: its trigger will never fire again
  job_submitted,         ///< schedule_id, fire_time: a run was created
  job_started,           ///< schedule_id, job_id, fire_time, attempt, lateness
  job_succeeded,         ///< schedule_id, job_id, fire_time, attempt
  job_failed,            ///< ... message: error text
  job_timed_out,         ///< ...
  job_cancelled,         ///< ... message: why
  job_missed,            ///< schedule_id, fire_time, lateness: later than misfire_grace
  job_skipped,           ///< schedule_id, job_id, fire_time: max_running reached, overlap=skip
  job_abandoned,         ///< schedule_id, job_id, fire_time, message: found after its node died
  job_recovered,         ///< schedule_id, job_id: an abandoned job queued again (on_abandoned=rerun)
  job_retry_scheduled,   ///< schedule_id, job_id, attempt (the next one), message: last error
  fires_dropped,         ///< schedule_id, count: due fire times dropped by coalescing
  store_error,           ///< op, message, attempt; count: failed calls in the outage (1: it begins)
  store_recovered,       ///< op: the call that succeeded; count: failed calls in the streak; message
                         ///< names the operation that failed last and its error
  loop_restarted,        ///< op (loop name), message: a loop ended unexpectedly and was restarted
  clock_stepped,         ///< lateness: how far the wall clock stepped back; count: schedules re-planned
  listener_error,        ///< message: a listener threw
};

/// Number of event kinds.
inline constexpr std::size_t event_kind_count = static_cast<std::size_t>(event_kind::listener_error) + 1;

/// Lower-case name of a kind ("store_error").
inline std::string_view to_string(event_kind k) {
  static constexpr std::string_view names[] = {
      "scheduler_started", "scheduler_stopped", "schedule_added",   "schedule_removed",
      "schedule_modified", "schedule_paused",   "schedule_resumed", "schedule_quarantined",
      "schedule_finished", "job_submitted",     "job_started",      "job_succeeded",
      "job_failed",        "job_timed_out",     "job_cancelled",    "job_missed",
      "job_skipped",       "job_abandoned",     "job_recovered",    "job_retry_scheduled",
      "fires_dropped",     "store_error",       "store_recovered",  "loop_restarted",
      "clock_stepped",     "listener_error"};
  return names[static_cast<std::size_t>(k)];
}

/// One event. Fields not used by its kind are left empty/zero.
struct event {
  event_kind kind{};
  time_point at{};  ///< when it happened (scheduler clock)
  std::string schedule_id;
  std::int64_t job_id = 0;
  std::optional<time_point> fire_time;
  std::uint32_t attempt = 0;
  std::optional<duration> lateness;  ///< start (or miss) time minus fire time
  std::string op;                    ///< store operation or loop name
  std::string message;               ///< error text, reason
  std::uint64_t count = 0;  ///< fires_dropped: how many; store_error/_recovered: failures in the outage
  std::optional<job_state> state;  ///< final state of job_* outcome events
};

/// A set of event kinds.
class event_mask {
 public:
  constexpr event_mask() = default;
  constexpr event_mask(std::initializer_list<event_kind> kinds) {
    for (auto k : kinds) bits_ |= bit(k);
  }
  /// Every kind.
  static constexpr event_mask all() {
    event_mask m;
    m.bits_ = (std::uint64_t{1} << event_kind_count) - 1;
    return m;
  }
  constexpr bool contains(event_kind k) const { return (bits_ & bit(k)) != 0; }
  constexpr std::uint64_t bits() const { return bits_; }
  constexpr event_mask operator|(event_mask o) const {
    event_mask m;
    m.bits_ = bits_ | o.bits_;
    return m;
  }

 private:
  static constexpr std::uint64_t bit(event_kind k) { return std::uint64_t{1} << static_cast<unsigned>(k); }
  std::uint64_t bits_ = 0;
};

class event_bus;

/// Keeps a listener registered; unregisters it when destroyed or reset(). Movable.
class subscription {
 public:
  subscription() = default;
  subscription(subscription&& o) noexcept : bus_(std::move(o.bus_)), id_(std::exchange(o.id_, 0)) {}
  subscription& operator=(subscription&& o) noexcept {
    if (this != &o) {
      reset();
      bus_ = std::move(o.bus_);
      id_ = std::exchange(o.id_, 0);
    }
    return *this;
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { reset(); }
  /// Unregisters now.
  void reset();

 private:
  friend class event_bus;
  struct state;
  subscription(std::weak_ptr<state> bus, std::uint64_t id) : bus_(std::move(bus)), id_(id) {}
  std::weak_ptr<state> bus_;
  std::uint64_t id_ = 0;
};

/// An awaitable stream of events with a bounded buffer: when the reader falls behind, new
/// events are dropped (and counted) rather than slowing the scheduler.
///
/// @code
/// auto stream = sched.events().stream(ex, {punctual::event_kind::store_error});
/// for (;;) { punctual::event e = co_await stream.async_next(asio::use_awaitable); ... }
/// @endcode
class event_stream {
 public:
  using channel_type = asio::experimental::channel<void(asio::error_code, event)>;

  /// Waits for the next event. Completion signature: void(asio::error_code, event); the error
  /// is asio::experimental::error::channel_closed once the stream is closed.
  template <class CompletionToken>
  auto async_next(CompletionToken&& token) {
    return channel_->async_receive(std::forward<CompletionToken>(token));
  }
  /// Events dropped because the buffer was full.
  std::uint64_t dropped() const { return dropped_->load(); }
  /// Stops the stream (pending and later async_next complete with channel_closed).
  void close() {
    sub_.reset();
    channel_->close();
  }

 private:
  friend class event_bus;
  std::shared_ptr<channel_type> channel_;
  std::shared_ptr<std::atomic<std::uint64_t>> dropped_;
  subscription sub_;
};

/// Delivers events to listeners. Listeners run synchronously on the thread that emits (the
/// scheduler's strand), must be quick, and must not block. Subscribing and unsubscribing are
/// thread-safe and may happen inside a listener.
class event_bus {
 public:
  event_bus() : state_(std::make_shared<subscription::state>()) {}

  /// Calls `listener` for every event whose kind is in `kinds`.
  [[nodiscard]] subscription subscribe(std::function<void(const event&)> listener,
                                       event_mask kinds = event_mask::all());
  /// An awaitable stream of the events in `kinds`, buffering at most `capacity`.
  event_stream stream(asio::any_io_executor ex, event_mask kinds = event_mask::all(),
                      std::size_t capacity = 1024);
  /// True when some listener wants `k` (emitters skip building events nobody wants).
  bool wanted(event_kind k) const noexcept;
  /// Delivers `e`. A listener that throws is reported to the others as listener_error.
  void emit(const event& e);

 private:
  std::shared_ptr<subscription::state> state_;
};

struct subscription::state {
  struct listener {
    std::uint64_t id;
    event_mask kinds;
    std::shared_ptr<std::function<void(const event&)>> fn;
  };
  std::mutex mutex;
  std::vector<listener> listeners;
  std::atomic<std::uint64_t> wanted{0};
  std::uint64_t next_id = 0;

  void recompute() {
    std::uint64_t w = 0;
    for (auto& l : listeners) w |= l.kinds.bits();
    wanted.store(w, std::memory_order_relaxed);
  }
};

inline void subscription::reset() {
  if (auto s = bus_.lock(); s && id_ != 0) {
    std::lock_guard lock(s->mutex);
    std::erase_if(s->listeners, [&](auto& l) { return l.id == id_; });
    s->recompute();
  }
  bus_.reset();
  id_ = 0;
}

inline subscription event_bus::subscribe(std::function<void(const event&)> listener, event_mask kinds) {
  std::lock_guard lock(state_->mutex);
  const auto id = ++state_->next_id;
  state_->listeners.push_back(
      {id, kinds, std::make_shared<std::function<void(const event&)>>(std::move(listener))});
  state_->recompute();
  return subscription(state_, id);
}

inline event_stream event_bus::stream(asio::any_io_executor ex, event_mask kinds, std::size_t capacity) {
  event_stream s;
  s.channel_ = std::make_shared<event_stream::channel_type>(ex, capacity);
  s.dropped_ = std::make_shared<std::atomic<std::uint64_t>>(0);
  std::weak_ptr<event_stream::channel_type> weak = s.channel_;
  auto dropped = s.dropped_;
  s.sub_ = subscribe(
      [weak, dropped](const event& e) {
        if (auto ch = weak.lock()) {
          if (!ch->try_send(asio::error_code{}, e)) dropped->fetch_add(1);
        }
      },
      kinds);
  return s;
}

inline bool event_bus::wanted(event_kind k) const noexcept {
  return (state_->wanted.load(std::memory_order_relaxed) & (std::uint64_t{1} << static_cast<unsigned>(k))) !=
         0;
}

inline void event_bus::emit(const event& e) {
  if (!wanted(e.kind)) return;
  std::vector<subscription::state::listener> targets;
  {
    std::lock_guard lock(state_->mutex);
    for (auto& l : state_->listeners)
      if (l.kinds.contains(e.kind)) targets.push_back(l);
  }
  for (auto& l : targets) {
    std::string failure;
    try {
      (*l.fn)(e);
    } catch (const std::exception& ex) {
      failure = ex.what();
      if (failure.empty()) failure = "std::exception";
    } catch (...) {
      failure = "unknown exception";
    }
    if (!failure.empty() && e.kind != event_kind::listener_error) {
      event report;
      report.kind = event_kind::listener_error;
      report.at = e.at;
      report.message = "listener for " + std::string(to_string(e.kind)) + " threw: " + failure;
      emit(report);
    }
  }
}

PUNCTUAL_END_NAMESPACE
