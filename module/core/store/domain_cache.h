// A worker's memo of snapshot lookups, so that a host asked for again parses nothing and
// touches no B-tree. Every entry comes from one LMDB transaction id; a newer commit (seen
// through SnapshotReader::committed_txnid, without a transaction) empties the cache, so a
// change made with portalctl is still seen from the next request on. Bounded: a full cache
// takes no new entry until the next commit empties it, so that traffic spread over more
// names than it holds pays for lookups, not for churn; and when, full, it answers less than a
// quarter of the lookups, it steps aside until the next commit (its probes would cost more
// than they save). Unknown hosts are remembered too.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../domain/record.h"

namespace portal {

class DomainCache {
 public:
  // A looked-up host as the lookup builds it: text holds the host, the brand, the customer
  // limit ("100.00") and the access list ("balance,cdr"), one after the other.
  struct Entry {
    bool found = false;
    bool customer_signup = false;
    bool carrier_signup = false;
    bool suspended = false;
    std::string text;
    uint32_t host_len = 0, brand_len = 0, limit_len = 0;
    std::vector<uint32_t> section_ends;  // end of each section name within the access list

    std::string_view host() const { return std::string_view(text).substr(0, host_len); }
    static Entry from(std::string_view host, const DomainView* view);  // nullptr: unknown
  };

  // An entry as the cache holds it: one block of its arena, this header, then the section
  // ends, then the text, so that a hit reads one slot and one or two cache lines (a hit
  // costs its cache misses, not its instructions: nginx's own work evicts the memo between
  // two requests).
  struct Hit {
    uint32_t text_len, host_len, brand_len, limit_len, nsections;
    bool found, customer_signup, carrier_signup, suspended;

    const uint32_t* section_ends() const { return reinterpret_cast<const uint32_t*>(this + 1); }
    const char* text() const { return reinterpret_cast<const char*>(section_ends() + nsections); }
    std::string_view host() const { return std::string_view(text(), host_len); }
  };

  // The hash seed is drawn per process: hosts are the clients' choice, and a fixed hash would
  // let one client fill the table with names that all land in the same run of slots.
  explicit DomainCache(size_t capacity);

  // The entry for host if it was read at transaction txnid; empties a cache of an older one.
  const Hit* find(std::string_view host, uint64_t txnid);
  // Remembers an entry read at txnid (a cache of another transaction is emptied first);
  // nullptr when the cache is full.
  const Hit* put(const Entry& entry, uint64_t txnid);

  size_t size() const { return count_; }

 private:
  // Open addressing with linear probing: a probe reads one slot (hash and entry) and
  // compares the host only when the whole hash matches.
  struct Slot {
    uint64_t hash = 0;
    const Hit* hit = nullptr;  // nullptr: an empty slot
  };
  // The arena: blocks kept across resets, filled in turn.
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size;
  };

  void reset(uint64_t txnid);
  uint64_t hash(std::string_view host) const;
  const Hit* lookup(std::string_view host, uint64_t h, size_t* slot) const;
  void grow();
  char* allocate(size_t n);

  size_t capacity_;
  uint64_t seed_;
  uint64_t txnid_ = 0;
  size_t probes_ = 0, hits_ = 0;  // counted once full
  bool bypass_ = false;
  size_t count_ = 0;
  // At most half full: short probes. It starts small and doubles as entries come, up to
  // twice the capacity, so that a worker that sees few hosts holds little.
  std::vector<Slot> slots_;
  std::vector<Block> blocks_;
  size_t block_ = 0, used_ = 0;  // where the next entry goes
};

}  // namespace portal
