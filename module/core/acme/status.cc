#include "status.h"

#include <nlohmann/json.hpp>

namespace portal::acme {

using nlohmann::json;

namespace {

constexpr const char* kNames[] = {"pending_dns", "validating", "active",
                                  "renewing",    "failed",     "moved"};

template <typename T>
void take(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if constexpr (std::is_same_v<T, std::string>) {
    if (it->is_string()) *out = it->get<std::string>();
  } else {
    if (it->is_number_integer() || it->is_number_unsigned()) *out = it->get<T>();
  }
}

}  // namespace

const char* lifecycle_name(Lifecycle s) { return kNames[static_cast<int>(s)]; }

bool parse_lifecycle(std::string_view name, Lifecycle* out) {
  for (int i = 0; i < 6; i++) {
    if (name == kNames[i]) {
      *out = static_cast<Lifecycle>(i);
      return true;
    }
  }
  return false;
}

std::string AcmeStatus::to_json() const {
  json j = {{"state", lifecycle_name(state)},
            {"detail", detail},
            {"last_attempt", last_attempt},
            {"next_attempt", next_attempt},
            {"renew_at", renew_at},
            {"failures", failures},
            {"dns_checks", dns_checks},
            {"dns_checked", dns_checked},
            {"order", order_url}};
  if (!problem.empty()) j["problem"] = problem.to_json();
  if (ari_end || ari_next_check) {
    j["ari"] = {{"start", ari_start}, {"end", ari_end}, {"next_check", ari_next_check}};
  }
  return j.dump();
}

AcmeStatus AcmeStatus::from_json(std::string_view text) {
  AcmeStatus s;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return s;
  std::string state;
  take(j, "state", &state);
  parse_lifecycle(state, &s.state);
  take(j, "detail", &s.detail);
  take(j, "last_attempt", &s.last_attempt);
  take(j, "next_attempt", &s.next_attempt);
  take(j, "renew_at", &s.renew_at);
  take(j, "failures", &s.failures);
  take(j, "dns_checks", &s.dns_checks);
  take(j, "dns_checked", &s.dns_checked);
  take(j, "order", &s.order_url);
  auto p = j.find("problem");
  if (p != j.end()) s.problem = Problem::from_json(*p);
  auto ari = j.find("ari");
  if (ari != j.end() && ari->is_object()) {
    take(*ari, "start", &s.ari_start);
    take(*ari, "end", &s.ari_end);
    take(*ari, "next_check", &s.ari_next_check);
  }
  return s;
}

}  // namespace portal::acme
