/// @file trigger/combine.hpp
/// Combinators: `any_of_trigger` (fires when any child fires) and `all_of_trigger` (fires
/// only when every child fires at the same instant).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/trigger.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

inline void check_children(const char* kind, const std::vector<trigger>& children) {
  if (children.empty())
    throw parse_error(std::string(kind) + " trigger", "", 0, "needs at least one trigger");
  for (const auto& c : children)
    if (!c) throw parse_error(std::string(kind) + " trigger", "", 0, "a child trigger is empty");
}

inline std::string join_children(const char* kind, const std::vector<trigger>& children) {
  std::string out = kind;
  out += '(';
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (i != 0) out += "; ";
    out += children[i].to_string();
  }
  out += ')';
  return out;
}

}  // namespace detail

/// Fires whenever any of its children fires: next() is the earliest of the children's next
/// fire times, so an instant at which several children fire is one fire, not several.
/// Never fires again once no child does.
///
/// Canonical text: `any_of(<child>; <child>; ...)` — children in their canonical text, in
/// the order given, separated by "; " (combinators nest).
///
/// @code
/// punctual::any_of_trigger t{{punctual::parse_trigger("cron:0 9 * * MON-FRI"),
///                             punctual::parse_trigger("cron:0 11 * * SAT,SUN")}};
/// @endcode
class any_of_trigger {
 public:
  /// Throws parse_error (field "any_of trigger") when `children` is empty or holds an empty
  /// trigger.
  explicit any_of_trigger(std::vector<trigger> children) : children_(std::move(children)) {
    detail::check_children("any_of", children_);
  }

  /// The children, in the order given.
  const std::vector<trigger>& children() const noexcept { return children_; }

  /// The earliest next fire of any child, strictly after `after`.
  std::optional<time_point> next(time_point after) const {
    std::optional<time_point> best;
    for (const auto& c : children_) {
      const auto t = c.next(after);
      if (t && (!best || *t < *best)) best = t;
    }
    return best;
  }

  /// Canonical text, e.g. `any_of(once:2026-01-01T00:00:00Z; interval:1h)`.
  std::string to_string() const { return detail::join_children("any_of", children_); }

  friend bool operator==(const any_of_trigger& a, const any_of_trigger& b) {
    return a.children_ == b.children_;
  }

 private:
  std::vector<trigger> children_;
};

/// Fires only at instants at which every child fires ("the 13th of the month, if it is a
/// Friday" = all_of(cron:0 0 13 * *; cron:0 0 * * FRI)).
///
/// next() takes every child's next fire, then repeatedly advances the children that are
/// behind to the latest candidate, until all agree. That search is bounded: after
/// `max_rounds` (10,000) rounds without agreement next() returns nullopt — it treats
/// children that (almost) never coincide as never firing again instead of looping forever.
/// It also returns nullopt as soon as any child never fires again. Each round calls next()
/// on the children that lag, so an all_of nested in an all_of can cost up to max_rounds
/// times the inner bound; keep combinations of rarely-coinciding triggers shallow.
///
/// Canonical text: `all_of(<child>; <child>; ...)`, like any_of_trigger.
class all_of_trigger {
 public:
  /// Rounds of "advance the laggards" before next() gives up and returns nullopt.
  static constexpr int max_rounds = 10'000;

  /// Throws parse_error (field "all_of trigger") when `children` is empty or holds an empty
  /// trigger.
  explicit all_of_trigger(std::vector<trigger> children) : children_(std::move(children)) {
    detail::check_children("all_of", children_);
  }

  /// The children, in the order given.
  const std::vector<trigger>& children() const noexcept { return children_; }

  /// The first instant strictly after `after` at which every child fires; nullopt when
  /// there is none, or none is found within max_rounds rounds.
  std::optional<time_point> next(time_point after) const {
    std::vector<time_point> candidate;
    candidate.reserve(children_.size());
    for (const auto& c : children_) {
      const auto t = c.next(after);
      if (!t) return std::nullopt;
      candidate.push_back(*t);
    }
    for (int round = 0; round < max_rounds; ++round) {
      const time_point latest = *std::max_element(candidate.begin(), candidate.end());
      bool agreed = true;
      for (std::size_t i = 0; i < children_.size(); ++i) {
        if (candidate[i] == latest) continue;
        agreed = false;
        // The child's first fire at or after `latest`.
        const auto t = children_[i].next(latest - duration{1});
        if (!t) return std::nullopt;
        candidate[i] = *t;
      }
      if (agreed) return latest;
    }
    return std::nullopt;
  }

  /// Canonical text, e.g. `all_of(cron:0 0 13 * *; cron:0 0 * * FRI)`.
  std::string to_string() const { return detail::join_children("all_of", children_); }

  friend bool operator==(const all_of_trigger& a, const all_of_trigger& b) {
    return a.children_ == b.children_;
  }

 private:
  std::vector<trigger> children_;
};

PUNCTUAL_END_NAMESPACE
