#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "other_process.h"
#include "store/snapshot.h"

using namespace portal;
namespace fs = std::filesystem;

namespace {

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portal-snapshot-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Domain domain(const std::string& host, const std::string& brand) {
    Domain d;
    d.host = host;
    d.brand = brand;
    d.access = {"cdr"};
    return d;
  }

  std::string dir_;
};

std::string brand_of(SnapshotReader& r, const std::string& host) {
  std::string brand = "<absent>";
  r.lookup(host, [&](const DomainView& v) { brand.assign(v.brand); });
  return brand;
}

}  // namespace

TEST_F(SnapshotTest, ReadersNeedAnExistingSnapshot) {
  EXPECT_FALSE(SnapshotStore::exists(dir_));
  EXPECT_THROW(SnapshotStore(dir_, false), std::runtime_error);
  EXPECT_THROW(SnapshotReader reader(dir_), lmdb::Error);
  SnapshotStore store(dir_, true);
  EXPECT_TRUE(SnapshotStore::exists(dir_));
  SnapshotReader reader(dir_);
  EXPECT_EQ(brand_of(reader, "a.example"), "<absent>");
}

TEST_F(SnapshotTest, WriteThenRead) {
  SnapshotStore store(dir_, true);
  store.write([](SnapshotTxn& tx) {
    tx.put(domain("a.example", "Alpha"));
    tx.put(domain("b.example", "Beta"));
  });
  store.read([](const SnapshotTxn& tx) {
    EXPECT_EQ(tx.count(), 2u);
    EXPECT_EQ(tx.generation(), 1u);
    auto a = tx.get("a.example");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->brand, "Alpha");
    EXPECT_EQ(a->host, "a.example");
    EXPECT_FALSE(tx.get("c.example"));
    std::vector<std::string> hosts;
    tx.for_each([&](const Domain& d) { hosts.push_back(d.host); });
    EXPECT_EQ(hosts, (std::vector<std::string>{"a.example", "b.example"}));
  });
}

TEST_F(SnapshotTest, AFailedWriteLeavesNothing) {
  SnapshotStore store(dir_, true);
  store.write([](SnapshotTxn& tx) { tx.put(domain("a.example", "Alpha")); });
  EXPECT_THROW(store.write([](SnapshotTxn& tx) {
    tx.put(domain("b.example", "Beta"));
    tx.remove("a.example");
    tx.put(domain("c.example", std::string(200, 'x')));  // invalid brand: throws
  }), std::invalid_argument);
  store.read([](const SnapshotTxn& tx) {
    EXPECT_EQ(tx.count(), 1u);
    EXPECT_TRUE(tx.get("a.example"));
    EXPECT_FALSE(tx.get("b.example"));
    EXPECT_EQ(tx.generation(), 1u);
  });
}

TEST_F(SnapshotTest, ReaderSeesEachCommitWhole) {
  SnapshotStore store(dir_, true);
  store.write([](SnapshotTxn& tx) { tx.put(domain("a.example", "Old")); });
  SnapshotReader reader(dir_);
  EXPECT_EQ(brand_of(reader, "a.example"), "Old");
  EXPECT_EQ(reader.generation(), 1u);

  store.write([](SnapshotTxn& tx) {
    tx.put(domain("a.example", "New"));
    tx.put(domain("b.example", "Beta"));
  });
  EXPECT_EQ(brand_of(reader, "a.example"), "New");
  EXPECT_EQ(brand_of(reader, "b.example"), "Beta");
  EXPECT_EQ(reader.generation(), 2u);

  store.write([](SnapshotTxn& tx) { tx.clear(); });
  EXPECT_EQ(brand_of(reader, "a.example"), "<absent>");
}

TEST_F(SnapshotTest, TheMapGrowsAndReadersFollow) {
  in_other_process([&] {
    SnapshotStore store(dir_, true, 64 * 1024);  // a tiny map, so that a bulk write overflows it
    store.write([](SnapshotTxn& tx) { tx.put(domain("first.example", "First")); });
  });
  SnapshotReader reader(dir_);
  EXPECT_EQ(brand_of(reader, "first.example"), "First");

  in_other_process([&] {
    SnapshotStore store(dir_, false);
    store.write([](SnapshotTxn& tx) {
      for (int i = 0; i < 20000; i++)
        tx.put(domain("host" + std::to_string(i) + ".example", "Brand " + std::to_string(i)));
    });
    store.read([](const SnapshotTxn& tx) {
      if (tx.count() != 20001u) throw std::runtime_error("count");
    });
  });
  EXPECT_EQ(brand_of(reader, "host19999.example"), "Brand 19999");
  EXPECT_EQ(brand_of(reader, "first.example"), "First");
}

TEST_F(SnapshotTest, AMalformedRecordIsAbsentAndReportedOnce) {
  {
    SnapshotStore store(dir_, true);
    store.write([](SnapshotTxn& tx) { tx.put(domain("good.example", "Good")); });
  }
  {  // damage one record behind the store's back
    lmdb::Env env(dir_ + "/snapshot", 0, 0660, 4, 0);
    lmdb::Txn txn(env, 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn.get(), "domains", 0, &dbi), 0);
    txn.put(dbi, "bad.example", std::string("\x07garbage", 8));
    txn.commit();
  }
  SnapshotReader reader(dir_);
  bool first = false;
  auto rc = reader.lookup("bad.example", [](const DomainView&) { FAIL(); }, &first);
  EXPECT_EQ(rc, SnapshotReader::Result::malformed);
  EXPECT_TRUE(first);
  rc = reader.lookup("bad.example", [](const DomainView&) { FAIL(); }, &first);
  EXPECT_EQ(rc, SnapshotReader::Result::malformed);
  EXPECT_FALSE(first);
  EXPECT_EQ(brand_of(reader, "good.example"), "Good");
}

TEST_F(SnapshotTest, AMalformedRecordIsSkippedByAWalk) {
  {
    SnapshotStore store(dir_, true);
    store.write([](SnapshotTxn& tx) { tx.put(domain("good.example", "Good")); });
  }
  {
    lmdb::Env env(dir_ + "/snapshot", 0, 0660, 4, 0);
    lmdb::Txn txn(env, 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn.get(), "domains", 0, &dbi), 0);
    txn.put(dbi, "bad.example", std::string("\x07garbage", 8));
    txn.commit();
  }
  SnapshotStore store(dir_, false);
  std::vector<std::string> bad;
  size_t good = 0;
  store.read([&](const SnapshotTxn& tx) {
    tx.for_each([&](const Domain&) { good++; }, [&](std::string_view h) { bad.emplace_back(h); });
  });
  EXPECT_EQ(good, 1u);
  EXPECT_EQ(bad, (std::vector<std::string>{"bad.example"}));
}

TEST_F(SnapshotTest, FilesKeepOwnModes) {
  SnapshotStore store(dir_, true);
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/snapshot/data.mdb").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_EQ(stat((dir_ + "/snapshot/lock.mdb").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IWUSR);
}

// A data file cut short under an open reader (a bad restore over it, a copy in place): the
// reads that reach past its end throw lmdb::Error(kShortFile) instead of killing the process
// with SIGBUS, and the reader works again once the file is whole.
TEST_F(SnapshotTest, ATruncatedFileIsAnErrorNotACrash) {
  in_other_process([&] {
    SnapshotStore store(dir_, true);
    store.write([](SnapshotTxn& tx) {
      for (int i = 0; i < 2000; i++)
        tx.put(domain("host" + std::to_string(i) + ".example", "Brand " + std::to_string(i)));
    });
  });
  std::string file = dir_ + "/snapshot/data.mdb";
  auto size = fs::file_size(file);
  ASSERT_GT(size, 8 * 4096u);
  std::string whole(size, '\0');
  {
    FILE* f = fopen(file.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(fread(whole.data(), 1, size, f), size);
    fclose(f);
  }

  SnapshotReader reader(dir_);
  EXPECT_EQ(brand_of(reader, "host1999.example"), "Brand 1999");
  fs::resize_file(file, 8192);  // the meta pages only
  try {
    brand_of(reader, "host1999.example");
    ADD_FAILURE() << "a lookup in a truncated file did not throw";
  } catch (const lmdb::Error& e) {
    EXPECT_EQ(e.code(), lmdb::kShortFile);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(reader.for_each([](std::string_view, const DomainView&) {}), lmdb::Error);
  // a new reader (another worker, a reopen) refuses the file and says so
  in_other_process([&] {
    try {
      SnapshotReader other(dir_);
    } catch (const lmdb::Error& e) {
      if (e.code() == lmdb::kShortFile) return;
      throw;
    }
    throw std::runtime_error("a new reader opened a truncated file");
  });
  EXPECT_THROW(check_store_file(dir_, "snapshot"), lmdb::Error);

  {  // whole again, in place (the same inode the reader has mapped)
    FILE* f = fopen(file.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(fwrite(whole.data(), 1, size, f), size);
    fclose(f);
  }
  EXPECT_EQ(brand_of(reader, "host1999.example"), "Brand 1999");
  EXPECT_NO_THROW(check_store_file(dir_, "snapshot"));
}

TEST_F(SnapshotTest, AnEmptyFileIsRefusedNotStartedAfresh) {
  in_other_process([&] {
    SnapshotStore store(dir_, true);
    store.write([](SnapshotTxn& tx) { tx.put(domain("a.example", "Alpha")); });
  });
  std::string file = dir_ + "/snapshot/data.mdb";
  fs::resize_file(file, 0);
  try {
    SnapshotStore store(dir_, true);
    ADD_FAILURE() << "a writer opened an empty data file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is empty (0 bytes)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::file_size(file), 0u);
  EXPECT_THROW(SnapshotReader reader(dir_), std::runtime_error);
}
