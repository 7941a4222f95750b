#include "domain_cache.h"

#include <algorithm>
#include <functional>

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

}  // namespace

void DomainCache::reset(uint64_t txnid) {
  if (!entries_.empty()) std::fill(slots_.begin(), slots_.end(), Slot{});
  entries_.clear();
  txnid_ = txnid;
  probes_ = hits_ = 0;
  bypass_ = false;
}

const DomainCache::Entry* DomainCache::lookup(std::string_view host, uint64_t hash,
                                              size_t* slot) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (!s.entry) {
      *slot = i;
      return nullptr;
    }
    if (s.hash == hash && entries_[s.entry - 1].host() == host) return &entries_[s.entry - 1];
  }
}

const DomainCache::Entry* DomainCache::find(std::string_view host, uint64_t txnid) {
  if (txnid != txnid_) {
    reset(txnid);
    return nullptr;
  }
  if (bypass_ || entries_.empty()) return nullptr;
  size_t slot;
  const Entry* e = lookup(host, std::hash<std::string_view>{}(host), &slot);
  if (entries_.size() >= capacity_) {
    hits_ += e != nullptr;
    if (++probes_ == kJudgeAfter) {
      bypass_ = hits_ * 4 < probes_;
      probes_ = hits_ = 0;
    }
  }
  return e;
}

const DomainCache::Entry* DomainCache::put(Entry entry, uint64_t txnid) {
  if (txnid != txnid_) reset(txnid);
  if (bypass_ || entries_.size() >= capacity_) return nullptr;
  if (slots_.empty()) {
    size_t n = 16;
    while (n < 2 * capacity_) n *= 2;  // at most half full: short probes
    slots_.resize(n);
  }
  uint64_t hash = std::hash<std::string_view>{}(entry.host());
  size_t slot;
  if (const Entry* e = lookup(entry.host(), hash, &slot)) return e;
  entries_.push_back(std::move(entry));
  slots_[slot] = Slot{hash, static_cast<uint32_t>(entries_.size())};
  return &entries_.back();
}

}  // namespace portal
