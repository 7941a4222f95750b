#include "cert_record.h"

#include <utility>

#include "varint.h"

namespace portal {

namespace {

constexpr uint8_t kCertRecordVersion = 1;
constexpr size_t kMaxPairs = 2;

bool valid_source(uint8_t s) {
  return s == static_cast<uint8_t>(CertSource::acme) ||
         s == static_cast<uint8_t>(CertSource::imported);
}

bool valid_key_type(uint8_t t) {
  return t == static_cast<uint8_t>(KeyType::ecdsa) || t == static_cast<uint8_t>(KeyType::rsa);
}

bool get_u8(std::string_view& in, uint8_t* v) {
  if (in.empty()) return false;
  *v = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  return true;
}

bool get_time(std::string_view& in, int64_t* t) {
  uint64_t v;
  if (!get_varint(in, &v) || v > INT64_MAX) return false;
  *t = static_cast<int64_t>(v);
  return true;
}

// A length-prefixed, non-empty byte string.
bool get_bytes(std::string_view& in, std::string* out) {
  uint64_t len;
  if (!get_varint(in, &len) || len == 0 || len > in.size()) return false;
  out->assign(in.data(), len);
  in.remove_prefix(len);
  return true;
}

void put_bytes(std::string& out, const std::string& bytes) {
  put_varint(out, bytes.size());
  out += bytes;
}

bool decode_pair(std::string_view& in, CertPair* p) {
  uint8_t type, chain_len;
  if (!get_u8(in, &type) || !valid_key_type(type)) return false;
  p->type = static_cast<KeyType>(type);
  if (!get_time(in, &p->not_before) || !get_time(in, &p->not_after)) return false;
  if (p->not_after < p->not_before) return false;
  if (!get_u8(in, &chain_len) || chain_len == 0 || chain_len > kMaxChain) return false;
  p->chain_der.resize(chain_len);
  for (std::string& der : p->chain_der) {
    if (!get_bytes(in, &der)) return false;
  }
  return get_bytes(in, &p->key_der);
}

}  // namespace

const char* key_type_name(KeyType t) { return t == KeyType::rsa ? "rsa" : "ecdsa"; }

const char* source_name(CertSource s) { return s == CertSource::acme ? "acme" : "imported"; }

// Writes what it is given; a record that breaks the rules (no pair, two of one type, an empty
// chain, a negative time) comes out as a value decode refuses, and StateTxn refuses to store.
std::string encode(const CertRecord& r) {
  std::string out;
  size_t size = 32;
  for (const CertPair& p : r.pairs) {
    size += 32 + p.key_der.size();
    for (const std::string& der : p.chain_der) size += 4 + der.size();
  }
  out.reserve(size);
  out += static_cast<char>(kCertRecordVersion);
  out += static_cast<char>(r.source);
  put_varint(out, r.generation);
  put_varint(out, static_cast<uint64_t>(r.updated));
  out += static_cast<char>(r.pairs.size());
  for (const CertPair& p : r.pairs) {
    out += static_cast<char>(p.type);
    put_varint(out, static_cast<uint64_t>(p.not_before));
    put_varint(out, static_cast<uint64_t>(p.not_after));
    out += static_cast<char>(p.chain_der.size());
    for (const std::string& der : p.chain_der) put_bytes(out, der);
    put_bytes(out, p.key_der);
  }
  return out;
}

bool decode(std::string_view in, CertRecord* out) {
  CertRecord r;
  uint8_t version, source, count;
  if (!get_u8(in, &version) || version != kCertRecordVersion) return false;
  if (!get_u8(in, &source) || !valid_source(source)) return false;
  r.source = static_cast<CertSource>(source);
  if (!get_varint(in, &r.generation) || !get_time(in, &r.updated)) return false;
  if (!get_u8(in, &count) || count == 0 || count > kMaxPairs) return false;
  r.pairs.resize(count);
  for (size_t k = 0; k < count; k++) {
    if (!decode_pair(in, &r.pairs[k])) return false;
    for (size_t j = 0; j < k; j++) {
      if (r.pairs[j].type == r.pairs[k].type) return false;  // one pair per key type
    }
  }
  if (!in.empty()) return false;
  *out = std::move(r);
  return true;
}

bool peek_generation(std::string_view in, uint64_t* generation) {
  uint8_t version, source;
  if (!get_u8(in, &version) || version != kCertRecordVersion) return false;
  if (!get_u8(in, &source) || !valid_source(source)) return false;
  return get_varint(in, generation);
}

}  // namespace portal
