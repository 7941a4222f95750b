#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "acme/crypto.h"
#include "acme/engine.h"
#include "acme/status.h"
#include "fake_ca.h"
#include "store/snapshot.h"
#include "store/state.h"

using namespace portal;
using namespace portal::acme;
using portal::acme::fake::Endpoint;
using portal::acme::fake::FakeCa;
using portal::acme::fake::Fault;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kT0 = 1780000000;  // 2026-05-28T20:26:40Z
constexpr int64_t kDay = 86400;
constexpr const char* kHost = "a.example";

class Lines : public Logger {
 public:
  void log(LogLevel, const std::string& line) override { lines.push_back(line); }
  bool has(const std::string& part) const {
    for (const std::string& l : lines)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
  std::string text() const {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
  }
  std::vector<std::string> lines;
};

Fault fault(long status, std::string type = "", std::string detail = "",
            std::string retry_after = "") {
  return Fault{status, std::move(type), std::move(detail), std::move(retry_after), {}};
}

Problem problem(const std::string& type, const std::string& detail,
                const std::string& identifier = "") {
  Problem p;
  p.type = "urn:ietf:params:acme:error:" + type;
  p.detail = detail;
  p.identifier = identifier;
  return p;
}

class AcmeEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portal-acme-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    snapshot_ = std::make_unique<SnapshotStore>(dir_, true);
    state_ = std::make_unique<StateStore>(dir_, true);
    put_domain(kHost);
    // What the CA's validation server would fetch from any worker: the state store's
    // challenges table, read through a second StateStore on the same environment.
    ca_.fetch_key_authorization = [this](const std::string& token) {
      std::optional<std::string> v;
      state_->read([&](const StateTxn& tx) { v = tx.get(StateTable::challenges, token); });
      return v;
    };
    config_.data_dir = dir_;
    config_.directory_url = FakeCa::kDirectory;
    config_.contact = {"mailto:ops@example.com"};
    config_.where = "unit test";
    config_.poll_ms = 10;
  }

  void TearDown() override {
    engine_.reset();
    EXPECT_TRUE(ca_.protocol_errors().empty()) << ca_.trace();
    state_.reset();
    snapshot_.reset();
    fs::remove_all(dir_);
  }

  void put_domain(const std::string& host, DomainStatus status = DomainStatus::active) {
    Domain d;
    d.host = host;
    d.brand = "Brand " + host;
    d.access = {"cdr"};
    d.status = status;
    d.created = d.updated = kT0;
    snapshot_->write([&](SnapshotTxn& tx) { tx.put(d); });
  }
  void remove_domain(const std::string& host) {
    snapshot_->write([&](SnapshotTxn& tx) { tx.remove(host); });
  }

  Engine& engine() {
    if (!engine_) start();
    return *engine_;
  }
  void start() {
    EngineHooks h;
    h.transport = ca_.transport();
    h.dns = [this](const std::string& host) {
      dns_asked_.push_back(host);
      auto it = dns_by_host_.find(host);
      return DnsCheckResult{it == dns_by_host_.end() ? dns_ : it->second, "fake DNS says so"};
    };
    h.now = [this] { return clock_; };
    h.random = [this] { return random_; };
    engine_ = std::make_unique<Engine>(config_, log_, std::move(h));
  }
  // The engine stops (a crash, an nginx reload) and another starts on the same data.
  void restart() {
    engine_.reset();
    start();
  }

  AcmeStatus status(const std::string& host = kHost) { return engine().status(host); }
  std::optional<CertRecord> cert(const std::string& host = kHost) {
    std::optional<CertRecord> r;
    state_->read([&](const StateTxn& tx) { r = tx.get_cert(host); });
    return r;
  }
  std::optional<std::string> table(StateTable t, const std::string& key) {
    std::optional<std::string> v;
    state_->read([&](const StateTxn& tx) { v = tx.get(t, key); });
    return v;
  }
  size_t table_size(StateTable t) {
    size_t n = 0;
    state_->read([&](const StateTxn& tx) { tx.for_each(t, [&](auto, auto) { n++; }); });
    return n;
  }
  std::string why() { return "\nlog:\n" + log_.text() + "CA:\n" + ca_.trace(); }

  // Runs the engine once and expects the host to hold a certificate afterwards.
  void issue_now() {
    engine().run_once();
    ASSERT_EQ(status().state, Lifecycle::active) << status().detail << why();
    ASSERT_TRUE(cert());
  }

  std::string dir_;
  std::unique_ptr<SnapshotStore> snapshot_;
  std::unique_ptr<StateStore> state_;
  int64_t clock_ = kT0;
  double random_ = 0.5;
  DnsVerdict dns_ = DnsVerdict::points_here;
  std::vector<std::string> dns_asked_;
  std::map<std::string, DnsVerdict> dns_by_host_;
  FakeCa ca_{[this] { return clock_; }};
  EngineConfig config_;
  Lines log_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace

// --- Issuance

TEST_F(AcmeEngineTest, IssuesACertificate) {
  engine().run_once();
  AcmeStatus st = status();
  ASSERT_EQ(st.state, Lifecycle::active) << st.detail << why();
  EXPECT_EQ(st.failures, 0u);
  EXPECT_EQ(st.order_url, "https://ca.test/acme/order/1");
  EXPECT_EQ(st.renew_at, kT0 + 90 * kDay - 30 * kDay);
  EXPECT_TRUE(st.problem.empty());

  std::optional<CertRecord> r = cert();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->source, CertSource::acme);
  ASSERT_EQ(r->pairs.size(), 1u);
  const CertPair& p = r->pairs[0];
  EXPECT_EQ(p.type, KeyType::ecdsa);
  EXPECT_EQ(p.not_before, kT0);
  EXPECT_EQ(p.not_after, kT0 + 90 * kDay);
  ASSERT_EQ(p.chain_der.size(), 2u);
  EXPECT_EQ(p.chain_der[0], ca_.issued_der().at(0));
  EXPECT_EQ(cert_facts(p.chain_der[1]).issuer_cn, FakeCa::kRootCn);
  EXPECT_TRUE(key_matches(Key::from_der(p.key_der), p.chain_der[0]));

  // The CA found the key authorization published; it is gone now, and so is the order.
  EXPECT_EQ(ca_.key_authorizations_checked(), 1u);
  EXPECT_EQ(table_size(StateTable::challenges), 0u);
  EXPECT_FALSE(table(StateTable::orders, kHost));
  json account = json::parse(table(StateTable::acme, "account").value_or("null"));
  EXPECT_EQ(account["url"], "https://ca.test/acme/acct/1");
  EXPECT_EQ(account["directory"], FakeCa::kDirectory);

  EXPECT_EQ(ca_.count(Endpoint::new_account), 1u);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  EXPECT_EQ(ca_.count(Endpoint::finalize), 1u);
  EXPECT_EQ(ca_.count(Endpoint::new_nonce), 1u);
  EXPECT_EQ(ca_.last(Endpoint::new_account)->payload["contact"],
            json::array({"mailto:ops@example.com"}));
  EXPECT_TRUE(log_.has("certificate issued by \"Fake Intermediate E1\"")) << log_.text();
}

TEST_F(AcmeEngineTest, StatusIsValidatingWhileTheCaWorks) {
  std::vector<Lifecycle> seen;
  std::vector<std::string> orders;
  ca_.on_request = [&](Endpoint e) {
    if (e != Endpoint::challenge) return;
    seen.push_back(status().state);
    orders.push_back(status().order_url);
  };
  issue_now();
  EXPECT_EQ(seen, std::vector<Lifecycle>{Lifecycle::validating});
  EXPECT_EQ(orders, std::vector<std::string>{"https://ca.test/acme/order/1"});
}

TEST_F(AcmeEngineTest, ADomainAddedLaterIsOrdered) {
  issue_now();
  put_domain("b.example");
  engine().run_once();
  EXPECT_EQ(status("b.example").state, Lifecycle::active) << why();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
  EXPECT_EQ(ca_.count(Endpoint::new_account), 1u);
}

TEST_F(AcmeEngineTest, ConfigurationThatCannotWork) {
  EngineConfig c = config_;
  c.directory_url.clear();
  EXPECT_THROW(Engine(c, log_, EngineHooks{}), std::invalid_argument);
  // No DNS hook and nothing to compare the DNS with.
  EngineHooks h;
  h.transport = ca_.transport();
  EXPECT_THROW(Engine(config_, log_, std::move(h)), std::invalid_argument);
}

// run() with its worker thread uses the fake CA too.
TEST_F(AcmeEngineTest, RunUntilStopped) {
  std::thread t([this] { engine().run(); });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until && status().state != Lifecycle::active)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  engine().stop();
  t.join();
  EXPECT_EQ(status().state, Lifecycle::active) << why();
  EXPECT_TRUE(log_.has("engine started (unit test)"));
  EXPECT_TRUE(log_.has("engine stopped (unit test)"));
}

// stop() cuts a long wait short, and the order is resumed by the next engine.
// A stop in the middle of polling leaves the order for the next engine.
TEST_F(AcmeEngineTest, StopDuringAWaitLeavesTheOrderToResume) {
  ca_.processing_polls = 1000;
  ca_.processing_retry_after = "10";
  std::atomic<bool> finalized{false};
  ca_.on_request = [&](Endpoint e) {
    if (e == Endpoint::finalize) finalized = true;
  };
  engine();
  std::thread t([this] { engine_->run(); });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until && !finalized)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // now in its 10 s wait
  auto stopped = std::chrono::steady_clock::now();
  engine_->stop();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, std::chrono::seconds(2));
  ASSERT_TRUE(finalized);
  EXPECT_EQ(status().state, Lifecycle::validating);
  EXPECT_EQ(status().failures, 0u);  // stopping is not a failure
  EXPECT_TRUE(table(StateTable::orders, kHost));

  ca_.on_request = nullptr;
  ca_.processing_polls = 0;
  restart();
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  EXPECT_EQ(ca_.count(Endpoint::finalize), 1u);
}

TEST_F(AcmeEngineTest, AValidCertificateIsNotOrderedAgain) {
  issue_now();
  engine().run_once();
  clock_ += 5 * 3600;
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u) << why();

  // Nor after a restart: the state store says the certificate is valid; the account is kept.
  restart();
  engine().run_once();
  clock_ += kDay;
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u) << why();
  EXPECT_EQ(ca_.count(Endpoint::new_account), 1u);
  EXPECT_EQ(status().state, Lifecycle::active);
  EXPECT_GE(ca_.count(Endpoint::renewal_info), 1u);
}

TEST_F(AcmeEngineTest, IssueCommand) {
  std::string why_not;
  EXPECT_TRUE(engine().issue(kHost, &why_not)) << why_not << why();
  EXPECT_EQ(status().state, Lifecycle::active);
  EXPECT_FALSE(engine().issue("nobody.example", &why_not));
  EXPECT_NE(why_not.find("not an active portal domain"), std::string::npos) << why_not;
  // issue() orders again even though the certificate is valid ("whatever its state").
  EXPECT_TRUE(engine().issue(kHost, &why_not)) << why_not << why();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
  EXPECT_EQ(cert()->pairs[0].chain_der[0], ca_.issued_der().at(1));
}

TEST_F(AcmeEngineTest, BadNonceIsRetried) {
  ca_.fail_next(Endpoint::new_order, fault(400, "badNonce", "stale"));
  ca_.fail_next(Endpoint::finalize, fault(400, "badNonce", "stale"));
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
  EXPECT_EQ(ca_.count(Endpoint::new_nonce), 1u);
  EXPECT_EQ(status().failures, 0u);
}

TEST_F(AcmeEngineTest, PreferredChain) {
  ca_.alternate_chain = true;
  config_.preferred_chain = FakeCa::kAltRootCn;
  issue_now();
  CertPair p = cert()->pairs.at(0);
  ASSERT_EQ(p.chain_der.size(), 2u);
  EXPECT_EQ(cert_facts(p.chain_der[1]).issuer_cn, FakeCa::kAltRootCn);
}

TEST_F(AcmeEngineTest, DefaultChainWithoutAPreference) {
  ca_.alternate_chain = true;
  issue_now();
  EXPECT_EQ(cert_facts(cert()->pairs[0].chain_der[1]).issuer_cn, FakeCa::kRootCn);
}

TEST_F(AcmeEngineTest, ProfileIsSentOnlyWhenListed) {
  ca_.profiles = {"classic", "shortlived"};
  config_.profile = "shortlived";
  issue_now();
  EXPECT_EQ(ca_.last(Endpoint::new_order)->payload["profile"], "shortlived");

  config_.profile = "tlsserver";
  restart();
  std::string why_not;
  ASSERT_TRUE(engine().issue(kHost, &why_not)) << why_not << why();
  EXPECT_FALSE(ca_.last(Endpoint::new_order)->payload.contains("profile"));
  EXPECT_TRUE(log_.has("does not list profile \"tlsserver\"")) << log_.text();
}

TEST_F(AcmeEngineTest, RsaCertificate) {
  config_.key_type = KeyType::rsa;
  issue_now();
  ASSERT_EQ(cert()->pairs.size(), 1u);
  EXPECT_EQ(cert()->pairs[0].type, KeyType::rsa);
  EXPECT_EQ(Key::from_der(cert()->pairs[0].key_der).type(), KeyType::rsa);
}

TEST_F(AcmeEngineTest, ShortLivedCertificateRenewsAtHalfItsLifetime) {
  ca_.lifetime = 6 * kDay;
  issue_now();
  EXPECT_EQ(status().renew_at, kT0 + 3 * kDay);
}

TEST_F(AcmeEngineTest, ExternalAccountBinding) {
  ca_.external_account_required = true;
  ca_.eab_kid = "kid-7";
  ca_.eab_hmac_key = "0123456789abcdef0123456789abcdef";
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_NE(st.detail.find("external account binding"), std::string::npos) << st.detail;
  EXPECT_EQ(ca_.count(Endpoint::new_account), 0u);

  config_.eab_kid = ca_.eab_kid;
  config_.eab_hmac_key = ca_.eab_hmac_key;
  restart();
  clock_ = st.next_attempt;
  issue_now();
}

// --- What is never ordered

TEST_F(AcmeEngineTest, DnsElsewhereMeansPendingDnsAndNoOrder) {
  dns_ = DnsVerdict::elsewhere;
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::pending_dns);
  EXPECT_EQ(st.detail, "DNS: fake DNS says so");
  EXPECT_EQ(st.next_attempt, kT0 + 2);  // a new name is looked at again soon
  EXPECT_EQ(st.dns_checks, 1u);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 0u);
  EXPECT_TRUE(ca_.requests().empty()) << ca_.trace();

  engine().run_once();  // not due yet
  EXPECT_EQ(dns_asked_.size(), 1u);

  dns_ = DnsVerdict::points_here;
  clock_ += 2;
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
}

TEST_F(AcmeEngineTest, DnsErrorIsRetriedInAMinute) {
  dns_ = DnsVerdict::error;
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::pending_dns);
  EXPECT_EQ(st.next_attempt, kT0 + 60);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 0u);
}

TEST_F(AcmeEngineTest, NamesNotInTheSnapshotOrSuspendedAreNeverOrdered) {
  remove_domain(kHost);
  put_domain("b.example", DomainStatus::suspended);
  engine().run_once();
  clock_ += kDay;
  engine().run_once();
  EXPECT_TRUE(ca_.requests().empty()) << ca_.trace();
  EXPECT_TRUE(dns_asked_.empty());
  std::string why_not;
  EXPECT_FALSE(engine().issue("b.example", &why_not));
  EXPECT_FALSE(engine().issue(kHost, &why_not));
  EXPECT_FALSE(engine().issue("c.example", &why_not));
  EXPECT_TRUE(ca_.requests().empty()) << ca_.trace();

  // A portalctl request for a name that is not wanted is ignored too.
  state_->write([&](StateTxn& tx) { tx.put(StateTable::requests, "b.example", ""); });
  engine().run_once();
  EXPECT_TRUE(ca_.requests().empty()) << ca_.trace();
  EXPECT_TRUE(log_.has("not an active portal domain: ignored")) << log_.text();
}

TEST_F(AcmeEngineTest, ANameSuspendedWhileWaitingIsNotOrdered) {
  dns_ = DnsVerdict::elsewhere;
  engine().run_once();
  ASSERT_EQ(status().state, Lifecycle::pending_dns);
  put_domain(kHost, DomainStatus::suspended);
  dns_ = DnsVerdict::points_here;
  clock_ += 600;
  engine().run_once();
  remove_domain(kHost);
  clock_ += 600;
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 0u) << why();
  EXPECT_EQ(dns_asked_.size(), 1u);
}

// --- Failures: what is kept, and when the engine tries again

TEST_F(AcmeEngineTest, RateLimitedWaitsForRetryAfter) {
  ca_.fail_next(Endpoint::new_order,
                fault(429, "rateLimited", "too many certificates (5) already issued", "7200"));
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_TRUE(st.problem.is("rateLimited")) << st.problem.type;
  EXPECT_EQ(st.problem.detail, "too many certificates (5) already issued");
  EXPECT_EQ(st.failures, 1u);
  EXPECT_EQ(st.next_attempt, kT0 + 7200);  // longer than the backoff (63 s): it wins

  clock_ = kT0 + 3600;
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  restart();  // a restart does not forget the wait either
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  clock_ = kT0 + 7200;
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
  EXPECT_TRUE(status().problem.empty());
}

TEST_F(AcmeEngineTest, RateLimitedProblemWithoutRetryAfterBacksOff) {
  ca_.fail_next(Endpoint::new_order, fault(400, "rateLimited", "slow down"));
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_TRUE(st.problem.is("rateLimited"));
  EXPECT_EQ(st.next_attempt, kT0 + 63);
}

TEST_F(AcmeEngineTest, RetryAfterShorterThanTheBackoffLoses) {
  ca_.fail_next(Endpoint::new_order, fault(429, "rateLimited", "briefly", "10"));
  engine().run_once();
  EXPECT_EQ(status().next_attempt, kT0 + 63);
}

TEST_F(AcmeEngineTest, ServiceUnavailableIsTransientWithJitter) {
  ca_.fail_next(Endpoint::new_order, fault(503));
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_NE(st.detail.find("HTTP 503"), std::string::npos) << st.detail;
  EXPECT_EQ(st.next_attempt, kT0 + 60 + 3);  // random 0.5: half of the 10% jitter

  random_ = 0.999;
  clock_ = st.next_attempt;
  ca_.fail_next(Endpoint::new_order, fault(503));
  engine().run_once();
  st = status();
  EXPECT_EQ(st.failures, 2u);
  EXPECT_EQ(st.next_attempt, clock_ + 600 + 59);  // never more than 10%
}

TEST_F(AcmeEngineTest, BackoffSequence) {
  random_ = 0.0;
  ca_.fail_next(Endpoint::new_order, fault(500, "serverInternal", "down"), 5);
  const int64_t expected[] = {60, 600, 6000, 86400, 86400};
  for (unsigned i = 0; i < 5; i++) {
    engine().run_once();
    AcmeStatus st = status();
    ASSERT_EQ(st.state, Lifecycle::failed) << why();
    EXPECT_EQ(st.failures, i + 1);
    EXPECT_EQ(st.next_attempt - clock_, expected[i]) << "failure " << i + 1;
    EXPECT_EQ(ca_.count(Endpoint::new_order), i + 1);
    clock_ = st.next_attempt - 1;
    engine().run_once();  // one second early: nothing happens
    EXPECT_EQ(ca_.count(Endpoint::new_order), i + 1);
    clock_ = st.next_attempt;
  }
  issue_now();
  AcmeStatus st = status();
  EXPECT_EQ(st.failures, 0u);
  EXPECT_EQ(st.next_attempt, 0);
}

TEST_F(AcmeEngineTest, InvalidOrderKeepsTheProblem) {
  Problem p = problem("caa", "CAA record for a.example prevents issuance");
  p.subproblems.push_back(problem("caa", "CAA forbids", kHost));
  p.subproblems.push_back(problem("dns", "SERVFAIL looking up CAA", "www.a.example"));
  ca_.order_error = p;
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_EQ(st.problem.type, "urn:ietf:params:acme:error:caa");
  EXPECT_EQ(st.problem.detail, "CAA record for a.example prevents issuance");
  ASSERT_EQ(st.problem.subproblems.size(), 2u);
  EXPECT_EQ(st.problem.subproblems[0].identifier, kHost);
  EXPECT_EQ(st.problem.subproblems[1].identifier, "www.a.example");
  EXPECT_TRUE(st.problem.subproblems[1].is("dns"));
  EXPECT_NE(st.detail.find("is \"invalid\""), std::string::npos) << st.detail;
  EXPECT_NE(st.detail.find(p.summary()), std::string::npos) << st.detail;
  EXPECT_EQ(st.failures, 1u);
  EXPECT_EQ(st.next_attempt, kT0 + 63);
  EXPECT_FALSE(cert());

  // The next attempt drops the dead order and makes a new one.
  ca_.order_error = Problem{};
  clock_ = st.next_attempt;
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
  EXPECT_TRUE(status().problem.empty());
}

TEST_F(AcmeEngineTest, FailedValidationKeepsTheChallengeProblem) {
  ca_.challenge_error = problem("connection", "Connection refused", kHost);
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_TRUE(st.problem.is("connection")) << st.problem.type;
  EXPECT_EQ(st.problem.detail, "Connection refused");
  EXPECT_NE(st.detail.find("authorization for a.example is \"invalid\""), std::string::npos)
      << st.detail;
  EXPECT_EQ(table_size(StateTable::challenges), 0u);  // unpublished on failure too
}

TEST_F(AcmeEngineTest, ValidCertificateIsNeverRemovedByAFailure) {
  issue_now();
  CertRecord before = *cert();
  clock_ = kT0 + 85 * kDay;  // due for renewal
  ca_.fail_next(Endpoint::new_order, fault(403, "unauthorized", "account deactivated"));
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed) << why();
  EXPECT_TRUE(st.problem.is("unauthorized"));
  std::optional<CertRecord> after = cert();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->generation, before.generation);
  EXPECT_EQ(encode(*after), encode(before));

  clock_ = st.next_attempt;
  ca_.fail_next(Endpoint::new_order, fault(0));  // no response
  engine().run_once();
  EXPECT_EQ(status().failures, 2u);
  ASSERT_TRUE(cert());
  EXPECT_EQ(encode(*cert()), encode(before));

  clock_ = kT0 + 100 * kDay;  // expired: still not removed by the engine
  ca_.fail_next(Endpoint::new_order, fault(503), 3);
  engine().run_once();
  ASSERT_TRUE(cert());
  EXPECT_EQ(encode(*cert()), encode(before));
}

TEST_F(AcmeEngineTest, ProcessingOrderIsPolledWithRetryAfter) {
  ca_.processing_polls = 2;
  ca_.processing_retry_after = "1";
  auto started = std::chrono::steady_clock::now();
  issue_now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started).count();
  std::vector<const fake::Seen*> polls = ca_.requests_to(Endpoint::order);
  ASSERT_EQ(polls.size(), 3u) << ca_.trace();  // ready, then processing, then valid
  EXPECT_EQ(ca_.count(Endpoint::finalize), 1u);
  EXPECT_GE(ms, 1900) << "Retry-After: 1 twice";
  EXPECT_LT(ms, 10000);
}

TEST_F(AcmeEngineTest, AnOrderStuckProcessingGivesUpAndIsResumedLater) {
  ca_.processing_polls = 1000;
  ca_.processing_retry_after = "0";  // poll fast: the clock below is what runs out
  ca_.on_request = [this](Endpoint e) {
    if (e == Endpoint::order) clock_ += 60;
  };
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed) << why();
  EXPECT_NE(st.detail.find("still \"processing\""), std::string::npos) << st.detail;
  EXPECT_LE(ca_.count(Endpoint::order), 8u);
  ASSERT_TRUE(table(StateTable::orders, kHost));

  ca_.on_request = nullptr;
  ca_.processing_polls = 0;  // the order, still "processing" at the CA, is valid on the next look
  clock_ = st.next_attempt;
  engine().run_once();
  EXPECT_EQ(status().state, Lifecycle::active) << why();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u) << why();
  EXPECT_EQ(ca_.count(Endpoint::finalize), 1u);
  EXPECT_TRUE(log_.has("resuming order")) << log_.text();
}

TEST_F(AcmeEngineTest, OneNameFailingDoesNotHoldUpAnother) {
  put_domain("b.example");
  put_domain("c.example");
  dns_by_host_["b.example"] = DnsVerdict::elsewhere;
  ca_.fail_nth(Endpoint::new_order, 1, fault(400, "rejectedIdentifier", "no"));  // a.example
  engine().run_once();
  EXPECT_EQ(status(kHost).state, Lifecycle::failed) << why();
  EXPECT_EQ(status("b.example").state, Lifecycle::pending_dns);
  EXPECT_EQ(status("c.example").state, Lifecycle::active) << why();
  EXPECT_TRUE(cert("c.example"));
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
}

TEST_F(AcmeEngineTest, OrderNotReadyIsRetriedOnTheSameOrder) {
  ca_.fail_next(Endpoint::finalize, fault(403, "orderNotReady", "the order is not ready"));
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.state, Lifecycle::failed);
  EXPECT_TRUE(st.problem.is("orderNotReady"));
  EXPECT_EQ(st.next_attempt, kT0 + 63);
  clock_ = st.next_attempt;
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  EXPECT_EQ(ca_.count(Endpoint::finalize), 2u);
  EXPECT_TRUE(log_.has("resuming order https://ca.test/acme/order/1")) << log_.text();
}

TEST_F(AcmeEngineTest, AnOrderLeftBehindIsResumedAfterARestart) {
  ca_.fail_next(Endpoint::finalize, fault(503));
  engine().run_once();
  AcmeStatus st = status();
  ASSERT_EQ(st.state, Lifecycle::failed) << why();
  std::optional<std::string> rec = table(StateTable::orders, kHost);
  ASSERT_TRUE(rec);
  json order = json::parse(*rec);
  EXPECT_EQ(order["url"], "https://ca.test/acme/order/1");
  std::string key_der;
  ASSERT_TRUE(b64url_decode(order.value("key", ""), &key_der));

  restart();
  clock_ = st.next_attempt;
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u) << ca_.trace();
  EXPECT_EQ(ca_.count(Endpoint::finalize), 2u);
  EXPECT_EQ(cert()->pairs[0].key_der, key_der);  // the order's own key
  EXPECT_FALSE(table(StateTable::orders, kHost));
  EXPECT_EQ(status().order_url, "https://ca.test/acme/order/1");
}

TEST_F(AcmeEngineTest, ADeadOrderLeftBehindIsReplaced) {
  ca_.fail_next(Endpoint::finalize, fault(503));
  engine().run_once();
  clock_ = status().next_attempt;
  ca_.fail_next(Endpoint::order, fault(404, "malformed", "no such order"));
  issue_now();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u);
}

// --- Renewal

TEST_F(AcmeEngineTest, AlreadyReplacedOrdersAgainWithoutReplaces) {
  issue_now();
  std::string first = ca_.issued_der().at(0);
  clock_ = kT0 + 85 * kDay;
  ca_.reject_replaces = true;
  engine().run_once();
  ASSERT_EQ(status().state, Lifecycle::active) << status().detail << why();
  std::vector<const fake::Seen*> orders = ca_.requests_to(Endpoint::new_order);
  ASSERT_EQ(orders.size(), 3u);
  EXPECT_EQ(orders[1]->payload.value("replaces", ""), FakeCa::ari_id_of(first));
  EXPECT_EQ(orders[1]->status, 409);
  EXPECT_FALSE(orders[2]->payload.contains("replaces"));
  EXPECT_EQ(orders[2]->status, 201);
  EXPECT_EQ(cert()->pairs[0].chain_der[0], ca_.issued_der().at(1));
  EXPECT_TRUE(log_.has("ordering without \"replaces\"")) << log_.text();
}

TEST_F(AcmeEngineTest, RenewalSendsReplaces) {
  issue_now();
  clock_ = kT0 + 85 * kDay;
  std::vector<Lifecycle> seen;  // what portalctl status shows while the CA works
  ca_.on_request = [&](Endpoint e) {
    if (e == Endpoint::challenge) seen.push_back(status().state);
  };
  engine().run_once();
  EXPECT_EQ(seen, std::vector<Lifecycle>{Lifecycle::renewing});
  ASSERT_EQ(status().state, Lifecycle::active) << why();
  EXPECT_EQ(ca_.last(Endpoint::new_order)->payload.value("replaces", ""),
            FakeCa::ari_id_of(ca_.issued_der().at(0)));
  EXPECT_EQ(cert()->pairs[0].not_before, kT0 + 85 * kDay);
}

TEST_F(AcmeEngineTest, AriWindowInThePastRenewsNow) {
  issue_now();
  ca_.ari = FakeCa::Ari::fixed;
  ca_.ari_start = kT0 + 3600;
  ca_.ari_end = kT0 + 7200;  // the CA wants it replaced (a revocation, say)
  clock_ = kT0 + kDay;
  restart();
  engine().run_once();
  ASSERT_EQ(status().state, Lifecycle::active) << why();
  EXPECT_EQ(ca_.count(Endpoint::renewal_info), 1u);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u) << why();
  EXPECT_EQ(ca_.last(Endpoint::new_order)->payload.value("replaces", ""),
            FakeCa::ari_id_of(ca_.issued_der().at(0)));
  EXPECT_EQ(cert()->pairs[0].chain_der[0], ca_.issued_der().at(1));
}

TEST_F(AcmeEngineTest, AriWindowInTheFutureChoosesAPointInIt) {
  issue_now();
  ca_.ari = FakeCa::Ari::fixed;
  ca_.ari_start = kT0 + 40 * kDay;
  ca_.ari_end = kT0 + 42 * kDay;
  clock_ = kT0 + 3600;
  restart();
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(st.renew_at, kT0 + 41 * kDay);  // random 0.5
  EXPECT_EQ(st.ari_start, kT0 + 40 * kDay);
  EXPECT_EQ(st.ari_end, kT0 + 42 * kDay);
  EXPECT_EQ(st.ari_next_check, clock_ + 6 * 3600);  // no Retry-After: six hours
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  clock_ = kT0 + 41 * kDay;
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u) << why();
}

TEST_F(AcmeEngineTest, MalformedAriWindowFallsBackToTheLifetimeRule) {
  issue_now();
  ca_.ari = FakeCa::Ari::fixed;
  ca_.ari_start = kT0 + 70 * kDay;
  ca_.ari_end = kT0 + 72 * kDay;
  clock_ = kT0 + 3600;
  restart();
  engine().run_once();
  ASSERT_EQ(status().renew_at, kT0 + 71 * kDay) << why();

  ca_.ari = FakeCa::Ari::malformed;
  clock_ += 6 * 3600;  // time to ask again
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(ca_.count(Endpoint::renewal_info), 2u) << why();
  int64_t lifetime = 90 * kDay;
  EXPECT_EQ(st.renew_at, kT0 + lifetime - lifetime / 3);
  EXPECT_EQ(st.ari_end, 0);
  EXPECT_EQ(st.state, Lifecycle::active);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  EXPECT_TRUE(log_.has("renewal information")) << log_.text();
}

TEST_F(AcmeEngineTest, MalformedAriWindowOnTheFirstLookUsesTheLifetimeRule) {
  issue_now();
  ca_.ari = FakeCa::Ari::malformed;
  clock_ = kT0 + 3600;
  restart();
  engine().run_once();
  AcmeStatus st = status();
  EXPECT_EQ(ca_.count(Endpoint::renewal_info), 1u);
  EXPECT_EQ(st.renew_at, kT0 + 60 * kDay);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
}

TEST_F(AcmeEngineTest, ForcedRenewalFromPortalctl) {
  issue_now();
  clock_ += 60;
  state_->write([&](StateTxn& tx) { tx.put(StateTable::requests, kHost, ""); });
  engine().run_once();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u) << why();
  EXPECT_EQ(status().state, Lifecycle::active);
  EXPECT_EQ(cert()->pairs[0].chain_der[0], ca_.issued_der().at(1));
  EXPECT_EQ(table_size(StateTable::requests), 0u);
}

TEST_F(AcmeEngineTest, MovedNameIsNotRenewed) {
  issue_now();
  dns_ = DnsVerdict::elsewhere;
  clock_ = kT0 + 2 * 3600;
  restart();
  engine().run_once();
  EXPECT_EQ(status().state, Lifecycle::moved) << why();
  clock_ = kT0 + 85 * kDay;
  engine().run_once();
  EXPECT_EQ(status().state, Lifecycle::moved);
  EXPECT_EQ(ca_.count(Endpoint::new_order), 1u);
  ASSERT_TRUE(cert());
}

// A running engine looks at the CA's renewal window (and the DNS) before renew_at: the point
// of ARI is that the CA can ask for an early renewal (a mass revocation).
TEST_F(AcmeEngineTest, RunningEngineAsksForTheRenewalWindowBeforeRenewAt) {
  issue_now();
  ca_.ari = FakeCa::Ari::fixed;
  ca_.ari_start = kT0 + 3600;
  ca_.ari_end = kT0 + 7200;
  clock_ = kT0 + 7 * 3600;  // past both the DNS re-check (1 h) and the ARI re-check (6 h)
  engine().run_once();
  EXPECT_GE(ca_.count(Endpoint::renewal_info), 1u) << why();
  EXPECT_EQ(ca_.count(Endpoint::new_order), 2u) << why();
}

// Pebble forgets its accounts when it restarts, and a CA may delete one: the engine registers
// again (the same key gives a new account) instead of failing forever.
TEST_F(AcmeEngineTest, AnAccountTheCaForgotIsRegisteredAgain) {
  issue_now();
  ca_.forget_accounts();
  clock_ = kT0 + 85 * kDay;
  engine().run_once();
  for (int attempt = 0; attempt < 3 && status().state != Lifecycle::active; attempt++) {
    clock_ = std::max(clock_ + 1, status().next_attempt);
    engine().run_once();
  }
  EXPECT_EQ(status().state, Lifecycle::active) << status().detail << why();
  EXPECT_EQ(ca_.count(Endpoint::new_account), 2u);
  EXPECT_EQ(ca_.issued_der().size(), 2u);
  json account = json::parse(table(StateTable::acme, "account").value_or("null"));
  EXPECT_EQ(account["url"], "https://ca.test/acme/acct/2");  // kept for the next restart
  restart();
  state_->write([&](StateTxn& tx) { tx.put(StateTable::requests, kHost, ""); });
  engine().run_once();
  EXPECT_EQ(ca_.issued_der().size(), 3u) << why();
  EXPECT_EQ(ca_.count(Endpoint::new_account), 2u);
}

// docs/portalctl.md: "no ACME certificate is left without renewals". After portal_acme_key_type
// changes from ecdsa to rsa, the engine renews into an RSA pair and keeps the ECDSA pair,
// which nothing renews any more: it expires in the record, and the TLS side (which loads every
// pair) keeps offering it to ECDSA clients.
// After a change of key type, the record holds only the new pair: none is left unrenewed.
TEST_F(AcmeEngineTest, ChangingTheKeyTypeLeavesNoUnrenewedPair) {
  issue_now();
  config_.key_type = KeyType::rsa;
  clock_ = kT0 + 85 * kDay;
  restart();
  engine().run_once();
  ASSERT_EQ(ca_.issued_der().size(), 2u) << why();
  std::optional<CertRecord> r = cert();
  ASSERT_TRUE(r);
  for (const CertPair& p : r->pairs) EXPECT_EQ(p.type, KeyType::rsa) << "an ecdsa pair nobody renews";
  clock_ = kT0 + 95 * kDay;
  engine().run_once();
  r = cert();
  ASSERT_TRUE(r);
  for (const CertPair& p : r->pairs) EXPECT_GT(p.not_after, clock_) << "an expired pair is kept";
}

// A certificate this CA did not issue (the directory URL changed from staging to production,
// or another CA's certificate is in the record) cannot be "replaced" there: Pebble and
// Boulder refuse such a newOrder with a 400. The engine should order without "replaces".
// A certificate this CA does not know (malformed "replaces") is renewed as a new order.
TEST_F(AcmeEngineTest, ACertificateFromAnotherCaIsRenewedWithoutReplaces) {
  CertRecord r;
  r.source = CertSource::acme;
  r.updated = kT0;
  r.pairs.push_back(FakeCa::foreign_pair(kHost, kT0, kT0 + 90 * kDay));
  state_->write([&](StateTxn& tx) { tx.put_cert(kHost, r); });
  clock_ = kT0 + 85 * kDay;
  engine().run_once();
  EXPECT_EQ(status().state, Lifecycle::active) << status().detail << why();
  EXPECT_EQ(ca_.issued_der().size(), 1u);
}
