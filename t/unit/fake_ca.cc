#include "fake_ca.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "acme/crypto.h"
#include "tls/ossl.h"

namespace portal::acme::fake {

using nlohmann::json;

namespace {

using namespace portal::ossl;

constexpr const char* kBase = "https://ca.test/acme/";
constexpr const char* kTerms = "https://ca.test/terms";
constexpr const char* kErrorPrefix = "urn:ietf:params:acme:error:";

const unsigned char* u8(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

void check(bool ok, const char* what) {
  if (!ok) {
    ERR_clear_error();
    throw std::runtime_error(std::string("fake CA: ") + what);
  }
}

std::string rfc3339(int64_t t) {
  char buf[32];
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string der_of(X509* x) {
  int n = i2d_X509(x, nullptr);
  check(n > 0, "i2d_X509");
  std::string out(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509(x, &p);
  return out;
}

std::string pem_of(X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), x) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

PkeyPtr p256() {
  PkeyPtr k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  check(ext != nullptr, "X509V3_EXT_nconf_nid");
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

// A CA certificate for key named cn, issued by issuer (itself when null) under signer.
X509Ptr ca_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* signer, long serial) {
  X509Ptr x(X509_new());
  X509_set_version(x.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  ASN1_TIME_set(X509_getm_notBefore(x.get()), 946684800);    // 2000
  ASN1_TIME_set(X509_getm_notAfter(x.get()), 4102444800LL);  // 2100
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(x.get(), key);
  add_ext(x.get(), issuer ? issuer : x.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash");
  if (issuer) add_ext(x.get(), issuer, NID_authority_key_identifier, "keyid:always");
  check(X509_sign(x.get(), signer ? signer : key, EVP_sha256()) > 0, "X509_sign");
  return x;
}

// A public key from a JWK (P-256 or RSA); null when it is not one.
PkeyPtr pkey_from_jwk(const json& jwk) {
  if (!jwk.is_object()) return nullptr;
  auto s = [&](const char* k) { return jwk.value(k, std::string()); };
  BldPtr bld(OSSL_PARAM_BLD_new());
  const char* type = nullptr;
  std::string pub;
  BnPtr n, e;
  if (s("kty") == "EC") {
    std::string x, y;
    if (s("crv") != "P-256" || !b64url_decode(s("x"), &x) || !b64url_decode(s("y"), &y) ||
        x.size() != 32 || y.size() != 32) {
      return nullptr;
    }
    pub = "\x04" + x + y;
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
    type = "EC";
  } else if (s("kty") == "RSA") {
    std::string nb, eb;
    if (!b64url_decode(s("n"), &nb) || !b64url_decode(s("e"), &eb)) return nullptr;
    n.reset(BN_bin2bn(u8(nb), static_cast<int>(nb.size()), nullptr));
    e.reset(BN_bin2bn(u8(eb), static_cast<int>(eb.size()), nullptr));
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
    type = "RSA";
  } else {
    return nullptr;
  }
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return PkeyPtr(pkey);
}

std::string sha256_raw(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  check(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1, "EVP_Digest");
  return std::string(reinterpret_cast<char*>(md), len);
}

// RFC 7638: the required members only, in lexicographic order, no whitespace (nlohmann's
// objects are sorted and dump() adds no whitespace).
std::string jwk_thumbprint(const json& jwk) {
  json canon;
  if (jwk.value("kty", "") == "EC") {
    canon = {{"crv", jwk["crv"]}, {"kty", "EC"}, {"x", jwk["x"]}, {"y", jwk["y"]}};
  } else {
    canon = {{"e", jwk["e"]}, {"kty", "RSA"}, {"n", jwk["n"]}};
  }
  return b64url(sha256_raw(canon.dump()));
}

// A JWS signature as a relying party checks it (ES256 R||S turned back into DER).
bool verify_sig(EVP_PKEY* pub, const std::string& data, const std::string& sig) {
  std::string der = sig;
  if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
    if (sig.size() != 64) return false;
    SigPtr ec(ECDSA_SIG_new());
    ECDSA_SIG_set0(ec.get(), BN_bin2bn(u8(sig), 32, nullptr), BN_bin2bn(u8(sig) + 32, 32, nullptr));
    int n = i2d_ECDSA_SIG(ec.get(), nullptr);
    der.assign(static_cast<size_t>(n), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_ECDSA_SIG(ec.get(), &p);
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pub, nullptr) == 1 &&
            EVP_DigestVerify(ctx.get(), u8(der), der.size(), u8(data), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

bool number_after(const std::string& url, const std::string& prefix, unsigned* n,
                  std::string* rest = nullptr) {
  if (url.rfind(prefix, 0) != 0) return false;
  size_t pos = prefix.size(), end = pos;
  while (end < url.size() && isdigit(static_cast<unsigned char>(url[end]))) end++;
  if (end == pos) return false;
  *n = static_cast<unsigned>(std::stoul(url.substr(pos, end - pos)));
  if (rest) *rest = url.substr(end);
  else if (end != url.size()) return false;
  return true;
}

Endpoint classify(const std::string& url) {
  std::string b = kBase;
  unsigned n;
  std::string rest;
  if (url == FakeCa::kDirectory) return Endpoint::directory;
  if (url == b + "new-nonce") return Endpoint::new_nonce;
  if (url == b + "new-account") return Endpoint::new_account;
  if (url == b + "new-order") return Endpoint::new_order;
  if (url.rfind(b + "renewal-info/", 0) == 0) return Endpoint::renewal_info;
  if (number_after(url, b + "acct/", &n)) return Endpoint::account;
  if (number_after(url, b + "order/", &n)) return Endpoint::order;
  if (number_after(url, b + "authz/", &n)) return Endpoint::authz;
  if (number_after(url, b + "chall/", &n, &rest)) return Endpoint::challenge;
  if (number_after(url, b + "finalize/", &n)) return Endpoint::finalize;
  if (number_after(url, b + "cert/", &n, &rest) && (rest.empty() || rest == "/alt"))
    return Endpoint::certificate;
  return Endpoint::unknown;
}

json problem_json(const std::string& type, const std::string& detail, long status,
                  const std::vector<Problem>& subs = {}) {
  json j = {{"type", type.find(':') == std::string::npos ? kErrorPrefix + type : type},
            {"detail", detail}};
  if (status) j["status"] = status;
  if (!subs.empty()) {
    j["subproblems"] = json::array();
    for (const Problem& p : subs) {
      json s = problem_json(p.type, p.detail, p.status, p.subproblems);
      if (!p.identifier.empty()) s["identifier"] = {{"type", "dns"}, {"value", p.identifier}};
      j["subproblems"].push_back(s);
    }
  }
  return j;
}

HttpResponse problem(long status, const std::string& type, const std::string& detail,
                     const std::vector<Problem>& subs = {}) {
  HttpResponse res;
  res.status = status;
  res.headers.emplace("content-type", "application/problem+json");
  res.body = problem_json(type, detail, status, subs).dump();
  return res;
}

HttpResponse json_response(long status, const json& body) {
  HttpResponse res;
  res.status = status;
  res.headers.emplace("content-type", "application/json");
  res.body = body.dump();
  return res;
}

class ForwardingTransport : public Transport {
 public:
  explicit ForwardingTransport(FakeCa& ca) : ca_(ca) {}
  HttpResponse send(const HttpRequest& req) override { return ca_.handle(req); }

 private:
  FakeCa& ca_;
};

}  // namespace

const char* endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::directory: return "directory";
    case Endpoint::new_nonce: return "newNonce";
    case Endpoint::new_account: return "newAccount";
    case Endpoint::account: return "account";
    case Endpoint::new_order: return "newOrder";
    case Endpoint::order: return "order";
    case Endpoint::authz: return "authz";
    case Endpoint::challenge: return "challenge";
    case Endpoint::finalize: return "finalize";
    case Endpoint::certificate: return "certificate";
    case Endpoint::renewal_info: return "renewalInfo";
    case Endpoint::unknown: return "unknown";
  }
  return "?";
}

struct FakeCa::State {
  struct Account {
    std::string url;
    json jwk;
    PkeyPtr key;
    std::string thumbprint;
  };
  struct Authz {
    std::string name, status = "pending", token, challenge_status = "pending";
    Problem error;
    unsigned order = 0;
  };
  struct Order {
    std::string account;
    std::vector<std::string> names;
    std::vector<unsigned> authz;
    std::string status = "pending";
    Problem error;
    unsigned cert = 0;
    unsigned processing_answers = 0;  // "processing" answers given so far
    std::string replaces, profile;
  };
  struct Cert {
    std::string leaf_der, pem, alt_pem;
    int64_t not_before = 0, not_after = 0;
  };

  PkeyPtr root_key, alt_root_key, int_key;
  X509Ptr root, alt_root, intermediate, intermediate_alt;
  std::set<std::string> nonces;
  unsigned nonce_counter = 0;
  std::map<std::string, Account> accounts;  // by URL
  std::vector<Order> orders;                // order N is orders[N - 1]
  std::vector<Authz> authzs;
  std::vector<Cert> certs;
  unsigned serial = 0;

  std::string nonce() {
    std::string n = "nonce" + std::to_string(++nonce_counter) + "x" + std::to_string(nonces.size());
    nonces.insert(n);
    return n;
  }
};

FakeCa::FakeCa(Clock now) : s_(std::make_unique<State>()), now_(std::move(now)) {
  s_->root_key = p256();
  s_->alt_root_key = p256();
  s_->int_key = p256();
  s_->root = ca_cert(s_->root_key.get(), kRootCn, nullptr, nullptr, 1);
  s_->alt_root = ca_cert(s_->alt_root_key.get(), kAltRootCn, nullptr, nullptr, 2);
  s_->intermediate = ca_cert(s_->int_key.get(), kIntermediateCn, s_->root.get(),
                             s_->root_key.get(), 3);
  s_->intermediate_alt = ca_cert(s_->int_key.get(), kIntermediateCn, s_->alt_root.get(),
                                 s_->alt_root_key.get(), 4);
}

FakeCa::~FakeCa() = default;

std::unique_ptr<Transport> FakeCa::transport() {
  return std::make_unique<ForwardingTransport>(*this);
}

void FakeCa::fail_nth(Endpoint e, unsigned n, Fault f) { faults_[e][n] = std::move(f); }

void FakeCa::fail_next(Endpoint e, Fault f, unsigned times) {
  for (unsigned i = 1; i <= times; i++) faults_[e][count(e) + i] = f;
}

void FakeCa::forget_accounts() {
  for (const auto& a : s_->accounts) forgotten_.insert(a.first);
  s_->accounts.clear();
}

unsigned FakeCa::count(Endpoint e) const {
  auto it = counts_.find(e);
  return it == counts_.end() ? 0 : it->second;
}

std::vector<const Seen*> FakeCa::requests_to(Endpoint e) const {
  std::vector<const Seen*> out;
  for (const Seen& s : seen_)
    if (s.endpoint == e) out.push_back(&s);
  return out;
}

const Seen* FakeCa::last(Endpoint e) const {
  for (auto it = seen_.rbegin(); it != seen_.rend(); ++it)
    if (it->endpoint == e) return &*it;
  return nullptr;
}

std::string FakeCa::trace() const {
  std::string out;
  for (const Seen& s : seen_) {
    out += s.method + " " + s.url + " (" + endpoint_name(s.endpoint) + ") -> " +
           std::to_string(s.status);
    if (!s.payload.is_null()) out += " " + s.payload.dump();
    out += "\n";
  }
  for (const std::string& e : errors_) out += "protocol error: " + e + "\n";
  return out;
}

std::vector<std::string> FakeCa::order_urls() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < s_->orders.size(); i++) out.push_back(kBase + std::string("order/") + std::to_string(i + 1));
  return out;
}

std::vector<std::string> FakeCa::issued_der() const {
  std::vector<std::string> out;
  for (const auto& c : s_->certs) out.push_back(c.leaf_der);
  return out;
}

std::string FakeCa::ari_id_of(const std::string& leaf_der) {
  const unsigned char* p = u8(leaf_der);
  X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(leaf_der.size())));
  if (!x) return "";
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(x.get());
  if (!aki) return "";
  BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr));
  std::string serial(static_cast<size_t>(BN_num_bytes(bn.get())), '\0');
  BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(serial.data()));
  if (serial.empty() || (static_cast<unsigned char>(serial[0]) & 0x80)) serial.insert(0, 1, '\0');
  std::string keyid(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki)),
                    static_cast<size_t>(ASN1_STRING_length(aki)));
  return b64url(keyid) + "." + b64url(serial);
}

CertPair FakeCa::foreign_pair(const std::string& host, int64_t not_before, int64_t not_after) {
  PkeyPtr ca_key = p256();
  X509Ptr ca = ca_cert(ca_key.get(), "Other CA R9", nullptr, nullptr, 9);
  Key key = Key::generate(KeyType::ecdsa);
  X509Ptr leaf(X509_new());
  X509_set_version(leaf.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(leaf.get()), 0x1234567);
  ASN1_TIME_set(X509_getm_notBefore(leaf.get()), static_cast<time_t>(not_before));
  ASN1_TIME_set(X509_getm_notAfter(leaf.get()), static_cast<time_t>(not_after));
  X509_NAME_add_entry_by_txt(X509_get_subject_name(leaf.get()), "CN", MBSTRING_ASC, u8(host), -1,
                             -1, 0);
  X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca.get()));
  X509_set_pubkey(leaf.get(), key.get());
  add_ext(leaf.get(), ca.get(), NID_subject_alt_name, "DNS:" + host);
  add_ext(leaf.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(leaf.get(), ca_key.get(), EVP_sha256()) > 0, "X509_sign");
  CertPair p;
  p.type = KeyType::ecdsa;
  p.not_before = not_before;
  p.not_after = not_after;
  p.chain_der = {der_of(leaf.get()), der_of(ca.get())};
  p.key_der = key.to_der();
  return p;
}

std::string FakeCa::thumbprint(const std::string& account_url) const {
  auto it = s_->accounts.find(account_url);
  return it == s_->accounts.end() ? "" : it->second.thumbprint;
}

HttpResponse FakeCa::handle(const HttpRequest& req) {
  Seen seen;
  seen.method = req.method;
  seen.url = req.url;
  seen.endpoint = classify(req.url);
  HttpResponse res;
  try {
    res = route(req, seen);
  } catch (const nlohmann::json::exception& ex) {
    errors_.push_back(req.method + " " + req.url + ": JSON of the wrong shape: " + ex.what());
    res = problem(400, "malformed", "JSON of the wrong shape");
  } catch (const TransportError&) {
    seen.status = 0;
    seen_.push_back(seen);
    throw;
  }
  seen.status = res.status;
  seen.nonce_sent = res.header("replay-nonce");
  seen_.push_back(std::move(seen));
  return res;
}

HttpResponse FakeCa::route(const HttpRequest& req, Seen& seen) {
  const Endpoint e = seen.endpoint;
  const unsigned n = ++counts_[e];
  if (on_request) on_request(e);
  const Fault* fault = nullptr;
  auto fit = faults_[e].find(n);
  if (fit != faults_[e].end()) fault = &fit->second;
  const std::string base = kBase;
  State& s = *s_;
  const int64_t now = now_();

  auto error = [&](const std::string& what) { errors_.push_back(req.method + " " + req.url + ": " + what); };
  auto with_nonce = [&](HttpResponse r) {
    r.headers.emplace("replay-nonce", s.nonce());
    r.headers.emplace("link", "<" + std::string(kDirectory) + ">;rel=\"index\"");
    return r;
  };
  auto faulted = [&](const Fault& f) {
    if (f.status == 0) throw TransportError("fake CA: no response (scripted)");
    HttpResponse r;
    if (f.type.empty()) {
      r.status = f.status;
      r.body = "<html>scripted " + std::to_string(f.status) + "</html>";
      r.headers.emplace("content-type", "text/html");
    } else {
      r = problem(f.status, f.type, f.detail, f.subproblems);
    }
    if (!f.retry_after.empty()) r.headers.emplace("retry-after", f.retry_after);
    return r;
  };

  if (req.method == "GET" || req.method == "HEAD") {
    if (fault) {
      HttpResponse r = faulted(*fault);
      return e == Endpoint::new_nonce ? with_nonce(r) : r;
    }
    if (e == Endpoint::directory && req.method == "GET") {
      json d = {{"newNonce", base + "new-nonce"},     {"newAccount", base + "new-account"},
                {"newOrder", base + "new-order"},     {"revokeCert", base + "revoke-cert"},
                {"keyChange", base + "key-change"}};
      if (renewal_info) d["renewalInfo"] = base + "renewal-info";
      json meta = {{"termsOfService", kTerms}, {"website", "https://ca.test/"}};
      if (external_account_required) meta["externalAccountRequired"] = true;
      if (!profiles.empty()) {
        meta["profiles"] = json::object();
        for (const std::string& p : profiles) meta["profiles"][p] = "the " + p + " profile";
      }
      d["meta"] = meta;
      return json_response(200, d);
    }
    if (e == Endpoint::new_nonce) {
      HttpResponse r;
      r.status = req.method == "HEAD" ? 200 : 204;
      r.headers.emplace("cache-control", "no-store");
      return with_nonce(r);
    }
    if (e == Endpoint::renewal_info && req.method == "GET") {
      if (!renewal_info) error("renewalInfo is not in the directory");
      std::string id = req.url.substr((base + "renewal-info/").size());
      const State::Cert* cert = nullptr;
      for (const auto& c : s.certs)
        if (ari_id_of(c.leaf_der) == id) cert = &c;
      if (!cert || ari == Ari::missing) {  // (another CA's certificate: not the client's mistake)
        return problem(404, "malformed", "no such certificate");
      }
      json body;
      if (ari == Ari::malformed) {
        body = {{"suggestedWindow", {{"start", "soon"}, {"end", rfc3339(cert->not_after)}}}};
      } else {
        int64_t start = ari_start, end = ari_end;
        if (ari == Ari::derived) {
          start = cert->not_after - (cert->not_after - cert->not_before) / 3;
          end = start + 2 * 86400;
        }
        body = {{"suggestedWindow", {{"start", rfc3339(start)}, {"end", rfc3339(end)}}},
                {"explanationURL", "https://ca.test/ari"}};
      }
      HttpResponse r = json_response(200, body);
      if (!ari_retry_after.empty()) r.headers.emplace("retry-after", ari_retry_after);
      return r;
    }
    error("unexpected " + req.method);
    return problem(405, "malformed", "use POST");
  }

  if (req.method != "POST") {
    error("unexpected method");
    return problem(405, "malformed", "no such method");
  }

  // --- A JWS POST: its form, nonce, key and signature first (RFC 8555 §6.2-6.5).
  if (req.content_type != "application/jose+json") error("Content-Type \"" + req.content_type + "\"");
  json body = json::parse(req.body, nullptr, false);
  std::string prot64, payload64, sig64, prot_text, payload_text, sig;
  auto bad = [&](const std::string& what) {
    error(what);
    return with_nonce(problem(400, "malformed", what));
  };
  if (!body.is_object() || !body["protected"].is_string() || !body["payload"].is_string() ||
      !body["signature"].is_string() || body.size() != 3) {
    return bad("not a flattened JWS");
  }
  prot64 = body["protected"];
  payload64 = body["payload"];
  sig64 = body["signature"];
  if (!b64url_decode(prot64, &prot_text) || !b64url_decode(payload64, &payload_text) ||
      !b64url_decode(sig64, &sig)) {
    return bad("a JWS part is not base64url");
  }
  json header = json::parse(prot_text, nullptr, false);
  if (!header.is_object()) return bad("the protected header is not JSON");
  seen.header = header;
  if (!payload_text.empty()) {
    seen.payload = json::parse(payload_text, nullptr, false);
    if (!seen.payload.is_object()) return bad("the payload is not a JSON object");
  }
  if (header.value("url", "") != req.url) return bad("protected \"url\" is not the request URL");
  std::string nonce = header.value("nonce", "");
  if (!s.nonces.erase(nonce)) {
    error("nonce \"" + nonce + "\" was not issued or was used already");
    return with_nonce(problem(400, "badNonce", "unknown nonce"));
  }
  bool has_jwk = header.contains("jwk"), has_kid = header.contains("kid");
  if (has_jwk == has_kid) return bad("needs exactly one of jwk and kid");
  if (has_jwk != (e == Endpoint::new_account)) return bad("jwk is for newAccount only");
  PkeyPtr jwk_key;
  State::Account* acct = nullptr;
  EVP_PKEY* key = nullptr;
  if (has_jwk) {
    jwk_key = pkey_from_jwk(header["jwk"]);
    if (!jwk_key) return bad("the jwk is not a P-256 or RSA key");
    key = jwk_key.get();
  } else {
    auto it = s.accounts.find(header.value("kid", ""));
    if (it == s.accounts.end()) {
      if (!forgotten_.count(header.value("kid", ""))) error("unknown kid");
      return with_nonce(problem(400, "accountDoesNotExist", "no such account"));
    }
    acct = &it->second;
    key = acct->key.get();
  }
  std::string alg = header.value("alg", "");
  if (alg != (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? "ES256" : "RS256"))
    return bad("alg \"" + alg + "\" does not fit the key");
  if (!verify_sig(key, prot64 + "." + payload64, sig)) return bad("the JWS signature does not verify");

  if (fault) return with_nonce(faulted(*fault));

  const json& payload = seen.payload;
  if ((e == Endpoint::new_account || e == Endpoint::new_order || e == Endpoint::finalize) &&
      !payload.is_object()) {
    return bad("a POST-as-GET to " + std::string(endpoint_name(e)));
  }
  auto post_as_get = [&] {
    if (!payload.is_null()) error("a POST-as-GET with a payload");
  };
  auto order_url = [&](unsigned id) { return base + "order/" + std::to_string(id); };
  auto authz_url = [&](unsigned id) { return base + "authz/" + std::to_string(id); };
  auto refresh = [&](State::Order& o) {
    if (o.status == "pending") {
      bool all_valid = true;
      for (unsigned a : o.authz) {
        const State::Authz& z = s.authzs[a - 1];
        if (z.status == "invalid") {
          o.status = "invalid";
          o.error = z.error;
          return;
        }
        if (z.status != "valid") all_valid = false;
      }
      if (all_valid) {
        if (!order_error.empty()) {
          o.status = "invalid";
          o.error = order_error;
        } else {
          o.status = "ready";
        }
      }
    } else if (o.status == "processing") {
      if (o.processing_answers < processing_polls) o.processing_answers++;
      else o.status = "valid";
    }
  };
  auto order_json = [&](unsigned id) {
    const State::Order& o = s.orders[id - 1];
    json ids = json::array(), authz = json::array();
    for (const std::string& name : o.names) ids.push_back({{"type", "dns"}, {"value", name}});
    for (unsigned a : o.authz) authz.push_back(authz_url(a));
    json j = {{"status", o.status},
              {"expires", rfc3339(now + 7 * 86400)},
              {"identifiers", ids},
              {"authorizations", authz},
              {"finalize", base + "finalize/" + std::to_string(id)}};
    if (o.status == "valid") j["certificate"] = base + "cert/" + std::to_string(o.cert);
    if (!o.error.empty()) j["error"] = problem_json(o.error.type, o.error.detail, 0, o.error.subproblems);
    if (!o.profile.empty()) j["profile"] = o.profile;
    if (!o.replaces.empty()) j["replaces"] = o.replaces;
    HttpResponse r = json_response(200, j);
    if (o.status == "processing" && !processing_retry_after.empty())
      r.headers.emplace("retry-after", processing_retry_after);
    return r;
  };
  auto challenge_json = [&](unsigned id, const std::string& type) {
    const State::Authz& z = s.authzs[id - 1];
    json c = {{"type", type},
              {"url", base + "chall/" + std::to_string(id) + (type == "http-01" ? "" : "/" + type)},
              {"token", type == "http-01" ? z.token : z.token + "-" + type.substr(0, 3)},
              {"status", type == "http-01" ? z.challenge_status : "pending"}};
    if (type == "http-01" && !z.error.empty())
      c["error"] = problem_json(z.error.type, z.error.detail, 403, z.error.subproblems);
    if (type == "http-01" && z.challenge_status == "valid") c["validated"] = rfc3339(now);
    return c;
  };
  auto owns = [&](const State::Order& o) {
    if (acct && o.account != acct->url) error("another account's object");
  };

  switch (e) {
    case Endpoint::new_account: {
      json jwk = header["jwk"];
      std::string thumb = jwk_thumbprint(jwk);
      for (auto& [url, a] : s.accounts) {
        if (a.thumbprint == thumb) {
          HttpResponse r = json_response(200, {{"status", "valid"}});
          r.headers.emplace("location", url);
          return with_nonce(r);
        }
      }
      if (payload.value("termsOfServiceAgreed", false) != true) {
        return with_nonce(problem(403, "userActionRequired", "agree to the terms"));
      }
      auto eab = payload.find("externalAccountBinding");
      if (eab == payload.end()) {
        if (external_account_required)
          return with_nonce(problem(400, "externalAccountRequired", "an EAB is required"));
      } else {
        std::string p64 = eab->value("protected", ""), pl64 = eab->value("payload", "");
        std::string ptext, pltext, mac;
        b64url_decode(p64, &ptext);
        b64url_decode(pl64, &pltext);
        b64url_decode(eab->value("signature", ""), &mac);
        json ph = json::parse(ptext, nullptr, false), pl = json::parse(pltext, nullptr, false);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        std::string input = p64 + "." + pl64;
        HMAC(EVP_sha256(), eab_hmac_key.data(), static_cast<int>(eab_hmac_key.size()), u8(input),
             input.size(), md, &len);
        if (!ph.is_object() || ph.value("alg", "") != "HS256" || ph.value("kid", "") != eab_kid ||
            ph.value("url", "") != req.url || pl != jwk ||
            mac != std::string(reinterpret_cast<char*>(md), len)) {
          error("external account binding does not verify");
          return with_nonce(problem(400, "unauthorized", "bad external account binding"));
        }
      }
      std::string url = base + "acct/" + std::to_string(s.accounts.size() + forgotten_.size() + 1);
      State::Account a;
      a.url = url;
      a.jwk = jwk;
      a.key = std::move(jwk_key);
      a.thumbprint = thumb;
      s.accounts.emplace(url, std::move(a));
      json out = {{"status", "valid"}, {"orders", url + "/orders"}};
      if (payload.contains("contact")) out["contact"] = payload["contact"];
      HttpResponse r = json_response(201, out);
      r.headers.emplace("location", url);
      return with_nonce(r);
    }

    case Endpoint::account:
      post_as_get();
      return with_nonce(json_response(200, {{"status", "valid"}}));

    case Endpoint::new_order: {
      State::Order o;
      o.account = acct->url;
      auto ids = payload.find("identifiers");
      if (ids == payload.end() || !ids->is_array() || ids->empty()) return bad("no identifiers");
      for (const auto& id : *ids) {
        if (!id.is_object() || id.value("type", "") != "dns" || id.value("value", "").empty())
          return bad("an identifier that is not dns");
        o.names.push_back(id["value"]);
      }
      if (payload.contains("replaces")) {
        o.replaces = payload.value("replaces", "");
        if (!renewal_info) error("\"replaces\" without renewalInfo in the directory");
        bool known = false;
        for (const auto& c : s.certs) known = known || ari_id_of(c.leaf_der) == o.replaces;
        if (!known && refuse_unknown_replaces) {
          return with_nonce(problem(400, "malformed",
                                    "could not find the certificate to replace: " + o.replaces));
        }
        if (!known) error("\"replaces\" names no certificate of this CA");
        if (reject_replaces) {
          return with_nonce(problem(409, "alreadyReplaced",
                                    "certificate " + o.replaces + " was replaced already"));
        }
      }
      if (payload.contains("profile")) {
        o.profile = payload.value("profile", "");
        if (std::find(profiles.begin(), profiles.end(), o.profile) == profiles.end()) {
          error("profile \"" + o.profile + "\" is not in the directory");
          return with_nonce(problem(400, "invalidProfile", "no such profile"));
        }
      }
      unsigned id = static_cast<unsigned>(s.orders.size() + 1);
      for (const std::string& name : o.names) {
        State::Authz z;
        z.name = name;
        z.order = id;
        z.token = "tok" + std::to_string(s.authzs.size() + 1) + "_" + name.substr(0, name.find('.'));
        for (char& c : z.token)
          if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
        s.authzs.push_back(z);
        o.authz.push_back(static_cast<unsigned>(s.authzs.size()));
      }
      s.orders.push_back(std::move(o));
      HttpResponse r = order_json(id);
      r.status = 201;
      r.headers.emplace("location", order_url(id));
      return with_nonce(r);
    }

    case Endpoint::order: {
      post_as_get();
      unsigned id;
      number_after(req.url, base + "order/", &id);
      if (id == 0 || id > s.orders.size()) return with_nonce(problem(404, "malformed", "no such order"));
      owns(s.orders[id - 1]);
      refresh(s.orders[id - 1]);
      return with_nonce(order_json(id));
    }

    case Endpoint::authz: {
      post_as_get();
      unsigned id;
      number_after(req.url, base + "authz/", &id);
      if (id == 0 || id > s.authzs.size()) return with_nonce(problem(404, "malformed", "no such authorization"));
      const State::Authz& z = s.authzs[id - 1];
      owns(s.orders[z.order - 1]);
      json chs = json::array({challenge_json(id, "http-01")});
      size_t pos = 0;
      while (pos < extra_challenge_types.size()) {
        size_t end = extra_challenge_types.find(' ', pos);
        if (end == std::string::npos) end = extra_challenge_types.size();
        if (end > pos) chs.push_back(challenge_json(id, extra_challenge_types.substr(pos, end - pos)));
        pos = end + 1;
      }
      std::rotate(chs.begin(), chs.begin() + 1, chs.end());  // http-01 is not always first
      return with_nonce(json_response(200, {{"status", z.status},
                                            {"expires", rfc3339(now + 7 * 86400)},
                                            {"identifier", {{"type", "dns"}, {"value", z.name}}},
                                            {"challenges", chs}}));
    }

    case Endpoint::challenge: {
      unsigned id;
      std::string rest;
      number_after(req.url, base + "chall/", &id, &rest);
      if (id == 0 || id > s.authzs.size()) return with_nonce(problem(404, "malformed", "no such challenge"));
      if (!rest.empty()) error("responded to a " + rest.substr(1) + " challenge");
      State::Authz& z = s.authzs[id - 1];
      owns(s.orders[z.order - 1]);
      if (payload.is_null()) return with_nonce(json_response(200, challenge_json(id, "http-01")));
      if (!payload.empty()) error("a challenge response that is not {}");
      if (z.challenge_status == "pending") {
        std::string want = z.token + "." + acct->thumbprint;
        Problem failure = challenge_error;
        if (failure.empty() && fetch_key_authorization) {
          std::optional<std::string> got = fetch_key_authorization(z.token);
          validations_++;
          if (!got) {
            error("the key authorization of token " + z.token + " is not published");
            failure = {kErrorPrefix + std::string("unauthorized"), "404 for the token", 403, z.name, {}};
          } else if (*got != want) {
            error("published \"" + *got + "\", expected \"" + want + "\"");
            failure = {kErrorPrefix + std::string("incorrectResponse"), "wrong key authorization", 403, z.name, {}};
          }
        }
        if (failure.empty()) {
          z.challenge_status = z.status = "valid";
        } else {
          z.challenge_status = z.status = "invalid";
          z.error = failure;
        }
      }
      HttpResponse r = json_response(200, challenge_json(id, "http-01"));
      r.headers.emplace("link", "<" + authz_url(id) + ">;rel=\"up\"");
      return with_nonce(r);
    }

    case Endpoint::finalize: {
      unsigned id;
      number_after(req.url, base + "finalize/", &id);
      if (id == 0 || id > s.orders.size()) return with_nonce(problem(404, "malformed", "no such order"));
      State::Order& o = s.orders[id - 1];
      owns(o);
      refresh(o);
      if (o.status != "ready") {
        error("finalize of an order that is \"" + o.status + "\"");
        return with_nonce(problem(403, "orderNotReady", "the order is " + o.status));
      }
      std::string csr;
      if (!b64url_decode(payload.value("csr", ""), &csr)) return bad("csr is not base64url");
      const unsigned char* p = u8(csr);
      ReqPtr x509req(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr.size())));
      if (!x509req || p != u8(csr) + csr.size()) {
        ERR_clear_error();
        error("the CSR does not parse");
        return with_nonce(problem(400, "badCSR", "does not parse"));
      }
      EVP_PKEY* pub = X509_REQ_get0_pubkey(x509req.get());
      if (!pub || X509_REQ_verify(x509req.get(), pub) != 1) {
        ERR_clear_error();
        error("the CSR signature does not verify");
        return with_nonce(problem(400, "badCSR", "bad signature"));
      }
      std::vector<std::string> names;
      ExtsPtr exts(X509_REQ_get_extensions(x509req.get()));
      NamesPtr gens(exts ? static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr))
                         : nullptr);
      for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens.get()); i++) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens.get(), i);
        if (g->type != GEN_DNS) continue;
        names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                           static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
      }
      std::vector<std::string> want = o.names;
      std::sort(names.begin(), names.end());
      std::sort(want.begin(), want.end());
      if (names != want) {
        error("the CSR's names are not the order's");
        return with_nonce(problem(400, "badCSR", "names differ from the order"));
      }

      X509Ptr leaf(X509_new());
      X509_set_version(leaf.get(), X509_VERSION_3);
      // 16 bytes, the first with its high bit set: the DER content gets a leading zero.
      std::string serial(16, '\0');
      serial[0] = static_cast<char>(0xfa);
      unsigned counter = ++s.serial;
      for (int i = 0; i < 4; i++) serial[15 - i] = static_cast<char>((counter >> (8 * i)) & 0xff);
      BnPtr bn(BN_bin2bn(u8(serial), 16, nullptr));
      BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(leaf.get()));
      ASN1_TIME_set(X509_getm_notBefore(leaf.get()), static_cast<time_t>(now));
      ASN1_TIME_set(X509_getm_notAfter(leaf.get()), static_cast<time_t>(now + lifetime));
      X509_NAME* subject = X509_get_subject_name(leaf.get());
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, u8(o.names[0]), -1, -1, 0);
      X509_set_issuer_name(leaf.get(), X509_get_subject_name(s.intermediate.get()));
      X509_set_pubkey(leaf.get(), pub);
      std::string san;
      for (const std::string& name : o.names) san += (san.empty() ? "DNS:" : ",DNS:") + name;
      add_ext(leaf.get(), s.intermediate.get(), NID_basic_constraints, "critical,CA:FALSE");
      add_ext(leaf.get(), s.intermediate.get(), NID_ext_key_usage, "serverAuth");
      add_ext(leaf.get(), s.intermediate.get(), NID_subject_alt_name, san);
      add_ext(leaf.get(), s.intermediate.get(), NID_authority_key_identifier, "keyid:always");
      check(X509_sign(leaf.get(), s.int_key.get(), EVP_sha256()) > 0, "X509_sign");
      State::Cert c;
      c.leaf_der = der_of(leaf.get());
      c.pem = pem_of(leaf.get()) + pem_of(s.intermediate.get());
      c.alt_pem = pem_of(leaf.get()) + pem_of(s.intermediate_alt.get());
      c.not_before = now;
      c.not_after = now + lifetime;
      s.certs.push_back(std::move(c));
      o.cert = static_cast<unsigned>(s.certs.size());
      if (processing_polls > 0) {
        o.status = "processing";
        o.processing_answers = 1;
      } else {
        o.status = "valid";
      }
      HttpResponse r = order_json(id);
      r.headers.emplace("location", order_url(id));
      return with_nonce(r);
    }

    case Endpoint::certificate: {
      post_as_get();
      unsigned id;
      std::string rest;
      number_after(req.url, base + "cert/", &id, &rest);
      if (id == 0 || id > s.certs.size()) return with_nonce(problem(404, "malformed", "no such certificate"));
      const State::Cert& c = s.certs[id - 1];
      HttpResponse r;
      r.status = 200;
      r.headers.emplace("content-type", "application/pem-certificate-chain");
      r.body = rest.empty() ? c.pem : c.alt_pem;
      if (rest.empty() && alternate_chain) {
        r.headers.emplace("link", "<" + base + "cert/" + std::to_string(id) + "/alt>;rel=\"alternate\"");
      }
      return with_nonce(r);
    }

    default:
      error("a POST to an unknown URL");
      return with_nonce(problem(404, "malformed", "no such resource"));
  }
}

}  // namespace portal::acme::fake
