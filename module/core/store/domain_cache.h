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
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "../domain/record.h"

namespace portal {

class DomainCache {
 public:
  // A looked-up host, laid out for one copy: text holds the host, the brand, the customer
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

  explicit DomainCache(size_t capacity) : capacity_(capacity) {}

  // The entry for host if it was read at transaction txnid; empties a cache of an older one.
  const Entry* find(std::string_view host, uint64_t txnid);
  // Remembers an entry read at txnid (a cache of another transaction is emptied first);
  // nullptr when the cache is full.
  const Entry* put(Entry entry, uint64_t txnid);

  size_t size() const { return entries_.size(); }

 private:
  // Open addressing with linear probing: a probe reads one slot (hash and entry number)
  // and compares the host only when the whole hash matches.
  struct Slot {
    uint64_t hash = 0;
    uint32_t entry = 0;  // index in entries_ + 1; 0 is an empty slot
  };

  void reset(uint64_t txnid);
  const Entry* lookup(std::string_view host, uint64_t hash, size_t* slot) const;

  size_t capacity_;
  uint64_t txnid_ = 0;
  size_t probes_ = 0, hits_ = 0;  // counted once full
  bool bypass_ = false;
  std::deque<Entry> entries_;
  std::vector<Slot> slots_;  // allocated on the first entry: at least twice the capacity
};

}  // namespace portal
