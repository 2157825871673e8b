#include "qsim/sim/report.h"

#include "document.h"
#include "internal.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>


namespace qsim::sim {

using namespace report_detail;

std::string escape_html(const std::string& text) { return html_escape(text); }

namespace {

const char* kColors[] = {"#d9534f", "#0275d8", "#5cb85c", "#f0ad4e"};

std::string svg_timeline(const std::string& arch, const json& orders, std::size_t limit) {
  struct Bar {
    double paid, picked, end;
    std::string status;
  };
  std::vector<Bar> bars;
  double tmax = 0;
  for (const auto& o : orders) {
    const auto& st = o["stages_s"];
    if (!st.contains("paid")) continue;
    Bar b{st["paid"], st.value("processing", st["paid"].get<double>()), 0, o["status"]};
    b.end = st.contains(b.status) ? st[b.status].get<double>() : b.picked;
    tmax = std::max(tmax, b.end);
    bars.push_back(b);
  }
  // In the order work started, so that the chart reads as the schedule it was.
  std::sort(bars.begin(), bars.end(), [](const Bar& a, const Bar& b) { return std::tie(a.picked, a.paid) < std::tie(b.picked, b.paid); });
  if (bars.size() > limit) bars.resize(limit);
  tmax = 0;  // the scale of the orders shown, not of the whole run
  for (const auto& b : bars) tmax = std::max(tmax, b.end);
  if (tmax <= 0) tmax = 1;
  const double W = 900, L = 60, R = 20, row = bars.size() > 60 ? 3 : 6, H = 64 + row * static_cast<double>(bars.size());
  auto px = [&](double x) { return L + x / tmax * (W - L - R); };
  std::ostringstream o;
  o << fmt::format(R"~(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}">)~", W, H, W, H);
  o << fmt::format(R"~(<text x="{}" y="18" font-size="14" font-weight="bold">{}: per-order timeline, the first {} orders to start work</text>)~",
                   L, html_escape(arch), bars.size());
  o << fmt::format(R"~(<text x="{}" y="34" font-size="11">light: waiting from payment to pickup; dark: in work (red: not completed)</text>)~", L);
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    double y = 44 + row * static_cast<double>(i);
    o << fmt::format(R"~(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="#9ecae1"/>)~", px(b.paid), y,
                     std::max(0.5, px(b.picked) - px(b.paid)), row - 1);
    o << fmt::format(R"~(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"/>)~", px(b.picked), y,
                     std::max(0.5, px(b.end) - px(b.picked)), row - 1,
                     b.status == "completed" ? "#08519c" : "#d9534f");
  }
  o << fmt::format(R"~(<text x="{}" y="{}" font-size="10">0</text><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)~",
                   L, H - 6, W - R, H - 6, minutes(tmax));
  o << "</svg>";
  return o.str();
}

}  // namespace

namespace {

struct TimeAxis {
  double minutes;     // one unit of the axis, in minutes
  const char* label;
};

std::vector<double> nice_ticks(double max) {
  if (!(max > 0)) max = 1;
  // the smallest step of 1, 2, 2.5 or 5 times a power of ten giving at most 6 intervals
  const double raw = max / 6, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double f : {1.0, 2.0, 2.5, 5.0})
    if (f * mag >= raw) {
      step = f * mag;
      break;
    }
  std::vector<double> ticks;
  for (int k = 0; k * step < max + step * 0.999; ++k) ticks.push_back(k * step);
  return ticks;
}

TimeAxis time_axis_for_minutes(double max_minutes) {
  if (max_minutes > 3 * 24 * 60) return {24 * 60, "simulated days"};
  if (max_minutes > 600) return {60, "simulated hours"};
  return {1, "simulated minutes"};
}

}  // namespace

std::string svg_chart(const std::string& title, const std::vector<ChartSeries>& series, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<double>& marks, std::optional<double> hline) {
  const double W = 900, H = 320, L = 60, R = 20, T = 30, B = 45;
  double xdata = 0, ydata = hline ? *hline * 1.2 : 0;
  for (const auto& s : series) {
    for (double v : s.x) xdata = std::max(xdata, v);
    for (double v : s.y)
      if (std::isfinite(v)) ydata = std::max(ydata, v);
  }
  // axes end on a round tick, and every tick is a round number
  const auto xticks = nice_ticks(xdata), yticks = nice_ticks(ydata);
  const double xmax = xticks.back(), ymax = yticks.back();
  auto px = [&](double x) { return L + x / xmax * (W - L - R); };
  auto py = [&](double y) { return H - B - y / ymax * (H - T - B); };
  std::ostringstream o;
  o << fmt::format(R"~(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}">)~", W, H, W, H);
  o << fmt::format(R"~(<text x="{}" y="18" font-size="14" font-weight="bold">{}</text>)~", L, html_escape(title));
  o << fmt::format(R"~(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#333"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#333"/>)~",
                   L, H - B, W - R, T);
  for (double xv : xticks)
    o << fmt::format(R"~(<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>)~", px(xv), H - B + 14,
                     fmt::format("{:g}", xv));
  for (double yv : yticks) {
    o << fmt::format(R"~(<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)~", L - 4, py(yv) + 3,
                     fmt::format("{:g}", yv));
    o << fmt::format(R"~(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#eee"/>)~", L, py(yv), W - R, py(yv));
  }
  o << fmt::format(R"~(<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>)~", (L + W - R) / 2, H - 8,
                   html_escape(xlabel));
  o << fmt::format(R"~(<text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>)~",
                   (T + H - B) / 2, (T + H - B) / 2, html_escape(ylabel));
  for (double m : marks)  // faults, shaded where they fired
    if (m >= 0 && m <= xmax)
      o << fmt::format(R"~(<rect x="{:.1f}" y="{}" width="3" height="{}" fill="#d9534f" opacity="0.25"/>)~", px(m) - 1, T,
                       H - T - B);
  if (hline && *hline >= 0 && *hline <= ymax)
    o << fmt::format(R"~(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#333" stroke-dasharray="6,4"/>)~", L, py(*hline),
                     W - R, py(*hline));
  int legend = 0;
  for (const auto& s : series) {
    // a value that is not a number (not measured) breaks the line
    std::string pts;
    auto flush = [&] {
      if (!pts.empty()) o << fmt::format(R"~(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)~", s.color, pts);
      pts.clear();
    };
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        flush();
        continue;
      }
      if (s.step && i > 0 && std::isfinite(s.y[i - 1])) pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i - 1]));
      pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i]));
    }
    flush();
    o << fmt::format(R"~(<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>)~",
                     W - R - 150, T + legend * 16, s.color, W - R - 135, T + legend * 16 + 9, html_escape(s.name));
    ++legend;
  }
  o << "</svg>";
  return o.str();
}

namespace report_detail {

namespace {

// Redis commands, store queries and worker utilisation over time, the architectures together
// (live runs; a model's report has no load series).
std::string load_charts(const json& rep) {
  double end_min = 0;
  for (const auto& a : rep["architectures"]) {
    const auto& r = rep["results"][a.get<std::string>()];
    if (!r.contains("load")) continue;
    const auto& l = r["load"];
    for (std::size_t i = 0; i < l["t_s"].size(); ++i)
      end_min = std::max(end_min, (l["t_s"][i].get<double>() + l["dt_s"][i].get<double>()) / 60);
  }
  if (!(end_min > 0)) return {};
  const TimeAxis axis = time_axis_for_minutes(end_min);
  struct Metric {
    const char *key, *title, *ylabel;
    double scale;
  };
  std::string out;
  for (const Metric& m : {Metric{"redis_commands_per_s", "Redis commands per simulated second", "commands / s", 1},
                          Metric{"store_queries_per_s", "Store queries per simulated second", "queries / s", 1},
                          Metric{"worker_utilisation", "Worker utilisation", "% of worker time busy", 100}}) {
    std::vector<ChartSeries> series;
    int color = 0;
    for (const auto& a : rep["architectures"]) {
      const std::string arch = a;
      const auto& r = rep["results"][arch];
      if (!r.contains("load")) continue;
      const auto& l = r["load"];
      ChartSeries s{arch, kColors[color++ % 4], {}, {}, true};
      for (std::size_t i = 0; i < l["t_s"].size(); ++i) {
        const auto& v = l[m.key][i];
        s.x.push_back(l["t_s"][i].get<double>() / 60 / axis.minutes);
        s.y.push_back(v.is_null() ? std::nan("") : v.get<double>() * m.scale);
      }
      if (!s.x.empty()) {  // the last window's end
        const std::size_t last = s.x.size() - 1;
        s.x.push_back((l["t_s"][last].get<double>() + l["dt_s"][last].get<double>()) / 60 / axis.minutes);
        s.y.push_back(s.y.back());
      }
      series.push_back(std::move(s));
    }
    out += svg_chart(m.title, series, axis.label, m.ylabel);
  }
  return out;
}

}  // namespace

std::string to_html(const Document& d) { return to_html(d, 0, d.blocks().size()); }

std::string to_html(const Document& d, std::size_t from, std::size_t to) {
  std::ostringstream h;
  for (std::size_t at = from; at < to && at < d.blocks().size(); ++at) {
    const Block& b = d.blocks()[at];
    switch (b.kind) {
      case Block::Kind::heading:
        if (b.level > 1) h << "<h" << b.level << ">" << html_escape(b.text) << "</h" << b.level << ">";
        break;
      case Block::Kind::paragraph:
        if (!b.meta) h << "<p>" << html_escape(b.text) << "</p>";
        break;
      case Block::Kind::bullets:
        h << "<ul>";
        for (const auto& i : b.items) h << "<li>" << html_escape(i) << "</li>";
        h << "</ul>";
        break;
      case Block::Kind::table:
        h << "<table><tr>";
        for (const auto& c : b.header) h << "<th>" << html_escape(c) << "</th>";
        h << "</tr>";
        for (const auto& row : b.rows) {
          h << "<tr>";
          for (std::size_t i = 0; i < row.size(); ++i) {
            const bool num = i < b.numeric.size() && b.numeric[i];
            h << (num ? "<td class=\"num\">" : "<td>") << (row[i].bad ? "<span class=\"no\">" : "")
              << html_escape(row[i].text) << (row[i].bad ? "</span>" : "") << "</td>";
          }
          h << "</tr>";
        }
        h << "</table>";
        break;
    }
  }
  return h.str();
}

}  // namespace report_detail

std::string render_html(const json& rep) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << html_escape(rep["scenario"].get<std::string>()) << " — qsim report</title>"
    << "<style>body{font-family:sans-serif;max-width:1000px;margin:20px auto;color:#222}table{border-collapse:collapse;"
       "margin:10px 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f4f4f4}"
       ".no{color:#c00;font-weight:bold}td.num{text-align:right}.yes{color:#080}svg{display:block;margin:12px 0}</style></head><body>";
  bool passed = rep["passed"];
  h << "<h1>" << html_escape(rep["scenario"].get<std::string>()) << " — <span class=\"" << (passed ? "yes" : "no") << "\">"
    << (passed ? "all gates passed" : "gates failed") << "</span></h1>";
  h << "<p>" << html_escape(fmt::format("Seed {}, {}, {:.1f} s of wall time, {}.", rep["seed"].get<std::uint64_t>(),
                                        speedup_text(rep), rep["wall_s"].get<double>(),
                                        rep["redis"].get<std::string>()))
    << "</p><p>Replay: <code>" << html_escape(rep["replay_command"].get<std::string>()) << "</code></p>";
  // The same document as the Markdown, rendered from its blocks, not from the Markdown text.
  // It shows before it tells: the verdict and the headline comparison, then the charts, then the
  // tables behind them.
  const Document doc = report_document(rep);
  std::size_t split = doc.blocks().size();
  for (std::size_t i = 0; i < doc.blocks().size(); ++i) {
    const Block& b = doc.blocks()[i];
    if (b.kind == Block::Kind::heading && b.level == 2 && b.text != "Polling vs queue") {
      split = i;
      break;
    }
  }
  std::vector<std::string> failed;
  for (const auto& g : rep.value("gates", json::array()))
    if (g.is_object() && g.contains("passed") && !g["passed"].get<bool>())
      failed.push_back(g.value("name", std::string("?")) + " " + g.value("text", std::string()));
  if (!failed.empty()) {
    std::string list;
    for (const auto& f : failed) list += (list.empty() ? "" : ", ") + f;
    h << "<p class=\"no\">Failed gates: " << html_escape(list) << " (the Gates table below has the values).</p>";
  }
  h << to_html(doc, 0, split);

  h << "<h2>Charts</h2>";
  std::vector<ChartSeries> cdf;
  int color = 0;
  double max_wait_min = 0;
  for (const auto& a : rep["architectures"]) {
    const std::string arch = a;
    std::vector<double> waits;
    for (const auto& o : rep["results"][arch]["orders"]) {
      const auto& st = o["stages_s"];
      if (o["status"] == "completed" && st.contains("paid") && st.contains("completed"))
        waits.push_back((st["completed"].get<double>() - st["paid"].get<double>()) / 60);
    }
    std::sort(waits.begin(), waits.end());
    max_wait_min = std::max(max_wait_min, waits.empty() ? 0.0 : waits.back());
    ChartSeries s{arch, kColors[color++ % 4], {}, {}, true};
    for (std::size_t i = 0; i < waits.size(); ++i) {
      s.x.push_back(waits[i]);
      s.y.push_back(static_cast<double>(i + 1) / static_cast<double>(waits.size()));
    }
    cdf.push_back(s);
  }
  const TimeAxis cdf_axis = time_axis_for_minutes(max_wait_min);
  for (auto& series : cdf)
    for (double& x : series.x) x /= cdf_axis.minutes;
  h << svg_chart("Latency CDF: payment to completion", cdf, cdf_axis.label, "fraction of orders");
  for (const auto& a : rep["architectures"]) {
    const std::string arch = a;
    const auto& t = rep["results"][arch]["timeline"];
    double end_min = 0;
    for (double v : t["t_s"]) end_min = std::max(end_min, v / 60);
    const TimeAxis axis = time_axis_for_minutes(end_min);
    std::vector<double> x;
    for (double v : t["t_s"]) x.push_back(v / 60 / axis.minutes);
    ChartSeries depth{"queue depth", kColors[0], x, t["depth"].get<std::vector<double>>(), true};
    ChartSeries busy{"busy workers", kColors[1], x, t["busy"].get<std::vector<double>>(), true};
    std::vector<double> marks;
    for (const auto& f : rep["results"][arch]["faults"]) {
      const std::string kind = f["kind"];
      if (kind.size() < 8 || kind.compare(kind.size() - 8, 8, "_webhook") != 0)  // per-order extras: too many to shade
        marks.push_back(f["t_s"].get<double>() / 60 / axis.minutes);
    }
    h << svg_chart(arch + ": queue depth and busy workers over time" + (marks.empty() ? "" : " (faults shaded)"),
                   {depth, busy}, axis.label, "count", marks);
    h << svg_timeline(arch, rep["results"][arch]["orders"], 120);
  }
  h << load_charts(rep);
  h << to_html(doc, split, doc.blocks().size());
  h << "</body></html>\n";
  return h.str();
}

}  // namespace qsim::sim
