// portalctl status: where every portal domain stands (lifecycle, certificate, last problem,
// next attempt), the engine and the snapshot; a table, or the JSON of portal_status.
#include <CLI/CLI.hpp>

#include <ctime>

#include "acme/report.h"
#include "commands.h"
#include "output.h"
#include "store/snapshot.h"
#include "store/state.h"

namespace portalctl {

namespace {

std::string cell(const nlohmann::ordered_json& j, size_t width) {
  std::string s = j.is_string() ? j.get<std::string>() : j.is_null() ? "-" : j.dump();
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s + " ";
}

void status(const Globals& g) {
  portal::SnapshotReader snapshot(g.data_dir);
  portal::StateReader state(g.data_dir);
  nlohmann::ordered_json r =
      portal::acme::status_report(snapshot, state, g.data_dir, std::time(nullptr));
  if (g.json) {
    out(r.dump(2));
    out("\n");
    return;
  }
  const auto& e = r["engine"];
  out("engine: " + (e["running"].get<bool>() ? "running, " + e["where"].get<std::string>()
                                               : std::string("not running")) + "\n");
  if (!e["last_run"].is_null()) out("engine last run: " + e["last_run"].get<std::string>() + "\n");
  const auto& o = r["orders"];
  out("orders: " + o["valid"].dump() + " valid, " + o["invalid"].dump() + " invalid, " +
      o["error"].dump() + " error\n");
  out("snapshot: generation " + r["snapshot"]["generation"].dump() + ", " +
      r["snapshot"]["domains"].dump() + " portal domains\n\n");
  out(cell("host", 32) + cell("state", 12) + cell("not_after", 21) + cell("days", 5) +
      cell("source", 9) + cell("next_attempt", 21) + "detail\n");
  for (const auto& d : r["domains"]) {
    const auto& c = d["certificate"];
    std::string detail = d["detail"].get<std::string>();
    if (d["status"] == "suspended") detail = "(suspended) " + detail;
    out(cell(d["host"], 32) + cell(d["state"], 12) + cell(c.is_null() ? c : c["not_after"], 21) +
        cell(c.is_null() ? c : c["days_left"], 5) + cell(c.is_null() ? c : c["source"], 9) +
        cell(d["next_attempt"], 21) + detail + "\n");
  }
}

}  // namespace

void add_status_command(CLI::App& app, const Globals& g, Action& run) {
  CLI::App* cmd = app.add_subcommand(
      "status", "where each portal domain stands: lifecycle, certificate, problem, next attempt");
  cmd->callback([&g, &run] { run = [&g] { status(g); }; });
}

}  // namespace portalctl
