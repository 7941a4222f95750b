#include "domain_cache.h"

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
  index_.clear();
  entries_.clear();
  txnid_ = txnid;
  probes_ = hits_ = 0;
  bypass_ = false;
}

const DomainCache::Entry* DomainCache::find(std::string_view host, uint64_t txnid) {
  if (txnid != txnid_) {
    reset(txnid);
    return nullptr;
  }
  if (bypass_) return nullptr;
  auto it = index_.find(host);
  const Entry* e = it == index_.end() ? nullptr : it->second;
  if (index_.size() >= capacity_) {
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
  if (bypass_ || index_.size() >= capacity_) return nullptr;
  const Entry& e = entries_.emplace_back(std::move(entry));
  index_.emplace(e.host(), &e);
  return &e;
}

}  // namespace portal
