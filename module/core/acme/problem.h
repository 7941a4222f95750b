// ACME errors: the problem document of RFC 7807 / RFC 8555 §6.7, and the error the client
// throws, classed as nginx-acme and mod_md do: invalid (stop, try again after the backoff),
// rate limited (wait as told), transient (back off with jitter).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace portal::acme {

struct Problem {
  std::string type;        // "urn:ietf:params:acme:error:rateLimited", or any URI
  std::string detail;
  long status = 0;
  std::string identifier;  // of a subproblem: the name it is about
  std::vector<Problem> subproblems;

  bool empty() const { return type.empty() && detail.empty(); }
  // "rateLimited" for ACME's own types, the whole URI otherwise.
  std::string short_type() const;
  bool is(const char* acme_type) const;  // is("badNonce")
  // One line: "rateLimited: too many orders (a.example: dns: no such host)".
  std::string summary() const;

  nlohmann::json to_json() const;
  // Lenient: missing or mistyped members are left empty; never throws.
  static Problem from_json(const nlohmann::json& j);
  // The same without subproblems.
  static Problem from_json_flat(const nlohmann::json& j);
};

enum class ErrorKind {
  invalid,           // the CA refused (a 4xx problem): try again after the backoff
  rate_limited,      // 429 / rateLimited: not before retry_after
  transient,         // no response, 5xx, a response that does not parse
  already_replaced,  // the certificate named in "replaces" was replaced already
  cancelled,         // the engine is stopping
};

const char* kind_name(ErrorKind k);

class AcmeError : public std::runtime_error {
 public:
  AcmeError(ErrorKind kind, const std::string& what, Problem problem = {}, int64_t retry_after = 0)
      : std::runtime_error(what), kind_(kind), problem_(std::move(problem)),
        retry_after_(retry_after) {}
  ErrorKind kind() const { return kind_; }
  const Problem& problem() const { return problem_; }
  int64_t retry_after() const { return retry_after_; }  // Unix time; 0 when not given

 private:
  ErrorKind kind_;
  Problem problem_;
  int64_t retry_after_;
};

// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as a Unix time; 0 when
// absent or unparsable.
int64_t parse_retry_after(const std::string& value, int64_t now);

}  // namespace portal::acme
