#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "other_process.h"
#include "store/snapshot.h"
#include "store/state.h"

using namespace portal;
namespace fs = std::filesystem;

namespace {

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portal-state-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
};

// A record whose every certificate and key carries tag, so a mix of two writes shows.
CertRecord record(const std::string& tag, bool both = true) {
  CertRecord r;
  r.source = CertSource::imported;
  r.updated = 1700000000;
  for (KeyType t : {KeyType::rsa, KeyType::ecdsa}) {  // out of order: put_cert sorts
    if (!both && t == KeyType::rsa) continue;
    CertPair p;
    p.type = t;
    p.not_before = 1700000000;
    p.not_after = 1707776000;
    p.chain_der = {"leaf-" + tag, "ca-" + tag};
    p.key_der = "key-" + tag;
    r.pairs.push_back(p);
  }
  return r;
}

std::string tag_of(const CertPair& p) { return p.key_der.substr(4); }

mode_t mode_of(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// What a worker sees for host: "" when absent, "malformed", or the tag of every pair.
std::string seen(StateReader& reader, const std::string& host) {
  std::string out;
  bool found = reader.cert(host, [&](std::string_view value) {
    CertRecord r;
    if (!decode(value, &r)) {
      out = "malformed";
      return;
    }
    for (const CertPair& p : r.pairs) {
      for (const std::string& der : p.chain_der) out += der.substr(der.find('-') + 1) + " ";
      out += tag_of(p) + ";";
    }
  });
  return found ? out : "";
}

}  // namespace

TEST_F(StateTest, OpenNeedsAnExistingStoreUnlessCreating) {
  EXPECT_FALSE(StateStore::exists(dir_));
  EXPECT_THROW(StateStore(dir_, false), std::runtime_error);
  EXPECT_THROW(StateReader reader(dir_), lmdb::Error);
  EXPECT_FALSE(fs::exists(dir_ + "/state"));
  EXPECT_THROW(StateStore(dir_ + "/missing", false), std::runtime_error);
  { StateStore store(dir_, true); }
  EXPECT_TRUE(StateStore::exists(dir_));
  StateStore again(dir_, false);
  StateReader reader(dir_);
  EXPECT_EQ(seen(reader, "a.example"), "");
}

TEST_F(StateTest, CreatesTheDataDirectoryToo) {
  std::string data = dir_ + "/data";
  StateStore store(data, true);
  EXPECT_TRUE(StateStore::exists(data));
  EXPECT_FALSE(SnapshotStore::exists(data));  // each store is its own environment
}

TEST_F(StateTest, FileModesKeepKeysPrivate) {
  mode_t old = umask(0);  // a careless umask: the store sets the modes itself
  { StateStore store(dir_, true); }
  umask(old);
  EXPECT_EQ(mode_of(dir_ + "/state"), 0700u);
  EXPECT_EQ(mode_of(dir_ + "/state/data.mdb"), 0600u);
  EXPECT_EQ(mode_of(dir_ + "/state/lock.mdb"), 0600u);

  // Loosened by hand: the next writer tightens them again.
  chmod((dir_ + "/state").c_str(), 0755);
  chmod((dir_ + "/state/data.mdb").c_str(), 0644);
  { StateStore store(dir_, false); }
  EXPECT_EQ(mode_of(dir_ + "/state"), 0700u);
  EXPECT_EQ(mode_of(dir_ + "/state/data.mdb"), 0600u);
}

TEST_F(StateTest, PutGetRemove) {
  StateStore store(dir_, true);
  store.write([](StateTxn& tx) {
    tx.put_cert("b.example", record("b"));
    tx.put_cert("a.example", record("a", false));
  });
  store.read([](const StateTxn& tx) {
    auto a = tx.get_cert("a.example");
    ASSERT_TRUE(a);
    ASSERT_EQ(a->pairs.size(), 1u);
    EXPECT_EQ(a->pairs[0].type, KeyType::ecdsa);
    EXPECT_EQ(a->pairs[0].chain_der, (std::vector<std::string>{"leaf-a", "ca-a"}));
    EXPECT_EQ(a->pairs[0].key_der, "key-a");
    EXPECT_EQ(a->source, CertSource::imported);
    EXPECT_EQ(a->updated, 1700000000);

    auto b = tx.get_cert("b.example");
    ASSERT_TRUE(b);
    ASSERT_EQ(b->pairs.size(), 2u);
    EXPECT_EQ(b->pairs[0].type, KeyType::ecdsa);  // stored in key type order
    EXPECT_EQ(b->pairs[1].type, KeyType::rsa);
    EXPECT_FALSE(tx.get_cert("c.example"));

    std::vector<std::string> hosts;
    tx.for_each_cert([&](std::string_view host, const CertRecord&) { hosts.emplace_back(host); });
    EXPECT_EQ(hosts, (std::vector<std::string>{"a.example", "b.example"}));
  });
  store.write([](StateTxn& tx) {
    EXPECT_TRUE(tx.remove_cert("a.example"));
    EXPECT_FALSE(tx.remove_cert("a.example"));
    EXPECT_FALSE(tx.remove_cert("c.example"));
  });
  store.read([](const StateTxn& tx) {
    EXPECT_FALSE(tx.get_cert("a.example"));
    EXPECT_TRUE(tx.get_cert("b.example"));
  });
}

TEST_F(StateTest, GenerationsAreUniqueAndOnlyGrow) {
  std::vector<uint64_t> gens;
  {
    StateStore store(dir_, true);
    store.write([&](StateTxn& tx) {
      gens.push_back(tx.put_cert("a.example", record("1")));
      gens.push_back(tx.put_cert("a.example", record("2")));  // same host, same transaction
      gens.push_back(tx.put_cert("b.example", record("3")));
    });
    store.write([&](StateTxn& tx) {
      tx.remove_cert("a.example");
      CertRecord r = record("4");
      r.generation = 1;  // whatever the caller says: the store assigns it
      gens.push_back(tx.put_cert("a.example", r));
    });
  }
  StateStore store(dir_, false);  // the counter survives a reopen
  store.write([&](StateTxn& tx) { gens.push_back(tx.put_cert("a.example", record("5"))); });
  EXPECT_EQ(gens, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  store.read([&](const StateTxn& tx) {
    EXPECT_EQ(tx.get_cert("a.example")->generation, 5u);
    EXPECT_EQ(tx.get_cert("b.example")->generation, 3u);
  });
  StateReader reader(dir_);
  uint64_t g = 0;
  EXPECT_TRUE(reader.cert("a.example", [&](std::string_view v) { peek_generation(v, &g); }));
  EXPECT_EQ(g, 5u);
}

TEST_F(StateTest, AFailedWriteLeavesNothing) {
  StateStore store(dir_, true);
  store.write([](StateTxn& tx) { tx.put_cert("a.example", record("old")); });
  EXPECT_THROW(store.write([](StateTxn& tx) {
    tx.put_cert("a.example", record("new"));
    tx.put_cert("b.example", record("b"));
    throw std::runtime_error("fails half way");
  }), std::runtime_error);

  CertRecord bad = record("bad");
  bad.pairs[1].type = bad.pairs[0].type;  // two pairs of one key type
  EXPECT_THROW(store.write([&](StateTxn& tx) {
    tx.remove_cert("a.example");
    tx.put_cert("c.example", bad);
  }), std::invalid_argument);
  CertRecord empty = record("empty");
  empty.pairs.clear();
  EXPECT_THROW(store.write([&](StateTxn& tx) { tx.put_cert("c.example", empty); }),
               std::invalid_argument);
  CertRecord no_key = record("no_key");
  no_key.pairs[0].key_der.clear();
  EXPECT_THROW(store.write([&](StateTxn& tx) { tx.put_cert("c.example", no_key); }),
               std::invalid_argument);

  store.read([](const StateTxn& tx) {
    auto a = tx.get_cert("a.example");
    ASSERT_TRUE(a);
    EXPECT_EQ(tag_of(a->pairs[0]), "old");
    EXPECT_EQ(a->generation, 1u);
    EXPECT_FALSE(tx.get_cert("b.example"));
    EXPECT_FALSE(tx.get_cert("c.example"));
  });
  // Nor did the failed writes use up generation numbers.
  uint64_t g = 0;
  store.write([&](StateTxn& tx) { g = tx.put_cert("d.example", record("d")); });
  EXPECT_EQ(g, 2u);
}

TEST_F(StateTest, ReaderSeesEachCommitWhole) {
  {
    StateStore store(dir_, true);
    store.write([](StateTxn& tx) { tx.put_cert("a.example", record("v1")); });
  }
  // Opened after the store is closed: one environment per file per process, as LMDB wants
  // (closing a second one would drop this process's locks on the lock file).
  StateReader reader(dir_);
  EXPECT_EQ(seen(reader, "a.example"), "v1 v1 v1;v1 v1 v1;");

  // A writer in another process rotates both pairs again and again while this reader looks.
  constexpr int kRotations = 300;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int rc = 0;
    try {
      StateStore store(dir_, false);
      for (int i = 2; i <= kRotations; i++) {
        store.write([i](StateTxn& tx) {
          tx.put_cert("a.example", record("v" + std::to_string(i)));
          tx.put_cert("b.example", record("v" + std::to_string(i)));
        });
      }
    } catch (...) {
      rc = 1;
    }
    _exit(rc);
  }
  int last = 1, looks = 0, status = 0;
  bool done = false;
  while (!done) {
    done = waitpid(pid, &status, WNOHANG) == pid;
    std::string s = seen(reader, "a.example");
    std::string tag = s.substr(0, s.find(' '));
    int v = std::stoi(tag.substr(1));
    std::string whole;
    for (int k = 0; k < 2; k++) whole += tag + " " + tag + " " + tag + ";";
    ASSERT_EQ(s, whole) << "a mix of two commits";
    ASSERT_GE(v, last) << "went back in time";
    last = v;
    looks++;
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(last, kRotations);
  EXPECT_EQ(seen(reader, "b.example"), seen(reader, "a.example"));
  EXPECT_GT(looks, 1);
}

TEST_F(StateTest, TheMapGrowsAndReadersFollow) {
  in_other_process([&] {
    StateStore store(dir_, true, 64 * 1024);
    store.write([](StateTxn& tx) { tx.put_cert("first.example", record("first")); });
  });
  StateReader reader(dir_);
  EXPECT_EQ(seen(reader, "first.example"), "first first first;first first first;");
  in_other_process([&] {
    StateStore store(dir_, false);
    store.write([](StateTxn& tx) {
      for (int i = 0; i < 5000; i++) {
        CertRecord r = record(std::to_string(i));
        r.pairs[0].chain_der[0] += std::string(300, 'x');
        tx.put_cert("host" + std::to_string(i) + ".example", r);
      }
    });
    size_t n = 0;
    store.read([&](const StateTxn& tx) {
      tx.for_each_cert([&](std::string_view, const CertRecord&) { n++; });
      // The transaction ran twice (the map was full): the counter of the aborted run is gone.
      if (tx.get_cert("host4999.example")->generation != 5001u) throw std::runtime_error("gen");
    });
    if (n != 5001u) throw std::runtime_error("count");
  });
  EXPECT_NE(seen(reader, "host4999.example"), "");
  EXPECT_EQ(seen(reader, "first.example"), "first first first;first first first;");
}

TEST_F(StateTest, AMalformedRecordIsSkippedAndReported) {
  {
    StateStore store(dir_, true);
    store.write([](StateTxn& tx) {
      tx.put_cert("a.example", record("a"));
      tx.put_cert("c.example", record("c"));
    });
  }
  {  // damage one record behind the store's back
    lmdb::Env env(dir_ + "/state", 0, 0600, 4, 0);
    lmdb::Txn txn(env, 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn.get(), "certs", 0, &dbi), 0);
    txn.put(dbi, "b.example", std::string("\x01\x02garbage", 9));
    txn.commit();
  }
  StateStore store(dir_, false);
  std::vector<std::string> good, bad;
  store.read([&](const StateTxn& tx) {
    EXPECT_FALSE(tx.get_cert("b.example"));
    tx.for_each_cert([&](std::string_view host, const CertRecord&) { good.emplace_back(host); },
                     [&](std::string_view host) { bad.emplace_back(host); });
    tx.for_each_cert([](std::string_view, const CertRecord&) {});  // no bad visitor: skipped
  });
  EXPECT_EQ(good, (std::vector<std::string>{"a.example", "c.example"}));
  EXPECT_EQ(bad, std::vector<std::string>{"b.example"});
  StateReader reader(dir_);
  EXPECT_EQ(seen(reader, "b.example"), "malformed");
  store.write([](StateTxn& tx) { EXPECT_TRUE(tx.remove_cert("b.example")); });
  EXPECT_EQ(seen(reader, "b.example"), "");
}
