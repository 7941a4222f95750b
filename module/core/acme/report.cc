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

ordered_json certificate(const CertRecord& rec, int64_t now) {
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
          {"days_left", days_left(not_after, now)},
          {"source", source_name(rec.source)},
          {"pairs", pairs}};
}

}  // namespace

ordered_json status_report(const std::string& data_dir, int64_t now) {
  ordered_json domains = ordered_json::array();
  ordered_json snapshot;
  {
    SnapshotStore snap(data_dir, false);
    StateStore state(data_dir, false);
    snap.read([&](const SnapshotTxn& stx) {
      snapshot = {{"generation", stx.generation()}, {"domains", stx.count()}};
      state.read([&](const StateTxn& tx) {
        stx.for_each([&](const Domain& d) {
          std::optional<CertRecord> cert = tx.get_cert(d.host);
          std::optional<std::string> raw = tx.get(StateTable::status, d.host);
          AcmeStatus st;
          ordered_json cert_json = cert ? certificate(*cert, now) : ordered_json();
          if (raw) {
            st = AcmeStatus::from_json(*raw);
          } else if (!cert_json.is_null() && cert_json["days_left"].get<int64_t>() >= 0) {
            st.state = Lifecycle::active;
            st.detail = "certificate not yet looked at by the ACME engine";
          } else {
            st.detail = "not yet looked at by the ACME engine";
          }
          ordered_json j = {{"host", d.host},
                            {"status", status_name(d.status)},
                            {"state", lifecycle_name(st.state)},
                            {"detail", st.detail},
                            {"certificate", cert_json},
                            {"renew_at", time_or_null(st.renew_at)},
                            {"next_attempt", time_or_null(st.next_attempt)},
                            {"failures", st.failures},
                            {"problem", st.problem.empty() ? ordered_json()
                                                           : ordered_json(st.problem.to_json())}};
          domains.push_back(std::move(j));
        });
      });
    });
  }
  ordered_json engine = {{"running", false}};
  std::string holder;
  auto lock = EngineLock::try_acquire(data_dir, "portalctl status", &holder);
  if (!lock) engine = {{"running", true}, {"where", holder}};
  return {{"snapshot", snapshot}, {"engine", engine}, {"domains", domains}};
}

}  // namespace portal::acme
