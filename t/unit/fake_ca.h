// A fake ACME CA for the unit tests: an in-process server behind the client's Transport
// (acme/http.h) that implements enough of RFC 8555 and RFC 9773 for the client and the
// engine, checks what they send (JWS signatures, nonces, the published key authorization,
// the CSR), issues real certificates from an OpenSSL test CA, and answers faults a test
// scripts per endpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "acme/http.h"
#include "domain/cert_record.h"
#include "acme/problem.h"

namespace portal::acme::fake {

enum class Endpoint {
  directory, new_nonce, new_account, account, new_order, order, authz, challenge, finalize,
  certificate, renewal_info, unknown
};
const char* endpoint_name(Endpoint e);

// A scripted answer instead of the normal one (a POST's nonce is still checked and used).
struct Fault {
  long status = 500;        // 0: no response at all (the transport throws TransportError)
  std::string type;         // "rateLimited", or a whole URI; "": no problem document
  std::string detail;
  std::string retry_after;  // the Retry-After header, when not empty
  std::vector<Problem> subproblems;
};

// One request as the fake understood it.
struct Seen {
  Endpoint endpoint = Endpoint::unknown;
  std::string method, url;
  nlohmann::json header;   // a POST's protected header
  nlohmann::json payload;  // a POST's payload; null for POST-as-GET
  long status = 0;         // what the fake answered (0: no response)
  std::string nonce_sent;  // the Replay-Nonce of the answer
};

class FakeCa {
 public:
  using Clock = std::function<int64_t()>;
  static constexpr const char* kDirectory = "https://ca.test/directory";
  static constexpr const char* kRootCn = "Fake Root X1";
  static constexpr const char* kAltRootCn = "Fake Alt Root X2";
  static constexpr const char* kIntermediateCn = "Fake Intermediate E1";

  explicit FakeCa(Clock now);
  ~FakeCa();
  FakeCa(const FakeCa&) = delete;
  FakeCa& operator=(const FakeCa&) = delete;

  HttpResponse handle(const HttpRequest& req);
  // A transport that forwards to this fake (which must outlive it): for EngineHooks.
  std::unique_ptr<Transport> transport();

  // --- How the CA behaves (change between requests as a test goes).
  bool renewal_info = true;                 // the directory lists renewalInfo
  bool external_account_required = false;
  std::string eab_kid, eab_hmac_key;        // what a binding must carry (raw HMAC key)
  std::vector<std::string> profiles;        // meta.profiles
  int64_t lifetime = 90 * 86400;            // of the certificates issued (from now())
  bool alternate_chain = false;             // Link rel="alternate" on the certificate
  std::string extra_challenge_types = "dns-01 tls-alpn-01";  // offered besides http-01
  // After finalize, the order answers "processing" this many times (finalize's own answer
  // included), each with processing_retry_after as Retry-After, then "valid" (lowering it
  // lets an order that is processing now finish on its next look).
  unsigned processing_polls = 0;
  std::string processing_retry_after;
  Problem order_error;       // not empty: once its authorizations are valid, the order is invalid
  Problem challenge_error;   // not empty: validation fails with it
  bool reject_replaces = false;  // newOrder with "replaces": 409 alreadyReplaced
  // newOrder "replaces" naming no certificate of this CA: 400 malformed, as Pebble and
  // Boulder answer (false: accepted, and noted as a protocol error).
  bool refuse_unknown_replaces = true;
  // The key authorization the server "fetches" for a token; nullopt: not served. When
  // unset, validation is not checked.
  std::function<std::optional<std::string>(const std::string& token)> fetch_key_authorization;

  // Called with every request before it is answered (to move a test's clock, say).
  std::function<void(Endpoint)> on_request;

  // The renewal window: derived (the last third of the lifetime, two days long), fixed
  // (ari_start..ari_end), malformed (a window that does not parse) or missing (404).
  enum class Ari { derived, fixed, malformed, missing };
  Ari ari = Ari::derived;
  int64_t ari_start = 0, ari_end = 0;
  std::string ari_retry_after;

  // The CA loses its accounts (Pebble restarted, a staging reset): their URLs then answer
  // accountDoesNotExist.
  void forget_accounts();

  // --- Faults: the nth request to e (counting from 1 since the fake was made), or the next
  // `times` ones.
  void fail_nth(Endpoint e, unsigned n, Fault f);
  void fail_next(Endpoint e, Fault f, unsigned times = 1);

  // --- What happened.
  unsigned count(Endpoint e) const;
  const std::vector<Seen>& requests() const { return seen_; }
  std::vector<const Seen*> requests_to(Endpoint e) const;
  const Seen* last(Endpoint e) const;
  // What the client did wrong (a bad signature, a reused nonce, a wrong "url", a CSR that
  // does not match the order...): every test expects none unless it provokes one.
  const std::vector<std::string>& protocol_errors() const { return errors_; }
  // For a test that provokes one: returns them and forgets them.
  std::vector<std::string> take_protocol_errors() {
    std::vector<std::string> out;
    out.swap(errors_);
    return out;
  }
  std::string trace() const;  // every request, one a line, for failure messages

  std::vector<std::string> order_urls() const;
  // A certificate for host from another CA (its own root, unknown to this one), with an
  // authorityKeyIdentifier like any public CA's, and its key (PKCS #8).
  static CertPair foreign_pair(const std::string& host, int64_t not_before, int64_t not_after);
  std::vector<std::string> issued_der() const;  // leaf certificates, oldest first
  // The RFC 9773 certificate identifier, computed here (not by the client's code).
  static std::string ari_id_of(const std::string& leaf_der);
  // The account's JWK thumbprint (RFC 7638), computed here.
  std::string thumbprint(const std::string& account_url) const;
  unsigned key_authorizations_checked() const { return validations_; }

 private:
  struct State;
  HttpResponse route(const HttpRequest& req, Seen& seen);

  std::unique_ptr<State> s_;
  Clock now_;
  std::vector<Seen> seen_;
  std::vector<std::string> errors_;
  std::map<Endpoint, std::map<unsigned, Fault>> faults_;
  std::map<Endpoint, unsigned> counts_;
  std::set<std::string> forgotten_;
  unsigned validations_ = 0;
};

}  // namespace portal::acme::fake
