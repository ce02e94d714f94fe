/// @file trigger/trigger.hpp
/// `punctual::trigger`: a type-erased, immutable, cheaply copyable trigger value.
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "punctual/config.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// What any trigger type provides: `next(after)` — the first fire time strictly after
/// `after`, or nullopt when it will never fire again — and `to_string()` — its canonical
/// text, which parse_trigger() (trigger/parse.hpp) turns back into an equal trigger.
// The member checks come first so that a type without them (e.g. a test framework's
// expression wrapper) is rejected before copy_constructible is asked, which would recurse
// into trigger's own converting constructor.
template <class T>
concept trigger_like = requires(const T& t, time_point after) {
  { t.next(after) } -> std::same_as<std::optional<time_point>>;
  { t.to_string() } -> std::convertible_to<std::string>;
}
&&std::copy_constructible<T>;

namespace detail {
struct trigger_concept {
  virtual ~trigger_concept() = default;
  virtual std::optional<time_point> next(time_point after) const = 0;
  virtual std::string to_string() const = 0;
};
template <class T>
struct trigger_model final : trigger_concept {
  explicit trigger_model(T v) : value(std::move(v)) {}
  std::optional<time_point> next(time_point after) const override { return value.next(after); }
  std::string to_string() const override { return value.to_string(); }
  T value;
};
}  // namespace detail

/// Holds any trigger_like value (cron_trigger, interval_trigger, once_trigger,
/// calendar_interval_trigger, any_of_trigger, all_of_trigger, or your own type).
/// Copies share the immutable trigger. A default-constructed trigger is empty and never fires.
///
/// Thread safety: const members are safe from any thread.
///
/// @code
/// punctual::trigger t = punctual::cron("0 9 * * MON-FRI", "Europe/Berlin");
/// auto next = t.next(clock.now());
/// @endcode
class trigger {
 public:
  trigger() = default;
  template <trigger_like T>
    requires(!std::same_as<std::remove_cvref_t<T>, trigger>)
  trigger(T value)  // NOLINT(google-explicit-constructor): triggers convert implicitly by design
      : impl_(std::make_shared<const detail::trigger_model<T>>(std::move(value))) {}

  /// First fire time strictly after `after`; nullopt when it will never fire again (or empty).
  std::optional<time_point> next(time_point after) const { return impl_ ? impl_->next(after) : std::nullopt; }
  /// Canonical text form ("" when empty).
  std::string to_string() const { return impl_ ? impl_->to_string() : std::string{}; }
  /// False when empty.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

  /// The held trigger if it is a `T`, else nullptr.
  template <class T>
  const T* target() const noexcept {
    auto* m = dynamic_cast<const detail::trigger_model<T>*>(impl_.get());
    return m ? &m->value : nullptr;
  }

  /// Triggers are equal when their canonical texts are.
  friend bool operator==(const trigger& a, const trigger& b) { return a.to_string() == b.to_string(); }

 private:
  std::shared_ptr<const detail::trigger_concept> impl_;
};

PUNCTUAL_END_NAMESPACE
