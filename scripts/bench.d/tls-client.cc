// The TLS benchmark's load generator: full TLS 1.3 handshakes, a new connection for each,
// the SNI name drawn at random from a list, no session offered (no resumption).
//   tls-client -p PORT -f NAMES (-d SECONDS | -n COUNT) [-c CONNS] [-t THREADS] [-s SEED]
//              [-r 0|1] [-k 0|1] [-o 0|1] [-R RATE] [-a ADDR]
// -d   run for SECONDS; -n: stop after COUNT handshakes (then -o 1 fills a cache in order)
// -c   connections in flight, spread over -t threads, each with its own epoll loop (16, 1)
// -r 1 after the handshake, "GET / HTTP/1.1" for the SNI name with "Connection: close",
//      read to the end; an answer other than 200 is an error. -r 0: close at once       (1)
// -k 1 count a leaf certificate that does not hold the SNI name (wrong_cert)           (0)
// -o 1 the names in order (from the SEED-th on) instead of at random                    (0)
// -R   start at most RATE connections a second in all (paced), so that the server is
//      not saturated and every scenario runs at the same pace; 0: as fast as it answers (0)
// Prints one line: "BENCH handshakes=N duration_us=D errors=E wrong_cert=W cpu_us=C", C
// being this process's own user+system time, to tell whether it was the bottleneck.
// GnuTLS, not OpenSSL: OpenSSL 3.0's client spends twice the CPU per handshake (it decodes
// each certificate's public key through its provider machinery), and the load generator
// must not be the bottleneck. TLS 1.3, X25519 key share, as browsers offer first.
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519";

struct Conn {
  int fd = -1;
  gnutls_session_t tls = nullptr;
  enum { connecting, handshaking, writing, reading } state = connecting;
  size_t name = 0;
  std::string request;
  size_t sent = 0;
  char head[16] = {};
  size_t got = 0;
};

struct Options {
  const char* addr = "127.0.0.1";
  int port = 0;
  const char* names = nullptr;
  double seconds = 0;
  uint64_t count = 0;
  int conns = 16;
  int threads = 1;
  uint64_t seed = 1;
  bool request = true;
  bool check = false;
  bool in_order = false;
  double rate = 0;
};

Options opt;
std::vector<std::string> names;
gnutls_certificate_credentials_t cred;
gnutls_priority_t priority;
sockaddr_in dst{};
Clock::time_point end;
std::atomic<uint64_t> handshakes{0}, errors{0}, wrong_cert{0}, next_name{0};
std::atomic<int> reported{0};

// One thread's loop: its own epoll set and random numbers; the counters are shared.
thread_local int ep;
thread_local uint64_t rng;

uint64_t next_random() {  // xorshift64*
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ULL;
}

bool over() {
  if (opt.count)  // a fill: stop too when it keeps failing
    return handshakes.load(std::memory_order_relaxed) >= opt.count || errors.load() > 100;
  return Clock::now() >= end;
}

void error(const std::string& what, const char* why) {
  errors++;
  if (reported++ < 5) std::fprintf(stderr, "tls-client: %s: %s\n", what.c_str(), why);
}

void watch(Conn* c, uint32_t events, int op = EPOLL_CTL_MOD) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = c;
  if (epoll_ctl(ep, op, c->fd, &ev) != 0) {
    std::perror("tls-client: epoll_ctl");
    std::exit(1);
  }
}

// Waits for what GnuTLS needs next (read or write).
void again(Conn* c) { watch(c, gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN); }

bool start(Conn* c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    std::perror("tls-client: socket");
    std::exit(1);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->state = Conn::connecting;
  c->name = (opt.in_order ? opt.seed + next_name++ : next_random()) % names.size();
  c->sent = c->got = 0;
  std::memset(c->head, 0, sizeof c->head);
  if (connect(c->fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 &&
      errno != EINPROGRESS) {
    error("connect", std::strerror(errno));
    close(c->fd);
    c->fd = -1;
    return false;
  }
  watch(c, EPOLLOUT, EPOLL_CTL_ADD);
  return true;
}

void finish(Conn* c) {
  if (c->tls) gnutls_deinit(c->tls);
  c->tls = nullptr;
  if (c->fd >= 0) close(c->fd);  // closing also takes it out of the epoll set
  c->fd = -1;
}

// Whether the leaf certificate holds name (its CN and SAN do): a cheap check that the
// server picked this name's certificate, not the fallback or another name's.
bool names_it(gnutls_session_t tls, const std::string& name) {
  unsigned n = 0;
  const gnutls_datum_t* chain = gnutls_certificate_get_peers(tls, &n);
  return n > 0 && memmem(chain[0].data, chain[0].size, name.data(), name.size()) != nullptr;
}

// Moves c on as far as it goes; false when the connection is over (done or failed).
bool step(Conn* c) {
  if (c->state == Conn::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      error("connect", std::strerror(err));
      return false;
    }
    if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS) < 0 ||
        gnutls_priority_set(c->tls, priority) < 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
      error("gnutls_init", "failed");
      return false;
    }
    const std::string& n = names[c->name];
    gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, n.data(), n.size());
    gnutls_transport_set_int(c->tls, c->fd);
    c->state = Conn::handshaking;
  }
  if (c->state == Conn::handshaking) {
    int rc = gnutls_handshake(c->tls);
    if (rc < 0) {
      if (!gnutls_error_is_fatal(rc)) return again(c), true;
      error("handshake with " + names[c->name], gnutls_strerror(rc));
      return false;
    }
    handshakes++;
    if (opt.check && !names_it(c->tls, names[c->name])) wrong_cert++;
    if (!opt.request) return false;
    c->request = "GET / HTTP/1.1\r\nHost: " + names[c->name] + "\r\nConnection: close\r\n\r\n";
    c->state = Conn::writing;
  }
  if (c->state == Conn::writing) {
    ssize_t rc = gnutls_record_send(c->tls, c->request.data() + c->sent,
                                    c->request.size() - c->sent);
    if (rc < 0) {
      if (!gnutls_error_is_fatal(rc)) return again(c), true;
      error("write", gnutls_strerror(rc));
      return false;
    }
    c->sent += rc;
    if (c->sent < c->request.size()) return watch(c, EPOLLOUT), true;
    c->state = Conn::reading;
  }
  for (;;) {  // reading: to the end of the answer (the server closes)
    char buf[4096];
    ssize_t rc = gnutls_record_recv(c->tls, buf, sizeof buf);
    if (rc > 0) {
      for (ssize_t i = 0; i < rc && c->got < sizeof c->head - 1; i++) c->head[c->got++] = buf[i];
      continue;
    }
    if (rc < 0 && rc != GNUTLS_E_PREMATURE_TERMINATION) {
      if (!gnutls_error_is_fatal(rc)) return again(c), true;
      error("read", gnutls_strerror(rc));
    } else if (std::strncmp(c->head, "HTTP/1.1 200 ", 13) != 0) {
      error("answer for " + names[c->name], c->head);
    }
    return false;
  }
}

void loop(int id, int count) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  rng = (opt.seed * 1000003 + id) * 0x9E3779B97F4A7C15ULL + 1;
  std::vector<Conn> conns(count);
  // Paced (-R): a finished connection waits in 'idle' until its start time comes.
  std::vector<Conn*> idle;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(opt.rate > 0 ? opt.threads / opt.rate : 0));
  auto next_start = Clock::now();
  for (Conn& c : conns) {
    if (opt.rate > 0) idle.push_back(&c);
    else start(&c);
  }
  std::vector<epoll_event> evs(count > 0 ? count : 1);
  for (bool done = count == 0; !done;) {
    int timeout = 100;
    if (!idle.empty()) {
      auto now = Clock::now();
      if (next_start < now - interval) next_start = now - interval;  // no burst after a stall
      while (!idle.empty() && next_start <= now && !over()) {
        Conn* c = idle.back();
        idle.pop_back();
        if (!start(c)) idle.push_back(c);  // a failed connect is counted; try at the next slot
        next_start += interval;
      }
      if (!idle.empty()) {
        auto wait = std::chrono::duration_cast<std::chrono::microseconds>(next_start - now);
        timeout = static_cast<int>(std::min<long long>(100, wait.count() / 1000 + 1));
      }
    }
    int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), timeout);
    if (n < 0 && errno != EINTR) {
      std::perror("tls-client: epoll_wait");
      std::exit(1);
    }
    done = over();
    for (int i = 0; i < n; i++) {
      Conn* c = static_cast<Conn*>(evs[i].data.ptr);
      if (c->fd < 0 || step(c)) continue;
      finish(c);
      if (opt.rate > 0) {
        idle.push_back(c);
        continue;
      }
      // A failed connect is counted; try again a little later, not in a tight loop.
      while (!done && !start(c) && !over()) usleep(1000);
    }
  }
  for (Conn& c : conns) finish(&c);  // those in flight at the end are not counted
  close(ep);
}

int usage() {
  std::fprintf(stderr,
               "usage: tls-client -p PORT -f NAMES (-d SECONDS | -n COUNT) [-c CONNS] "
               "[-t THREADS] [-s SEED] [-r 0|1] [-k 0|1] [-o 0|1] [-R RATE] [-a ADDR]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int ch;
  while ((ch = getopt(argc, argv, "a:p:f:d:n:c:t:s:r:k:o:R:")) != -1) {
    switch (ch) {
      case 'a': opt.addr = optarg; break;
      case 'p': opt.port = std::atoi(optarg); break;
      case 'f': opt.names = optarg; break;
      case 'd': opt.seconds = std::atof(optarg); break;
      case 'n': opt.count = std::strtoull(optarg, nullptr, 10); break;
      case 'c': opt.conns = std::atoi(optarg); break;
      case 't': opt.threads = std::atoi(optarg); break;
      case 's': opt.seed = std::strtoull(optarg, nullptr, 10); break;
      case 'r': opt.request = std::atoi(optarg) != 0; break;
      case 'k': opt.check = std::atoi(optarg) != 0; break;
      case 'o': opt.in_order = std::atoi(optarg) != 0; break;
      case 'R': opt.rate = std::atof(optarg); break;
      default: return usage();
    }
  }
  if (opt.port <= 0 || !opt.names || (opt.seconds <= 0) == (opt.count == 0) ||
      opt.conns <= 0 || opt.threads <= 0 || opt.threads > opt.conns || opt.rate < 0)
    return usage();
  std::ifstream in(opt.names);
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find('\t'));  // "name" or "name<TAB>anything"
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) {
    std::fprintf(stderr, "tls-client: no names in %s\n", opt.names);
    return 1;
  }
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.addr, &dst.sin_addr) != 1) return usage();

  // No trust store and no verification: the server's CertificateVerify signature is still
  // checked, as TLS 1.3 requires, which is the client's share of a real handshake.
  if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&cred) < 0 ||
      gnutls_priority_init(&priority, kPriority, nullptr) < 0) {
    std::fprintf(stderr, "tls-client: cannot set GnuTLS up\n");
    return 1;
  }

  auto t0 = Clock::now();
  end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                 opt.count ? 3600.0 : opt.seconds));
  rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);
  std::vector<std::thread> threads;
  for (int t = 0; t < opt.threads; t++)
    threads.emplace_back(loop, t, opt.conns / opt.threads + (t < opt.conns % opt.threads));
  for (std::thread& t : threads) t.join();
  auto t1 = Clock::now();
  rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  auto us = [](const timeval& t) { return t.tv_sec * 1000000LL + t.tv_usec; };
  long long cpu = us(ru1.ru_utime) + us(ru1.ru_stime) - us(ru0.ru_utime) - us(ru0.ru_stime);
  std::printf("BENCH handshakes=%llu duration_us=%lld errors=%llu wrong_cert=%llu cpu_us=%lld\n",
              static_cast<unsigned long long>(handshakes.load()),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()),
              static_cast<unsigned long long>(errors.load()),
              static_cast<unsigned long long>(wrong_cert.load()), cpu);
  gnutls_priority_deinit(priority);
  gnutls_certificate_free_credentials(cred);
  gnutls_global_deinit();
  return 0;
}
