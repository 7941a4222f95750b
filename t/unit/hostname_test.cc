#include <gtest/gtest.h>

#include <string>

#include "host/hostname.h"
#include "host/idn.h"

using portal::canonical_host;
using portal::HostCheck;
using portal::host_from_input;

namespace {

std::string canon(const std::string& in) {
  std::string out;
  return canonical_host(in, out) ? out : "<invalid>";
}

HostCheck check(const std::string& in) {
  char buf[portal::kMaxHostLen];
  size_t len = 0;
  return canonical_host(in, buf, &len);
}

}  // namespace

TEST(Hostname, CanonicalForms) {
  EXPECT_EQ(canon("portal.yourwebsite.com"), "portal.yourwebsite.com");
  EXPECT_EQ(canon("PORTAL.YourWebsite.COM"), "portal.yourwebsite.com");
  EXPECT_EQ(canon("portal.yourwebsite.com."), "portal.yourwebsite.com");
  EXPECT_EQ(canon("portal.yourwebsite.com:80"), "portal.yourwebsite.com");
  EXPECT_EQ(canon("portal.yourwebsite.com.:8443"), "portal.yourwebsite.com");
  EXPECT_EQ(canon("portal.yourwebsite.com:"), "portal.yourwebsite.com");  // empty port
  EXPECT_EQ(canon("a-b.c0.example"), "a-b.c0.example");
  EXPECT_EQ(canon("xn--bcher-kva.example"), "xn--bcher-kva.example");
}

TEST(Hostname, HostileValues) {
  const std::string label63(63, 'a'), label64(64, 'a');
  EXPECT_EQ(canon(label63 + ".example"), label63 + ".example");
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_EQ(canon(name253), name253);
  EXPECT_EQ(canon(name253 + "."), name253);

  const char* invalid[] = {"", ".", "..a", "a..b", ".a.example", "a.example..", "_",
                           "%", "a_b.example", "a%2eb.example", "-a.example", "a-.example",
                           "example", "localhost", "127.0.0.1", "1.2.3.4:80", "[::1]:80",
                           "a b.example", "a/b.example", "a\\b.example", "a.example/x"};
  for (const char* in : invalid) EXPECT_EQ(check(in), HostCheck::invalid) << in;
  EXPECT_EQ(check(label64 + ".example"), HostCheck::invalid);
  EXPECT_EQ(check(name253 + "b"), HostCheck::invalid);  // 254 bytes
  EXPECT_EQ(check(std::string("a.example\0", 10)), HostCheck::invalid);
  EXPECT_EQ(check("a.exam\rple"), HostCheck::invalid);
  EXPECT_EQ(check("a.exam\nple"), HostCheck::invalid);
  EXPECT_EQ(check("portal.b\xc3\xbc" "cher.example"), HostCheck::invalid);  // raw UTF-8
  EXPECT_EQ(check("portal.b\xfc" "cher.example"), HostCheck::invalid);      // raw Latin-1
}

TEST(Hostname, Ports) {
  EXPECT_EQ(check("a.example:1"), HostCheck::ok);
  EXPECT_EQ(check("a.example:65535"), HostCheck::ok);
  EXPECT_EQ(check("a.example:99999"), HostCheck::bad_port);
  EXPECT_EQ(check("a.example:65536"), HostCheck::bad_port);
  EXPECT_EQ(check("a.example:0"), HostCheck::bad_port);
  EXPECT_EQ(check("a.example:123456"), HostCheck::bad_port);
  EXPECT_EQ(check("a.example:8o"), HostCheck::bad_port);
  EXPECT_EQ(check("a.example:-1"), HostCheck::bad_port);
  EXPECT_EQ(check("[::1]"), HostCheck::invalid);
  EXPECT_EQ(check("[::1]:80"), HostCheck::invalid);
  EXPECT_EQ(check("[::1]:99999"), HostCheck::bad_port);
  EXPECT_EQ(check("[::1]x"), HostCheck::bad_port);
  EXPECT_EQ(check("[::1"), HostCheck::invalid);
}

// canonical_host takes a one-pass fast path for a plain valid host and leaves everything
// else to canonical_host_checked: the two must decide every value alike.
TEST(Hostname, FastPathAgreesWithTheChecks) {
  const std::string label63(63, 'a'), label64(64, 'a');
  const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  const std::string values[] = {
      "portal.yourwebsite.com", "PORTAL.YourWebsite.COM", "portal.yourwebsite.com.",
      "portal.yourwebsite.com:80", "a-b.c0.example", "xn--bcher-kva.example", "a.b", "a.1b",
      "a.b1", "a.11", "1.2.3.4", "a.-b", "a.b-", "-a.b", "a-.b", "a..b", ".a.b", "a.b..", "a.",
      ".", "..", "", "a", "A", "_", "a_b.example", "a b.example", std::string("a\0.b", 5),
      "portal.b\xc3\xbc" "cher.example", label63 + ".example", label64 + ".example",
      "x." + label64, name253, name253 + ".", name253 + "b", name253 + "b.", name253 + "..",
      "[::1]", "a.example:", "A.EXAMPLE.:8443", "a.example:99999", "a:b.example"};
  for (const std::string& in : values) {
    char fast[portal::kMaxHostLen], checked[portal::kMaxHostLen];
    size_t fast_len = 0, checked_len = 0;
    HostCheck rc = canonical_host(in, fast, &fast_len);
    EXPECT_EQ(rc, portal::canonical_host_checked(in, checked, &checked_len)) << in;
    if (rc == HostCheck::ok) {
      EXPECT_EQ(std::string(fast, fast_len), std::string(checked, checked_len)) << in;
    }
  }
}

TEST(Hostname, MessagesNameTheValueSafely) {
  std::string out, why;
  EXPECT_FALSE(canonical_host("bad_host.example", out, &why));
  EXPECT_NE(why.find("\"bad_host.example\""), std::string::npos) << why;
  EXPECT_FALSE(canonical_host(std::string("a\r\n.example"), out, &why));
  EXPECT_EQ(why.find('\r'), std::string::npos) << why;
  EXPECT_NE(why.find("\\x0d\\x0a"), std::string::npos) << why;
}

TEST(Idn, ULabelsBecomeALabels) {
  std::string out, why;
  ASSERT_TRUE(host_from_input("portal.b\xc3\xbc" "cher.example", out, &why)) << why;
  EXPECT_EQ(out, "portal.xn--bcher-kva.example");
  ASSERT_TRUE(host_from_input("PORTAL.B\xc3\x9c" "CHER.example.", out, &why)) << why;
  EXPECT_EQ(out, "portal.xn--bcher-kva.example");
  ASSERT_TRUE(host_from_input("Portal.YourWebsite.com", out, &why)) << why;
  EXPECT_EQ(out, "portal.yourwebsite.com");
}

TEST(Idn, BadInputIsRefused) {
  std::string out, why;
  EXPECT_FALSE(host_from_input("portal.b\xfc" "cher.example", out, &why));  // not UTF-8
  EXPECT_NE(why.find("invalid hostname"), std::string::npos) << why;
  EXPECT_FALSE(host_from_input("\xe2\x98\x83..example", out, &why));
  EXPECT_FALSE(host_from_input("a_b.\xc3\xa9xample", out, &why));
  EXPECT_FALSE(host_from_input(std::string("a\0.b\xc3\xa9.example", 14), out, &why));
}
