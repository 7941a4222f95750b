#include "client.h"

#include <ctime>

#include <nlohmann/json.hpp>

namespace portal::acme {

using nlohmann::json;

namespace {

constexpr unsigned kMaxBadNonceRetries = 20;  // Pebble rejects up to half on purpose

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json parse_object(const HttpRequest& req, const HttpResponse& res) {
  json j = json::parse(res.body, nullptr, false);
  if (!j.is_object()) {
    throw AcmeError(ErrorKind::transient,
                    req.method + " " + req.url + ": the response is not a JSON object");
  }
  return j;
}

int64_t wall_clock() { return static_cast<int64_t>(time(nullptr)); }

// A URL the CA hands over in a header (Location, Link): printable ASCII, http(s). Anything else
// would end up in a signed JWS header.
std::string checked_url(const std::string& url, const std::string& what) {
  bool ok = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
  for (unsigned char c : url) ok = ok && c > 0x20 && c < 0x7f;
  if (!ok) throw AcmeError(ErrorKind::transient, what + ": the CA sent a malformed URL");
  return url;
}

// RFC 3339 as ACME writes it: 2026-11-26T20:11:58Z, with optional fraction and offset.
bool parse_rfc3339(const std::string& s, int64_t* out) {
  struct tm tm = {};
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return false;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') p++;
  }
  int64_t offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if ((*p == '+' || *p == '-') && p[1] && p[2] && p[3] == ':' && p[4] && p[5]) {
    int sign = *p == '-' ? -1 : 1;
    offset = sign * (((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60);
    p += 6;
  } else {
    return false;
  }
  if (*p) return false;
  *out = static_cast<int64_t>(timegm(&tm)) - offset;
  return true;
}

}  // namespace

Client::Client(Transport& transport, std::string directory_url, Clock now)
    : transport_(transport), directory_url_(std::move(directory_url)),
      now_(now ? std::move(now) : Clock(wall_clock)) {}

const Directory& Client::directory() {
  if (directory_) return *directory_;
  HttpRequest req{"GET", directory_url_, "", ""};
  HttpResponse res = get(directory_url_);
  json j = parse_object(req, res);
  Directory d;
  d.new_nonce = str(j, "newNonce");
  d.new_account = str(j, "newAccount");
  d.new_order = str(j, "newOrder");
  d.revoke_cert = str(j, "revokeCert");
  d.key_change = str(j, "keyChange");
  d.renewal_info = str(j, "renewalInfo");
  if (d.new_nonce.empty() || d.new_account.empty() || d.new_order.empty()) {
    throw AcmeError(ErrorKind::transient, "\"" + directory_url_ +
                                              "\" is not an ACME directory (no newNonce, "
                                              "newAccount or newOrder)");
  }
  auto meta = j.find("meta");
  if (meta != j.end() && meta->is_object()) {
    d.terms_of_service = str(*meta, "termsOfService");
    auto eab = meta->find("externalAccountRequired");
    d.external_account_required = eab != meta->end() && eab->is_boolean() && eab->get<bool>();
    auto profiles = meta->find("profiles");
    if (profiles != meta->end() && profiles->is_object()) {
      for (auto it = profiles->begin(); it != profiles->end(); ++it) d.profiles.push_back(it.key());
    }
  }
  directory_ = std::move(d);
  return *directory_;
}

HttpResponse Client::get(const std::string& url) {
  HttpRequest req{"GET", url, "", ""};
  HttpResponse res;
  try {
    res = transport_.send(req);
  } catch (const TransportError& e) {
    throw AcmeError(ErrorKind::transient, e.what());
  }
  if (res.status >= 400) fail(req, res);
  return res;
}

void Client::keep_nonce(const HttpResponse& res) {
  std::string n = res.header("replay-nonce");
  if (!n.empty() && is_b64url_token(n)) nonce_ = n;
}

std::string Client::take_nonce() {
  if (nonce_.empty()) {
    HttpRequest req{"HEAD", directory().new_nonce, "", ""};
    HttpResponse res;
    try {
      res = transport_.send(req);
    } catch (const TransportError& e) {
      throw AcmeError(ErrorKind::transient, e.what());
    }
    if (res.status >= 400) fail(req, res);
    keep_nonce(res);
    if (nonce_.empty()) {
      throw AcmeError(ErrorKind::transient, "HEAD " + req.url + ": no Replay-Nonce");
    }
  }
  std::string n;
  n.swap(nonce_);
  return n;
}

void Client::fail(const HttpRequest& req, const HttpResponse& res) {
  Problem p = Problem::from_json(json::parse(res.body, nullptr, false));
  if (!p.status) p.status = res.status;
  int64_t retry_after = parse_retry_after(res.header("retry-after"), now_());
  std::string what = req.method + " " + req.url + ": HTTP " + std::to_string(res.status);
  if (!p.empty()) what += ": " + p.summary();
  ErrorKind kind = ErrorKind::invalid;
  if (res.status == 429 || p.is("rateLimited")) kind = ErrorKind::rate_limited;
  else if (res.status >= 500 || p.is("serverInternal")) kind = ErrorKind::transient;
  else if (p.is("alreadyReplaced")) kind = ErrorKind::already_replaced;
  throw AcmeError(kind, what, p, retry_after);
}

HttpResponse Client::post(const std::string& url, const std::string& payload, bool use_jwk) {
  if (!key_) throw AcmeError(ErrorKind::invalid, "POST " + url + ": no account key");
  for (unsigned attempt = 0;; attempt++) {
    json header = {{"alg", key_->jws_alg()}, {"nonce", take_nonce()}, {"url", url}};
    if (use_jwk) header["jwk"] = json::parse(key_->jwk());
    else header["kid"] = kid_;
    std::string protected_json;
    try {
      protected_json = header.dump();
    } catch (const nlohmann::json::exception&) {
      throw AcmeError(ErrorKind::transient, "POST: the CA sent a URL that is not UTF-8");
    }
    HttpRequest req{"POST", url, jws_sign(*key_, protected_json, payload), "application/jose+json"};
    HttpResponse res;
    try {
      res = transport_.send(req);
    } catch (const TransportError& e) {
      throw AcmeError(ErrorKind::transient, e.what());
    }
    keep_nonce(res);
    if (res.status < 400) return res;
    Problem p = Problem::from_json(json::parse(res.body, nullptr, false));
    if (p.is("badNonce") && attempt < kMaxBadNonceRetries) {
      bad_nonce_retries_++;
      continue;  // the error carried a fresh nonce (kept above), or the next HEAD gets one
    }
    fail(req, res);
  }
}

void Client::use_account(const Key& key, std::string url) {
  key_ = &key;
  kid_ = std::move(url);
}

std::string Client::account(const Key& key, const AccountOptions& options) {
  const Directory& d = directory();
  key_ = &key;
  json payload = {{"termsOfServiceAgreed", options.agree_to_terms}};
  if (!options.contact.empty()) payload["contact"] = options.contact;
  if (d.external_account_required && options.eab_kid.empty()) {
    throw AcmeError(ErrorKind::invalid, "the CA \"" + directory_url_ +
                                            "\" requires external account binding: set "
                                            "portal_acme_eab (portalctl: --eab-kid, --eab-hmac-file)");
  }
  if (!options.eab_kid.empty()) {
    payload["externalAccountBinding"] =
        json::parse(eab_jws(key, options.eab_kid, options.eab_hmac_key, d.new_account));
  }
  HttpResponse res = post(d.new_account, payload.dump(), true);
  std::string url = res.header("location");
  if (url.empty()) {
    throw AcmeError(ErrorKind::transient, "POST " + d.new_account + ": no account Location");
  }
  url = checked_url(url, "POST " + d.new_account);
  kid_ = url;
  return url;
}

namespace {

Order order_from(const HttpRequest& req, const HttpResponse& res, std::string url,
                 int64_t now) {
  json j = parse_object(req, res);
  Order o;
  o.url = std::move(url);
  o.status = str(j, "status");
  o.finalize = str(j, "finalize");
  o.certificate = str(j, "certificate");
  auto authz = j.find("authorizations");
  if (authz != j.end() && authz->is_array()) {
    for (const auto& a : *authz)
      if (a.is_string()) o.authorizations.push_back(a.get<std::string>());
  }
  auto err = j.find("error");
  if (err != j.end()) o.error = Problem::from_json(*err);
  o.retry_after = parse_retry_after(res.header("retry-after"), now);
  if (o.status.empty()) {
    throw AcmeError(ErrorKind::transient, req.method + " " + req.url + ": an order without status");
  }
  return o;
}

}  // namespace

Order Client::new_order(const std::vector<std::string>& names, const std::string& replaces,
                        const std::string& profile) {
  const Directory& d = directory();
  json ids = json::array();
  for (const std::string& n : names) ids.push_back({{"type", "dns"}, {"value", n}});
  json payload = {{"identifiers", ids}};
  if (!replaces.empty() && !d.renewal_info.empty()) payload["replaces"] = replaces;
  if (!profile.empty()) payload["profile"] = profile;
  HttpResponse res = post(d.new_order, payload.dump());
  std::string url = res.header("location");
  if (url.empty()) throw AcmeError(ErrorKind::transient, "POST " + d.new_order + ": no order Location");
  url = checked_url(url, "POST " + d.new_order);
  return order_from(HttpRequest{"POST", d.new_order, "", ""}, res, url, now_());
}

Order Client::get_order(const std::string& url) {
  HttpResponse res = post(url, "");
  return order_from(HttpRequest{"POST", url, "", ""}, res, url, now_());
}

Authorization Client::get_authorization(const std::string& url) {
  HttpRequest req{"POST", url, "", ""};
  HttpResponse res = post(url, "");
  json j = parse_object(req, res);
  Authorization a;
  a.url = url;
  a.status = str(j, "status");
  auto id = j.find("identifier");
  if (id != j.end() && id->is_object()) a.identifier = str(*id, "value");
  auto chs = j.find("challenges");
  if (chs != j.end() && chs->is_array()) {
    for (const auto& c : *chs) {
      if (!c.is_object()) continue;
      Challenge ch;
      ch.type = str(c, "type");
      ch.url = str(c, "url");
      ch.token = str(c, "token");
      ch.status = str(c, "status");
      auto err = c.find("error");
      if (err != c.end()) ch.error = Problem::from_json(*err);
      a.challenges.push_back(std::move(ch));
    }
  }
  a.retry_after = parse_retry_after(res.header("retry-after"), now_());
  if (a.status.empty()) throw AcmeError(ErrorKind::transient, "POST " + url + ": an authorization without status");
  return a;
}

Challenge Client::respond(const Challenge& challenge) {
  HttpRequest req{"POST", challenge.url, "", ""};
  HttpResponse res = post(challenge.url, "{}");
  json j = parse_object(req, res);
  Challenge ch = challenge;
  ch.status = str(j, "status");
  auto err = j.find("error");
  if (err != j.end()) ch.error = Problem::from_json(*err);
  return ch;
}

Order Client::finalize(const Order& order, const std::string& csr_der) {
  json payload = {{"csr", b64url(csr_der)}};
  HttpResponse res = post(order.finalize, payload.dump());
  return order_from(HttpRequest{"POST", order.finalize, "", ""}, res, order.url, now_());
}

std::vector<std::string> Client::download(const std::string& certificate_url) {
  HttpResponse res = post(certificate_url, "");
  std::vector<std::string> chains{res.body};
  for (const std::string& alt : link_targets(res, "alternate")) {
    try {
      chains.push_back(post(checked_url(alt, "POST " + certificate_url), "").body);
    } catch (const std::exception&) {
      // an alternate chain that cannot be fetched is not a reason to lose the default one
    }
  }
  return chains;
}

std::optional<RenewalWindow> Client::renewal_info(const std::string& ari_id) {
  const Directory& d = directory();
  if (d.renewal_info.empty() || ari_id.empty()) return std::nullopt;
  std::string url = d.renewal_info;
  if (url.back() != '/') url += '/';
  url += ari_id;
  HttpRequest req{"GET", url, "", ""};
  HttpResponse res = get(url);
  json j = json::parse(res.body, nullptr, false);
  RenewalWindow w;
  auto sw = j.is_object() ? j.find("suggestedWindow") : j.end();
  if (!j.is_object() || sw == j.end() || !sw->is_object() ||
      !parse_rfc3339(str(*sw, "start"), &w.start) || !parse_rfc3339(str(*sw, "end"), &w.end) ||
      w.end <= w.start) {
    throw AcmeError(ErrorKind::transient, "GET " + url + ": a malformed renewal window");
  }
  w.explanation_url = str(j, "explanationURL");
  w.retry_after = parse_retry_after(res.header("retry-after"), now_());
  return w;
}

std::string Client::key_authorization(const std::string& token) const {
  return token + "." + (key_ ? key_->thumbprint() : std::string());
}

}  // namespace portal::acme
