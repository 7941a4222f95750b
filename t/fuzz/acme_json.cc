// The ACME documents the engine reads without the client around them: problem documents
// (Problem::from_json), the status record (AcmeStatus::from_json), Retry-After values
// (parse_retry_after) and Link headers (link_targets). Input: responses as in acme_response.h;
// each body is read as a problem document and as a status record. Lenient parsers: never a
// crash, never an exception, and what they read writes back and reads again unchanged.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "acme/http.h"
#include "acme/problem.h"
#include "acme/status.h"
#include "acme_response.h"
#include "fuzz.h"

using namespace portal::acme;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1780000000;

bool same(const Problem& a, const Problem& b) {
  if (a.type != b.type || a.detail != b.detail || a.status != b.status ||
      a.identifier != b.identifier || a.subproblems.size() != b.subproblems.size())
    return false;
  for (size_t i = 0; i < a.subproblems.size(); i++)
    if (!same(a.subproblems[i], b.subproblems[i])) return false;
  return true;
}

void problem(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  Problem p = Problem::from_json(j);
  if (!j.is_object()) FUZZ_CHECK(p.empty() && p.subproblems.empty() && !p.status);
  std::string summary = p.summary();
  if (!p.type.empty()) FUZZ_CHECK(!p.short_type().empty() || p.type == "urn:ietf:params:acme:error:");
  FUZZ_CHECK(same(Problem::from_json(json::parse(p.to_json().dump())), p));
}

void status(const std::string& body) {
  AcmeStatus s = AcmeStatus::from_json(body);
  AcmeStatus t = AcmeStatus::from_json(s.to_json());
  FUZZ_CHECK(t.state == s.state && t.detail == s.detail && t.last_attempt == s.last_attempt &&
             t.next_attempt == s.next_attempt && t.renew_at == s.renew_at &&
             t.failures == s.failures && t.dns_checks == s.dns_checks &&
             t.dns_checked == s.dns_checked && t.order_url == s.order_url);
  if (!s.problem.empty()) FUZZ_CHECK(same(t.problem, s.problem));
  if (s.ari_end) {
    FUZZ_CHECK(t.ari_start == s.ari_start && t.ari_end == s.ari_end &&
               t.ari_next_check == s.ari_next_check);
  }
}

void headers(const HttpResponse& res) {
  for (const std::string& value : res.headers_named("retry-after")) {
    int64_t at = parse_retry_after(value, kNow);
    if (!value.empty() && value.size() <= 9 &&
        value.find_first_not_of("0123456789") == std::string::npos)
      FUZZ_CHECK(at == kNow + std::stoll(value));
  }
  std::string all;
  for (const std::string& value : res.headers_named("link")) all += value + "\n";
  for (const char* rel : {"alternate", "up", "index"}) {
    for (const std::string& target : link_targets(res, rel)) {
      FUZZ_CHECK(all.find("<" + target + ">") != std::string::npos);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const HttpResponse& res : parse_responses(fuzz_input(data, size))) {
    problem(res.body);
    status(res.body);
    headers(res);
  }
  return 0;
}
