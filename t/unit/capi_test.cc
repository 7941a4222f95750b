// The C face of the core, as the nginx glue uses it.
#include <gtest/gtest.h>

#include "other_process.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "capi/portal_core.h"
#include "store/domain_cache.h"
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
  portal_reader_t* r = portal_reader_open(dir_.c_str(), 0, err, sizeof(err));
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

TEST_F(CapiTest, TheMemoGivesTheSameAnswerAndSeesEveryCommit) {
  char err[PORTAL_ERRLEN];
  portal_reader_t* r = portal_reader_open(dir_.c_str(), 16, err, sizeof(err));
  ASSERT_NE(r, nullptr) << err;
  const char host[] = "portal.yourwebsite.com";
  for (int pass = 0; pass < 2; pass++) {  // a miss, then a hit
    Arena arena;
    portal_domain_t d;
    ASSERT_EQ(portal_reader_lookup(r, host, strlen(host), Arena::alloc, &arena, &d, err,
                                   sizeof(err)),
              PORTAL_FOUND);
    EXPECT_EQ(str(d.host), host) << pass;
    EXPECT_EQ(str(d.brand), "Your Website") << pass;
    EXPECT_EQ(str(d.customer_limit), "100.00") << pass;
    EXPECT_EQ(str(d.access), "balance,cdr,rate_card") << pass;
    ASSERT_EQ(d.nsections, 3u);
    EXPECT_EQ(str(d.sections[0]), "balance") << pass;
    EXPECT_EQ(str(d.sections[1]), "cdr") << pass;
    EXPECT_EQ(str(d.sections[2]), "rate_card") << pass;
    EXPECT_TRUE(d.customer_signup);
  }
  Arena arena;
  portal_domain_t d;
  EXPECT_EQ(portal_reader_lookup(r, "new.example", 11, Arena::alloc, &arena, &d, err,
                                 sizeof(err)),
            PORTAL_NOT_FOUND);  // remembered as unknown...

  in_other_process([&] {
    portal::SnapshotStore store(dir_, false);
    store.write([](portal::SnapshotTxn& tx) {
      auto d = *tx.get("portal.yourwebsite.com");
      d.brand = "Renamed";
      d.access = {"cdr"};
      tx.put(d);
      d.host = "new.example";
      tx.put(d);
    });
  });
  ASSERT_EQ(portal_reader_lookup(r, host, strlen(host), Arena::alloc, &arena, &d, err,
                                 sizeof(err)),
            PORTAL_FOUND);
  EXPECT_EQ(str(d.brand), "Renamed");  // ...until the next commit
  EXPECT_EQ(str(d.access), "cdr");
  EXPECT_EQ(portal_reader_lookup(r, "new.example", 11, Arena::alloc, &arena, &d, err,
                                 sizeof(err)),
            PORTAL_FOUND);
  portal_reader_close(r);
}

TEST(DomainCache, FindsWhatItHoldsAndNothingElse) {
  portal::DomainCache cache(1000);
  for (int i = 0; i < 1000; i++) {
    std::string host = "portal" + std::to_string(i) + ".example";
    ASSERT_NE(cache.put(portal::DomainCache::Entry::from(host, nullptr), 3), nullptr);
  }
  for (int i = 0; i < 1000; i++) {
    std::string host = "portal" + std::to_string(i) + ".example";
    const auto* e = cache.find(host, 3);
    ASSERT_NE(e, nullptr) << host;
    EXPECT_EQ(e->host(), host);
    EXPECT_EQ(cache.find("x" + host, 3), nullptr);
  }
  EXPECT_EQ(cache.size(), 1000u);
}

TEST(DomainCache, StaysWithinItsCapacity) {
  portal::DomainCache cache(3);
  for (int i = 0; i < 10; i++) {
    std::string host = "h" + std::to_string(i) + ".example";
    const auto* e = cache.put(portal::DomainCache::Entry::from(host, nullptr), 7);
    EXPECT_EQ(e != nullptr, i < 3) << i;  // full: no new entry until the next commit
    EXPECT_EQ(cache.find(host, 7) != nullptr, i < 3) << i;
  }
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_NE(cache.find("h0.example", 7), nullptr);
  EXPECT_EQ(cache.find("h0.example", 8), nullptr);  // another transaction: emptied
  EXPECT_EQ(cache.size(), 0u);
  for (int i = 0; i < 3; i++) {
    std::string host = "h" + std::to_string(i) + ".example";
    cache.put(portal::DomainCache::Entry::from(host, nullptr), 8);
  }
  for (int i = 0; i < 20000; i++) {  // full, and asked for other names: it steps aside
    std::string host = "other" + std::to_string(i) + ".example";
    EXPECT_EQ(cache.find(host, 8), nullptr);
  }
  EXPECT_EQ(cache.find("h0.example", 8), nullptr);
  EXPECT_EQ(cache.find("h0.example", 9), nullptr);  // a commit: back in service
  EXPECT_NE(cache.put(portal::DomainCache::Entry::from("h0.example", nullptr), 9), nullptr);
  EXPECT_NE(cache.find("h0.example", 9), nullptr);

  portal::DomainCache none(0);
  EXPECT_EQ(none.put(portal::DomainCache::Entry::from("a.example", nullptr), 1), nullptr);
  EXPECT_EQ(none.find("a.example", 1), nullptr);
}

TEST_F(CapiTest, AllocationFailureIsAnErrorNotACrash) {
  char err[PORTAL_ERRLEN];
  portal_reader_t* r = portal_reader_open(dir_.c_str(), 0, err, sizeof(err));
  ASSERT_NE(r, nullptr) << err;
  const char host[] = "portal.yourwebsite.com";
  for (size_t k = 0; k < 1; k++) {  // one block
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
  EXPECT_EQ(portal_reader_open(missing.c_str(), 16, err, sizeof(err)), nullptr);
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
