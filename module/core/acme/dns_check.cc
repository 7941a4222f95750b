// The DNS pre-check on c-ares: one channel per checker, asked with ares_query (no search list,
// the name as-is), waited for with poll(2) (select breaks past FD_SETSIZE in a busy worker),
// replies parsed here so CNAME, A and AAAA share one strict reader.
#include "dns_check.h"

#include <arpa/inet.h>
#include <ares.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "../util/text.h"

namespace portal::acme {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kClassIn = 1, kTypeA = 1, kTypeCname = 5, kTypeAaaa = 28;
constexpr size_t kMaxHops = 8;  // CNAME records followed; real chains are one or two long

// Names compare case-insensitively and without the root's trailing dot.
std::string norm(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

// A textual address as the 4 or 16 bytes a reply carries; "" when it does not parse.
std::string ip_bytes(const std::string& text) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return std::string(buf, buf + 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return std::string(buf, buf + 16);
  return "";
}

std::string ip_text(const std::string& bytes) {
  char buf[INET6_ADDRSTRLEN];
  int af = bytes.size() == 4 ? AF_INET : AF_INET6;
  return inet_ntop(af, bytes.data(), buf, sizeof buf) ? buf : "?";
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : sep) + part;
  return out;
}

// "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address; the port defaults to 53.
ares_addr_port_node parse_resolver(const std::string& text) {
  auto bad = [&](const char* why) {
    return std::invalid_argument("invalid resolver " + portal::quoted(text) + ": " + why);
  };
  std::string host = text, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) throw bad("missing \"]\"");
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') throw bad("junk after \"]\"");
      port = text.substr(close + 2);
      if (port.empty()) throw bad("empty port");
    }
    if (ip_bytes(host).size() != 16) throw bad("not an IPv6 address in brackets");
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) throw bad("empty port");
  }
  std::string addr = ip_bytes(host);
  if (addr.empty()) throw bad("not an IP address");

  int number = 53;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      throw bad("bad port");
    number = std::stoi(port);
    if (number < 1 || number > 65535) throw bad("bad port");
  }

  ares_addr_port_node node{};
  node.family = addr.size() == 4 ? AF_INET : AF_INET6;
  if (node.family == AF_INET)
    std::copy(addr.begin(), addr.end(), reinterpret_cast<char*>(&node.addr.addr4));
  else
    std::copy(addr.begin(), addr.end(), reinterpret_cast<char*>(&node.addr.addr6));
  node.udp_port = node.tcp_port = number;
  return node;
}

// What the answer section says: a CNAME target (normalized) or an address (raw bytes).
struct Record {
  std::string owner;
  int type = 0;
  std::string data;
};

unsigned u16(const unsigned char* p) { return (unsigned{p[0]} << 8) | p[1]; }

// A possibly compressed name at msg[*pos]; advances *pos past it.
bool read_name(const std::vector<unsigned char>& msg, size_t* pos, std::string* out) {
  if (*pos >= msg.size()) return false;
  char* name = nullptr;
  long used = 0;
  if (ares_expand_name(msg.data() + *pos, msg.data(), static_cast<int>(msg.size()), &name,
                       &used) != ARES_SUCCESS)
    return false;
  std::unique_ptr<char, void (*)(void*)> owned(name, ares_free_string);
  if (out) *out = norm(name);
  *pos += static_cast<size_t>(used);
  return *pos <= msg.size();
}

// The answer section's CNAME, A and AAAA records; false for a malformed reply.
bool parse_answers(const std::vector<unsigned char>& msg, std::vector<Record>* out) {
  if (msg.size() < 12) return false;
  unsigned questions = u16(&msg[4]), answers = u16(&msg[6]);
  size_t pos = 12;
  for (unsigned i = 0; i < questions; i++) {
    if (!read_name(msg, &pos, nullptr) || (pos += 4) > msg.size()) return false;
  }
  for (unsigned i = 0; i < answers; i++) {
    Record rr;
    if (!read_name(msg, &pos, &rr.owner) || pos + 10 > msg.size()) return false;
    rr.type = static_cast<int>(u16(&msg[pos]));
    unsigned rclass = u16(&msg[pos + 2]), rdlen = u16(&msg[pos + 8]);
    pos += 10;
    if (pos + rdlen > msg.size()) return false;
    size_t rdata = pos;
    pos += rdlen;
    if (rclass != kClassIn) continue;
    if (rr.type == kTypeCname) {
      if (!read_name(msg, &rdata, &rr.data)) return false;
    } else if ((rr.type == kTypeA && rdlen == 4) || (rr.type == kTypeAaaa && rdlen == 16)) {
      rr.data.assign(msg.begin() + static_cast<long>(rdata), msg.begin() + static_cast<long>(pos));
    } else {
      continue;
    }
    out->push_back(std::move(rr));
  }
  return true;
}

const std::string* cname_of(const std::vector<Record>& rrs, const std::string& name) {
  for (const auto& rr : rrs)
    if (rr.type == kTypeCname && rr.owner == name) return &rr.data;
  return nullptr;
}

// Addresses of NAME in one reply, through any CNAMEs the resolver put before them.
std::vector<std::string> addresses_of(const std::vector<Record>& rrs, std::string name, int type) {
  std::vector<std::string> names{name}, out;
  while (const std::string* next = cname_of(rrs, names.back())) {
    if (names.size() > kMaxHops || std::count(names.begin(), names.end(), *next)) break;
    names.push_back(*next);
  }
  for (const auto& rr : rrs)
    if (rr.type == type && std::count(names.begin(), names.end(), rr.owner)) out.push_back(rr.data);
  return out;
}

struct Reply {
  bool done = false;
  int status = ARES_ECANCELLED;
  std::vector<unsigned char> msg;
};

// c-ares calls this from C: nothing may throw out of it.
void on_reply(void* arg, int status, int, unsigned char* abuf, int alen) noexcept {
  auto* reply = static_cast<Reply*>(arg);
  reply->done = true;
  reply->status = status;
  try {
    if (abuf && alen > 0) reply->msg.assign(abuf, abuf + alen);
  } catch (...) {
    reply->status = ARES_ENOMEM;
  }
}

// Why a query gave no answer; nullptr when it did (NXDOMAIN and NODATA are answers).
const char* failure(int status) {
  switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
      return nullptr;
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:  // our own deadline passed
      return "timeout";
    case ARES_ESERVFAIL:
      return "SERVFAIL";
    case ARES_EREFUSED:
      return "REFUSED";
    case ARES_ENOTIMP:
      return "NOTIMP";
    case ARES_EFORMERR:
      return "FORMERR";
    case ARES_ECONNREFUSED:
      return "connection refused";
    default:
      return ares_strerror(status);
  }
}

DnsCheckResult result(DnsVerdict verdict, std::string detail) {
  return DnsCheckResult{verdict, std::move(detail)};
}

}  // namespace

struct DnsChecker::Impl {
  DnsCheckConfig config;
  std::string target;              // normalized cname_target
  std::vector<std::string> edges;  // raw address bytes
  std::string server;              // for error details
  ares_channel channel = nullptr;

  ~Impl() {
    if (channel) ares_destroy(channel);
  }

  DnsCheckResult check(const std::string& host);
  DnsCheckResult check_addresses(const std::string& host, Clock::time_point deadline);
  void ask(const std::string& name, int type, Reply* reply);
  void wait(Clock::time_point deadline, std::initializer_list<Reply*> replies);

  DnsCheckResult fail(const char* type, const std::string& name, const char* why) const {
    std::string detail = std::string(type) + " " + name + ": " + why;
    return result(DnsVerdict::error, detail + " (" + server + ")");
  }
  bool is_edge(const std::string& addr) const {
    return std::find(edges.begin(), edges.end(), addr) != edges.end();
  }
};

DnsChecker::DnsChecker(DnsCheckConfig config) : impl_(nullptr) {
  auto impl = std::make_unique<Impl>();
  for (const auto& text : config.edge_addresses) {
    std::string addr = ip_bytes(text);
    if (addr.empty()) throw std::invalid_argument("invalid edge address " + portal::quoted(text));
    impl->edges.push_back(std::move(addr));
  }
  if (config.timeout_ms <= 0) throw std::invalid_argument("DNS check timeout must be positive");
  bool own_server = !config.resolver.empty();
  ares_addr_port_node node{};
  if (own_server) node = parse_resolver(config.resolver);
  impl->server = own_server ? "resolver " + config.resolver : "system resolver";
  impl->target = norm(config.cname_target);

  // ares_library_init is reference-counted and not thread-safe in 1.18: once, never undone.
  static std::once_flag once;
  static int init_rc = ARES_SUCCESS;
  std::call_once(once, [] { init_rc = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_rc != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares init: ") + ares_strerror(init_rc));

  // Two tries of a third each: c-ares doubles the second, so one query costs timeout_ms.
  ares_options opts{};
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP;
  opts.timeout = std::max(1, config.timeout_ms / 3);
  opts.tries = 2;
  int rc = ares_init_options(&impl->channel, &opts,
                             ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (rc != ARES_SUCCESS) {
    impl->channel = nullptr;
    throw std::runtime_error(std::string("c-ares channel: ") + ares_strerror(rc));
  }
  if (own_server && (rc = ares_set_servers_ports(impl->channel, &node)) != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares resolver: ") + ares_strerror(rc));
  impl->config = std::move(config);
  impl_ = impl.release();
}

DnsChecker::~DnsChecker() { delete impl_; }

DnsCheckResult DnsChecker::check(const std::string& host) {
  try {
    return impl_->check(norm(host));
  } catch (const std::exception& e) {
    return result(DnsVerdict::error, std::string("DNS check failed: ") + e.what());
  } catch (...) {
    return result(DnsVerdict::error, "DNS check failed");
  }
}

DnsCheckResult DnsChecker::Impl::check(const std::string& host) {
  if (host.empty()) return result(DnsVerdict::error, "empty host name");
  auto deadline = Clock::now() + std::chrono::milliseconds(2LL * config.timeout_ms);
  if (!target.empty() && host == target)
    return result(DnsVerdict::points_here, host + " is the CNAME target");

  // Each CNAME query may carry several links (challtestsrv adds the next one); use them all.
  std::vector<std::string> chain{host};
  for (;;) {
    Reply reply;
    ask(chain.back(), kTypeCname, &reply);
    wait(deadline, {&reply});
    if (const char* why = failure(reply.status)) return fail("CNAME", chain.back(), why);
    if (reply.status == ARES_ENOTFOUND) {
      if (chain.size() == 1) return result(DnsVerdict::elsewhere, "no A/AAAA/CNAME (NXDOMAIN)");
      return result(DnsVerdict::elsewhere, "CNAME " + join(chain, " -> ") + " (NXDOMAIN)");
    }
    std::vector<Record> rrs;
    if (reply.status == ARES_SUCCESS && !parse_answers(reply.msg, &rrs))
      return fail("CNAME", chain.back(), "malformed reply");

    size_t before = chain.size();
    while (const std::string* next = cname_of(rrs, chain.back())) {
      if (chain.size() > kMaxHops) {
        std::string why = "CNAME chain longer than " + std::to_string(kMaxHops) + ": ";
        return result(DnsVerdict::elsewhere, why + join(chain, " -> "));
      }
      bool seen = std::count(chain.begin(), chain.end(), *next) > 0;
      chain.push_back(*next);
      if (!target.empty() && chain.back() == target)
        return result(DnsVerdict::points_here, "CNAME " + join(chain, " -> "));
      if (seen) return result(DnsVerdict::elsewhere, "CNAME loop " + join(chain, " -> "));
    }
    if (chain.size() == before) break;  // the last name has no CNAME: the chain ends there
  }
  if (chain.size() == 1) return check_addresses(host, deadline);
  // A chain that does not reach the target may still end at the edge's own addresses.
  if (edges.empty()) return result(DnsVerdict::elsewhere, "CNAME " + join(chain, " -> "));
  DnsCheckResult end = check_addresses(chain.back(), deadline);
  end.detail = "CNAME " + join(chain, " -> ") + ": " + end.detail;
  return end;
}

// Without a CNAME: every A and AAAA must be an edge address, and there must be one.
DnsCheckResult DnsChecker::Impl::check_addresses(const std::string& host,
                                                 Clock::time_point deadline) {
  Reply a, aaaa;
  ask(host, kTypeA, &a);
  ask(host, kTypeAaaa, &aaaa);
  wait(deadline, {&a, &aaaa});

  std::vector<std::string> found;
  DnsCheckResult failed;
  struct Kind {
    const Reply* reply;
    int type;
    const char* label;
  };
  for (const Kind& kind : {Kind{&a, kTypeA, "A"}, Kind{&aaaa, kTypeAaaa, "AAAA"}}) {
    std::vector<Record> rrs;
    if (const char* why = failure(kind.reply->status)) {
      if (failed.detail.empty()) failed = fail(kind.label, host, why);
      continue;
    }
    if (kind.reply->status != ARES_SUCCESS) continue;
    if (!parse_answers(kind.reply->msg, &rrs)) {
      if (failed.detail.empty()) failed = fail(kind.label, host, "malformed reply");
      continue;
    }
    // One foreign address settles it, even if the other query failed.
    for (const auto& addr : addresses_of(rrs, host, kind.type)) {
      std::string shown = std::string(kind.label) + " " + ip_text(addr);
      if (!is_edge(addr)) return result(DnsVerdict::elsewhere, shown + " is not an edge address");
      found.push_back(std::move(shown));
    }
  }
  if (!failed.detail.empty()) return failed;
  if (found.empty()) return result(DnsVerdict::elsewhere, "no A/AAAA/CNAME");
  const char* verb = found.size() == 1 ? " is an edge address" : " are edge addresses";
  return result(DnsVerdict::points_here, join(found, ", ") + verb);
}

void DnsChecker::Impl::ask(const std::string& name, int type, Reply* reply) {
  ares_query(channel, name.c_str(), kClassIn, type, on_reply, reply);
}

// Runs the channel until every reply is in; past the deadline, cancels what is left.
void DnsChecker::Impl::wait(Clock::time_point deadline, std::initializer_list<Reply*> replies) {
  auto pending = [&] {
    return std::any_of(replies.begin(), replies.end(), [](const Reply* r) { return !r->done; });
  };
  while (pending()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ares_cancel(channel);  // the callbacks run now, with ARES_ECANCELLED
      break;
    }
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    nfds_t count = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
      short events = (ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
                     (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0);
      if (events) fds[count++] = pollfd{socks[i], events, 0};
    }
    timeval cap{static_cast<time_t>(left.count() / 1000),
                static_cast<suseconds_t>(left.count() % 1000 * 1000)};
    timeval tv{};
    timeval* next = ares_timeout(channel, &cap, &tv);
    int ms = static_cast<int>(next->tv_sec * 1000 + (next->tv_usec + 999) / 1000);

    int ready = poll(fds, count, ms);
    if (ready <= 0) {  // a timeout tick (or EINTR): let c-ares retry or give up
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (nfds_t i = 0; i < count; i++) {
      short ev = fds[i].revents;
      if (!ev) continue;
      bool in = ev & (POLLIN | POLLERR | POLLHUP | POLLNVAL), out = ev & POLLOUT;
      ares_process_fd(channel, in ? fds[i].fd : ARES_SOCKET_BAD,
                      out ? fds[i].fd : ARES_SOCKET_BAD);
    }
  }
}

}  // namespace portal::acme
