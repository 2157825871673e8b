// Any worker through the protocol of system/frameworks/README.md: the scenario names the
// hand-off server's and the worker's commands (a word starting with ./ or ../ is a path from the
// scenario's folder), the environment to add (secrets belong in the environment or a file, never
// in a command) and the QSIM_CONFIG object to pass. The harness starts one hand-off server and
// `workers` copies of the worker under its supervisor, as for every framework.
#include "framework.h"

#include <filesystem>

namespace qsim::sim {

std::unique_ptr<Architecture> make_external(const Scenario& s) {
  FrameworkSpec spec;
  FrameworkOptions o(s, "external", spec);
  if (!o.section().configured) o.fail("", "the external architecture needs its section: the worker's and hand-off's commands");
  const auto dir = std::filesystem::path(s.file).parent_path();
  auto command = [&](const char* key) {
    const auto* c = o.raw(key);
    if (!c || !c->is_array() || c->empty()) o.fail(key, "expected a non-empty array of strings (a command)");
    std::vector<std::string> out;
    for (const auto& w : *c) {
      if (!w.is_string()) o.fail(key, "expected a non-empty array of strings (a command)");
      std::string word = w.get<std::string>();
      if (word.rfind("./", 0) == 0 || word.rfind("../", 0) == 0) word = (dir / word).lexically_normal().string();
      out.push_back(word);
    }
    std::string text;
    for (const auto& w : out) text += (text.empty() ? "" : " ") + w;
    spec.configuration[key] = text;
    return out;
  };
  spec.worker_command = command("worker");
  spec.handoff_command = command("handoff");
  if (const auto* e = o.raw("env")) {
    for (const auto& [k, v] : e->items()) {
      if (!v.is_string()) o.fail("env." + k, "expected a string");
      spec.env[k] = v.get<std::string>();
      spec.configuration["env." + k] = "(set)";  // the value may be a secret: never in the report
    }
  }
  if (const auto* c = o.raw("config")) {
    spec.config = *c;
    spec.configuration["config"] = c->dump();
  }
  if (const auto* r = o.raw("startup_timeout")) {
    auto d = r->is_string() ? parse_duration_s(r->get<std::string>()) : std::nullopt;
    if (!d) o.fail("startup_timeout", "expected a duration (wall time)");
    spec.startup_timeout_s = *d;
  }
  return make_framework_architecture(std::move(spec));
}

}  // namespace qsim::sim
