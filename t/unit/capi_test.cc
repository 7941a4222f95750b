// The C face of the core, as the nginx glue uses it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "capi/portal_core.h"
#include "store/snapshot.h"

namespace {

struct Arena {
  std::vector<std::unique_ptr<char[]>> blocks;
  size_t fail_after = SIZE_MAX;
  static void* alloc(void* ctx, size_t n) {
    auto* a = static_cast<Arena*>(ctx);
    if (a->fail_after-- == 0) return nullptr;
    a->blocks.emplace_back(new char[n]);
    return a->blocks.back().get();
  }
};

std::string str(const portal_str_t& s) { return std::string(s.data, s.len); }

class CapiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portal-capi-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    portal::SnapshotStore store(dir_, true);
    store.write([](portal::SnapshotTxn& tx) {
      portal::Domain d;
      d.host = "portal.yourwebsite.com";
      d.brand = "Your Website";
      d.customer_signup = true;
      d.customer_limit_cents = 10000;
      d.access = {"balance", "cdr", "rate_card"};
      tx.put(d);
      d.host = "portal.other.example";
      d.brand = "Other";
      d.customer_signup = false;
      d.carrier_signup = true;
      d.access = {};
      d.status = portal::DomainStatus::suspended;
      tx.put(d);
    });
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

}  // namespace

TEST_F(CapiTest, LookupCopiesEverythingOut) {
  char err[PORTAL_ERRLEN];
  portal_reader_t* r = portal_reader_open(dir_.c_str(), err, sizeof(err));
  ASSERT_NE(r, nullptr) << err;
  Arena arena;
  portal_domain_t d;
  const char host[] = "portal.yourwebsite.com";
  ASSERT_EQ(portal_reader_lookup(r, host, strlen(host), Arena::alloc, &arena, &d, err,
                                 sizeof(err)),
            PORTAL_FOUND);
  EXPECT_EQ(str(d.host), host);
  EXPECT_NE(d.host.data, host);
  EXPECT_EQ(str(d.brand), "Your Website");
  EXPECT_EQ(str(d.customer_limit), "100.00");
  EXPECT_EQ(str(d.access), "balance,cdr,rate_card");
  EXPECT_EQ(str(d.status), "active");
  ASSERT_EQ(d.nsections, 3u);
  EXPECT_EQ(str(d.sections[1]), "cdr");
  EXPECT_TRUE(d.customer_signup);
  EXPECT_FALSE(d.carrier_signup);
  EXPECT_FALSE(d.suspended);

  const char other[] = "portal.other.example";
  ASSERT_EQ(portal_reader_lookup(r, other, strlen(other), Arena::alloc, &arena, &d, err,
                                 sizeof(err)),
            PORTAL_FOUND);
  EXPECT_EQ(str(d.access), "");
  EXPECT_EQ(d.nsections, 0u);
  EXPECT_EQ(str(d.status), "suspended");
  EXPECT_TRUE(d.suspended);
  EXPECT_TRUE(d.carrier_signup);

  EXPECT_EQ(portal_reader_lookup(r, "x.example", 9, Arena::alloc, &arena, &d, err, sizeof(err)),
            PORTAL_NOT_FOUND);
  portal_reader_close(r);
}

TEST_F(CapiTest, AllocationFailureIsAnErrorNotACrash) {
  char err[PORTAL_ERRLEN];
  portal_reader_t* r = portal_reader_open(dir_.c_str(), err, sizeof(err));
  ASSERT_NE(r, nullptr) << err;
  const char host[] = "portal.yourwebsite.com";
  for (size_t k = 0; k < 5; k++) {  // host, brand, limit, sections, access
    Arena arena;
    arena.fail_after = k;
    portal_domain_t d;
    EXPECT_EQ(portal_reader_lookup(r, host, strlen(host), Arena::alloc, &arena, &d, err,
                                   sizeof(err)),
              PORTAL_ERROR);
    EXPECT_STREQ(err, "out of memory");
  }
  // and the read transaction was reset: the next lookup works
  Arena arena;
  portal_domain_t d;
  EXPECT_EQ(portal_reader_lookup(r, host, strlen(host), Arena::alloc, &arena, &d, err,
                                 sizeof(err)),
            PORTAL_FOUND);
  portal_reader_close(r);
}

TEST_F(CapiTest, OpenFailureSaysWhy) {
  char err[PORTAL_ERRLEN];
  std::string missing = dir_ + "/nope";
  EXPECT_EQ(portal_reader_open(missing.c_str(), err, sizeof(err)), nullptr);
  EXPECT_NE(std::string(err).find("nope"), std::string::npos) << err;
}

TEST(CapiHost, Canonical) {
  char out[PORTAL_MAX_HOST_LEN];
  size_t len = 0;
  EXPECT_EQ(portal_host_canonical("PORTAL.Example.COM.:443", 23, out, &len), PORTAL_HOST_OK);
  EXPECT_EQ(std::string(out, len), "portal.example.com");
  EXPECT_EQ(portal_host_canonical("a.com:99999", 11, out, &len), PORTAL_HOST_BAD_PORT);
  EXPECT_EQ(portal_host_canonical("_", 1, out, &len), PORTAL_HOST_INVALID);
  EXPECT_EQ(portal_host_canonical("", 0, out, &len), PORTAL_HOST_INVALID);
  EXPECT_TRUE(portal_section_valid("rate_card", 9));
  EXPECT_FALSE(portal_section_valid("rate-card", 9));
}
