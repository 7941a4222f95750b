#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "acme/client.h"
#include "acme/crypto.h"
#include "acme/http.h"
#include "acme/problem.h"
#include "acme/status.h"
#include "fake_ca.h"

using namespace portal;
using namespace portal::acme;
using portal::acme::fake::Endpoint;
using portal::acme::fake::FakeCa;
using portal::acme::fake::Fault;
using nlohmann::json;

namespace {

constexpr int64_t kT0 = 1780000000;  // 2026-05-28T20:26:40Z

const Key& account_key() {
  static Key k = Key::generate(KeyType::ecdsa);
  return k;
}

HttpResponse with_links(std::vector<std::string> values) {
  HttpResponse res;
  res.status = 200;
  for (std::string& v : values) res.headers.emplace("link", std::move(v));
  return res;
}

class AcmeClientTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_TRUE(ca_.protocol_errors().empty()) << ca_.trace();
  }

  // Everything up to a valid order for names; returns it.
  Order valid_order(const std::vector<std::string>& names, const Key& cert_key) {
    if (account_url_.empty()) account_url_ = client_.account(account_key(), AccountOptions{});
    Order o = client_.new_order(names);
    for (const std::string& url : o.authorizations) {
      Authorization a = client_.get_authorization(url);
      for (const Challenge& c : a.challenges)
        if (c.type == "http-01") client_.respond(c);
    }
    o = client_.get_order(o.url);
    EXPECT_EQ(o.status, "ready") << ca_.trace();
    o = client_.finalize(o, make_csr(cert_key, names));
    EXPECT_EQ(o.status, "valid") << ca_.trace();
    return o;
  }

  // The error the call throws (fails the test when it throws none).
  template <typename F>
  AcmeError error_of(F&& fn) {
    try {
      fn();
    } catch (const AcmeError& e) {
      return e;
    }
    ADD_FAILURE() << "no AcmeError";
    return AcmeError(ErrorKind::cancelled, "none");
  }

  int64_t clock_ = kT0;
  FakeCa ca_{[this] { return clock_; }};
  std::unique_ptr<Transport> transport_ = ca_.transport();
  Client client_{*transport_, FakeCa::kDirectory, [this] { return clock_; }};
  std::string account_url_;
};

}  // namespace

// --- Problem documents, Retry-After, Link headers

TEST(AcmeProblem, FromJsonKeepsTypeDetailStatusAndSubproblems) {
  // RFC 8555 §6.7.1.
  json j = json::parse(R"({
    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
    "detail": "Some of the identifiers requested were rejected",
    "status": 400,
    "subproblems": [
      {"type": "urn:ietf:params:acme:error:malformed",
       "detail": "Invalid underscore in DNS name \"_example.org\"",
       "identifier": {"type": "dns", "value": "_example.org"}},
      {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
       "detail": "This CA will not issue for \"example.net\"",
       "identifier": {"type": "dns", "value": "example.net"}}
    ]})");
  Problem p = Problem::from_json(j);
  EXPECT_EQ(p.type, "urn:ietf:params:acme:error:rejectedIdentifier");
  EXPECT_EQ(p.short_type(), "rejectedIdentifier");
  EXPECT_TRUE(p.is("rejectedIdentifier"));
  EXPECT_FALSE(p.is("malformed"));
  EXPECT_EQ(p.status, 400);
  ASSERT_EQ(p.subproblems.size(), 2u);
  EXPECT_EQ(p.subproblems[0].identifier, "_example.org");
  EXPECT_EQ(p.subproblems[0].short_type(), "malformed");
  EXPECT_EQ(p.subproblems[1].identifier, "example.net");
  EXPECT_EQ(p.summary(),
            "rejectedIdentifier: Some of the identifiers requested were rejected "
            "(_example.org: malformed: Invalid underscore in DNS name \"_example.org\"; "
            "example.net: rejectedIdentifier: This CA will not issue for \"example.net\")");

  Problem again = Problem::from_json(p.to_json());
  EXPECT_EQ(again.summary(), p.summary());
  EXPECT_EQ(again.status, 400);
  ASSERT_EQ(again.subproblems.size(), 2u);
  EXPECT_EQ(again.subproblems[1].identifier, "example.net");
}

TEST(AcmeProblem, OtherTypesAndLenientParsing) {
  Problem p = Problem::from_json(
      json{{"type", "https://example.com/probs/out-of-credit"}, {"detail", "no credit"}});
  EXPECT_EQ(p.short_type(), "https://example.com/probs/out-of-credit");
  EXPECT_EQ(p.summary(), "https://example.com/probs/out-of-credit: no credit");

  EXPECT_TRUE(Problem::from_json(json::array({1, 2})).empty());
  EXPECT_TRUE(Problem::from_json(json()).empty());
  Problem odd = Problem::from_json(json{{"type", 7},
                                        {"detail", "only this"},
                                        {"status", "400"},
                                        {"identifier", "a.example"},
                                        {"subproblems", "none"}});
  EXPECT_EQ(odd.type, "");
  EXPECT_EQ(odd.detail, "only this");
  EXPECT_EQ(odd.status, 0);
  EXPECT_EQ(odd.identifier, "");
  EXPECT_TRUE(odd.subproblems.empty());
  EXPECT_EQ(odd.summary(), "only this");
  EXPECT_EQ(Problem{}.summary(), "");
}

TEST(AcmeProblem, StatusRecordKeepsTheProblem) {
  AcmeStatus st;
  st.state = Lifecycle::failed;
  st.detail = "order failed";
  st.problem.type = "urn:ietf:params:acme:error:unauthorized";
  st.problem.detail = "no";
  Problem sub;
  sub.type = "urn:ietf:params:acme:error:dns";
  sub.identifier = "a.example";
  st.problem.subproblems.push_back(sub);
  st.failures = 3;
  st.next_attempt = kT0 + 60;
  st.ari_start = 1;
  st.ari_end = 2;
  st.ari_next_check = 3;
  AcmeStatus back = AcmeStatus::from_json(st.to_json());
  EXPECT_EQ(back.to_json(), st.to_json());
  EXPECT_EQ(back.state, Lifecycle::failed);
  EXPECT_EQ(back.problem.summary(), "unauthorized: no (a.example: dns)");
  EXPECT_EQ(AcmeStatus::from_json("not json").state, Lifecycle::pending_dns);
}

TEST(AcmeRetryAfter, SecondsAndHttpDate) {
  EXPECT_EQ(parse_retry_after("120", kT0), kT0 + 120);
  EXPECT_EQ(parse_retry_after("0", kT0), kT0);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", kT0), 1445412480);
  EXPECT_EQ(parse_retry_after("Thu, 28 May 2026 21:26:40 GMT", kT0), kT0 + 3600);
  EXPECT_EQ(parse_retry_after("", kT0), 0);
  EXPECT_EQ(parse_retry_after("soon", kT0), 0);
  EXPECT_EQ(parse_retry_after("-5", kT0), 0);
  EXPECT_EQ(parse_retry_after("1.5", kT0), 0);
  EXPECT_EQ(parse_retry_after("99999999999", kT0), 0);  // absurd: ignored, not overflowed
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT trailing", kT0), 0);
}

TEST(AcmeLinks, TargetsByRelation) {
  HttpResponse res = with_links(
      {"<https://ca.test/cert/1/alt>;rel=\"alternate\", <https://ca.test/dir>;rel=\"index\"",
       "<https://ca.test/cert/1/alt2>; rel=alternate",
       "<https://ca.test/authz/1>;REL=\"UP\""});
  EXPECT_EQ(link_targets(res, "alternate"),
            (std::vector<std::string>{"https://ca.test/cert/1/alt", "https://ca.test/cert/1/alt2"}));
  EXPECT_EQ(link_targets(res, "index"), std::vector<std::string>{"https://ca.test/dir"});
  EXPECT_EQ(link_targets(res, "up"), std::vector<std::string>{"https://ca.test/authz/1"});
  EXPECT_TRUE(link_targets(res, "next").empty());
  EXPECT_TRUE(link_targets(with_links({}), "alternate").empty());
  EXPECT_TRUE(link_targets(with_links({"garbage", "<unterminated;rel=alternate"}), "alternate").empty());
  // A parameter before rel=, and one after.
  EXPECT_EQ(link_targets(with_links({"<https://x/a>; title=\"t\"; rel=\"alternate\"; type=pem"}),
                         "alternate"),
            std::vector<std::string>{"https://x/a"});
}

// RFC 8288 §3.3: rel may hold several relation types separated by spaces.
// RFC 8288: one rel may list several relation types.
TEST(AcmeLinks, SeveralRelationTypesInOneRel) {
  EXPECT_EQ(link_targets(with_links({"<https://x/a>;rel=\"index alternate\""}), "alternate"),
            std::vector<std::string>{"https://x/a"});
}

// RFC 9110 §5.6.7: a recipient must accept the obsolete HTTP-date forms too.
// RFC 9110 §5.6.7: the obsolete HTTP-date forms are still accepted.
TEST(AcmeRetryAfter, ObsoleteHttpDateForms) {
  EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", kT0), 1445412480);
  EXPECT_EQ(parse_retry_after("Wed Oct 21 07:28:00 2015", kT0), 1445412480);
}

// --- The client against the fake CA

TEST_F(AcmeClientTest, DirectoryAndItsMeta) {
  ca_.profiles = {"classic", "shortlived"};
  ca_.external_account_required = true;
  const Directory& d = client_.directory();
  EXPECT_EQ(d.new_nonce, "https://ca.test/acme/new-nonce");
  EXPECT_EQ(d.new_account, "https://ca.test/acme/new-account");
  EXPECT_EQ(d.new_order, "https://ca.test/acme/new-order");
  EXPECT_EQ(d.renewal_info, "https://ca.test/acme/renewal-info");
  EXPECT_EQ(d.terms_of_service, "https://ca.test/terms");
  EXPECT_TRUE(d.external_account_required);
  EXPECT_EQ(d.profiles, (std::vector<std::string>{"classic", "shortlived"}));
  client_.directory();
  EXPECT_EQ(ca_.count(Endpoint::directory), 1u);  // fetched once
}

TEST_F(AcmeClientTest, SomethingThatIsNotADirectoryIsTransient) {
  ca_.fail_next(Endpoint::directory, Fault{200, "", "", "", {}});  // an HTML page
  EXPECT_EQ(error_of([&] { client_.directory(); }).kind(), ErrorKind::transient);
  // Not cached: the next call asks again and succeeds.
  EXPECT_EQ(client_.directory().new_order, "https://ca.test/acme/new-order");
}

TEST_F(AcmeClientTest, IssuesACertificate) {
  AccountOptions options;
  options.contact = {"mailto:ops@example.com"};
  std::string url = client_.account(account_key(), options);
  EXPECT_EQ(url, "https://ca.test/acme/acct/1");
  EXPECT_EQ(ca_.last(Endpoint::new_account)->payload["contact"],
            json::array({"mailto:ops@example.com"}));
  EXPECT_EQ(ca_.last(Endpoint::new_account)->payload["termsOfServiceAgreed"], true);

  Order o = client_.new_order({"a.example"});
  EXPECT_EQ(o.url, "https://ca.test/acme/order/1");
  EXPECT_EQ(o.status, "pending");
  ASSERT_EQ(o.authorizations.size(), 1u);
  EXPECT_EQ(o.finalize, "https://ca.test/acme/finalize/1");
  EXPECT_FALSE(ca_.last(Endpoint::new_order)->payload.contains("replaces"));
  EXPECT_FALSE(ca_.last(Endpoint::new_order)->payload.contains("profile"));

  Authorization a = client_.get_authorization(o.authorizations[0]);
  EXPECT_EQ(a.status, "pending");
  EXPECT_EQ(a.identifier, "a.example");
  ASSERT_EQ(a.challenges.size(), 3u);
  const Challenge* http = nullptr;
  for (const Challenge& c : a.challenges)
    if (c.type == "http-01") http = &c;
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(client_.key_authorization(http->token), http->token + "." + ca_.thumbprint(url));

  Challenge done = client_.respond(*http);
  EXPECT_EQ(done.status, "valid");
  EXPECT_EQ(ca_.last(Endpoint::challenge)->payload, json::object());
  EXPECT_EQ(client_.get_authorization(o.authorizations[0]).status, "valid");

  o = client_.get_order(o.url);
  EXPECT_EQ(o.status, "ready");
  Key cert_key = Key::generate(KeyType::ecdsa);
  o = client_.finalize(o, make_csr(cert_key, {"a.example"}));
  EXPECT_EQ(o.status, "valid");
  EXPECT_EQ(o.url, "https://ca.test/acme/order/1");
  ASSERT_FALSE(o.certificate.empty());

  std::vector<std::string> chains = client_.download(o.certificate);
  ASSERT_EQ(chains.size(), 1u);
  std::vector<std::string> der = pem_chain_to_der(chains[0]);
  ASSERT_EQ(der.size(), 2u);
  EXPECT_EQ(der[0], ca_.issued_der().at(0));
  EXPECT_TRUE(key_matches(cert_key, der[0]));
  CertFacts f = cert_facts(der[0]);
  EXPECT_EQ(f.dns_names, std::vector<std::string>{"a.example"});
  EXPECT_EQ(f.issuer_cn, FakeCa::kIntermediateCn);
  EXPECT_EQ(f.not_before, kT0);
  EXPECT_EQ(f.not_after, kT0 + ca_.lifetime);
  EXPECT_EQ(f.ari_id, FakeCa::ari_id_of(der[0]));

  EXPECT_EQ(ca_.count(Endpoint::new_nonce), 1u);  // every later nonce came with a response
  EXPECT_EQ(client_.bad_nonce_retries(), 0u);
}

TEST_F(AcmeClientTest, AnRsaAccountSignsWithRs256) {
  Key rsa = Key::generate(KeyType::rsa, 2048);
  client_.account(rsa, AccountOptions{});
  EXPECT_EQ(ca_.last(Endpoint::new_account)->header["alg"], "RS256");
  Order o = client_.new_order({"a.example"});
  EXPECT_EQ(ca_.last(Endpoint::new_order)->status, 201);
  EXPECT_EQ(ca_.last(Endpoint::new_order)->header["kid"], "https://ca.test/acme/acct/1");
}

TEST_F(AcmeClientTest, TheSameKeyFindsTheSameAccount) {
  std::string first = client_.account(account_key(), AccountOptions{});
  Client other(*transport_, FakeCa::kDirectory, [this] { return clock_; });
  EXPECT_EQ(other.account(account_key(), AccountOptions{}), first);
  EXPECT_EQ(ca_.last(Endpoint::new_account)->status, 200);
  // An account URL kept from before is used as it is.
  Client third(*transport_, FakeCa::kDirectory, [this] { return clock_; });
  third.use_account(account_key(), first);
  third.new_order({"b.example"});
  EXPECT_EQ(ca_.count(Endpoint::new_account), 2u);
  EXPECT_EQ(ca_.last(Endpoint::new_order)->header["kid"], first);
}

TEST_F(AcmeClientTest, ExternalAccountBinding) {
  ca_.external_account_required = true;
  ca_.eab_kid = "kid-1";
  ca_.eab_hmac_key = std::string("\x01\x02secret\xff", 9);
  AcmeError e = error_of([&] { client_.account(account_key(), AccountOptions{}); });
  EXPECT_EQ(e.kind(), ErrorKind::invalid);
  EXPECT_NE(std::string(e.what()).find("external account binding"), std::string::npos) << e.what();
  EXPECT_EQ(ca_.count(Endpoint::new_account), 0u);  // refused before asking

  AccountOptions o;
  o.eab_kid = "kid-1";
  o.eab_hmac_key = ca_.eab_hmac_key;
  EXPECT_EQ(client_.account(account_key(), o), "https://ca.test/acme/acct/1");
  EXPECT_EQ(ca_.last(Endpoint::new_account)->status, 201);
  EXPECT_TRUE(ca_.last(Endpoint::new_account)->payload.contains("externalAccountBinding"));
}

TEST_F(AcmeClientTest, BadNonceIsRetriedWithTheNonceOfTheError) {
  client_.account(account_key(), AccountOptions{});
  ca_.fail_next(Endpoint::new_order, Fault{400, "badNonce", "stale nonce", "", {}});
  Order o = client_.new_order({"a.example"});
  EXPECT_EQ(o.status, "pending");
  EXPECT_EQ(client_.bad_nonce_retries(), 1u);
  std::vector<const fake::Seen*> tries = ca_.requests_to(Endpoint::new_order);
  ASSERT_EQ(tries.size(), 2u);
  EXPECT_EQ(tries[0]->status, 400);
  EXPECT_EQ(tries[1]->status, 201);
  EXPECT_EQ(tries[1]->header["nonce"], tries[0]->nonce_sent);
  EXPECT_EQ(ca_.count(Endpoint::new_nonce), 1u);
}

TEST_F(AcmeClientTest, ConsecutiveBadNoncesAreRetried) {
  client_.account(account_key(), AccountOptions{});
  ca_.fail_next(Endpoint::new_order, Fault{400, "badNonce", "", "", {}}, 3);
  client_.new_order({"a.example"});
  EXPECT_EQ(client_.bad_nonce_retries(), 3u);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 4u);
}

TEST_F(AcmeClientTest, BadNonceGivesUpAfterTwentyRetries) {
  client_.account(account_key(), AccountOptions{});
  ca_.fail_next(Endpoint::new_order, Fault{400, "badNonce", "always", "", {}}, 100);
  AcmeError e = error_of([&] { client_.new_order({"a.example"}); });
  EXPECT_EQ(e.kind(), ErrorKind::invalid);
  EXPECT_TRUE(e.problem().is("badNonce"));
  EXPECT_EQ(client_.bad_nonce_retries(), 20u);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 21u);
}

TEST_F(AcmeClientTest, ErrorsAreClassed) {
  client_.account(account_key(), AccountOptions{});
  auto order_error = [&](Fault f) {
    ca_.fail_next(Endpoint::new_order, std::move(f));
    return error_of([&] { client_.new_order({"a.example"}); });
  };

  AcmeError e = order_error(Fault{429, "rateLimited", "too many new orders", "30", {}});
  EXPECT_EQ(e.kind(), ErrorKind::rate_limited);
  EXPECT_EQ(e.retry_after(), kT0 + 30);
  EXPECT_EQ(e.problem().detail, "too many new orders");
  EXPECT_EQ(e.problem().status, 429);

  e = order_error(Fault{429, "", "", "Thu, 28 May 2026 22:26:40 GMT", {}});  // no problem body
  EXPECT_EQ(e.kind(), ErrorKind::rate_limited);
  EXPECT_EQ(e.retry_after(), kT0 + 7200);

  e = order_error(Fault{403, "rateLimited", "by type only", "", {}});
  EXPECT_EQ(e.kind(), ErrorKind::rate_limited);
  EXPECT_EQ(e.retry_after(), 0);

  e = order_error(Fault{503, "", "", "", {}});
  EXPECT_EQ(e.kind(), ErrorKind::transient);
  EXPECT_EQ(e.problem().status, 503);
  EXPECT_NE(std::string(e.what()).find("HTTP 503"), std::string::npos) << e.what();

  e = order_error(Fault{500, "serverInternal", "oops", "", {}});
  EXPECT_EQ(e.kind(), ErrorKind::transient);

  e = order_error(Fault{409, "alreadyReplaced", "replaced already", "", {}});
  EXPECT_EQ(e.kind(), ErrorKind::already_replaced);

  Problem sub;
  sub.type = "urn:ietf:params:acme:error:caa";
  sub.detail = "CAA forbids";
  sub.identifier = "a.example";
  e = order_error(Fault{400, "rejectedIdentifier", "refused", "", {sub}});
  EXPECT_EQ(e.kind(), ErrorKind::invalid);
  ASSERT_EQ(e.problem().subproblems.size(), 1u);
  EXPECT_EQ(e.problem().subproblems[0].identifier, "a.example");
  EXPECT_NE(std::string(e.what()).find("rejectedIdentifier: refused (a.example: caa: CAA forbids)"),
            std::string::npos)
      << e.what();

  e = order_error(Fault{0, "", "", "", {}});  // no response at all
  EXPECT_EQ(e.kind(), ErrorKind::transient);

  // And after all that, the client still works (its nonce is still good, or a HEAD gets one).
  EXPECT_EQ(client_.new_order({"a.example"}).status, "pending");
}

TEST_F(AcmeClientTest, NewNonceFailure) {
  ca_.fail_next(Endpoint::new_nonce, Fault{503, "", "", "", {}});
  AcmeError e = error_of([&] { client_.account(account_key(), AccountOptions{}); });
  EXPECT_EQ(e.kind(), ErrorKind::transient);
  EXPECT_EQ(client_.account(account_key(), AccountOptions{}), "https://ca.test/acme/acct/1");
}

TEST_F(AcmeClientTest, ProfileAndReplacesAreSent) {
  ca_.profiles = {"shortlived"};
  Key k = Key::generate(KeyType::ecdsa);
  Order first = valid_order({"a.example"}, k);
  std::string leaf = pem_chain_to_der(client_.download(first.certificate)[0])[0];
  std::string id = cert_facts(leaf).ari_id;
  client_.new_order({"a.example"}, id, "shortlived");
  const fake::Seen* s = ca_.last(Endpoint::new_order);
  EXPECT_EQ(s->payload["replaces"], id);
  EXPECT_EQ(s->payload["profile"], "shortlived");
  EXPECT_EQ(s->status, 201);
}

TEST_F(AcmeClientTest, NoRenewalInfoInTheDirectory) {
  ca_.renewal_info = false;
  Key k = Key::generate(KeyType::ecdsa);
  Order o = valid_order({"a.example"}, k);
  std::string leaf = pem_chain_to_der(client_.download(o.certificate)[0])[0];
  std::string id = cert_facts(leaf).ari_id;
  EXPECT_FALSE(client_.renewal_info(id).has_value());
  EXPECT_EQ(ca_.count(Endpoint::renewal_info), 0u);
  client_.new_order({"a.example"}, id);  // "replaces" is an ARI member: not sent
  EXPECT_FALSE(ca_.last(Endpoint::new_order)->payload.contains("replaces"));
}

TEST_F(AcmeClientTest, RenewalInfo) {
  Key k = Key::generate(KeyType::ecdsa);
  Order o = valid_order({"a.example"}, k);
  std::string leaf = pem_chain_to_der(client_.download(o.certificate)[0])[0];
  std::string id = cert_facts(leaf).ari_id;
  ASSERT_EQ(id, FakeCa::ari_id_of(leaf));
  ASSERT_EQ(id.find('='), std::string::npos);
  EXPECT_EQ(id.substr(id.find('.') + 1, 2), "AP");  // the serial's leading zero byte is kept

  ca_.ari_retry_after = "21600";
  std::optional<RenewalWindow> w = client_.renewal_info(id);
  ASSERT_TRUE(w.has_value());
  int64_t start = kT0 + ca_.lifetime - ca_.lifetime / 3;
  EXPECT_EQ(w->start, start);
  EXPECT_EQ(w->end, start + 2 * 86400);
  EXPECT_EQ(w->retry_after, kT0 + 21600);
  EXPECT_EQ(w->explanation_url, "https://ca.test/ari");
  EXPECT_EQ(ca_.last(Endpoint::renewal_info)->url, "https://ca.test/acme/renewal-info/" + id);

  ca_.ari = FakeCa::Ari::fixed;
  ca_.ari_start = kT0 + 100;
  ca_.ari_end = kT0 + 100;  // empty window: malformed
  EXPECT_EQ(error_of([&] { client_.renewal_info(id); }).kind(), ErrorKind::transient);
  ca_.ari = FakeCa::Ari::malformed;
  EXPECT_EQ(error_of([&] { client_.renewal_info(id); }).kind(), ErrorKind::transient);
  ca_.ari = FakeCa::Ari::missing;
  EXPECT_EQ(error_of([&] { client_.renewal_info(id); }).kind(), ErrorKind::invalid);
  ca_.fail_next(Endpoint::renewal_info, Fault{503, "", "", "60", {}});
  AcmeError e = error_of([&] { client_.renewal_info(id); });
  EXPECT_EQ(e.kind(), ErrorKind::transient);
  EXPECT_EQ(e.retry_after(), kT0 + 60);
}

TEST_F(AcmeClientTest, ProcessingOrderCarriesRetryAfter) {
  ca_.processing_polls = 2;
  ca_.processing_retry_after = "3";
  client_.account(account_key(), AccountOptions{});
  Order o = client_.new_order({"a.example"});
  Authorization a = client_.get_authorization(o.authorizations[0]);
  for (const Challenge& c : a.challenges)
    if (c.type == "http-01") client_.respond(c);
  o = client_.get_order(o.url);
  Key k = Key::generate(KeyType::ecdsa);
  o = client_.finalize(o, make_csr(k, {"a.example"}));
  EXPECT_EQ(o.status, "processing");
  EXPECT_EQ(o.retry_after, kT0 + 3);
  EXPECT_TRUE(o.certificate.empty());
  o = client_.get_order(o.url);
  EXPECT_EQ(o.status, "processing");
  o = client_.get_order(o.url);
  EXPECT_EQ(o.status, "valid");
  EXPECT_EQ(o.retry_after, 0);
  EXPECT_FALSE(o.certificate.empty());
}

TEST_F(AcmeClientTest, FinalizeOfAnOrderThatIsNotReady) {
  client_.account(account_key(), AccountOptions{});
  Order o = client_.new_order({"a.example"});
  Key k = Key::generate(KeyType::ecdsa);
  AcmeError e = error_of([&] { client_.finalize(o, make_csr(k, {"a.example"})); });
  EXPECT_EQ(e.kind(), ErrorKind::invalid);
  EXPECT_TRUE(e.problem().is("orderNotReady"));
  // The fake notes this as the client's mistake; here it is the point of the test.
  EXPECT_EQ(ca_.take_protocol_errors().size(), 1u);
}

TEST_F(AcmeClientTest, AlternateChains) {
  ca_.alternate_chain = true;
  Key k = Key::generate(KeyType::ecdsa);
  Order o = valid_order({"a.example"}, k);
  std::vector<std::string> chains = client_.download(o.certificate);
  ASSERT_EQ(chains.size(), 2u);
  std::vector<std::string> def = pem_chain_to_der(chains[0]), alt = pem_chain_to_der(chains[1]);
  EXPECT_EQ(def[0], alt[0]);
  EXPECT_EQ(cert_facts(def[1]).issuer_cn, FakeCa::kRootCn);
  EXPECT_EQ(cert_facts(alt[1]).issuer_cn, FakeCa::kAltRootCn);

  // An alternate that cannot be fetched leaves the default chain.
  ca_.fail_nth(Endpoint::certificate, ca_.count(Endpoint::certificate) + 2, Fault{500, "", "", "", {}});
  chains = client_.download(o.certificate);
  ASSERT_EQ(chains.size(), 1u);
  EXPECT_EQ(pem_chain_to_der(chains[0])[0], def[0]);
}

// The fake's checks are not vacuous: a signature over other bytes, or a key authorization the
// server cannot fetch, are refused.
TEST_F(AcmeClientTest, TheFakeRefusesWhatARealCaWould) {
  std::string url = client_.account(account_key(), AccountOptions{});
  HttpResponse head = transport_->send(HttpRequest{"HEAD", "https://ca.test/acme/new-nonce", "", ""});
  json header = {{"alg", "ES256"},
                 {"nonce", head.header("replay-nonce")},
                 {"url", "https://ca.test/acme/new-order"},
                 {"kid", url}};
  json jws = json::parse(jws_sign(account_key(), header.dump(),
                                  R"({"identifiers":[{"type":"dns","value":"a.example"}]})"));
  jws["payload"] = b64url(R"({"identifiers":[{"type":"dns","value":"evil.example"}]})");
  HttpResponse res = transport_->send(
      HttpRequest{"POST", "https://ca.test/acme/new-order", jws.dump(), "application/jose+json"});
  EXPECT_EQ(res.status, 400);
  std::vector<std::string> errors = ca_.take_protocol_errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("signature"), std::string::npos) << errors[0];

  ca_.fetch_key_authorization = [](const std::string&) { return std::optional<std::string>(); };
  Order o = client_.new_order({"a.example"});
  Authorization a = client_.get_authorization(o.authorizations.at(0));
  for (const Challenge& c : a.challenges) {
    if (c.type != "http-01") continue;
    EXPECT_EQ(client_.respond(c).status, "invalid");
  }
  a = client_.get_authorization(o.authorizations.at(0));
  EXPECT_EQ(a.status, "invalid");
  EXPECT_EQ(ca_.take_protocol_errors().size(), 1u);
  EXPECT_EQ(client_.get_order(o.url).status, "invalid");
}
