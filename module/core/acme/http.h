// The ACME client's HTTP, behind an interface: libcurl in production (curl_transport.h), a
// fake CA in the unit tests.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace portal::acme {

struct HttpRequest {
  std::string method;  // "GET", "HEAD", "POST"
  std::string url;
  std::string body;
  std::string content_type;  // "application/jose+json" for ACME POSTs
};

struct HttpResponse {
  long status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-case, values trimmed
  std::string body;

  // The first value of a header, "" when absent.
  std::string header(const std::string& name) const;
  std::vector<std::string> headers_named(const std::string& name) const;
};

// No response at all (connection refused, TLS failure, timeout, cancelled).
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Throws TransportError when no response arrives.
  virtual HttpResponse send(const HttpRequest& req) = 0;
};

// The targets of Link headers with rel=REL ("alternate", "up", "index"), as given (they may be
// relative; the ACME servers in use send absolute URLs).
std::vector<std::string> link_targets(const HttpResponse& res, const std::string& rel);

}  // namespace portal::acme
