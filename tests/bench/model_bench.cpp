// Google benchmarks of the discrete-event model (no Redis):
//   BM_EngineHold     the event engine alone: the classic "hold" pattern, N pending events,
//                     each step pops the earliest and schedules one later; events per second
//   BM_MMcMillion     one M/M/c model run of 1,000,000 orders (5 workers, utilisation 0.8)
//   BM_Sweep20        a 20-point sweep (workers 5..24) of 1,000,000 orders each, as `sim plan` runs
//   build/bin/model_bench [--benchmark_repetitions=3]
#include "qsim/sim/model.h"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <random>

using namespace qsim::sim;

namespace {

void BM_EngineHold(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  std::mt19937_64 rng(1);
  std::exponential_distribution<double> delay(1.0);
  std::vector<double> deltas(1 << 16);
  for (auto& d : deltas) d = delay(rng);
  des::Engine e;
  e.reserve(pending + 1);
  for (std::size_t i = 0; i < pending; ++i) e.at(deltas[i % deltas.size()], 0, static_cast<std::uint32_t>(i));
  std::size_t k = 0;
  des::Event ev{};
  for (auto _ : state) {
    e.next(ev);
    e.at(ev.t + deltas[k++ & (deltas.size() - 1)], ev.kind, ev.a);
  }
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EngineHold)->Arg(16)->Arg(1024)->Arg(65536);

Scenario mmc(int workers, double rate_per_h, int orders) {
  auto j = nlohmann::json::parse(R"({"name": "mmc", "seed": 7, "speedup": 1,
    "orders": {"count": 1, "arrival": {"kind": "poisson", "rate_per_h": 1}},
    "job": {"download": {"dist": "exponential", "mean": "60m"}, "upload": {"dist": "constant", "value": "0s"}},
    "architectures": {"queue": {"workers": 1}}})");
  j["orders"]["count"] = orders;
  j["orders"]["arrival"]["rate_per_h"] = rate_per_h;
  j["architectures"]["queue"]["workers"] = workers;
  return parse_scenario(j, "bench.json");
}

void BM_MMcMillion(benchmark::State& state) {
  auto s = mmc(5, 4, 1'000'000);
  ModelOptions o;
  o.keep_orders = false;
  std::uint64_t events = 0;
  for (auto _ : state) events += run_model(s, o).events;
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MMcMillion)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Sweep20(benchmark::State& state) {
  ModelOptions o;
  o.keep_orders = false;
  for (auto _ : state)
    for (int w = 5; w < 25; ++w) benchmark::DoNotOptimize(run_model(mmc(w, 4, 1'000'000), o).events);
}
BENCHMARK(BM_Sweep20)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();  // as `sim` does
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
