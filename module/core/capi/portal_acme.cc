// The extern "C" face of the ACME engine and the challenge responder: everything caught.
#include "portal_acme.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "../acme/config.h"
#include "../acme/crypto.h"
#include "../acme/engine.h"
#include "../acme/lock.h"
#include "../acme/report.h"
#include "../store/snapshot.h"
#include "../store/state.h"

namespace {

void set_err(char* err, size_t errlen, const char* msg) {
  if (err && errlen) std::snprintf(err, errlen, "%s", msg);
}

constexpr size_t kMaxQueuedLines = 10000;  // a worker that cannot drain must not grow forever

// The engine's log lines, queued for the worker's event loop.
class QueueLogger : public portal::acme::Logger {
 public:
  void log(portal::acme::LogLevel level, const std::string& line) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (lines_.size() >= kMaxQueuedLines) lines_.pop_front();
    lines_.emplace_back(static_cast<int>(level), line);
  }
  std::deque<std::pair<int, std::string>> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::deque<std::pair<int, std::string>> out;
    out.swap(lines_);
    return out;
  }

 private:
  std::mutex mutex_;
  std::deque<std::pair<int, std::string>> lines_;
};

portal::acme::EngineConfig to_config(const portal_acme_conf_t* c) {
  portal::acme::EngineConfig e;
  auto s = [](const char* p) { return p ? std::string(p) : std::string(); };
  e.data_dir = s(c->data_dir);
  e.directory_url = s(c->directory);
  for (size_t i = 0; i < c->ncontact; i++) e.contact.emplace_back(c->contact[i]);
  e.ca_file = s(c->ca_file);
  std::string kt = c->key_type ? c->key_type : "ecdsa-p256";
  if (!portal::acme::parse_key_type_spec(kt, &e.key_type, &e.rsa_bits)) {
    throw std::invalid_argument("invalid key type \"" + kt + "\": use " +
                                portal::acme::kKeyTypeSpecs);
  }
  e.dns.cname_target = s(c->cname_target);
  for (size_t i = 0; i < c->nedge_addresses; i++) e.dns.edge_addresses.emplace_back(c->edge_addresses[i]);
  e.dns.resolver = s(c->resolver);
  if (c->nbackoff) e.backoff.assign(c->backoff, c->backoff + c->nbackoff);
  e.dns_recheck = c->dns_recheck;
  if (c->concurrency > 0) e.concurrency = c->concurrency;
  e.preferred_chain = s(c->preferred_chain);
  e.profile = s(c->profile);
  if (c->eab_kid) {
    e.eab_kid = c->eab_kid;
    e.eab_hmac_key = portal::acme::read_eab_key(s(c->eab_key_file));
  }
  return e;
}

}  // namespace

struct portal_acme_s {
  QueueLogger log;
  std::string data_dir, where;
  std::unique_ptr<portal::acme::Engine> engine;
  std::optional<portal::acme::EngineLock> lock;
  std::thread thread;
  std::atomic<bool> ended{false};
};

struct portal_status_s {
  explicit portal_status_s(const std::string& dir) : dir(dir), snapshot(dir), state(dir) {}
  std::string dir;
  portal::SnapshotReader snapshot;
  portal::StateReader state;
  portal::acme::CertDescriptions certs;  // from one status request to the next
};

struct portal_state_s {
  explicit portal_state_s(const std::string& dir) : reader(dir) {}
  portal::StateReader reader;
};

extern "C" {

int portal_acme_check(const portal_acme_conf_t* conf, char* err, size_t errlen) noexcept {
  try {
    portal::acme::check_config(to_config(conf));
    return 0;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return -1;
}

portal_acme_t* portal_acme_create(const portal_acme_conf_t* conf, const char* where, char* err,
                                  size_t errlen) noexcept {
  try {
    auto a = std::make_unique<portal_acme_s>();
    portal::acme::EngineConfig config = to_config(conf);
    config.where = where;
    a->data_dir = config.data_dir;
    a->where = where;
    a->engine = std::make_unique<portal::acme::Engine>(std::move(config), a->log);
    return a.release();
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return nullptr;
}

int portal_acme_try_start(portal_acme_t* a, char* err, size_t errlen) noexcept {
  if (a->thread.joinable()) return 1;
  try {
    std::string holder;
    a->lock = portal::acme::EngineLock::try_acquire(a->data_dir, a->where, &holder);
    if (!a->lock) return 0;
    // The thread starts with every signal blocked: nginx's handlers stay with the worker.
    // Not the synchronous ones: blocked, they would kill the process without a handler
    // (and the store's SIGBUS guard, lmdb.h, needs its handler).
    sigset_t all, old;
    sigfillset(&all);
    for (int sig : {SIGBUS, SIGSEGV, SIGFPE, SIGILL}) sigdelset(&all, sig);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      a->thread = std::thread([a] {
        a->engine->run();
        a->ended = true;
      });
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      a->lock.reset();
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return 1;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return -1;
}

int portal_acme_wind_down(portal_acme_t* a) noexcept {
  try {
    a->engine->stop();
    if (a->thread.joinable()) {
      if (!a->ended) return 0;
      a->thread.join();
    }
    a->lock.reset();
    return 1;
  } catch (...) {
  }
  return 0;
}

void portal_acme_drain_log(portal_acme_t* a, portal_log_pt fn, void* ctx) noexcept {
  try {
    for (const auto& [level, line] : a->log.take()) fn(ctx, level, line.data(), line.size());
  } catch (...) {
  }
}

void portal_acme_destroy(portal_acme_t* a, portal_log_pt fn, void* ctx) noexcept {
  if (!a) return;
  try {
    a->engine->stop();
    if (a->thread.joinable()) a->thread.join();
  } catch (...) {
  }
  if (fn) portal_acme_drain_log(a, fn, ctx);
  delete a;
}

portal_state_t* portal_state_open(const char* dir, char* err, size_t errlen) noexcept {
  try {
    return new portal_state_s(dir);
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return nullptr;
}

void portal_state_close(portal_state_t* s) noexcept { delete s; }

int portal_acme_token_valid(const char* token, size_t len) noexcept {
  return len <= 256 && portal::acme::is_b64url_token(std::string_view(token, len)) ? 1 : 0;
}

portal_rc_t portal_acme_challenge(portal_state_t* s, const char* token, size_t len,
                                  portal_alloc_pt alloc, void* alloc_ctx, portal_str_t* out,
                                  char* err, size_t errlen) noexcept {
  try {
    std::optional<std::string> v = s->reader.challenge(std::string_view(token, len));
    if (!v) return PORTAL_NOT_FOUND;
    char* p = static_cast<char*>(alloc(alloc_ctx, v->size() ? v->size() : 1));
    if (!p) {
      set_err(err, errlen, "out of memory");
      return PORTAL_ERROR;
    }
    std::memcpy(p, v->data(), v->size());
    out->data = p;
    out->len = v->size();
    return PORTAL_FOUND;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return PORTAL_ERROR;
}

portal_status_t* portal_status_open(const char* dir, char* err, size_t errlen) noexcept {
  try {
    return new portal_status_s(dir);
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return nullptr;
}

void portal_status_close(portal_status_t* s) noexcept { delete s; }

int portal_status_render(portal_status_t* s, int prometheus, const unsigned long long* requests,
                         portal_alloc_pt alloc, void* alloc_ctx, portal_str_t* out, char* err,
                         size_t errlen) noexcept {
  try {
    nlohmann::ordered_json r =
        portal::acme::status_report(s->snapshot, s->state, s->dir, std::time(nullptr), &s->certs);
    std::string text;
    if (prometheus) {
      portal::acme::RequestCounts counts;
      if (requests) {
        counts.hit = requests[0];
        counts.miss = requests[1];
      }
      text = portal::acme::status_prometheus(r, requests ? &counts : nullptr);
    } else {
      text = r.dump(2) + "\n";
    }
    char* p = static_cast<char*>(alloc(alloc_ctx, text.size()));
    if (!p) {
      set_err(err, errlen, "out of memory");
      return -1;
    }
    std::memcpy(p, text.data(), text.size());
    out->data = p;
    out->len = text.size();
    return 0;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return -1;
}

}  // extern "C"
