#include "report.h"

#include <optional>

#include "../store/snapshot.h"
#include "../store/state.h"
#include "../tls/pem.h"
#include "../util/text.h"
#include "lock.h"
#include "status.h"

namespace portal::acme {

using nlohmann::ordered_json;

namespace {

ordered_json time_or_null(int64_t t) { return t ? ordered_json(iso8601(t)) : ordered_json(); }

int64_t days_left(int64_t not_after, int64_t now) {
  return not_after > now ? (not_after - now) / 86400 : -((now - not_after + 86399) / 86400);
}

// Everything but days_left, which depends on the time of the report.
ordered_json certificate(const CertRecord& rec) {
  ordered_json pairs = ordered_json::array();
  int64_t not_after = 0;
  std::string issuer;
  for (const CertPair& p : rec.pairs) {
    CertInfo info;
    if (!describe(p, &info, nullptr)) continue;
    pairs.push_back({{"key_type", key_type_name(p.type)},
                     {"issuer", info.issuer},
                     {"not_after", iso8601(info.not_after)},
                     {"serial", info.serial}});
    if (!not_after || info.not_after < not_after) {
      not_after = info.not_after;  // the one that expires first is what matters
      issuer = info.issuer;
    }
  }
  if (pairs.empty()) return ordered_json();
  return {{"issuer", issuer},
          {"not_after", iso8601(not_after)},
          {"not_after_unix", not_after},
          {"days_left", 0},
          {"source", source_name(rec.source)},
          {"pairs", pairs}};
}

ordered_json parsed(const std::optional<std::string>& text) {
  if (!text) return ordered_json::object();
  ordered_json j = ordered_json::parse(*text, nullptr, false);
  return j.is_object() ? j : ordered_json::object();
}

// Prometheus label values: backslash, quote and newline escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

ordered_json CertDescriptions::get(StateReader& state, const std::string& host, int64_t now) {
  Entry* entry = nullptr;
  state.cert(host, [&](std::string_view value) {
    uint64_t generation = 0;
    if (!peek_generation(value, &generation)) return;
    Entry& e = entries_[host];
    if (e.generation != generation || e.json.is_null()) {
      CertRecord rec;
      e.json = decode(value, &rec) ? certificate(rec) : ordered_json();
      e.generation = generation;
    }
    entry = &e;
  });
  if (!entry) return ordered_json();
  entry->seen = true;
  ordered_json j = entry->json;
  if (!j.is_null()) j["days_left"] = days_left(j["not_after_unix"].get<int64_t>(), now);
  return j;
}

void CertDescriptions::prune() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.seen) {
      it = entries_.erase(it);
    } else {
      it->second.seen = false;
      ++it;
    }
  }
}

ordered_json status_report(SnapshotReader& snapshot, StateReader& state,
                           const std::string& data_dir, int64_t now, CertDescriptions* memo) {
  CertDescriptions local;
  CertDescriptions& certs = memo ? *memo : local;
  ordered_json domains = ordered_json::array();
  ordered_json snap = {{"generation", snapshot.generation()}, {"domains", snapshot.count()}};
  snapshot.for_each([&](std::string_view host_view, const DomainView& d) {
    std::string host(host_view);
    std::optional<std::string> raw = state.get(StateTable::status, host);
    AcmeStatus st;
    ordered_json cert_json = certs.get(state, host, now);
    if (raw) {
      st = AcmeStatus::from_json(*raw);
    } else if (!cert_json.is_null() && cert_json["days_left"].get<int64_t>() >= 0) {
      st.state = Lifecycle::active;
      st.detail = "certificate not yet looked at by the ACME engine";
    } else {
      st.detail = "not yet looked at by the ACME engine";
    }
    domains.push_back({{"host", host},
                       {"status", d.suspended ? "suspended" : "active"},
                       {"state", lifecycle_name(st.state)},
                       {"detail", st.detail},
                       {"certificate", cert_json},
                       {"renew_at", time_or_null(st.renew_at)},
                       {"next_attempt", time_or_null(st.next_attempt)},
                       {"failures", st.failures},
                       {"problem", st.problem.empty() ? ordered_json()
                                                      : ordered_json(st.problem.to_json())}});
  });

  certs.prune();
  std::string holder;
  bool running = EngineLock::held(data_dir, &holder);
  ordered_json beat = parsed(state.get(StateTable::acme, "engine"));
  ordered_json engine = {{"running", running}};
  if (running) engine["where"] = holder;
  int64_t last_run = beat.value("last_run", int64_t(0));
  engine["last_run"] = time_or_null(last_run);
  engine["started"] = time_or_null(beat.value("started", int64_t(0)));
  ordered_json counts = parsed(state.get(StateTable::acme, "orders"));
  ordered_json orders = {{"valid", counts.value("valid", 0)},
                         {"invalid", counts.value("invalid", 0)},
                         {"error", counts.value("error", 0)}};
  return {{"snapshot", snap}, {"engine", engine}, {"orders", orders}, {"domains", domains}};
}

std::string status_prometheus(const ordered_json& r, const RequestCounts* requests) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  metric("portal_domains", "gauge", "Portal domains by lifecycle state.");
  std::map<std::string, int> states;
  for (int i = 0; i < 6; i++) states[lifecycle_name(static_cast<Lifecycle>(i))] = 0;
  for (const auto& d : r["domains"]) states[d["state"].get<std::string>()]++;
  for (const auto& [state, n] : states)
    out += "portal_domains{state=\"" + state + "\"} " + std::to_string(n) + "\n";

  metric("portal_certificate_expiry_seconds", "gauge",
         "When the certificate of a portal domain expires (Unix time, seconds).");
  for (const auto& d : r["domains"]) {
    if (d["certificate"].is_null()) continue;
    out += "portal_certificate_expiry_seconds{host=\"" + label(d["host"].get<std::string>()) +
           "\"} " + std::to_string(d["certificate"]["not_after_unix"].get<int64_t>()) + "\n";
  }

  metric("portal_acme_orders_total", "counter", "ACME orders by result.");
  for (const char* result : {"valid", "invalid", "error"})
    out += std::string("portal_acme_orders_total{result=\"") + result + "\"} " +
           r["orders"][result].dump() + "\n";

  if (requests) {
    metric("portal_requests_total", "counter", "Requests by portal domain lookup result.");
    out += "portal_requests_total{result=\"hit\"} " + std::to_string(requests->hit) + "\n";
    out += "portal_requests_total{result=\"miss\"} " + std::to_string(requests->miss) + "\n";
  }

  metric("portal_acme_engine_running", "gauge", "1 when an ACME engine holds the data directory.");
  out += std::string("portal_acme_engine_running ") + (r["engine"]["running"].get<bool>() ? "1" : "0") + "\n";
  metric("portal_snapshot_generation", "gauge", "Generation of the portal domain snapshot.");
  out += "portal_snapshot_generation " + r["snapshot"]["generation"].dump() + "\n";
  return out;
}

}  // namespace portal::acme
