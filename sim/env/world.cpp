#include "qsim/sim/world.h"

#include "qsim/components/http_service.h"

#include "qsim/sim/hash.h"

#include <memory>
#include <stdexcept>
#include <variant>

#include <unistd.h>

namespace qsim::sim {

namespace {

using detail::fnv1a;
using detail::splitmix64;

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw std::invalid_argument("world config " + path + ": " + why);
}

}  // namespace

double World::draw(std::uint64_t seed, std::string_view api, std::string_view key, int nth) {
  return keyed_draw(seed, api, key, nth);
}

WorldConfig WorldConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) bad("$", "expected an object");
  WorldConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string path = "$." + it.key();
    if (it.key() == "latency_factor") {
      if (!it->is_number() || it->get<double>() <= 0 || it->get<double>() > 1000) bad(path, "expected a number in (0, 1000]");
      c.latency_factor = it->get<double>();
      continue;
    }
    if (it.key() == "seed") {
      if (!it->is_number_integer() || it->get<long long>() < 0) bad(path, "expected a non-negative integer");
      c.seed = it->get<std::uint64_t>();
      continue;
    }
    auto api = c.apis.find(it.key());
    if (api == c.apis.end()) bad(path, "unknown key (expected seed, latency_factor, download, upload, grant or mail)");
    if (!it->is_object()) bad(path, "expected an object");
    for (auto f = it->begin(); f != it->end(); ++f) {
      const std::string fpath = path + "." + f.key();
      if (f.key() == "latency_ms") {
        if (!f->is_number_integer() || f->get<long long>() < 0) bad(fpath, "expected a non-negative integer");
        api->second.latency = std::chrono::milliseconds(f->get<long long>());
      } else if (f.key() == "per_order_us") {
        if (!f->is_object()) bad(fpath, "expected an object of order id -> microseconds");
        for (auto o = f->begin(); o != f->end(); ++o) {
          if (!o->is_number_integer() || o->get<long long>() < 0)
            bad(fpath + "." + o.key(), "expected a non-negative integer (microseconds)");
          api->second.per_order[o.key()] = std::chrono::microseconds(o->get<long long>());
        }
      } else if (f.key() == "hold_us") {
        if (!f->is_number_integer() || f->get<long long>() < 0) bad(fpath, "expected a non-negative integer (microseconds)");
        api->second.hold = std::chrono::microseconds(f->get<long long>());
      } else if (f.key() == "fail_probability") {
        if (!f->is_number() || f->get<double>() < 0.0 || f->get<double>() > 1.0) bad(fpath, "expected a number in [0, 1]");
        api->second.fail_probability = f->get<double>();
      } else if (f.key() == "fail_kind") {
        if (!f->is_string() || (*f != "transient" && *f != "permanent")) bad(fpath, "expected \"transient\" or \"permanent\"");
        api->second.kind = *f == "permanent" ? FailureKind::permanent : FailureKind::transient;
      } else {
        bad(fpath, "unknown key (expected latency_ms, per_order_us, hold_us, fail_probability or fail_kind)");
      }
    }
  }
  return c;
}

nlohmann::json WorldConfig::to_json() const {
  nlohmann::json j{{"seed", seed}, {"latency_factor", latency_factor}};
  for (const auto& [name, b] : apis) {
    j[name] = {{"latency_ms", b.latency.count()},
               {"fail_probability", b.fail_probability},
               {"fail_kind", b.kind == FailureKind::permanent ? "permanent" : "transient"},
               {"hold_us", b.hold.count()}};
    if (!b.per_order.empty()) {
      auto& per = j[name]["per_order_us"] = nlohmann::json::object();
      for (const auto& [order, us] : b.per_order) per[order] = us.count();
    }
  }
  return j;
}

World::World(WorldConfig config, Clock& clock) : clock_(&clock), config_(std::move(config)) {}

void World::configure(WorldConfig config) {
  std::lock_guard lock(mu_);
  config_ = std::move(config);
}

std::variant<World::Answer, World::Pending> World::begin(const std::string& api, std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("order_id") || !j["order_id"].is_string() ||
      !j.contains("key") || !j["key"].is_string() || j["key"].get<std::string>().empty())
    return Answer{400, R"({"result":"malformed_request","detail":"expected {\"order_id\": string, \"key\": string}"})"};
  Pending p;
  p.api = api;
  p.order = j["order_id"].get<std::string>();
  p.key = j["key"].get<std::string>();
  std::lock_guard lock(mu_);
  auto it = config_.apis.find(api);
  if (it == config_.apis.end()) return Answer{404, R"({"result":"unknown_api"})"};
  const ApiBehaviour& b = it->second;
  auto planned = b.per_order.find(p.order);
  auto latency = planned != b.per_order.end() ? planned->second : std::chrono::microseconds(b.latency);
  p.latency = std::chrono::microseconds(static_cast<long long>(static_cast<double>(latency.count()) * config_.latency_factor));
  p.hold = b.hold;
  p.fail_probability = b.fail_probability;
  p.fail_kind = b.kind;
  p.seed = config_.seed;
  p.nth = calls_per_key_[api + "/" + p.key]++;
  return p;
}

World::Answer World::finish(const Pending& p, std::chrono::microseconds& hold) {
  WorldCall rec{p.api, p.order, p.key, 200, false, 0};
  rec.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now().time_since_epoch()).count();
  if (draw(p.seed, p.api, p.key, p.nth) < p.fail_probability)
    rec.status = p.fail_kind == FailureKind::permanent ? 400 : 503;
  hold = std::chrono::microseconds(0);
  {
    std::lock_guard lock(mu_);
    if (rec.status == 200) {
      bool& applied = applied_[p.api + "/" + p.key];
      rec.effect = !applied;
      applied = true;
      hold = p.hold;
    }
    log_.push_back(rec);
  }
  if (rec.status == 503) return {503, R"({"result":"transient_failure"})"};
  if (rec.status == 400) return {400, R"({"result":"permanent_failure"})"};
  return {200, rec.effect ? R"({"result":"ok","effect":true})" : R"({"result":"ok","effect":false})"};
}

World::Answer World::call(const std::string& api, std::string_view body) {
  auto planned = begin(api, body);
  if (auto* now = std::get_if<Answer>(&planned)) return *now;
  const auto& p = std::get<Pending>(planned);
  if (p.latency.count() > 0) clock_->sleep_for(p.latency);
  std::chrono::microseconds hold;
  auto a = finish(p, hold);
  if (hold.count() > 0) clock_->sleep_for(hold);
  return a;
}

std::vector<WorldCall> World::calls(std::size_t since) const {
  std::lock_guard lock(mu_);
  if (since >= log_.size()) return {};
  return std::vector<WorldCall>(log_.begin() + static_cast<std::ptrdiff_t>(since), log_.end());
}

std::map<std::string, int> World::effects(const std::string& api) const {
  std::map<std::string, int> out;
  for (const auto& c : calls())
    if (c.api == api && c.effect) out[c.order]++;
  return out;
}

void World::mount(components::HttpService& http) {
  for (std::string api : {"download", "upload", "grant", "mail"}) {
    if (clock_ != &SystemClock::instance()) {  // a test's clock: sleep it on a handler thread
      http.post("/api/" + api, [this, api](const components::HttpRequest& req) {
        auto a = call(api, req.body);
        return components::HttpResponse{a.status, a.body};
      });
      continue;
    }
    // The latency and the hold are timers on the server's I/O thread: a call costs no thread
    // and no wake-up but that thread's.
    http.post_deferred("/api/" + api, [this, api, &http](const components::HttpRequest& req,
                                                         components::HttpService::Respond respond) {
      auto planned = begin(api, req.body);
      if (auto* now = std::get_if<Answer>(&planned)) return respond({now->status, now->body});
      auto p = std::make_shared<Pending>(std::move(std::get<Pending>(planned)));
      auto done = [this, p, respond, &http] {
        std::chrono::microseconds hold;
        auto a = finish(*p, hold);
        if (hold.count() <= 0) return respond({a.status, a.body});
        http.after(hold, [respond, a] { respond({a.status, a.body}); });
      };
      if (p->latency.count() > 0) return http.after(p->latency, done);
      done();
    });
  }
  http.get("/calls", [this](const components::HttpRequest& req) {
    std::size_t since = 0;
    if (auto p = req.param ? req.param("since") : std::nullopt) since = std::strtoull(std::string(*p).c_str(), nullptr, 10);
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& c : calls(since))
      arr.push_back({{"api", c.api}, {"order", c.order}, {"key", c.key}, {"status", c.status}, {"effect", c.effect},
                     {"at_ms", c.at_ms}});
    return components::HttpResponse{200, arr.dump()};
  });
  http.post("/config", [this](const components::HttpRequest& req) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    try {
      if (j.is_discarded()) throw std::invalid_argument("world config: body is not valid JSON");
      configure(WorldConfig::from_json(j));
      return components::HttpResponse{200, R"({"result":"ok"})"};
    } catch (const std::invalid_argument& e) {
      return components::HttpResponse{400, nlohmann::json{{"result", "bad_config"}, {"detail", e.what()}}.dump()};
    }
  });
  http.get("/health", [](const components::HttpRequest&) { return components::HttpResponse{200, R"({"status":"ok","pid":)" + std::to_string(::getpid()) + "}"}; });
}

}  // namespace qsim::sim
