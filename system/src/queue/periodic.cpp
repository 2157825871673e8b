#include "qsim/queue/periodic.h"

#include <charconv>
#include <ctime>
#include <stdexcept>

namespace qsim::queue {

namespace {

[[noreturn]] void bad(std::string_view spec, const std::string& why) {
  throw std::invalid_argument("schedule '" + std::string(spec) + "': " + why);
}

int parse_int(std::string_view s, std::string_view spec, std::string_view field) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    bad(spec, std::string(field) + " field: '" + std::string(s) + "' is not a number");
  return v;
}

// Fills `bits` (indices lo..hi) from one cron field. Returns whether it was restricted (not "*").
template <std::size_t N>
bool parse_field(std::string_view text, int lo, int hi, std::bitset<N>& bits, std::string_view spec, std::string_view name) {
  bool restricted = text != "*";
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      step = parse_int(part.substr(slash + 1), spec, name);
      if (step < 1) bad(spec, std::string(name) + " field: step must be >= 1");
      part = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (part != "*") {
      if (auto dash = part.find('-'); dash != std::string_view::npos) {
        a = parse_int(part.substr(0, dash), spec, name);
        b = parse_int(part.substr(dash + 1), spec, name);
      } else {
        a = b = parse_int(part, spec, name);
        if (step > 1) b = hi;  // "N/S" means from N to the end in steps of S
      }
    }
    if (a < lo || b > hi || a > b)
      bad(spec, std::string(name) + " field: " + std::to_string(a) + "-" + std::to_string(b) + " is outside " +
                    std::to_string(lo) + "-" + std::to_string(hi));
    for (int v = a; v <= b; v += step) bits.set(static_cast<std::size_t>(v));
  }
  return restricted;
}

std::int64_t parse_duration_ms(std::string_view s, std::string_view spec) {
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) != 0)) ++i;
  if (i == 0) bad(spec, "@every needs a duration like 250ms, 10s, 5m or 1h");
  std::int64_t n = parse_int(s.substr(0, i), spec, "@every");
  auto unit = s.substr(i);
  std::int64_t mult = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
  if (mult == 0) bad(spec, "@every unit must be ms, s, m or h");
  if (n <= 0) bad(spec, "@every period must be > 0");
  return n * mult;
}

}  // namespace

Schedule Schedule::parse(std::string_view spec) {
  Schedule s;
  s.spec_ = std::string(spec);
  if (spec.rfind("@every ", 0) == 0) {
    s.every_ms_ = parse_duration_ms(spec.substr(7), spec);
    return s;
  }
  std::vector<std::string_view> fields;
  std::string_view rest = spec;
  while (!rest.empty()) {
    auto sp = rest.find(' ');
    if (sp != 0) fields.push_back(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  }
  if (fields.size() != 5) bad(spec, "expected 5 fields (minute hour day month weekday) or '@every <duration>'");
  parse_field(fields[0], 0, 59, s.minutes_, spec, "minute");
  parse_field(fields[1], 0, 23, s.hours_, spec, "hour");
  s.dom_restricted_ = parse_field(fields[2], 1, 31, s.days_, spec, "day-of-month");
  parse_field(fields[3], 1, 12, s.months_, spec, "month");
  std::bitset<8> dow;
  s.dow_restricted_ = parse_field(fields[4], 0, 7, dow, spec, "day-of-week");
  for (int d = 0; d < 7; ++d) s.weekdays_[static_cast<std::size_t>(d)] = dow[static_cast<std::size_t>(d)];
  if (dow[7]) s.weekdays_.set(0);
  return s;
}

bool Schedule::matches_day(int mday, int month, int wday) const {
  if (!months_[static_cast<std::size_t>(month)]) return false;
  bool dom = days_[static_cast<std::size_t>(mday)];
  bool dow = weekdays_[static_cast<std::size_t>(wday)];
  if (dom_restricted_ && dow_restricted_) return dom || dow;
  return dom && dow;
}

std::int64_t Schedule::next_after(std::int64_t after_ms) const {
  if (every_ms_ > 0) return (after_ms / every_ms_ + 1) * every_ms_;
  // Walk minute by minute from the next whole minute; at most ~4 years (Feb 29 schedules).
  std::int64_t minute = after_ms / 60'000 + 1;
  for (std::int64_t i = 0; i < 4 * 366 * 1440; ++i, ++minute) {
    std::time_t t = static_cast<std::time_t>(minute * 60);
    std::tm tm{};
    gmtime_r(&t, &tm);
    if (!matches_day(tm.tm_mday, tm.tm_mon + 1, tm.tm_wday)) {
      minute += (1440 - (tm.tm_hour * 60 + tm.tm_min)) - 1;  // skip to the next day
      continue;
    }
    if (hours_[static_cast<std::size_t>(tm.tm_hour)] && minutes_[static_cast<std::size_t>(tm.tm_min)]) return minute * 60'000;
  }
  throw std::invalid_argument("schedule '" + spec_ + "' never fires");
}

PeriodicScheduler::PeriodicScheduler(Queue& queue, std::vector<PeriodicJob> jobs, Clock& clock)
    : queue_(&queue), clock_(&clock) {
  for (auto& j : jobs) entries_.push_back({std::move(j), std::nullopt});
}

std::int64_t PeriodicScheduler::estimated_server_now() const {
  if (server_now_ms_ == 0) return 0;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now() - seen_at_);
  return server_now_ms_ + elapsed.count();
}

Expected<int> PeriodicScheduler::tick() {
  int fired = 0;
  if (server_now_ms_ == 0) {
    redis::Result t = queue_->connection().command({"TIME"});
    if (!t) return Expected<int>::failure(t);
    server_now_ms_ = t.reply.elements.at(0).as_integer().value_or(0) * 1000 +
                     t.reply.elements.at(1).as_integer().value_or(0) / 1000;
    seen_at_ = clock_->now();
  }
  for (auto& e : entries_) {
    std::int64_t now = estimated_server_now();
    // Only ask Redis when the cached fire time is (nearly) due; Redis decides for real.
    if (e.next && *e.next > now + 5) continue;
    std::int64_t from = e.next ? std::max(*e.next, now) : now;
    std::string expected = e.next ? std::to_string(*e.next) : std::string("");
    auto r = queue_->periodic_step(e.job.name, expected, e.job.schedule.next_after(from), e.job.payload,
                                   e.job.priority, e.job.max_attempts);
    if (!r) return {r.status, r.error, fired};
    const auto& v = r.value;
    std::int64_t server_now = std::stoll(v.at(2));
    server_now_ms_ = server_now;
    seen_at_ = clock_->now();
    if (v.at(0) == "1") {
      ++fired;
      e.next = e.job.schedule.next_after(from);
    } else {
      e.next = std::stoll(v.at(1));  // initialised, stale or not yet due: adopt Redis' value
    }
  }
  return {redis::Status::ok, {}, fired};
}

}  // namespace qsim::queue
