#include "problem.h"

#include <cctype>
#include <ctime>

namespace portal::acme {

namespace {

constexpr const char kAcmeErrorPrefix[] = "urn:ietf:params:acme:error:";

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string Problem::short_type() const {
  if (type.rfind(kAcmeErrorPrefix, 0) == 0) return type.substr(sizeof(kAcmeErrorPrefix) - 1);
  return type;
}

bool Problem::is(const char* acme_type) const { return short_type() == acme_type; }

std::string Problem::summary() const {
  std::string s = short_type();
  if (!detail.empty()) s += (s.empty() ? "" : ": ") + detail;
  if (!subproblems.empty()) {
    s += " (";
    for (size_t i = 0; i < subproblems.size(); i++) {
      if (i) s += "; ";
      const Problem& p = subproblems[i];
      if (!p.identifier.empty()) s += p.identifier + ": ";
      s += p.short_type();
      if (!p.detail.empty()) s += ": " + p.detail;
    }
    s += ")";
  }
  return s;
}

nlohmann::json Problem::to_json() const {
  nlohmann::json j = {{"type", type}, {"detail", detail}};
  if (status) j["status"] = status;
  if (!identifier.empty()) j["identifier"] = {{"type", "dns"}, {"value", identifier}};
  if (!subproblems.empty()) {
    j["subproblems"] = nlohmann::json::array();
    for (const Problem& p : subproblems) j["subproblems"].push_back(p.to_json());
  }
  return j;
}

Problem Problem::from_json_flat(const nlohmann::json& j) {
  Problem p;
  if (!j.is_object()) return p;
  p.type = str(j, "type");
  p.detail = str(j, "detail");
  auto st = j.find("status");
  if (st != j.end() && st->is_number_integer()) p.status = st->get<long>();
  auto id = j.find("identifier");
  if (id != j.end() && id->is_object()) p.identifier = str(*id, "value");
  return p;
}

Problem Problem::from_json(const nlohmann::json& j) {
  Problem p;
  if (!j.is_object()) return p;
  p.type = str(j, "type");
  p.detail = str(j, "detail");
  auto st = j.find("status");
  if (st != j.end() && st->is_number_integer()) p.status = st->get<long>();
  auto id = j.find("identifier");
  if (id != j.end() && id->is_object()) p.identifier = str(*id, "value");
  // Subproblems are one level deep (RFC 8555 §6.7.1): deeper ones are ignored, so that a
  // hostile document cannot recurse without end.
  auto subs = j.find("subproblems");
  if (subs != j.end() && subs->is_array()) {
    for (const auto& s : *subs) {
      Problem sub = from_json_flat(s);
      p.subproblems.push_back(std::move(sub));
    }
  }
  return p;
}

const char* kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::invalid: return "invalid";
    case ErrorKind::rate_limited: return "rate limited";
    case ErrorKind::transient: return "transient";
    case ErrorKind::already_replaced: return "already replaced";
    case ErrorKind::cancelled: return "cancelled";
  }
  return "?";
}

int64_t parse_retry_after(const std::string& value, int64_t now) {
  if (value.empty()) return 0;
  bool digits = true;
  for (char c : value) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) {
    if (value.size() > 9) return 0;
    return now + std::stoll(value);
  }
  // IMF-fixdate, and the two obsolete forms a recipient must still accept (RFC 9110 §5.6.7)
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                             "%a %b %e %H:%M:%S %Y"}) {
    struct tm tm = {};
    const char* end = strptime(value.c_str(), format, &tm);
    if (end && !*end) return static_cast<int64_t>(timegm(&tm));
  }
  return 0;
}

}  // namespace portal::acme
