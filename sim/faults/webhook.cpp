// The webhook family: duplicate_webhook, replay_webhook, forge_webhook, late_webhook. The
// payment provider sends extra requests for an order's payment besides its genuine delivery:
// copies, the genuine request replayed after the receivers' window, forgeries (a guessed secret
// or a tampered body) and deliveries with a timestamp outside the window.
#include "family.h"

#include <algorithm>
#include <cmath>

namespace qsim::sim::faults {

namespace {

class Webhook final : public Family {
public:
  std::vector<std::string> kinds() const override {
    return {"duplicate_webhook", "replay_webhook", "forge_webhook", "late_webhook"};
  }

  void read(const std::string& kind, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    WebhookFault p;
    read_probability(r, f);
    read_window(r, f);
    if (kind == "duplicate_webhook") {
      if (auto* c = r.get("copies", false)) {
        const std::string what = "expected [min, max] extra copies, 1 <= min <= max <= 100, got ";
        if (!c->is_array() || c->size() != 2) r.fail(r.at("copies"), what + describe(*c));
        for (std::size_t i = 0; i < 2; ++i)  // a bad bound is named itself, as the schema names it
          if (!(*c)[i].is_number_integer() || (*c)[i].get<long long>() < 1 || (*c)[i].get<long long>() > 100)
            r.fail(r.at("copies") + "[" + std::to_string(i) + "]", "expected an integer in [1, 100], got " + describe((*c)[i]));
        if ((*c)[1].get<int>() < (*c)[0].get<int>()) r.fail(r.at("copies"), what + describe(*c));
        p.copies_min = (*c)[0];
        p.copies_max = (*c)[1];
      }
      p.spread_s = r.duration("spread", false, 0);
    } else if (kind == "replay_webhook") {
      p.after_s = r.duration("after", false, 360);
      if (p.after_s <= 300) r.fail(r.at("after"), "a time past the receivers' 5-minute window (more than 5m)");
    } else if (kind == "forge_webhook") {
      p.how = r.get("how", false) ? r.one_of("how", {"bad_signature", "tampered_body"}) : "bad_signature";
    } else {  // late_webhook
      p.skew_s = r.duration("skew", false, 600);
      if (p.skew_s <= 300) r.fail(r.at("skew"), "a skew past the receivers' 5-minute window (more than 5m)");
      if (r.flag("future").value_or(false)) p.skew_s = -p.skew_s;
    }
    f.params = std::move(p);
  }

  // Two draws for every order and webhook fault, whatever happens, so that one fault's outcome
  // never shifts another's.
  void plan_order(const Fault& f, std::size_t o, double t, Stream& web, FaultPlan& out) const override {
    const auto& p = std::get<WebhookFault>(f.params);
    const double u = web.uniform(), v = web.uniform();
    if (t < f.from_s || t > f.until_s || u >= f.probability) return;
    if (f.kind == "duplicate_webhook") {
      int copies = p.copies_min + static_cast<int>(std::floor(v * (p.copies_max - p.copies_min + 1)));
      copies = std::min(copies, p.copies_max);
      for (int c = 0; c < copies; ++c) out.webhooks.push_back({WebhookExtra::Kind::duplicate, o, t + web.uniform() * p.spread_s, 0});
    } else if (f.kind == "replay_webhook") {
      out.webhooks.push_back({WebhookExtra::Kind::replay, o, t + p.after_s, p.after_s});
    } else if (f.kind == "forge_webhook") {
      out.webhooks.push_back(
          {p.how == "tampered_body" ? WebhookExtra::Kind::forge_body : WebhookExtra::Kind::forge_signature, o, t + v * 60, 0});
    } else {
      out.webhooks.push_back({WebhookExtra::Kind::late, o, t + v * 60, p.skew_s});
    }
  }
  // Live, the injector's webhook thread sends the planned requests; the model has no provider.
};

}  // namespace

const Family& webhook_family() {
  static const Webhook family;
  return family;
}

}  // namespace qsim::sim::faults
