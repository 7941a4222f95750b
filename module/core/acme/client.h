// An ACME client (RFC 8555), generic over its HTTP transport: directory, nonces (a badNonce
// is retried with the nonce that came with the error), account (with external account
// binding when the CA requires it), orders, authorizations, HTTP-01 challenges, finalize,
// certificate download with alternate chains, and ARI renewal information (RFC 9773).
// Blocking: the engine runs it on its own thread, never on nginx's event loop. Not
// thread-safe: one client per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crypto.h"
#include "http.h"
#include "problem.h"

namespace portal::acme {

struct Directory {
  std::string new_nonce, new_account, new_order, revoke_cert, key_change, renewal_info;
  std::string terms_of_service;
  bool external_account_required = false;
  std::vector<std::string> profiles;  // names from meta.profiles
};

struct AccountOptions {
  std::vector<std::string> contact;  // "mailto:ops@example.com"
  bool agree_to_terms = true;
  std::string eab_kid;               // with eab_hmac_key (raw bytes): external account binding
  std::string eab_hmac_key;
};

struct Challenge {
  std::string type, url, token, status;
  Problem error;
};

struct Authorization {
  std::string url, status, identifier;
  std::vector<Challenge> challenges;
  int64_t retry_after = 0;
};

struct Order {
  std::string url, status;
  std::vector<std::string> authorizations;
  std::string finalize, certificate;
  Problem error;
  int64_t retry_after = 0;
};

struct RenewalWindow {
  int64_t start = 0, end = 0;
  int64_t retry_after = 0;  // when to ask again (Retry-After of the response)
  std::string explanation_url;
};

class Client {
 public:
  using Clock = std::function<int64_t()>;
  Client(Transport& transport, std::string directory_url, Clock now = {});

  // Fetched once; throws AcmeError (transient when the CA cannot be reached or answers
  // something that is not a directory).
  const Directory& directory();

  // Registers the account key (or finds the account it already has) and returns the
  // account URL, which later requests use as "kid".
  std::string account(const Key& key, const AccountOptions& options);
  // An account found before (its URL kept in the state store).
  void use_account(const Key& key, std::string url);

  Order new_order(const std::vector<std::string>& names, const std::string& replaces = {},
                  const std::string& profile = {});
  Order get_order(const std::string& url);
  Authorization get_authorization(const std::string& url);
  // Tells the CA the challenge is ready to be validated.
  Challenge respond(const Challenge& challenge);
  Order finalize(const Order& order, const std::string& csr_der);
  // The certificate chain in PEM, then those of its Link rel="alternate" chains.
  std::vector<std::string> download(const std::string& certificate_url);
  // The CA's suggested renewal window for a certificate (RFC 9773); nullopt when the
  // directory has no renewalInfo. Throws AcmeError::transient on a malformed window.
  std::optional<RenewalWindow> renewal_info(const std::string& ari_id);

  // The key authorization of an HTTP-01 token (RFC 8555 §8.1).
  std::string key_authorization(const std::string& token) const;
  int64_t now() const { return now_(); }

  // How many badNonce responses were retried (for tests and logs).
  unsigned bad_nonce_retries() const { return bad_nonce_retries_; }

 private:
  HttpResponse get(const std::string& url);
  // A JWS POST (payload "" is POST-as-GET); with use_jwk, signed with the key's JWK instead
  // of the account URL (newAccount). Throws AcmeError for a problem response.
  HttpResponse post(const std::string& url, const std::string& payload, bool use_jwk = false);
  std::string take_nonce();
  void keep_nonce(const HttpResponse& res);
  [[noreturn]] void fail(const HttpRequest& req, const HttpResponse& res);

  Transport& transport_;
  std::string directory_url_;
  Clock now_;
  std::optional<Directory> directory_;
  std::string nonce_;
  const Key* key_ = nullptr;
  std::string kid_;
  unsigned bad_nonce_retries_ = 0;
};

}  // namespace portal::acme
