// The poison family: poison_job. Malformed jobs (empty, broken JSON, binary, over the payload
// limit) are put on qsim's queue; each must end in the dead-letter queue with its reason and
// never kill the worker that meets it.
#include "family.h"
#include "qsim/queue/queue.h"

#include <fmt/format.h>

namespace qsim::sim::faults {

namespace {

// Payloads no order job can make sense of; each must end in the dead-letter queue with a
// reason, never kill the worker that meets it.
std::string poison_payload(long long n) {
  switch (n % 4) {
    case 0: return "";
    case 1: return "{\"order_id\": 42, \"not\": \"an order id\"";
    case 2: return std::string("\xff\xfe\x00\x01 binary", 10);
    // one byte over the queue's payload limit (each byte of it crosses into Redis and is stored,
    // holding the server up meanwhile: the test is the limit, not the size)
    default: return std::string(queue::QueueConfig{}.max_payload_bytes + 1, 'x');
  }
}

class Poison final : public Family {
public:
  std::vector<std::string> kinds() const override { return {"poison_job"}; }

  void read(const std::string&, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    read_when(r, f);
    f.params = PoisonFault{};
  }

  void plan_timed(const Fault& f, std::size_t index, Stream& rng, double horizon_s, FaultPlan& out) const override {
    plan_at_or_every(f, index, "", rng, horizon_s, out);
  }

  void fire(const Fault&, const Firing& firing, LiveTarget& live) const override { live.enqueue_jobs(firing.count, poison_payload); }

  void fire(const Fault&, const Firing& firing, ModelTarget& model) const override {
    if (model.queue()) model.dead_letter(firing.count);
    model.log("queue", model.queue() ? fmt::format("{} malformed jobs dead-lettered", firing.count) : "n/a: no queue");
  }
};

}  // namespace

const Family& poison_family() {
  static const Poison family;
  return family;
}

}  // namespace qsim::sim::faults
