// The extern "C" face of the core: every entry point catches everything.
#include "portal_core.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "../domain/record.h"
#include "../host/hostname.h"
#include "../store/domain_cache.h"
#include "../store/snapshot.h"
#include "../store/store_env.h"
#include "../tls/cert_cache.h"

struct portal_reader_s {
  portal_reader_s(const std::string& dir, size_t cache_size) : reader(dir), cache(cache_size) {}
  portal::SnapshotReader reader;
  portal::DomainCache cache;
};

struct portal_certs_s {
  portal_certs_s(const std::string& dir, size_t size) : cache(dir, size) {}
  portal::CertCache cache;
};

namespace {

void set_err(char* err, size_t errlen, const char* msg) {
  if (err && errlen) std::snprintf(err, errlen, "%s", msg);
}

struct OutOfPool {};

// What fill copies: a remembered Hit or a fresh Entry.
struct Fields {
  const char* text;
  size_t text_len, host_len, brand_len, limit_len, nsections;
  const uint32_t* section_ends;
  bool customer_signup, carrier_signup, suspended;
};

Fields fields(const portal::DomainCache::Hit& h) {
  return {h.text(),         h.text_len,        h.host_len,        h.brand_len,
          h.limit_len,      h.nsections,       h.section_ends(),  h.customer_signup,
          h.carrier_signup, h.suspended};
}

Fields fields(const portal::DomainCache::Entry& e) {
  return {e.text.data(),     e.text.size(),       e.host_len,          e.brand_len,
          e.limit_len,       e.section_ends.size(), e.section_ends.data(), e.customer_signup,
          e.carrier_signup,  e.suspended};
}

// One allocation in the caller's pool: the section slices, then the text.
void fill(const Fields& e, portal_alloc_pt alloc, void* ctx, portal_domain_t* out) {
  size_t slices = e.nsections * sizeof(portal_str_t);
  auto* block = static_cast<char*>(alloc(ctx, slices + e.text_len));
  if (!block) throw OutOfPool{};
  char* text = block + slices;
  std::memcpy(text, e.text, e.text_len);

  auto slice = [&](size_t at, size_t len, portal_str_t* s) {
    s->data = text + at;
    s->len = len;
  };
  size_t at = 0;
  slice(at, e.host_len, &out->host);
  slice(at += e.host_len, e.brand_len, &out->brand);
  slice(at += e.brand_len, e.limit_len, &out->customer_limit);
  at += e.limit_len;
  slice(at, e.text_len - at, &out->access);
  const char* status = e.suspended ? "suspended" : "active";  // static storage
  out->status.data = status;
  out->status.len = std::strlen(status);

  out->nsections = e.nsections;
  out->sections = e.nsections ? reinterpret_cast<portal_str_t*>(block) : nullptr;
  size_t start = 0;
  for (size_t i = 0; i < e.nsections; i++) {
    slice(at + start, e.section_ends[i] - start, &out->sections[i]);
    start = e.section_ends[i] + 1;  // past the comma
  }
  out->customer_signup = e.customer_signup;
  out->carrier_signup = e.carrier_signup;
  out->suspended = e.suspended;
}

}  // namespace

extern "C" {

portal_host_rc_t portal_host_canonical(const char* in, size_t len, char* out,
                                       size_t* out_len) noexcept {
  switch (portal::canonical_host(std::string_view(in, len), out, out_len)) {
    case portal::HostCheck::ok:
      return PORTAL_HOST_OK;
    case portal::HostCheck::bad_port:
      return PORTAL_HOST_BAD_PORT;
    default:
      return PORTAL_HOST_INVALID;
  }
}

int portal_section_valid(const char* name, size_t len) noexcept {
  return portal::valid_section(std::string_view(name, len)) ? 1 : 0;
}

int portal_store_check(const char* dir, const char* store, char* err, size_t errlen) noexcept {
  try {
    portal::check_store_file(dir, store);
    return 0;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return -1;
}

portal_reader_t* portal_reader_open(const char* dir, size_t cache_size, char* err,
                                    size_t errlen) noexcept {
  try {
    return new portal_reader_s(dir, cache_size);
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return nullptr;
}

void portal_reader_close(portal_reader_t* r) noexcept { delete r; }

portal_rc_t portal_reader_lookup(portal_reader_t* r, const char* host, size_t len,
                                 portal_alloc_pt alloc, void* ctx, portal_domain_t* out,
                                 char* err, size_t errlen) noexcept {
  if (err && errlen) err[0] = '\0';
  try {
    std::string_view name(host, len);
    const portal::DomainCache::Hit* hit = r->cache.find(name, r->reader.committed_txnid());
    if (hit) {
      if (!hit->found) return PORTAL_NOT_FOUND;
      fill(fields(*hit), alloc, ctx, out);
      return PORTAL_FOUND;
    }

    bool first = false;
    portal::DomainCache::Entry entry;
    auto rc = r->reader.lookup(
        name, [&](const portal::DomainView& v) { entry = portal::DomainCache::Entry::from(name, &v); },
        &first);
    switch (rc) {
      case portal::SnapshotReader::Result::found:
        fill(fields(entry), alloc, ctx, out);
        r->cache.put(entry, r->reader.last_txnid());
        return PORTAL_FOUND;
      case portal::SnapshotReader::Result::not_found:
        r->cache.put(portal::DomainCache::Entry::from(name, nullptr), r->reader.last_txnid());
        return PORTAL_NOT_FOUND;
      case portal::SnapshotReader::Result::malformed:
        if (first) set_err(err, errlen, "record does not decode (unknown version or damaged)");
        return PORTAL_MALFORMED;
    }
  } catch (const OutOfPool&) {
    set_err(err, errlen, "out of memory");
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return PORTAL_ERROR;
}

portal_certs_t* portal_certs_open(const char* dir, size_t cache_size, char* err,
                                  size_t errlen) noexcept {
  try {
    return new portal_certs_s(dir, cache_size);
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return nullptr;
}

void portal_certs_close(portal_certs_t* c) noexcept { delete c; }

portal_cert_rc_t portal_certs_use(portal_certs_t* c, void* ssl, const char* host, size_t len,
                                  char* err, size_t errlen) noexcept {
  if (err && errlen) err[0] = '\0';
  try {
    bool first = false;
    switch (c->cache.use(static_cast<SSL*>(ssl), std::string_view(host, len), &first)) {
      case portal::CertCache::Result::used:
        return PORTAL_CERT_USED;
      case portal::CertCache::Result::none:
        return PORTAL_CERT_NONE;
      case portal::CertCache::Result::malformed:
        if (first) set_err(err, errlen, "certificate record does not parse (damaged?)");
        return PORTAL_CERT_MALFORMED;
    }
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return PORTAL_CERT_ERROR;
}

int portal_certs_has(portal_certs_t* c, const char* host, size_t len, char* err,
                     size_t errlen) noexcept {
  try {
    return c->cache.has(std::string_view(host, len)) ? 1 : 0;
  } catch (const std::exception& e) {
    set_err(err, errlen, e.what());
  } catch (...) {
    set_err(err, errlen, "unknown error");
  }
  return -1;
}

}  // extern "C"
