// portalctl acme run|issue|renew: the ACME engine in the foreground (the same engine nginx
// runs with portal_acme on), one issuance for one name, or a renewal asked of whichever
// engine runs.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "acme/config.h"
#include "acme/engine.h"
#include "acme/lock.h"
#include "commands.h"
#include "errors.h"
#include "host/idn.h"
#include "store/snapshot.h"
#include "store/state.h"
#include "util/text.h"

namespace portalctl {

namespace {

struct AcmeArgs {
  std::string host;
  std::string directory, ca_file, key_type = "ecdsa-p256", cname_target, resolver;
  std::vector<std::string> contact, edge_addresses;
  std::vector<std::string> backoff;
  long dns_recheck = 3600;
  int concurrency = 4;
  std::string preferred_chain, profile, eab_kid, eab_hmac_file;
  bool verbose = false;
};

class StderrLogger : public portal::acme::Logger {
 public:
  explicit StderrLogger(bool verbose) : verbose_(verbose) {}
  void log(portal::acme::LogLevel level, const std::string& line) override {
    if (level >= portal::acme::LogLevel::info && !verbose_) return;
    static const char* names[] = {"error", "warn", "notice", "info", "debug"};
    std::lock_guard<std::mutex> lock(mutex_);
    std::fprintf(stderr, "%s [%s] %s\n", portal::iso8601(std::time(nullptr)).c_str(),
                 names[static_cast<int>(level)], line.c_str());
  }

 private:
  bool verbose_;
  std::mutex mutex_;
};

// "90", "90s", "10m", "2h", "1d" -> seconds.
long parse_duration(const std::string& text) {
  size_t used = 0;
  long n = -1;
  try {
    n = std::stol(text, &used);
  } catch (const std::exception&) {
  }
  long unit = 1;
  std::string rest = text.substr(used);
  if (rest == "m") unit = 60;
  else if (rest == "h") unit = 3600;
  else if (rest == "d") unit = 86400;
  else if (!rest.empty() && rest != "s") n = -1;
  if (n <= 0) throw UsageError("invalid duration " + portal::quoted(text) + ": like 90s, 10m, 2h, 1d");
  return n * unit;
}

portal::acme::EngineConfig config_of(const Globals& g, const AcmeArgs& a, const char* where) {
  portal::acme::EngineConfig c;
  c.data_dir = g.data_dir;
  c.directory_url = a.directory;
  c.contact = a.contact;
  c.ca_file = a.ca_file;
  if (!portal::acme::parse_key_type_spec(a.key_type, &c.key_type, &c.rsa_bits)) {
    throw UsageError("--key-type: invalid key type " + portal::quoted(a.key_type) + ": use " +
                     portal::acme::kKeyTypeSpecs);
  }
  c.dns.cname_target = a.cname_target;
  c.dns.edge_addresses = a.edge_addresses;
  c.dns.resolver = a.resolver;
  if (!a.backoff.empty()) {
    c.backoff.clear();
    for (const std::string& b : a.backoff) c.backoff.push_back(parse_duration(b));
  }
  c.dns_recheck = a.dns_recheck;
  c.concurrency = a.concurrency;
  c.preferred_chain = a.preferred_chain;
  c.profile = a.profile;
  if (!a.eab_kid.empty()) {
    if (a.eab_hmac_file.empty()) throw UsageError("--eab-kid needs --eab-hmac-file");
    c.eab_kid = a.eab_kid;
    try {
      c.eab_hmac_key = portal::acme::read_eab_key(a.eab_hmac_file);
    } catch (const std::runtime_error& e) {
      throw UsageError(std::string("--eab-hmac-file: ") + e.what());
    }
  }
  c.where = where;
  try {
    portal::acme::check_config(c);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  return c;
}

portal::acme::EngineLock take_lock(const Globals& g, const char* who) {
  std::string holder;
  auto lock = portal::acme::EngineLock::try_acquire(g.data_dir, who, &holder);
  if (!lock) {
    throw std::runtime_error("an ACME engine already runs for " + portal::quoted(g.data_dir) +
                             (holder.empty() ? "" : " (" + holder + ")") +
                             "; ask it with \"portalctl acme renew HOST\"");
  }
  return std::move(*lock);
}

void acme_run(const Globals& g, const AcmeArgs& a) {
  portal::acme::EngineConfig c = config_of(g, a, "portalctl acme run");
  // SIGINT and SIGTERM stop the engine cleanly: a thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  portal::acme::EngineLock lock = take_lock(g, "portalctl acme run");
  StderrLogger log(a.verbose);
  portal::acme::Engine engine(std::move(c), log);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    engine.stop();
  });
  engine.run();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter when run() ended alone
  waiter.join();
}

void require_active(const Globals& g, const std::string& host) {
  portal::SnapshotStore snap(g.data_dir, false);
  bool active = false;
  snap.read([&](const portal::SnapshotTxn& tx) {
    auto d = tx.get(host);
    active = d && d->status == portal::DomainStatus::active;
  });
  if (!active) throw UsageError(portal::quoted(host) + " is not an active portal domain");
}

void acme_issue(const Globals& g, const AcmeArgs& a) {
  std::string host, why;
  if (!portal::host_from_input(a.host, host, &why)) throw UsageError("HOST: " + why);
  require_active(g, host);
  portal::acme::EngineConfig c = config_of(g, a, "portalctl acme issue");
  portal::acme::EngineLock lock = take_lock(g, "portalctl acme issue");
  StderrLogger log(a.verbose);
  portal::acme::Engine engine(std::move(c), log);
  if (!engine.issue(host, &why)) throw std::runtime_error(portal::quoted(host) + ": " + why);
}

void acme_renew(const Globals& g, const AcmeArgs& a) {
  std::string host, why;
  if (!portal::host_from_input(a.host, host, &why)) throw UsageError("HOST: " + why);
  require_active(g, host);
  portal::StateStore state(g.data_dir, false);
  state.write([&](portal::StateTxn& tx) {
    tx.put(portal::StateTable::requests, host, std::to_string(std::time(nullptr)));
  });
}

void engine_options(CLI::App* cmd, AcmeArgs& a) {
  cmd->add_option("--directory", a.directory, "the ACME directory URL")
      ->type_name("URL")
      ->required();
  cmd->add_option("--contact", a.contact, "account contact (repeatable)")->type_name("mailto:ADDR");
  cmd->add_option("--ca-certificate", a.ca_file, "trusted CA for the ACME server's own TLS")
      ->type_name("FILE");
  cmd->add_option("--key-type", a.key_type, "ecdsa-p256 (default), rsa-2048, rsa-3072, rsa-4096");
  cmd->add_option("--cname-target", a.cname_target, "the hostname tenants CNAME to")
      ->type_name("HOST");
  cmd->add_option("--edge-address", a.edge_addresses, "an address of this edge (repeatable)")
      ->type_name("IP");
  cmd->add_option("--resolver", a.resolver, "DNS server for the pre-check")
      ->type_name("ADDR[:PORT]");
  cmd->add_option("--backoff", a.backoff, "delays after failures 1, 2, 3, 4+ (default 1m 10m 100m 1d)")
      ->type_name("TIME")
      ->expected(1, 8);
  cmd->add_option("--dns-recheck", a.dns_recheck, "seconds between DNS looks at certified names")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--concurrency", a.concurrency, "orders in flight at once (default 4)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--preferred-chain", a.preferred_chain, "issuer common name of the chain to keep")
      ->type_name("NAME");
  cmd->add_option("--profile", a.profile, "certificate profile, when the directory lists it")
      ->type_name("NAME");
  cmd->add_option("--eab-kid", a.eab_kid, "external account binding key id")->type_name("KID");
  cmd->add_option("--eab-hmac-file", a.eab_hmac_file, "file with the base64url HMAC key")
      ->type_name("FILE");
  cmd->add_flag("-v,--verbose", a.verbose, "log every step (info), not only notices and errors");
}

}  // namespace

void add_acme_commands(CLI::App& app, const Globals& g, Action& run) {
  auto args = std::make_shared<AcmeArgs>();
  CLI::App* acme = app.add_subcommand("acme", "run the ACME engine, issue or renew a certificate");
  acme->require_subcommand(1);

  CLI::App* r = acme->add_subcommand("run", "run the ACME engine in the foreground until SIGINT/SIGTERM");
  engine_options(r, *args);
  r->callback([&g, &run, args] { run = [&g, args] { acme_run(g, *args); }; });

  CLI::App* issue = acme->add_subcommand("issue", "order a certificate for HOST now and wait for it");
  issue->add_option("HOST", args->host, "an active portal domain")->type_name("")->required();
  engine_options(issue, *args);
  issue->callback([&g, &run, args] { run = [&g, args] { acme_issue(g, *args); }; });

  CLI::App* renew = acme->add_subcommand(
      "renew", "ask the running engine (nginx or portalctl acme run) to renew HOST now");
  renew->add_option("HOST", args->host, "an active portal domain")->type_name("")->required();
  renew->callback([&g, &run, args] { run = [&g, args] { acme_renew(g, *args); }; });
}

}  // namespace portalctl
