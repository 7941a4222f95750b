// A portal domain's certificate record in the state store: one pair per key type (an
// ECDSA and/or an RSA certificate, each with its chain and private key), where it came
// from, and a generation number that changes with every write (what worker caches check).
//
// Encoding, version 1: u8 version | u8 source | varint generation | varint updated |
// u8 pair count (1..2), then per pair: u8 key type | varint not_before | varint not_after |
// u8 chain length (1..8), then per certificate varint length + DER | varint length + key DER
// (PKCS #8). Anything else is malformed. No OpenSSL here: tls/ parses the DER.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portal {

enum class KeyType : uint8_t { ecdsa = 1, rsa = 2 };
enum class CertSource : uint8_t { acme = 1, imported = 2 };

constexpr size_t kMaxChain = 8;

struct CertPair {
  KeyType type = KeyType::ecdsa;
  int64_t not_before = 0;
  int64_t not_after = 0;
  std::vector<std::string> chain_der;  // leaf first
  std::string key_der;                 // private key, PKCS #8 DER: never logged, never shown
};

struct CertRecord {
  CertSource source = CertSource::imported;
  uint64_t generation = 0;
  int64_t updated = 0;
  std::vector<CertPair> pairs;  // at most one per key type
};

const char* key_type_name(KeyType t);    // "ecdsa", "rsa"
const char* source_name(CertSource s);   // "acme", "imported"

std::string encode(const CertRecord& r);
bool decode(std::string_view value, CertRecord* out);
// Just the generation, for a cache that already holds the parsed record.
bool peek_generation(std::string_view value, uint64_t* generation);

}  // namespace portal
