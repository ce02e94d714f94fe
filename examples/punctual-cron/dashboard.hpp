// punctual-cron's web dashboard and JSON API, served by `run --http`: the page (HTML, CSS and
// JS embedded in the binary at build time, see assets/), GET /api/... for schedules, runs and
// health, GET /api/events (server-sent events from the scheduler's event bus), and POST
// actions (pause, resume, trigger, cancel) — refused (403) unless the daemon was started with
// --http-admin. The README documents every endpoint.
//
// Everything here runs on the daemon's io_context (one thread), like the scheduler's strand.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "describe.hpp"
#include "http_server.hpp"
#include "json.hpp"
#include "punctual/punctual.hpp"
#include "punctual_cron_assets.hpp"  // generated: dashboard_html, dashboard_css, dashboard_js

namespace punctual_cron {

/// The browsers listening on GET /api/events: each gets every event published after it came,
/// as one server-sent event `data: {json}`, and a comment every 15 s to keep the line open.
class event_stream_hub {
 public:
  /// At most this many listeners at once; more get 503.
  static constexpr std::size_t max_listeners = 32;

  bool full() const { return listeners_.size() >= max_listeners; }

  /// Queues `data` (one line of JSON) for every listener.
  void publish(const std::string& data) {
    const std::string message = "data: " + data + "\n\n";
    for (auto& l : listeners_) {
      if (l->queue.size() < 1024) l->queue.push_back(message);  // a stuck reader loses events, not memory
      l->wake.cancel();
    }
  }

  /// Ends every stream (the daemon is stopping).
  void close_all() {
    for (auto& l : listeners_) {
      l->closed = true;
      l->wake.cancel();
    }
  }

  /// Writes events to `socket` until it closes or close_all().
  asio::awaitable<void> serve(asio::ip::tcp::socket& socket) {
    auto self = std::make_shared<listener>(socket.get_executor());
    listeners_.push_back(self);
    const auto at = std::prev(listeners_.end());
    self->queue.push_back("retry: 1000\n\n");
    while (!self->closed) {
      while (!self->queue.empty()) {
        const std::string message = std::move(self->queue.front());
        self->queue.pop_front();
        auto [ec, n] = co_await asio::async_write(socket, asio::buffer(message), use_tuple);
        if (ec) self->closed = true;
        if (self->closed) break;
      }
      if (self->closed) break;
      self->wake.expires_after(std::chrono::seconds{15});
      auto [ec] = co_await self->wake.async_wait(use_tuple);
      if (!ec) self->queue.push_back(": keep-alive\n\n");
    }
    listeners_.erase(at);
  }

 private:
  struct listener {
    explicit listener(asio::any_io_executor ex) : wake(ex) {}
    std::deque<std::string> queue;
    asio::steady_timer wake;
    bool closed = false;
  };
  std::list<std::shared_ptr<listener>> listeners_;
};

/// What the dashboard shows about the daemon.
struct dashboard_context {
  punctual::scheduler* scheduler = nullptr;
  std::string store_display;  ///< never with a password
  std::string node;
  punctual::time_point started{};
  /// The --http-admin token; empty: read-only (every POST answers 403).
  std::string admin_token;
};

/// Serves the page and the API; answers nullopt for paths that are not its own.
class dashboard {
 public:
  explicit dashboard(dashboard_context c) : c_(std::move(c)) {}

  event_stream_hub& events() { return hub_; }

  /// Publishes scheduler event `e` to the event stream.
  void publish(const punctual::event& e) {
    json j = {{"kind", punctual::to_string(e.kind)},
              {"schedule", e.schedule_id},
              {"job", e.job_id},
              {"at", iso(e.at)},
              {"fire_time", or_null(iso(e.fire_time))},
              {"attempt", e.attempt},
              {"lateness_seconds", nullptr},
              {"state", nullptr},
              {"message", e.message}};
    if (e.lateness) j["lateness_seconds"] = seconds(*e.lateness);
    if (e.state) j["state"] = punctual::to_string(*e.state);
    hub_.publish(to_json_text(j));
  }

  asio::awaitable<std::optional<http_response>> handle(const http_request& q) {
    const std::string_view path = q.path;
    if (path == "/" || path == "/index.html") co_return asset("text/html; charset=utf-8", dashboard_html);
    if (path == "/assets/dashboard.css") co_return asset("text/css; charset=utf-8", dashboard_css);
    if (path == "/assets/dashboard.js") co_return asset("text/javascript; charset=utf-8", dashboard_js);
    if (path.substr(0, 5) != "/api/") co_return std::nullopt;
    const auto parts = segments(path.substr(5));
    try {
      if (q.method == "POST") co_return co_await action(q, parts);
      if (parts.size() == 1 && parts[0] == "health") co_return health();
      if (parts.size() == 1 && parts[0] == "schedules") co_return co_await schedules();
      if (parts.size() == 2 && parts[0] == "schedules") co_return co_await schedule(parts[1]);
      if (parts.size() == 3 && parts[0] == "schedules" && parts[2] == "runs")
        co_return co_await runs(parts[1], q.query);
      if (parts.size() == 1 && parts[0] == "running") co_return co_await running();
      if (parts.size() == 1 && parts[0] == "events") co_return event_stream();
      co_return error(404, "no such API endpoint: " + std::string(path));
    } catch (const punctual::schedule_not_found& e) {
      co_return error(404, e.what());
    } catch (const std::exception& e) {
      co_return error(503, std::string("store error: ") + e.what());
    }
  }

 private:
  /// The page's files. The page may load only its own files and talk only to this server, and
  /// may not be framed by another site (no clickjacking of the action buttons).
  static http_response asset(const char* type, std::string_view body) {
    return {200,
            type,
            std::string(body),
            {{"Cache-Control", "no-cache"},
             {"X-Content-Type-Options", "nosniff"},
             {"X-Frame-Options", "DENY"},
             {"Content-Security-Policy",
              "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors "
              "'none'"}}};
  }

  static http_response reply(int status, const json& body) {
    return {status,
            "application/json",
            to_json_text(body),
            {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}}};
  }

  static http_response error(int status, const std::string& why) { return reply(status, {{"error", why}}); }

  /// "a/b%2Fc/d" -> {"a", "b/c", "d"} (percent-decoded).
  static std::vector<std::string> segments(std::string_view rest) {
    std::vector<std::string> out(1);
    for (std::size_t i = 0; i < rest.size(); ++i) {
      const char c = rest[i];
      if (c == '/') {
        out.emplace_back();
      } else if (c == '%' && i + 2 < rest.size() && std::isxdigit(static_cast<unsigned char>(rest[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(rest[i + 2]))) {
        out.back() += static_cast<char>(std::stoi(std::string(rest.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out.back() += c;
      }
    }
    if (!out.empty() && out.back().empty()) out.pop_back();
    return out;
  }

  punctual::scheduler& sched() { return *c_.scheduler; }

  http_response health() {
    const auto h = sched().health();
    const auto m = sched().metrics();
    json outcomes = json::object();
    for (std::size_t s = 0; s < m.outcomes.size(); ++s)
      if (punctual::is_final(static_cast<punctual::job_state>(s)))
        outcomes[std::string(punctual::to_string(static_cast<punctual::job_state>(s)))] = m.outcomes[s];
    const auto now = punctual::system_clock{}.now();
    return reply(200, {{"healthy", h.healthy},
                       {"state", punctual::to_string(h.state)},
                       {"reason", h.reason},
                       {"store", c_.store_display},
                       {"node", c_.node},
                       {"started", iso(c_.started)},
                       {"now", iso(now)},
                       {"uptime_seconds", seconds(now - c_.started)},
                       {"running", h.running_jobs},
                       {"outcomes", outcomes},
                       {"last_tick", or_null(iso(h.last_tick))},
                       {"admin", !c_.admin_token.empty()}});
  }

  /// A schedule with its description and newest runs' outcomes (newest first).
  asio::awaitable<json> schedule_summary(const punctual::schedule_record& r, std::size_t recent) {
    punctual::job_query q;
    q.schedule_id = r.spec.id;
    q.limit = recent;
    const auto jobs = co_await sched().async_list_jobs(std::move(q), asio::use_awaitable);
    json s = schedule_json(
        r, jobs.empty() ? std::nullopt : std::optional<std::string>(punctual::to_string(jobs.front().state)));
    s["description"] = r.quarantine.empty() ? describe_trigger(r.trigger_text) : r.trigger_text;
    json strip = json::array();
    for (const auto& j : jobs) strip.push_back({{"job", j.id}, {"outcome", punctual::to_string(j.state)}});
    s["recent"] = std::move(strip);
    co_return s;
  }

  asio::awaitable<http_response> schedules() {
    const auto list = co_await sched().async_list_schedules(asio::use_awaitable);
    json out = json::array();
    for (const auto& r : list) out.push_back(co_await schedule_summary(r, 20));
    co_return reply(200, out);
  }

  asio::awaitable<http_response> schedule(const std::string& id) {
    const auto r = co_await sched().async_get_schedule(id, asio::use_awaitable);
    if (!r) co_return error(404, "no schedule \"" + id + "\"");
    json s = co_await schedule_summary(*r, 20);
    json next = json::array();
    if (r->quarantine.empty()) {
      auto t = punctual::system_clock{}.now();
      for (int k = 0; k < 10; ++k) {
        const auto n = punctual::detail::next_within(r->spec.trigger, t, r->spec.options);
        if (!n) break;
        next.push_back(iso(*n));
        t = *n;
      }
    }
    s["next_fires"] = std::move(next);
    co_return reply(200, s);
  }

  asio::awaitable<http_response> runs(const std::string& id, const std::string& query) {
    std::size_t limit = 50;
    for (std::size_t at = 0; at < query.size();) {
      const auto end = std::min(query.find('&', at), query.size());
      const auto pair = std::string_view(query).substr(at, end - at);
      at = end + 1;
      if (pair.substr(0, 6) != "limit=") continue;
      const auto v = pair.substr(6);
      if (v.empty() || v.size() > 4 || v.find_first_not_of("0123456789") != std::string_view::npos ||
          std::stoul(std::string(v)) == 0 || std::stoul(std::string(v)) > 1000)
        co_return error(400, "limit \"" + std::string(v) + "\": expected a whole number from 1 to 1000");
      limit = std::stoul(std::string(v));
    }
    const auto r = co_await sched().async_get_schedule(id, asio::use_awaitable);
    punctual::job_query q;
    q.schedule_id = id;
    q.limit = limit;
    const auto jobs = co_await sched().async_list_jobs(std::move(q), asio::use_awaitable);
    if (!r && jobs.empty()) co_return error(404, "no schedule \"" + id + "\" and no runs of it");
    json out = json::array();
    for (const auto& j : jobs) out.push_back(run_json(j));
    co_return reply(200, out);
  }

  asio::awaitable<http_response> running() {
    punctual::job_query q;
    q.state = punctual::job_state::running;
    q.limit = 1000;
    const auto jobs = co_await sched().async_list_jobs(std::move(q), asio::use_awaitable);
    const auto now = punctual::system_clock{}.now();
    json out = json::array();
    for (const auto& j : jobs) {
      json r = run_json(j);
      r["elapsed_seconds"] = j.started ? json(seconds(now - *j.started)) : json(nullptr);
      out.push_back(std::move(r));
    }
    co_return reply(200, out);
  }

  http_response event_stream() {
    if (hub_.full()) return error(503, "too many event-stream listeners");
    http_response r{200, "text/event-stream", "", {{"Cache-Control", "no-store"}}};
    r.stream = [this](asio::ip::tcp::socket& socket) { return hub_.serve(socket); };
    return r;
  }

  /// Why the POST `q` may not act, or nullopt when it may: read-only daemon (403), a
  /// cross-site request (403: an Origin other than this server's, or a browser's
  /// Sec-Fetch-Site other than same-origin), a missing or wrong token (401).
  std::optional<http_response> refusal(const http_request& q) const {
    if (c_.admin_token.empty())
      return error(403, "read-only: this daemon was started without --http-admin, so actions are disabled");
    const auto origin = q.header("origin");
    if (!origin.empty() && origin != "http://" + q.header("host"))
      return error(403, "cross-site request refused: Origin " + origin + " is not this server");
    const auto site = q.header("sec-fetch-site");
    if (!site.empty() && site != "same-origin" && site != "none")
      return error(403, "cross-site request refused (Sec-Fetch-Site: " + site + ")");
    const auto given = q.header("authorization");
    const std::string wanted = "Bearer " + c_.admin_token;
    unsigned diff = given.size() == wanted.size() ? 0u : 1u;  // compared in constant time
    for (std::size_t i = 0; i < given.size() && i < wanted.size(); ++i)
      diff |= static_cast<unsigned>(given[i] ^ wanted[i]);
    if (diff != 0) return error(401, "missing or wrong token (send Authorization: Bearer TOKEN)");
    return std::nullopt;
  }

  asio::awaitable<http_response> action(const http_request& q, const std::vector<std::string>& parts) {
    const bool on_schedule = parts.size() == 3 && parts[0] == "schedules" &&
                             (parts[2] == "pause" || parts[2] == "resume" || parts[2] == "trigger");
    const bool on_run = parts.size() == 3 && parts[0] == "runs" && parts[2] == "cancel";
    if (!on_schedule && !on_run) co_return error(404, "no such action: POST " + q.path);
    if (auto refused = refusal(q)) co_return std::move(*refused);
    const auto& id = parts[1];
    if (on_run) {
      if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos)
        co_return error(400, "run id \"" + id + "\": expected a number");
      const bool cancelled = co_await sched().async_cancel_job(std::stoll(id), asio::use_awaitable);
      if (!cancelled) co_return error(404, "run " + id + " is not running on this daemon");
      co_return reply(200, {{"cancelled", std::stoll(id)}});
    }
    if (parts[2] == "pause") {
      co_await sched().async_pause_schedule(id, asio::use_awaitable);
      co_return reply(200, {{"paused", id}});
    }
    if (parts[2] == "resume") {
      co_await sched().async_resume_schedule(id, punctual::resume_from::missed, asio::use_awaitable);
      co_return reply(200, {{"resumed", id}});
    }
    const auto job = co_await sched().async_run_now(id, asio::use_awaitable);
    co_return reply(200, {{"triggered", id}, {"job", job}});
  }

  dashboard_context c_;
  event_stream_hub hub_;
};

}  // namespace punctual_cron
