#include <gtest/gtest.h>

#include <random>
#include <string>

#include "domain/record.h"

using namespace portal;

namespace {

Domain sample() {
  Domain d;
  d.host = "portal.yourwebsite.com";
  d.brand = "Your Website \xe2\x80\x94 Portal";
  d.customer_signup = true;
  d.carrier_signup = false;
  d.customer_limit_cents = 10050;
  d.access = {"balance", "cdr", "rate_card"};
  d.status = DomainStatus::active;
  d.created = 1764176400;
  d.updated = 1764180000;
  return d;
}

}  // namespace

TEST(Record, RoundTrip) {
  Domain d = sample();
  Domain back;
  back.host = d.host;
  ASSERT_TRUE(decode(encode(d), &back));
  EXPECT_EQ(back, d);

  d.carrier_signup = true;
  d.customer_signup = false;
  d.status = DomainStatus::suspended;
  d.access.clear();
  d.customer_limit_cents = kMaxLimitCents;
  d.brand = std::string(kMaxBrandLen, 'x');
  ASSERT_TRUE(decode(encode(d), &back));
  EXPECT_EQ(back, d);
}

TEST(Record, ViewPointsIntoTheValue) {
  std::string value = encode(sample());
  DomainView v;
  ASSERT_TRUE(decode(value, &v));
  EXPECT_EQ(v.brand, sample().brand);
  EXPECT_GE(v.brand.data(), value.data());
  EXPECT_LT(v.brand.data(), value.data() + value.size());
  ASSERT_EQ(v.nsections, 3u);
  EXPECT_EQ(v.sections[0], "balance");
  EXPECT_EQ(v.sections[2], "rate_card");
  EXPECT_TRUE(v.customer_signup);
  EXPECT_FALSE(v.carrier_signup);
  EXPECT_EQ(v.customer_limit_cents, 10050u);
}

TEST(Record, TruncationAtEveryByteIsMalformed) {
  std::string value = encode(sample());
  for (size_t n = 0; n < value.size(); n++) {
    DomainView v;
    EXPECT_FALSE(decode(std::string_view(value.data(), n), &v)) << "length " << n;
  }
}

TEST(Record, TrailingBytesAreMalformed) {
  std::string value = encode(sample()) + "x";
  DomainView v;
  EXPECT_FALSE(decode(value, &v));
}

TEST(Record, UnknownVersionOrFlagIsMalformed) {
  std::string value = encode(sample());
  DomainView v;
  for (int version : {0, 2, 255}) {
    std::string other = value;
    other[0] = static_cast<char>(version);
    EXPECT_FALSE(decode(other, &v)) << version;
  }
  std::string other = value;
  other[1] = static_cast<char>(other[1] | 0x08);
  EXPECT_FALSE(decode(other, &v));
}

TEST(Record, DamagedFieldsAreMalformed) {
  Domain d = sample();
  std::string value = encode(d);
  DomainView v;
  size_t brand_at = value.find("Your");
  ASSERT_NE(brand_at, std::string::npos);
  std::string ctl = value;
  ctl[brand_at] = '\x01';  // a control character in the brand
  EXPECT_FALSE(decode(ctl, &v));
  std::string sect = value;
  sect[value.find("cdr")] = 'C';  // an upper-case section name
  EXPECT_FALSE(decode(sect, &v));
  d.access = {"cdr", "balance"};  // out of order: the encoder trusts validate()
  EXPECT_FALSE(decode(encode(d), &v));
  std::string varint = std::string(1, '\x01') + '\x00' + std::string(11, '\xff');
  EXPECT_FALSE(decode(varint, &v));
}

TEST(Record, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  std::string valid = encode(sample());
  DomainView v;
  size_t accepted = 0;
  for (int i = 0; i < 200000; i++) {
    std::string junk;
    if (i % 2) {
      junk.resize(rng() % 64);
      for (auto& ch : junk) ch = static_cast<char>(rng());
    } else {  // mutate a valid record: closer to real damage
      junk = valid;
      for (int k = 0; k < 3; k++) junk[rng() % junk.size()] = static_cast<char>(rng());
    }
    if (decode(junk, &v)) {
      accepted++;
      EXPECT_TRUE(valid_brand(v.brand));
      for (size_t s = 0; s < v.nsections; s++) EXPECT_TRUE(valid_section(v.sections[s]));
    }
  }
  EXPECT_LT(accepted, 200000u);
}

TEST(Record, Sizes) {
  // What the snapshot size goal (< 300 bytes per domain) rests on.
  EXPECT_LT(encode(sample()).size(), 64u);
}

TEST(Fields, Brand) {
  std::string why;
  EXPECT_TRUE(valid_brand("Acme Telecom"));
  EXPECT_TRUE(valid_brand("B\xc3\xbc" "cher & S\xc3\xb6hne"));
  EXPECT_TRUE(valid_brand(std::string(128, 'b')));
  EXPECT_FALSE(valid_brand(std::string(129, 'b'), &why));
  EXPECT_NE(why.find("128"), std::string::npos);
  EXPECT_FALSE(valid_brand("", &why));
  EXPECT_FALSE(valid_brand("Acme\r\nX-Evil: 1", &why));
  EXPECT_NE(why.find("brand"), std::string::npos);
  EXPECT_NE(why.find("control"), std::string::npos);
  EXPECT_FALSE(valid_brand("Acme\x7f"));
  EXPECT_FALSE(valid_brand("Acme\xc2\x85"));   // C1 NEL
  EXPECT_FALSE(valid_brand("Acme\xe2\x80\xa8"));  // LINE SEPARATOR
  EXPECT_FALSE(valid_brand("Acme\xff"));        // not UTF-8
  EXPECT_FALSE(valid_brand("Acme\xc0\xaf"));    // overlong
  EXPECT_FALSE(valid_brand("Acme\xed\xa0\x80"));  // surrogate
}

TEST(Fields, Sections) {
  std::vector<std::string> access;
  std::string why;
  ASSERT_TRUE(parse_access("rate_card,cdr, balance,cdr", &access, &why)) << why;
  EXPECT_EQ(access, (std::vector<std::string>{"balance", "cdr", "rate_card"}));
  ASSERT_TRUE(parse_access("", &access));
  EXPECT_TRUE(access.empty());
  EXPECT_FALSE(parse_access("cdr,,balance", &access, &why));
  EXPECT_FALSE(parse_access("cdr,", &access, &why));
  EXPECT_FALSE(parse_access("CDR", &access, &why));
  EXPECT_NE(why.find("\"CDR\""), std::string::npos) << why;
  EXPECT_FALSE(parse_access("rate-card", &access));
  EXPECT_FALSE(parse_access(std::string(33, 'a'), &access));
  EXPECT_TRUE(parse_access(std::string(32, 'a'), &access));
}

TEST(Fields, Limit) {
  uint64_t cents = 0;
  std::string why;
  struct { const char* in; uint64_t cents; } ok[] = {
      {"0", 0}, {"100", 10000}, {"100.5", 10050}, {"100.50", 10050}, {"0.01", 1},
      {"007", 700}, {"999999999999.99", kMaxLimitCents}};
  for (auto& c : ok) {
    ASSERT_TRUE(parse_limit(c.in, &cents, &why)) << c.in << ": " << why;
    EXPECT_EQ(cents, c.cents) << c.in;
  }
  const char* bad[] = {"", "-1", "-0.01", "1.234", "1.", ".5", "abc", "1e3", "+1", " 1",
                       "1,5", "1000000000000", "18446744073709551616", "0x10", "NaN"};
  for (const char* in : bad) EXPECT_FALSE(parse_limit(in, &cents, &why)) << in;
  EXPECT_FALSE(parse_limit("-5", &cents, &why));
  EXPECT_NE(why.find("customer limit \"-5\""), std::string::npos) << why;
  EXPECT_EQ(format_limit(0), "0.00");
  EXPECT_EQ(format_limit(10050), "100.50");
  EXPECT_EQ(format_limit(7), "0.07");
  EXPECT_EQ(format_limit(kMaxLimitCents), "999999999999.99");
}

TEST(Fields, Status) {
  DomainStatus s;
  EXPECT_TRUE(parse_status("active", &s));
  EXPECT_EQ(s, DomainStatus::active);
  EXPECT_TRUE(parse_status("suspended", &s));
  EXPECT_EQ(s, DomainStatus::suspended);
  EXPECT_FALSE(parse_status("Active", &s));
  EXPECT_FALSE(parse_status("", &s));
}

TEST(Fields, Validate) {
  Domain d = sample();
  std::string why;
  EXPECT_TRUE(validate(d, &why)) << why;
  d.access = {"cdr", "balance"};
  EXPECT_FALSE(validate(d, &why));
  d = sample();
  d.customer_limit_cents = kMaxLimitCents + 1;
  EXPECT_FALSE(validate(d, &why));
}
