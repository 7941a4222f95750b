// The ACME client's HTTP over libcurl: HTTPS verified against a CA bundle (the system's or
// the operator's portal_acme_ca_certificate), timeouts, and a cancel hook so that stopping
// the engine never waits for a slow CA.
#pragma once

#include <functional>
#include <string>

#include "http.h"

namespace portal::acme {

struct CurlOptions {
  std::string ca_file;                 // empty: the system's trust store
  long connect_timeout_ms = 10000;
  long timeout_ms = 60000;
  std::string user_agent = "nginx-portal";
  std::function<bool()> cancelled;     // polled during transfers; true aborts them
};

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(CurlOptions options);
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  HttpResponse send(const HttpRequest& req) override;

 private:
  CurlOptions options_;
  void* curl_;  // CURL*, reused so connections are kept alive
};

}  // namespace portal::acme
