// The DNS pre-check against a real pebble-challtestsrv, started per test on free ports.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "acme/dns_check.h"

namespace {

using portal::acme::DnsCheckConfig;
using portal::acme::DnsChecker;
using portal::acme::DnsVerdict;
using Clock = std::chrono::steady_clock;

const char* kTarget = "edge.portal.test";

// Whether PORT can be bound on 127.0.0.1 for this socket type right now.
bool port_free(int port, int type) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return ok;
}

int free_port(std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (;;) {
    int port = pick(rng);
    if (port_free(port, SOCK_STREAM) && port_free(port, SOCK_DGRAM)) return port;
  }
}

int connect_tcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// POST a JSON body to challtestsrv's management API; returns the HTTP status (0: no answer).
int post(int port, const std::string& path, const std::string& body) {
  int fd = connect_tcp(port);
  if (fd < 0) return 0;
  std::string req = "POST " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" +
                    "Content-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return 0;
  }
  std::string resp;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  if (resp.compare(0, 5, "HTTP/") != 0 || resp.find(' ') == std::string::npos) return 0;
  return std::atoi(resp.c_str() + resp.find(' ') + 1);
}

std::string find_binary(const char* name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string file = dirs.substr(start, end - start) + "/" + name;
    if (access(file.c_str(), X_OK) == 0) return file;
    start = end + 1;
  }
  return "";
}

class DnsCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string bin = find_binary("pebble-challtestsrv");
    ASSERT_FALSE(bin.empty()) << "pebble-challtestsrv is not installed (Debian: pebble)";
    std::mt19937 rng(std::random_device{}());
    // A port picked free can be taken before the server binds it: try a few pairs.
    for (int attempt = 0; attempt < 5 && pid_ <= 0; attempt++) {
      dns_port_ = free_port(rng);
      do mgmt_port_ = free_port(rng);
      while (mgmt_port_ == dns_port_);
      start(bin);
    }
    ASSERT_GT(pid_, 0) << "pebble-challtestsrv did not start";
  }

  void TearDown() override {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; i++) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  void start(const std::string& bin) {
    std::string dns = "127.0.0.1:" + std::to_string(dns_port_);
    std::string mgmt = "127.0.0.1:" + std::to_string(mgmt_port_);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 1);
      dup2(null, 2);
      execl(bin.c_str(), bin.c_str(), "-dns01", dns.c_str(), "-http01", "", "-https01", "",
            "-tlsalpn01", "", "-management", mgmt.c_str(), "-defaultIPv4", "", "-defaultIPv6",
            "", static_cast<char*>(nullptr));
      _exit(127);
    }
    // Ready when both the management API and the DNS server (its TCP side) accept.
    for (int i = 0; i < 500; i++) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;  // died: ports taken, try again
      int a = connect_tcp(mgmt_port_), b = connect_tcp(dns_port_);
      if (a >= 0) close(a);
      if (b >= 0) close(b);
      if (a >= 0 && b >= 0) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  void api(const std::string& path, const std::string& body) {
    ASSERT_EQ(post(mgmt_port_, path, body), 200) << path << " " << body;
  }
  void cname(const std::string& host, const std::string& target) {
    api("/set-cname", "{\"host\":\"" + host + "\",\"target\":\"" + target + "\"}");
  }
  void add(const char* type, const std::string& host, const std::string& addr) {
    std::string body = "{\"host\":\"" + host + "\",\"addresses\":[\"" + addr + "\"]}";
    api(std::string("/add-") + type, body);
  }

  DnsCheckConfig config() const {
    DnsCheckConfig c;
    c.resolver = "127.0.0.1:" + std::to_string(dns_port_);
    c.cname_target = kTarget;
    c.edge_addresses = {"127.0.0.1", "0:0:0:0:0:0:0:1"};  // compared as bytes, so "::1" matches
    c.timeout_ms = 1000;
    return c;
  }

  pid_t pid_ = -1;
  int dns_port_ = 0, mgmt_port_ = 0;
};

TEST_F(DnsCheck, CnameToTarget) {
  cname("a.example", kTarget);
  auto r = DnsChecker(config()).check("a.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
  EXPECT_EQ(r.detail, "CNAME a.example -> edge.portal.test");
}

TEST_F(DnsCheck, CnameChainOfTwoHops) {
  cname("b.example", "a.example");
  cname("a.example", kTarget);
  auto r = DnsChecker(config()).check("b.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
  EXPECT_EQ(r.detail, "CNAME b.example -> a.example -> edge.portal.test");
}

TEST_F(DnsCheck, CnameChainFollowedAcrossQueries) {
  // challtestsrv adds one link per reply; four hops take more than one query.
  cname("h1.example", "h2.example");
  cname("h2.example", "h3.example");
  cname("h3.example", "h4.example");
  cname("h4.example", kTarget);
  auto r = DnsChecker(config()).check("h1.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
}

TEST_F(DnsCheck, TargetComparedWithoutCaseOrTrailingDot) {
  cname("a.example", kTarget);
  auto c = config();
  c.cname_target = "Edge.Portal.TEST.";
  auto r = DnsChecker(c).check("a.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
}

TEST_F(DnsCheck, CnameElsewhere) {
  cname("c.example", "other.example");
  add("a", "other.example", "192.0.2.9");
  auto r = DnsChecker(config()).check("c.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_EQ(r.detail, "CNAME c.example -> other.example: A 192.0.2.9 is not an edge address");
}

// A CNAME to another name of the operator's, whose addresses are the edge's: it points here.
TEST_F(DnsCheck, CnameToAnotherNameWithEdgeAddresses) {
  cname("c.example", "other.example");
  add("a", "other.example", "127.0.0.1");
  auto r = DnsChecker(config()).check("c.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
  EXPECT_EQ(r.detail, "CNAME c.example -> other.example: A 127.0.0.1 is an edge address");
  auto c = config();
  c.edge_addresses.clear();  // with a CNAME target only, the chain must reach it
  r = DnsChecker(c).check("c.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_EQ(r.detail, "CNAME c.example -> other.example");
}

TEST_F(DnsCheck, CnameLoop) {
  cname("l1.example", "l2.example");
  cname("l2.example", "l1.example");
  auto r = DnsChecker(config()).check("l1.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_NE(r.detail.find("loop"), std::string::npos) << r.detail;
}

TEST_F(DnsCheck, CnameChainTooLong) {
  for (int i = 0; i < 10; i++)
    cname("n" + std::to_string(i) + ".example", "n" + std::to_string(i + 1) + ".example");
  cname("n10.example", kTarget);
  auto r = DnsChecker(config()).check("n0.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_NE(r.detail.find("longer than 8"), std::string::npos) << r.detail;
}

TEST_F(DnsCheck, AddressInEdgeList) {
  add("a", "d.example", "127.0.0.1");
  auto r = DnsChecker(config()).check("d.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
  EXPECT_EQ(r.detail, "A 127.0.0.1 is an edge address");
}

TEST_F(DnsCheck, AddressNotInEdgeList) {
  add("a", "e.example", "192.0.2.7");
  auto r = DnsChecker(config()).check("e.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_EQ(r.detail, "A 192.0.2.7 is not an edge address");
}

TEST_F(DnsCheck, OneForeignAddressAmongEdgeOnes) {
  api("/add-a", R"({"host":"f.example","addresses":["127.0.0.1","192.0.2.8"]})");
  auto r = DnsChecker(config()).check("f.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_NE(r.detail.find("192.0.2.8"), std::string::npos) << r.detail;
}

TEST_F(DnsCheck, AaaaInEdgeList) {
  add("aaaa", "g.example", "::1");
  auto r = DnsChecker(config()).check("g.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
  EXPECT_EQ(r.detail, "AAAA ::1 is an edge address");

  add("a", "g.example", "127.0.0.1");
  r = DnsChecker(config()).check("g.example");
  EXPECT_EQ(r.verdict, DnsVerdict::points_here) << r.detail;
  EXPECT_EQ(r.detail, "A 127.0.0.1, AAAA ::1 are edge addresses");
}

TEST_F(DnsCheck, AaaaNotInEdgeList) {
  add("a", "h.example", "127.0.0.1");
  add("aaaa", "h.example", "2001:db8::1");
  auto r = DnsChecker(config()).check("h.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_EQ(r.detail, "AAAA 2001:db8::1 is not an edge address");
}

TEST_F(DnsCheck, UnknownName) {
  auto r = DnsChecker(config()).check("unknown.example");
  EXPECT_EQ(r.verdict, DnsVerdict::elsewhere) << r.detail;
  EXPECT_EQ(r.detail, "no A/AAAA/CNAME");
}

TEST_F(DnsCheck, ServfailIsAnError) {
  api("/set-servfail", R"({"host":"s.example"})");
  auto r = DnsChecker(config()).check("s.example");
  EXPECT_EQ(r.verdict, DnsVerdict::error) << r.detail;
  EXPECT_NE(r.detail.find("SERVFAIL"), std::string::npos) << r.detail;
}

TEST_F(DnsCheck, NothingListensOnTheResolverPort) {
  std::mt19937 rng(std::random_device{}());
  auto c = config();
  c.resolver = "127.0.0.1:" + std::to_string(free_port(rng));
  c.timeout_ms = 500;
  auto start = Clock::now();
  auto r = DnsChecker(c).check("a.example");
  auto took = Clock::now() - start;
  EXPECT_EQ(r.verdict, DnsVerdict::error) << r.detail;
  EXPECT_NE(r.detail.find("connection refused"), std::string::npos) << r.detail;
  EXPECT_LT(took, std::chrono::milliseconds(2 * c.timeout_ms + 300)) << r.detail;
}

TEST_F(DnsCheck, SilentResolverTimesOut) {
  // A bound UDP socket that never answers: the queries time out instead of being refused.
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);

  auto c = config();
  c.resolver = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  c.timeout_ms = 400;
  DnsChecker checker(c);
  auto start = Clock::now();
  auto r = checker.check("a.example");
  auto took = Clock::now() - start;
  close(fd);
  EXPECT_EQ(r.verdict, DnsVerdict::error) << r.detail;
  EXPECT_NE(r.detail.find("timeout"), std::string::npos) << r.detail;
  EXPECT_LT(took, std::chrono::milliseconds(2 * c.timeout_ms + 300)) << r.detail;
}

TEST_F(DnsCheck, CheckerIsReusable) {
  cname("a.example", kTarget);
  add("a", "d.example", "192.0.2.9");
  DnsChecker checker(config());
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(checker.check("a.example").verdict, DnsVerdict::points_here);
    EXPECT_EQ(checker.check("d.example").verdict, DnsVerdict::elsewhere);
    EXPECT_EQ(checker.check("unknown.example").verdict, DnsVerdict::elsewhere);
  }
}

TEST(DnsCheckSetup, BadAddressesThrow) {
  auto make = [](std::string resolver, std::vector<std::string> edges) {
    DnsCheckConfig c;
    c.resolver = std::move(resolver);
    c.edge_addresses = std::move(edges);
    DnsChecker checker(c);
  };
  for (const char* bad : {"resolver.example", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:53x", "[::1", "[::1]53", "[127.0.0.1]:53", "300.1.1.1",
                          "::1:53:zz", " 127.0.0.1"})
    EXPECT_THROW(make(bad, {}), std::invalid_argument) << bad;
  for (const char* bad : {"", "localhost", "1.2.3", "2001:db8::1::2", "127.0.0.1 "})
    EXPECT_THROW(make("127.0.0.1", {bad}), std::invalid_argument) << "\"" << bad << "\"";
  for (const char* good : {"127.0.0.1", "127.0.0.1:8053", "[::1]:53", "[::1]", "::1"})
    EXPECT_NO_THROW(make(good, {"192.0.2.1", "2001:db8::1"})) << good;
  EXPECT_NO_THROW(make("", {}));  // the system's resolver
}

}  // namespace
