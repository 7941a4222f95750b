#include <gtest/gtest.h>

#include <random>
#include <string>

#include "domain/cert_record.h"

using namespace portal;

namespace {

CertPair pair_of(KeyType type, size_t chain_len, const std::string& tag) {
  CertPair p;
  p.type = type;
  p.not_before = 1700000000;
  p.not_after = 1707776000;
  for (size_t i = 0; i < chain_len; i++)
    p.chain_der.push_back("der-" + tag + "-" + std::to_string(i) + std::string(200, 'x'));
  p.key_der = "key-" + tag;
  return p;
}

CertRecord sample() {
  CertRecord r;
  r.source = CertSource::acme;
  r.generation = 300;  // a two-byte varint
  r.updated = 1700000123;
  r.pairs.push_back(pair_of(KeyType::ecdsa, 2, "ec"));
  r.pairs.push_back(pair_of(KeyType::rsa, 3, "rsa"));
  return r;
}

void expect_same(const CertRecord& a, const CertRecord& b) {
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.generation, b.generation);
  EXPECT_EQ(a.updated, b.updated);
  ASSERT_EQ(a.pairs.size(), b.pairs.size());
  for (size_t i = 0; i < a.pairs.size(); i++) {
    EXPECT_EQ(a.pairs[i].type, b.pairs[i].type);
    EXPECT_EQ(a.pairs[i].not_before, b.pairs[i].not_before);
    EXPECT_EQ(a.pairs[i].not_after, b.pairs[i].not_after);
    EXPECT_EQ(a.pairs[i].chain_der, b.pairs[i].chain_der);
    EXPECT_EQ(a.pairs[i].key_der, b.pairs[i].key_der);
  }
}

// Rebuilds the encoding by hand, field by field, so that each rule can be broken alone.
std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}

std::string bytes(const std::string& b) { return varint(b.size()) + b; }

std::string header(uint8_t version = 1, uint8_t source = 2, uint8_t count = 1) {
  return std::string(1, char(version)) + char(source) + varint(7) + varint(1700000000) +
         char(count);
}

std::string pair_bytes(uint8_t type = 1, uint64_t nb = 10, uint64_t na = 20, uint8_t chain = 1,
                       const std::string& der = "D", const std::string& key = "K") {
  std::string s(1, char(type));
  s += varint(nb) + varint(na) + char(chain);
  for (uint8_t i = 0; i < chain; i++) s += bytes(der);
  return s + bytes(key);
}

}  // namespace

TEST(CertRecord, Names) {
  EXPECT_STREQ(key_type_name(KeyType::ecdsa), "ecdsa");
  EXPECT_STREQ(key_type_name(KeyType::rsa), "rsa");
  EXPECT_STREQ(source_name(CertSource::acme), "acme");
  EXPECT_STREQ(source_name(CertSource::imported), "imported");
}

TEST(CertRecord, RoundTrip) {
  CertRecord in = sample(), out;
  std::string value = encode(in);
  ASSERT_TRUE(decode(value, &out));
  expect_same(in, out);
  EXPECT_EQ(encode(out), value);

  uint64_t g = 0;
  ASSERT_TRUE(peek_generation(value, &g));
  EXPECT_EQ(g, 300u);
}

TEST(CertRecord, RoundTripAtTheLimits) {
  CertRecord in;
  in.generation = UINT64_MAX;
  in.updated = INT64_MAX;
  in.pairs.push_back(pair_of(KeyType::rsa, kMaxChain, "max"));
  in.pairs[0].not_before = 0;
  in.pairs[0].not_after = INT64_MAX;
  in.pairs[0].chain_der[0] = std::string(70000, 'L');  // a three-byte length
  CertRecord out;
  ASSERT_TRUE(decode(encode(in), &out));
  expect_same(in, out);
  uint64_t g = 0;
  ASSERT_TRUE(peek_generation(encode(in), &g));
  EXPECT_EQ(g, UINT64_MAX);
}

TEST(CertRecord, HandBuiltEncodingMatches) {
  std::string value = header() + pair_bytes();
  CertRecord r;
  ASSERT_TRUE(decode(value, &r));
  EXPECT_EQ(r.source, CertSource::imported);
  EXPECT_EQ(r.generation, 7u);
  EXPECT_EQ(r.updated, 1700000000);
  ASSERT_EQ(r.pairs.size(), 1u);
  EXPECT_EQ(r.pairs[0].type, KeyType::ecdsa);
  EXPECT_EQ(r.pairs[0].chain_der, std::vector<std::string>{"D"});
  EXPECT_EQ(r.pairs[0].key_der, "K");
  EXPECT_EQ(encode(r), value);
}

TEST(CertRecord, TruncatedAtEveryByteIsMalformed) {
  std::string value = encode(sample());
  for (size_t n = 0; n < value.size(); n++) {
    CertRecord r;
    EXPECT_FALSE(decode(std::string_view(value).substr(0, n), &r)) << "cut at " << n;
  }
}

TEST(CertRecord, TrailingBytesAreMalformed) {
  CertRecord r;
  EXPECT_FALSE(decode(encode(sample()) + '\0', &r));
  EXPECT_FALSE(decode(encode(sample()) + "more", &r));
}

TEST(CertRecord, EveryRuleIsChecked) {
  CertRecord r;
  ASSERT_TRUE(decode(header() + pair_bytes(), &r));
  struct Case {
    const char* name;
    std::string value;
  } cases[] = {
      {"empty", ""},
      {"version 0", header(0) + pair_bytes()},
      {"version 2", header(2) + pair_bytes()},
      {"source 0", header(1, 0) + pair_bytes()},
      {"source 3", header(1, 3) + pair_bytes()},
      {"no pair", header(1, 2, 0)},
      {"three pairs", header(1, 2, 3) + pair_bytes(1) + pair_bytes(2) + pair_bytes(1)},
      {"two pairs of one type", header(1, 2, 2) + pair_bytes(2) + pair_bytes(2)},
      {"key type 0", header() + pair_bytes(0)},
      {"key type 3", header() + pair_bytes(3)},
      {"not after before not before", header() + pair_bytes(1, 20, 10)},
      {"not before past int64", header() + pair_bytes(1, uint64_t(INT64_MAX) + 1, UINT64_MAX)},
      {"empty chain", header() + pair_bytes(1, 10, 20, 0)},
      {"chain of 9", header() + pair_bytes(1, 10, 20, kMaxChain + 1)},
      {"empty certificate", header() + pair_bytes(1, 10, 20, 1, "")},
      {"empty key", header() + pair_bytes(1, 10, 20, 1, "D", "")},
      {"certificate longer than the value", header() + std::string("\x01\x0a\x14\x01\x05" "D", 6)},
      {"updated past int64", std::string("\x01\x02\x07", 3) + varint(uint64_t(INT64_MAX) + 1) +
                                 '\x01' + pair_bytes()},
      {"varint over 64 bits", std::string("\x01\x02", 2) + std::string(10, '\xff') + '\x01'},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(decode(c.value, &r)) << c.name;
  }
  uint64_t g;
  EXPECT_FALSE(peek_generation("", &g));
  EXPECT_FALSE(peek_generation(header(2) + pair_bytes(), &g));
  EXPECT_FALSE(peek_generation(header(1, 9) + pair_bytes(), &g));
  EXPECT_FALSE(peek_generation(std::string("\x01\x02\x80", 3), &g));
}

TEST(CertRecord, AFailedDecodeLeavesTheOutputAlone) {
  CertRecord r = sample();
  EXPECT_FALSE(decode(header() + pair_bytes(1, 20, 10), &r));
  expect_same(r, sample());
}

TEST(CertRecord, EncodeOfABadRecordDoesNotDecode) {
  CertRecord r = sample();
  r.pairs[1].type = KeyType::ecdsa;  // two of one type
  CertRecord out;
  EXPECT_FALSE(decode(encode(r), &out));
  r = sample();
  r.pairs[0].not_before = -1;
  EXPECT_FALSE(decode(encode(r), &out));
  r = sample();
  r.pairs.clear();
  EXPECT_FALSE(decode(encode(r), &out));
}

TEST(CertRecord, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  CertRecord r;
  uint64_t g;
  for (int i = 0; i < 20000; i++) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    if (i % 2 && !s.empty()) s[0] = 1;  // past the version byte more often
    if (decode(s, &r)) {
      EXPECT_TRUE(decode(encode(r), &r));
    }
    peek_generation(s, &g);
  }
}

TEST(CertRecord, MutatedRecordsNeverCrash) {
  std::mt19937 rng(54321);
  std::string value = encode(sample());
  CertRecord r;
  for (int i = 0; i < 20000; i++) {
    std::string s = value;
    for (int k = 0, n = 1 + rng() % 4; k < n; k++) s[rng() % s.size()] = static_cast<char>(rng());
    if (decode(s, &r)) {
      CertRecord again;
      EXPECT_TRUE(decode(encode(r), &again));
    }
  }
}
