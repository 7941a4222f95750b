#include "domain_cache.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <random>

namespace portal {

DomainCache::Entry DomainCache::Entry::from(std::string_view host, const DomainView* view) {
  Entry e;
  e.text.assign(host);
  e.host_len = static_cast<uint32_t>(host.size());
  if (!view) return e;
  e.found = true;
  e.customer_signup = view->customer_signup;
  e.carrier_signup = view->carrier_signup;
  e.suspended = view->suspended;
  e.text += view->brand;
  e.brand_len = static_cast<uint32_t>(view->brand.size());
  char limit[24];
  e.limit_len = static_cast<uint32_t>(format_limit(view->customer_limit_cents, limit));
  e.text.append(limit, e.limit_len);
  uint32_t end = 0;
  for (size_t i = 0; i < view->nsections; i++) {
    if (i) {
      e.text += ',';
      end++;
    }
    e.text += view->sections[i];
    end += static_cast<uint32_t>(view->sections[i].size());
    e.section_ends.push_back(end);
  }
  return e;
}

namespace {

constexpr size_t kJudgeAfter = 8192;  // lookups of a full cache before judging its worth
constexpr size_t kBlockSize = 64 * 1024;
constexpr size_t kFirstSlots = 1024;

// The 128-bit product of a and b, folded into 64 bits: one multiplication mixes 8 bytes.
inline uint64_t mix(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

DomainCache::DomainCache(size_t capacity) : capacity_(capacity), seed_(random_seed()) {}

uint64_t DomainCache::hash(std::string_view host) const {
  const char* p = host.data();
  size_t n = host.size();
  uint64_t h = seed_ ^ n;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(w ^ 0x9e3779b97f4a7c15ULL, h ^ 0xbf58476d1ce4e5b9ULL);
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  return mix(w ^ 0x94d049bb133111ebULL, h ^ 0xd6e8feb86659fd93ULL);
}

void DomainCache::reset(uint64_t txnid) {
  if (count_) std::fill(slots_.begin(), slots_.end(), Slot{});
  count_ = 0;
  block_ = used_ = 0;
  txnid_ = txnid;
  probes_ = hits_ = 0;
  bypass_ = false;
}

char* DomainCache::allocate(size_t n) {
  n = (n + 7) & ~size_t(7);
  for (; block_ < blocks_.size(); block_++, used_ = 0) {
    Block& b = blocks_[block_];
    if (used_ + n <= b.size) {
      char* p = b.data.get() + used_;
      used_ += n;
      return p;
    }
  }
  size_t size = std::max(n, kBlockSize);
  blocks_.push_back(Block{std::unique_ptr<char[]>(new char[size]), size});
  used_ = n;
  return blocks_.back().data.get();
}

const DomainCache::Hit* DomainCache::lookup(std::string_view host, uint64_t h,
                                            size_t* slot) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (!s.hit) {
      *slot = i;
      return nullptr;
    }
    if (s.hash == h && s.hit->host() == host) return s.hit;
  }
}

const DomainCache::Hit* DomainCache::find(std::string_view host, uint64_t txnid) {
  if (txnid != txnid_) {
    reset(txnid);
    return nullptr;
  }
  if (bypass_ || !count_) return nullptr;
  size_t slot;
  const Hit* e = lookup(host, hash(host), &slot);
  if (count_ >= capacity_) {
    hits_ += e != nullptr;
    if (++probes_ == kJudgeAfter) {
      bypass_ = hits_ * 4 < probes_;
      probes_ = hits_ = 0;
    }
  }
  return e;
}

const DomainCache::Hit* DomainCache::put(const Entry& entry, uint64_t txnid) {
  if (txnid != txnid_) reset(txnid);
  if (bypass_ || count_ >= capacity_) return nullptr;
  if (2 * (count_ + 1) > slots_.size()) grow();
  uint64_t h = hash(entry.host());
  size_t slot;
  if (const Hit* e = lookup(entry.host(), h, &slot)) return e;

  size_t ends = entry.section_ends.size() * sizeof(uint32_t);
  char* block = allocate(sizeof(Hit) + ends + entry.text.size());
  Hit* hit = new (block) Hit{static_cast<uint32_t>(entry.text.size()),
                             entry.host_len,
                             entry.brand_len,
                             entry.limit_len,
                             static_cast<uint32_t>(entry.section_ends.size()),
                             entry.found,
                             entry.customer_signup,
                             entry.carrier_signup,
                             entry.suspended};
  if (ends) std::memcpy(block + sizeof(Hit), entry.section_ends.data(), ends);
  std::memcpy(block + sizeof(Hit) + ends, entry.text.data(), entry.text.size());
  slots_[slot] = Slot{h, hit};
  count_++;
  return hit;
}

void DomainCache::grow() {
  size_t n = slots_.empty() ? kFirstSlots : 2 * slots_.size();
  std::vector<Slot> old(n);
  old.swap(slots_);
  size_t mask = n - 1;
  for (const Slot& s : old) {
    if (!s.hit) continue;
    size_t i = s.hash & mask;
    while (slots_[i].hit) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

}  // namespace portal
