// The ACME engine: keeps a certificate on every active portal domain whose DNS points here.
// Driven by the snapshot (the wanted names: a name not in it is never ordered) and the
// state store (certificates, account, orders, challenges, each name's lifecycle status).
// The same code runs as a thread in one nginx worker and as `portalctl acme run`; it knows
// nothing of nginx: its log lines go to a Logger, its HTTP to a Transport.
//
// Per name: DNS pre-check (dns_check.h) → order → HTTP-01 (the token's key authorization
// is published in the state store, which every worker serves) → finalize → the pair is
// written in one transaction (never torn; the old one stays until then). Renewal inside the
// CA's ARI window, else when a third of the lifetime is left (half under 10 days). Failures
// back off 1 min, 10 min, 100 min, then daily, with jitter; a longer Retry-After wins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../domain/cert_record.h"
#include "dns_check.h"
#include "http.h"
#include "status.h"

namespace portal {
class SnapshotReader;
class StateStore;
class StateTxn;
}  // namespace portal

namespace portal::acme {

class Client;
class Key;

enum class LogLevel { error, warn, notice, info, debug };

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, const std::string& line) = 0;
};

struct EngineConfig {
  std::string data_dir;
  std::string directory_url;
  std::vector<std::string> contact;        // "mailto:ops@example.com"
  std::string ca_file;                     // trust for the ACME server's TLS ("" = system)
  KeyType key_type = KeyType::ecdsa;
  int rsa_bits = 2048;
  DnsCheckConfig dns;
  std::vector<int64_t> backoff = {60, 600, 6000, 86400};  // seconds, after failures 1, 2, 3, 4+
  std::string preferred_chain;             // issuer CN of the chain's top certificate
  std::string profile;                     // sent when the directory lists it
  std::string eab_kid, eab_hmac_key;       // external account binding (raw HMAC key)
  std::string where;                       // "nginx worker", "portalctl acme run"
  int64_t dns_recheck = 3600;              // seconds between DNS looks at a certified name
  int concurrency = 4;                     // orders in flight at once (threads of run())
  int poll_ms = 500;                       // how often the snapshot and requests are looked at
};

struct EngineHooks {  // for unit tests: a fake CA, a fake DNS, a fixed clock
  std::unique_ptr<Transport> transport;
  std::function<DnsCheckResult(const std::string& host)> dns;
  std::function<int64_t()> now;
  std::function<double()> random;  // in [0, 1): jitter and the point in an ARI window
};

class Engine {
 public:
  // Opens the stores (the caller's process may share them: store_env.h). Throws
  // std::runtime_error / std::invalid_argument for a configuration or store that cannot work.
  Engine(EngineConfig config, Logger& log, EngineHooks hooks = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs until stop() (from any thread), with config.concurrency threads working on orders;
  // never throws.
  void run();
  void stop();
  bool stopping() const { return stop_.load(); }

  // One pass over every name that is due now (unit tests drive the engine with it).
  void run_once();
  // Orders a certificate for host now, whatever its state (`portalctl acme issue`): false
  // and why when host is not an active portal domain or the order failed.
  bool issue(const std::string& host, std::string* why);

  AcmeStatus status(const std::string& host);

  // Each thread has its own HTTP connection and client; the account is shared.
  struct Session {
    const Engine* engine = nullptr;
    std::unique_ptr<Transport> transport;
    std::unique_ptr<Client> client;
    std::unique_ptr<DnsChecker> dns;
    std::string kid;  // the account URL this client signs with
  };

 private:
  void load_wanted();
  void take_requests();
  void schedule(const std::string& host, int64_t when);
  int64_t plan(const std::string& host);
  void process(const std::string& host, bool forced);
  void order(const std::string& host, AcmeStatus& st, const CertRecord* current);
  int64_t renewal_time(const std::string& host, const CertPair& pair, AcmeStatus& st);
  void fail(const std::string& host, AcmeStatus& st, const std::string& what,
            const Problem& problem, int64_t retry_after, const char* result);
  void count(StateTxn& tx, const char* result);  // portal_acme_orders_total
  void heartbeat(bool starting);                  // the engine's "last run", for status
  void save(const std::string& host, const AcmeStatus& st);
  std::unique_ptr<Session> new_session();
  Session& session();
  Client& client() { return *session().client; }
  DnsCheckResult check_dns(const std::string& host);
  void ensure_account();
  void forget_account();
  void work();
  bool dispatch();  // hands due names to the workers; false when none is due
  void sleep_ms(int64_t ms);  // throws AcmeError(cancelled) when stopping
  int64_t now() const;
  double random() const;
  void say(LogLevel level, const std::string& line) { log_.log(level, line); }

  EngineConfig config_;
  Logger& log_;
  EngineHooks hooks_;
  std::unique_ptr<SnapshotReader> snapshot_;
  std::unique_ptr<StateStore> state_;
  std::unique_ptr<Session> main_;
  bool fake_transport_ = false;

  std::mutex account_mutex_;
  std::unique_ptr<Key> account_key_;
  std::string account_url_;

  uint64_t snapshot_txnid_ = 0;
  int64_t started_ = 0, last_heartbeat_ = 0;
  std::set<std::string> wanted_;
  std::map<std::string, int64_t> due_;
  std::set<std::pair<int64_t, std::string>> queue_;
  std::set<std::string> forced_;
  std::set<std::string> in_flight_;
  std::vector<std::pair<std::string, bool>> work_;  // (host, forced) for the workers

  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // the schedule above; the condition variables
  std::condition_variable wake_;
  std::condition_variable work_ready_;
};

}  // namespace portal::acme
