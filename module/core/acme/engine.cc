#include "engine.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <ctime>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "../store/snapshot.h"
#include "../store/state.h"
#include "../util/text.h"
#include "client.h"
#include "crypto.h"
#include "curl_transport.h"

namespace portal::acme {

using nlohmann::json;

namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kAriRecheck = 6 * 3600;    // ask for the renewal window again after
constexpr int64_t kDnsErrorRetry = 60;       // the resolver failed: no conclusion yet
constexpr int64_t kOrderTimeout = 300;       // polling an order gives up after
constexpr int64_t kImportedTakeover = 7 * kDay;
constexpr const char* kAccountKey = "account";
constexpr const char* kCountersKey = "orders";   // {"valid": n, "invalid": n, "error": n}
constexpr const char* kEngineKey = "engine";     // {"where", "started", "last_run"}
constexpr int64_t kHeartbeat = 30;

// Pre-checks of a new name: every 2 s for a minute (the tenant is setting the CNAME right
// now), then every minute for an hour, then every 10 minutes.
int64_t dns_recheck_delay(unsigned checks) {
  if (checks < 30) return 2;
  if (checks < 90) return 60;
  return 600;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const CertPair* pair_of(const CertRecord& r, KeyType type) {
  for (const CertPair& p : r.pairs)
    if (p.type == type) return &p;
  return nullptr;
}

std::string utc(int64_t t) { return portal::iso8601(t); }

std::string domain(const std::string& host) { return "portal domain " + portal::quoted(host); }

}  // namespace

Engine::Engine(EngineConfig config, Logger& log, EngineHooks hooks)
    : config_(std::move(config)), log_(log), hooks_(std::move(hooks)) {
  if (config_.directory_url.empty()) throw std::invalid_argument("no ACME directory URL");
  if (config_.backoff.empty()) config_.backoff = {60, 600, 6000, 86400};
  if (config_.concurrency < 1) config_.concurrency = 1;
  fake_transport_ = hooks_.transport != nullptr;
  if (fake_transport_) config_.concurrency = 1;  // one fake CA, one thread
  if (!config_.ca_file.empty() && access(config_.ca_file.c_str(), R_OK) != 0) {
    throw std::runtime_error("cannot read the CA certificate file \"" + config_.ca_file +
                             "\": " + std::strerror(errno));
  }
  if (!hooks_.dns && config_.dns.cname_target.empty() && config_.dns.edge_addresses.empty()) {
    throw std::invalid_argument(
        "the DNS pre-check needs a CNAME target or edge addresses (portal_acme_cname_target, "
        "portal_acme_edge_addresses)");
  }
  state_ = std::make_unique<StateStore>(config_.data_dir, false);
  snapshot_ = std::make_unique<SnapshotReader>(config_.data_dir);
  main_ = new_session();
}

std::unique_ptr<Engine::Session> Engine::new_session() {
  auto s = std::make_unique<Session>();
  s->engine = this;
  if (hooks_.transport) {
    s->transport = std::move(hooks_.transport);
  } else {
    CurlOptions o;
    o.ca_file = config_.ca_file;
    o.cancelled = [this] { return stop_.load(); };
    s->transport = std::make_unique<CurlTransport>(std::move(o));
  }
  if (!hooks_.dns) s->dns = std::make_unique<DnsChecker>(config_.dns);
  s->client = std::make_unique<Client>(*s->transport, config_.directory_url, [this] { return now(); });
  return s;
}

namespace {
thread_local Engine::Session* t_session = nullptr;  // a worker thread's own
}  // namespace

Engine::Session& Engine::session() {
  return t_session && t_session->engine == this ? *t_session : *main_;
}

DnsCheckResult Engine::check_dns(const std::string& host) {
  return hooks_.dns ? hooks_.dns(host) : session().dns->check(host);
}

Engine::~Engine() = default;

int64_t Engine::now() const {
  return hooks_.now ? hooks_.now() : static_cast<int64_t>(time(nullptr));
}

double Engine::random() const {
  if (hooks_.random) return hooks_.random();
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

void Engine::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_ = true;
  wake_.notify_all();
  work_ready_.notify_all();
}

void Engine::sleep_ms(int64_t ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_.load(); });
  if (stop_) throw AcmeError(ErrorKind::cancelled, "the ACME engine is stopping");
}

AcmeStatus Engine::status(const std::string& host) {
  AcmeStatus st;
  state_->read([&](const StateTxn& tx) {
    if (auto v = tx.get(StateTable::status, host)) st = AcmeStatus::from_json(*v);
  });
  return st;
}

void Engine::save(const std::string& host, const AcmeStatus& st) {
  state_->write([&](StateTxn& tx) { tx.put(StateTable::status, host, st.to_json()); });
}

void Engine::schedule(const std::string& host, int64_t when) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = due_.find(host);
  if (it != due_.end()) queue_.erase({it->second, host});
  due_[host] = when;
  queue_.insert({when, host});
}

// The wanted names are the active portal domains; a name that leaves is dropped from the
// queue (its certificate stays while valid: it is never removed because of the engine).
void Engine::load_wanted() {
  std::set<std::string> wanted;
  snapshot_->for_each([&](std::string_view host, const DomainView& d) {
    if (!d.suspended) wanted.emplace(host);
  });
  snapshot_txnid_ = snapshot_->last_txnid();
  std::vector<std::string> added;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& host : wanted_) {
      if (wanted.count(host)) continue;
      auto it = due_.find(host);
      if (it != due_.end()) {
        queue_.erase({it->second, host});
        due_.erase(it);
      }
    }
    for (const std::string& host : wanted)
      if (!wanted_.count(host)) added.push_back(host);
    wanted_ = std::move(wanted);
  }
  for (const std::string& host : added) schedule(host, plan(host));
}

// When a name needs the engine next, from what the state store says (after a restart: no
// order for a name that holds a valid certificate).
int64_t Engine::plan(const std::string& host) {
  AcmeStatus st;
  std::optional<CertRecord> cert;
  state_->read([&](const StateTxn& tx) {
    if (auto v = tx.get(StateTable::status, host)) st = AcmeStatus::from_json(*v);
    cert = tx.get_cert(host);
  });
  int64_t t = now();
  if (st.next_attempt > t) return st.next_attempt;
  if (cert && st.renew_at > t) return std::min(st.renew_at, st.dns_checked + config_.dns_recheck);
  return t;
}

void Engine::take_requests() {
  std::vector<std::string> hosts;
  state_->read([&](const StateTxn& tx) {
    tx.for_each(StateTable::requests, [&](std::string_view key, std::string_view) {
      hosts.emplace_back(key);
    });
  });
  if (hosts.empty()) return;
  state_->write([&](StateTxn& tx) {
    for (const std::string& h : hosts) tx.remove(StateTable::requests, h);
  });
  for (const std::string& h : hosts) {
    bool wanted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      wanted = wanted_.count(h) > 0;
      if (wanted) forced_.insert(h);
    }
    if (!wanted) {
      say(LogLevel::warn, "acme: renewal asked for " + domain(h) +
                              ", which is not an active portal domain: ignored");
      continue;
    }
    say(LogLevel::notice, "acme: " + domain(h) + ": renewal asked by portalctl");
    schedule(h, now());
  }
}

void Engine::run_once() {
  if (snapshot_->committed_txnid() != snapshot_txnid_ || wanted_.empty()) load_wanted();
  take_requests();
  for (;;) {
    std::string host;
    bool forced = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty() || queue_.begin()->first > now() || stop_) return;
      host = queue_.begin()->second;
      queue_.erase(queue_.begin());
      due_.erase(host);
      forced = forced_.erase(host) > 0;
    }
    process(host, forced);
    if (snapshot_->committed_txnid() != snapshot_txnid_) load_wanted();
    take_requests();
  }
}

bool Engine::dispatch() {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t t = now();
  bool any = false;
  for (auto it = queue_.begin(); it != queue_.end() && it->first <= t;) {
    if (in_flight_.count(it->second)) {  // scheduled again by its own worker: wait for it
      ++it;
      continue;
    }
    const std::string& host = it->second;
    in_flight_.insert(host);
    work_.emplace_back(host, forced_.erase(host) > 0);
    due_.erase(host);
    it = queue_.erase(it);
    any = true;
  }
  if (any) work_ready_.notify_all();
  return any;
}

void Engine::work() {
  std::unique_ptr<Session> own;
  try {
    if (!fake_transport_) own = new_session();
  } catch (const std::exception& e) {
    say(LogLevel::error, std::string("acme: ") + e.what());
    return;
  }
  t_session = own ? own.get() : main_.get();
  for (;;) {
    std::pair<std::string, bool> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [this] { return stop_ || !work_.empty(); });
      if (stop_) break;
      job = std::move(work_.front());
      work_.erase(work_.begin());
    }
    try {
      process(job.first, job.second);
    } catch (const std::exception& e) {
      say(LogLevel::error, "acme: " + domain(job.first) + ": " + e.what());
    }
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.erase(job.first);
  }
  t_session = nullptr;
}

void Engine::run() {
  say(LogLevel::notice, "acme: engine started (" + config_.where + "), directory \"" +
                            config_.directory_url + "\"");
  std::vector<std::thread> workers;
  for (int i = 0; i < config_.concurrency; i++) workers.emplace_back([this] { work(); });
  bool starting = true;
  while (!stop_) {
    try {
      heartbeat(starting);
      starting = false;
      if (snapshot_->committed_txnid() != snapshot_txnid_ || wanted_.empty()) load_wanted();
      take_requests();
      dispatch();
    } catch (const std::exception& e) {
      say(LogLevel::error, std::string("acme: ") + e.what());
    }
    int64_t wait = config_.poll_ms;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!queue_.empty()) {
        int64_t until = (queue_.begin()->first - now()) * 1000;
        wait = std::clamp<int64_t>(until, 50, config_.poll_ms);
      }
    }
    try {
      sleep_ms(wait);
    } catch (const AcmeError&) {
      break;
    }
  }
  stop();
  for (std::thread& w : workers) w.join();
  say(LogLevel::notice, "acme: engine stopped (" + config_.where + ")");
}

bool Engine::issue(const std::string& host, std::string* why) {
  load_wanted();
  if (!wanted_.count(host)) {
    *why = host + " is not an active portal domain";
    return false;
  }
  process(host, true);
  AcmeStatus st = status(host);
  if (st.state == Lifecycle::active) return true;
  *why = std::string(lifecycle_name(st.state)) + ": " + st.detail;
  return false;
}

// The account is shared by every thread; each thread's client signs with it once it is known.
void Engine::ensure_account() {
  Session& s = session();
  std::lock_guard<std::mutex> lock(account_mutex_);
  if (!account_url_.empty()) {
    if (s.kid != account_url_) {
      s.client->use_account(*account_key_, account_url_);
      s.kid = account_url_;
    }
    return;
  }
  json rec;
  state_->read([&](const StateTxn& tx) {
    if (auto v = tx.get(StateTable::acme, kAccountKey)) rec = json::parse(*v, nullptr, false);
  });
  std::string key_der, url;
  if (rec.is_object() && b64url_decode(str(rec, "key"), &key_der)) {
    if (str(rec, "directory") == config_.directory_url) url = str(rec, "url");
  }
  if (key_der.empty()) {
    // The key is kept before the CA sees it: a crash after registering loses nothing.
    Key k = Key::generate(KeyType::ecdsa);
    key_der = k.to_der();
    rec = {{"key", b64url(key_der)}, {"directory", config_.directory_url}, {"url", ""}};
    state_->write([&](StateTxn& tx) { tx.put(StateTable::acme, kAccountKey, rec.dump()); });
  }
  if (!account_key_) account_key_ = std::make_unique<Key>(Key::from_der(key_der));
  if (url.empty()) {
    AccountOptions o;
    o.contact = config_.contact;
    o.eab_kid = config_.eab_kid;
    o.eab_hmac_key = config_.eab_hmac_key;
    url = s.client->account(*account_key_, o);
    rec = {{"key", b64url(key_der)}, {"directory", config_.directory_url}, {"url", url}};
    state_->write([&](StateTxn& tx) { tx.put(StateTable::acme, kAccountKey, rec.dump()); });
    say(LogLevel::notice, "acme: account " + url + " at \"" + config_.directory_url + "\"");
  } else {
    s.client->use_account(*account_key_, url);
  }
  s.kid = url;
  account_url_ = url;
}

void Engine::forget_account() {
  std::lock_guard<std::mutex> lock(account_mutex_);
  if (account_url_ != session().kid) return;  // another thread registered again already
  account_url_.clear();
  state_->write([&](StateTxn& tx) {
    auto v = tx.get(StateTable::acme, kAccountKey);
    if (!v) return;
    json rec = json::parse(*v, nullptr, false);
    if (!rec.is_object()) return;
    rec["url"] = "";
    tx.put(StateTable::acme, kAccountKey, rec.dump());
  });
}

int64_t Engine::renewal_time(const std::string& host, const CertPair& pair, AcmeStatus& st) {
  int64_t lifetime = pair.not_after - pair.not_before;
  int64_t by_lifetime = pair.not_after - (lifetime < 10 * kDay ? lifetime / 2 : lifetime / 3);
  int64_t t = now();
  std::string ari_id;
  try {
    ari_id = cert_facts(pair.chain_der.at(0)).ari_id;
  } catch (const std::exception&) {
  }
  if (ari_id.empty()) return by_lifetime;
  if (t >= st.ari_next_check) {
    try {
      if (client().directory().renewal_info.empty()) return by_lifetime;
      std::optional<RenewalWindow> w = client().renewal_info(ari_id);
      if (!w) return by_lifetime;
      if (w->start != st.ari_start || w->end != st.ari_end || !st.ari_end) {
        st.ari_start = w->start;
        st.ari_end = w->end;
        // A point inside the window, chosen once per window (RFC 9773 §4.2).
        st.renew_at = w->start + static_cast<int64_t>(random() * double(w->end - w->start));
        say(LogLevel::info, "acme: " + domain(host) + ": renewal window " + utc(w->start) +
                                " to " + utc(w->end));
      }
      st.ari_next_check = std::clamp<int64_t>(w->retry_after ? w->retry_after : t + kAriRecheck,
                                              t + 60, t + kDay);
    } catch (const AcmeError& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      say(LogLevel::warn, "acme: " + domain(host) + ": renewal information: " + e.what());
      st.ari_next_check = t + kAriRecheck;
      st.ari_start = st.ari_end = 0;
      return by_lifetime;
    }
  }
  return st.ari_end ? st.renew_at : by_lifetime;
}

void Engine::count(StateTxn& tx, const char* result) {
  json c = json::object();
  if (auto v = tx.get(StateTable::acme, kCountersKey)) c = json::parse(*v, nullptr, false);
  if (!c.is_object()) c = json::object();
  c[result] = c.value(result, 0) + 1;
  tx.put(StateTable::acme, kCountersKey, c.dump());
}

void Engine::heartbeat(bool starting) {
  int64_t t = now();
  if (!starting && t < last_heartbeat_ + kHeartbeat) return;
  last_heartbeat_ = t;
  if (starting) started_ = t;
  json j = {{"where", config_.where}, {"started", started_}, {"last_run", t}};
  state_->write([&](StateTxn& tx) { tx.put(StateTable::acme, kEngineKey, j.dump()); });
}

void Engine::fail(const std::string& host, AcmeStatus& st, const std::string& what,
                  const Problem& problem, int64_t retry_after, const char* result) {
  int64_t t = now();
  st.failures++;
  st.state = Lifecycle::failed;
  st.problem = problem;
  st.detail = what;
  size_t i = std::min<size_t>(st.failures - 1, config_.backoff.size() - 1);
  int64_t delay = config_.backoff[i];
  delay += static_cast<int64_t>(random() * 0.1 * double(delay));  // jitter: up to +10%
  st.next_attempt = std::max(t + delay, retry_after);
  state_->write([&](StateTxn& tx) {
    tx.put(StateTable::status, host, st.to_json());
    count(tx, result);
  });
  schedule(host, st.next_attempt);
  say(LogLevel::error, "acme: " + domain(host) + ": " + what + "; next attempt " +
                           utc(st.next_attempt) + " (failure " + std::to_string(st.failures) + ")");
}

void Engine::process(const std::string& host, bool forced) {
  AcmeStatus st = status(host);
  std::optional<CertRecord> cert;
  state_->read([&](const StateTxn& tx) { cert = tx.get_cert(host); });
  int64_t t = now();
  const CertPair* pair = cert ? pair_of(*cert, config_.key_type) : nullptr;
  if (!pair && cert && !cert->pairs.empty()) pair = &cert->pairs.front();
  bool valid = pair && pair->not_after > t;

  try {
    if (valid && !forced) {
      // An imported certificate is the operator's: ACME takes over only in its last week.
      int64_t renew_at = cert->source == CertSource::imported
                             ? pair->not_after - kImportedTakeover
                             : renewal_time(host, *pair, st);
      if (t < renew_at) {
        // Not due. Now and then, look whether the name still points here (moved: no renewal).
        AcmeStatus was = st;
        if (st.state != Lifecycle::moved) st.state = Lifecycle::active;
        if (t >= st.dns_checked + config_.dns_recheck) {
          DnsCheckResult dns = check_dns(host);
          st.dns_checked = t;
          if (dns.verdict == DnsVerdict::points_here) st.state = Lifecycle::active;
          if (dns.verdict == DnsVerdict::elsewhere) st.state = Lifecycle::moved;
          if (st.state == Lifecycle::moved) st.detail = "DNS: " + dns.detail;
          if (st.state != was.state) {
            say(LogLevel::notice, "acme: " + domain(host) + ": " + lifecycle_name(st.state) +
                                      " (" + dns.detail + ")");
          }
        }
        if (st.state == Lifecycle::active) {
          st.detail = "certificate valid until " + utc(pair->not_after);
          st.next_attempt = 0;
          st.failures = 0;  // the backoff starts over: the certificate in use is fine
        }
        st.renew_at = renew_at;
        if (st.to_json() != was.to_json()) save(host, st);
        int64_t next = std::min(renew_at, st.dns_checked + config_.dns_recheck);
        if (st.ari_next_check > t) next = std::min(next, st.ari_next_check);
        schedule(host, std::max(next, t + 1));
        return;
      }
      st.renew_at = renew_at;
    }
    if (!forced && st.next_attempt > t) {
      schedule(host, st.next_attempt);
      return;
    }

    // The DNS pre-check: a name that does not point here is not ordered, so the CA's
    // failed-validation limits are never spent on it.
    DnsCheckResult dns = check_dns(host);
    if (dns.verdict != DnsVerdict::points_here) {
      if (dns.verdict == DnsVerdict::error) {
        if (st.detail != "DNS pre-check: " + dns.detail) {
          say(LogLevel::warn, "acme: " + domain(host) + ": DNS pre-check: " + dns.detail);
        }
        st.detail = "DNS pre-check: " + dns.detail;
        st.next_attempt = t + kDnsErrorRetry;
        if (!valid && st.state != Lifecycle::failed) st.state = Lifecycle::pending_dns;
      } else {
        Lifecycle was = st.state;
        st.state = valid ? Lifecycle::moved : Lifecycle::pending_dns;
        st.detail = "DNS: " + dns.detail;
        st.dns_checks++;
        st.next_attempt = t + (valid ? config_.dns_recheck : dns_recheck_delay(st.dns_checks));
        if (was != st.state) {
          say(LogLevel::notice, "acme: " + domain(host) + ": " + lifecycle_name(st.state) +
                                    " (" + dns.detail + ")");
        }
      }
      save(host, st);
      schedule(host, st.next_attempt);
      return;
    }
    st.dns_checks = 0;
    order(host, st, cert ? &*cert : nullptr);
  } catch (const AcmeError& e) {
    if (e.kind() == ErrorKind::cancelled) {
      schedule(host, t);
      return;
    }
    fail(host, st, e.what(), e.problem(), e.retry_after(),
         e.kind() == ErrorKind::invalid ? "invalid" : "error");
  } catch (const std::exception& e) {
    fail(host, st, e.what(), Problem{}, 0, "error");
  }
}

namespace {

// The chain to keep: the one whose top certificate is issued by preferred (an issuer's
// common name), else the CA's default (the first).
std::vector<std::string> choose_chain(const std::vector<std::string>& pems,
                                      const std::string& preferred) {
  std::vector<std::vector<std::string>> chains;
  for (const std::string& pem : pems) {
    try {
      chains.push_back(pem_chain_to_der(pem));
    } catch (const std::exception&) {
      if (chains.empty()) throw;  // the default chain must parse; an alternate may not
    }
  }
  if (!preferred.empty()) {
    for (const auto& chain : chains) {
      if (cert_facts(chain.back()).issuer_cn == preferred) return chain;
    }
  }
  return chains.front();
}

}  // namespace

void Engine::order(const std::string& host, AcmeStatus& st, const CertRecord* current) {
  ensure_account();
  const CertPair* old = current ? pair_of(*current, config_.key_type) : nullptr;
  bool renewing = old && old->not_after > now();
  std::string replaces;
  if (renewing) {
    try {
      replaces = cert_facts(old->chain_der.at(0)).ari_id;
    } catch (const std::exception&) {
    }
  }

  // An order left by a crash is resumed with its key; a dead one is dropped.
  Key key;
  Order o;
  json rec;
  state_->read([&](const StateTxn& tx) {
    if (auto v = tx.get(StateTable::orders, host)) rec = json::parse(*v, nullptr, false);
  });
  std::string key_der;
  if (rec.is_object() && b64url_decode(str(rec, "key"), &key_der) && !str(rec, "url").empty()) {
    try {
      key = Key::from_der(key_der);
      o = client().get_order(str(rec, "url"));
      if (o.status == "invalid" || (o.status == "valid" && o.certificate.empty())) o = Order{};
      else say(LogLevel::notice, "acme: " + domain(host) + ": resuming order " + o.url);
    } catch (const AcmeError& e) {
      if (e.kind() == ErrorKind::cancelled || e.kind() == ErrorKind::transient) throw;
      o = Order{};
    } catch (const std::exception&) {
      o = Order{};
    }
  }
  if (o.url.empty()) {
    key = config_.key_type == KeyType::rsa ? Key::generate(KeyType::rsa, config_.rsa_bits)
                                           : Key::generate(KeyType::ecdsa);
    std::string profile;
    if (!config_.profile.empty()) {
      const auto& listed = client().directory().profiles;
      if (std::find(listed.begin(), listed.end(), config_.profile) != listed.end()) {
        profile = config_.profile;
      } else {
        say(LogLevel::warn, "acme: the directory does not list profile \"" + config_.profile +
                                "\": ordering without one");
      }
    }
    for (int attempt = 0;; attempt++) {
      try {
        o = client().new_order({host}, replaces, profile);
        break;
      } catch (const AcmeError& e) {
        if (attempt > 1) throw;
        if (!replaces.empty() &&
            (e.kind() == ErrorKind::already_replaced || e.problem().is("malformed"))) {
          // Replaced already, or a certificate this CA does not know (another CA's, or
          // one from before a change of directory): order it as a new one.
          say(LogLevel::warn, "acme: " + domain(host) + ": " + e.what() +
                                  "; ordering without \"replaces\"");
          replaces.clear();
        } else if (e.problem().is("accountDoesNotExist")) {
          // The CA forgot the account (a test CA restarted, an account deactivated): the
          // same key registers again.
          say(LogLevel::warn, "acme: " + std::string(e.what()) + "; registering the account again");
          forget_account();
          ensure_account();
        } else {
          throw;
        }
      }
    }
    rec = {{"url", o.url}, {"key", b64url(key.to_der())}, {"created", now()}};
    st.state = renewing ? Lifecycle::renewing : Lifecycle::validating;
    st.order_url = o.url;
    st.last_attempt = now();
    st.detail = "order " + o.url + " " + o.status;
    state_->write([&](StateTxn& tx) {
      tx.put(StateTable::orders, host, rec.dump());
      tx.put(StateTable::status, host, st.to_json());
    });
    say(LogLevel::notice, "acme: " + domain(host) + ": order " + o.url + " created" +
                              (replaces.empty() ? "" : ", replacing " + replaces));
  }

  int64_t deadline = now() + kOrderTimeout;
  auto wait = [&](int64_t retry_after, int64_t& delay_ms) {
    if (now() > deadline) {
      throw AcmeError(ErrorKind::transient, "order " + o.url + " still \"" + o.status +
                                                "\" after " + std::to_string(kOrderTimeout) + " s");
    }
    int64_t ms = delay_ms;
    if (retry_after) ms = std::clamp<int64_t>((retry_after - now()) * 1000, 100, 10000);
    sleep_ms(ms);
    delay_ms = std::min<int64_t>(delay_ms * 2, 2000);
  };

  // Authorizations: HTTP-01, the key authorization published for every worker to serve.
  for (const std::string& url : o.authorizations) {
    Authorization a = client().get_authorization(url);
    if (a.status == "valid") continue;
    if (a.status != "pending") {
      throw AcmeError(ErrorKind::invalid, "authorization " + url + " is \"" + a.status + "\"");
    }
    auto ch = std::find_if(a.challenges.begin(), a.challenges.end(),
                           [](const Challenge& c) { return c.type == "http-01"; });
    if (ch == a.challenges.end() || !is_b64url_token(ch->token)) {
      throw AcmeError(ErrorKind::invalid, "authorization " + url + " offers no http-01 challenge");
    }
    std::string token = ch->token;
    state_->write([&](StateTxn& tx) {
      tx.put(StateTable::challenges, token, client().key_authorization(token));
    });
    struct Unpublish {
      StateStore& s;
      std::string token;
      ~Unpublish() {
        try {
          s.write([&](StateTxn& tx) { tx.remove(StateTable::challenges, token); });
        } catch (...) {
        }
      }
    } unpublish{*state_, token};
    if (ch->status == "pending") client().respond(*ch);
    int64_t delay = 100;
    while ((a = client().get_authorization(url)).status == "pending") wait(a.retry_after, delay);
    if (a.status != "valid") {
      Problem p;
      for (const Challenge& c : a.challenges)
        if (!c.error.empty()) p = c.error;
      throw AcmeError(ErrorKind::invalid,
                      "authorization for " + host + " is \"" + a.status + "\"" +
                          (p.empty() ? "" : ": " + p.summary()),
                      p);
    }
    say(LogLevel::info, "acme: " + domain(host) + ": authorization " + url + " valid");
  }

  int64_t delay = 100;
  o = client().get_order(o.url);
  while (o.status == "pending") {
    wait(o.retry_after, delay);
    o = client().get_order(o.url);
  }
  if (o.status == "ready") {
    o = client().finalize(o, make_csr(key, {host}));
  }
  delay = 100;
  while (o.status == "processing" || o.status == "ready") {
    wait(o.retry_after, delay);
    o = client().get_order(o.url);
  }
  if (o.status != "valid" || o.certificate.empty()) {
    throw AcmeError(ErrorKind::invalid,
                    "order " + o.url + " is \"" + o.status + "\"" +
                        (o.error.empty() ? "" : ": " + o.error.summary()),
                    o.error);
  }

  std::vector<std::string> chain = choose_chain(client().download(o.certificate),
                                                config_.preferred_chain);
  CertFacts facts = cert_facts(chain.front());
  if (!key_matches(key, chain.front())) {
    throw AcmeError(ErrorKind::invalid, "order " + o.url + ": the certificate does not match its key");
  }
  if (std::find(facts.dns_names.begin(), facts.dns_names.end(), host) == facts.dns_names.end()) {
    throw AcmeError(ErrorKind::invalid, "order " + o.url + ": the certificate does not name " + host);
  }
  CertPair pair;
  pair.type = config_.key_type;
  pair.not_before = facts.not_before;
  pair.not_after = facts.not_after;
  pair.chain_der = std::move(chain);
  pair.key_der = key.to_der();

  // One transaction: the new pair (the other key type's pair kept), the order gone, the
  // status active. A reader sees the old complete pair or the new one.
  st.state = Lifecycle::active;
  st.failures = 0;
  st.problem = Problem{};
  st.next_attempt = 0;
  st.dns_checked = now();  // the pre-check just passed
  st.ari_start = st.ari_end = st.ari_next_check = 0;
  st.renew_at = facts.not_after - (facts.not_after - facts.not_before < 10 * kDay
                                       ? (facts.not_after - facts.not_before) / 2
                                       : (facts.not_after - facts.not_before) / 3);
  st.detail = "certificate from " + facts.issuer_cn + " valid until " + utc(facts.not_after);
  state_->write([&](StateTxn& tx) {
    // Only the new pair: one of another key type (an older portal_acme_key_type, or one
    // imported) would be served without anybody renewing it.
    CertRecord r;
    r.source = CertSource::acme;
    r.updated = now();
    r.pairs.push_back(pair);
    tx.put_cert(host, std::move(r));
    tx.remove(StateTable::orders, host);
    tx.put(StateTable::status, host, st.to_json());
    count(tx, "valid");
  });
  say(LogLevel::notice, "acme: " + domain(host) + ": certificate issued by \"" + facts.issuer_cn +
                            "\", valid until " + utc(facts.not_after) + " (order " + o.url + ")");
  schedule(host, std::min(st.renew_at, st.dns_checked + config_.dns_recheck));
}

}  // namespace portal::acme
