// The ACME client's reading of a CA's answers (acme/client.cc): the directory, account,
// orders, authorizations, challenges, finalize, certificate download with Link alternates and
// ARI renewal information, through a fake Transport that answers every GET and POST with the
// next response of the input (acme_response.h) and every HEAD with a fresh nonce. Whatever
// the CA says, the client returns a checked object or throws AcmeError, nothing else.
#include <cstdint>
#include <deque>
#include <string>

#include "acme/client.h"
#include "acme/crypto.h"
#include "acme_response.h"
#include "fuzz.h"

using namespace portal;
using namespace portal::acme;

namespace {

constexpr int64_t kNow = 1780000000;

class FuzzTransport : public Transport {
 public:
  explicit FuzzTransport(std::vector<HttpResponse> responses)
      : responses_(responses.begin(), responses.end()), max_requests_(2 * responses.size() + 32) {}

  HttpResponse send(const HttpRequest& req) override {
    // Every GET or POST takes a response or ends its step; a HEAD comes at most once per POST.
    FUZZ_CHECK(++requests_ <= max_requests_);
    if (req.method == "HEAD") {
      HttpResponse res;
      res.status = 200;
      res.headers.emplace("replay-nonce", "bm9uY2U");
      return res;
    }
    if (responses_.empty()) throw TransportError("no more responses");
    HttpResponse res = std::move(responses_.front());
    responses_.pop_front();
    return res;
  }

 private:
  std::deque<HttpResponse> responses_;
  size_t max_requests_;
  size_t requests_ = 0;
};

const Key& account_key() {
  static Key k = Key::generate(KeyType::ecdsa);
  return k;
}

template <typename F>
void step(F f) {
  try {
    f();
  } catch (const AcmeError& e) {
    FUZZ_CHECK(*e.what() != '\0');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzTransport transport(parse_responses(fuzz_input(data, size)));
  Client client(transport, "https://ca.example/dir", [] { return kNow; });
  const Key& key = account_key();

  step([&] {
    const Directory& d = client.directory();
    FUZZ_CHECK(!d.new_nonce.empty() && !d.new_account.empty() && !d.new_order.empty());
  });
  step([&] {
    AccountOptions options;
    options.contact = {"mailto:ops@example.com"};
    FUZZ_CHECK(!client.account(key, options).empty());
  });
  client.use_account(key, "https://ca.example/acct/1");
  Order order;
  order.url = "https://ca.example/order/1";
  order.finalize = "https://ca.example/order/1/finalize";
  step([&] {
    order = client.new_order({"fuzz.example"}, "aki.serial", "classic");
    FUZZ_CHECK(!order.status.empty() && !order.url.empty());
  });
  step([&] {
    Authorization a = client.get_authorization("https://ca.example/authz/1");
    FUZZ_CHECK(!a.status.empty());
    for (const Challenge& c : a.challenges) {
      if (c.type == "http-01") {
        Challenge r = client.respond(c);
        FUZZ_CHECK(r.url == c.url && r.token == c.token);
      }
    }
  });
  step([&] { FUZZ_CHECK(!client.get_order(order.url).status.empty()); });
  step([&] { FUZZ_CHECK(!client.finalize(order, "csr").status.empty()); });
  step([&] { FUZZ_CHECK(!client.download("https://ca.example/cert/1").empty()); });
  step([&] {
    std::optional<RenewalWindow> w = client.renewal_info("aki.serial");
    if (w) FUZZ_CHECK(w->end > w->start);
  });
  return 0;
}
