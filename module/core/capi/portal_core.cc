// The extern "C" face of the core: every entry point catches everything.
#include "portal_core.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "../domain/record.h"
#include "../host/hostname.h"
#include "../store/snapshot.h"

struct portal_reader_s {
  explicit portal_reader_s(const std::string& dir) : reader(dir) {}
  portal::SnapshotReader reader;
};

namespace {

void set_err(char* err, size_t errlen, const char* msg) {
  if (err && errlen) std::snprintf(err, errlen, "%s", msg);
}

struct OutOfPool {};

char* copy(portal_alloc_pt alloc, void* ctx, const char* data, size_t len, portal_str_t* s) {
  auto* p = static_cast<char*>(alloc(ctx, len ? len : 1));
  if (!p) throw OutOfPool{};
  if (len) std::memcpy(p, data, len);
  s->data = p;
  s->len = len;
  return p;
}

void fill(const portal::DomainView& v, const char* host, size_t host_len, portal_alloc_pt alloc,
          void* ctx, portal_domain_t* out) {
  copy(alloc, ctx, host, host_len, &out->host);
  copy(alloc, ctx, v.brand.data(), v.brand.size(), &out->brand);
  char limit[24];
  copy(alloc, ctx, limit, portal::format_limit(v.customer_limit_cents, limit),
       &out->customer_limit);
  const char* status = v.suspended ? "suspended" : "active";
  out->status.data = status;  // static storage
  out->status.len = std::strlen(status);

  size_t joined = 0;
  for (size_t i = 0; i < v.nsections; i++) joined += v.sections[i].size() + 1;
  out->nsections = v.nsections;
  out->sections = nullptr;
  out->access.data = "";
  out->access.len = 0;
  if (v.nsections) {
    out->sections =
        static_cast<portal_str_t*>(alloc(ctx, v.nsections * sizeof(portal_str_t)));
    auto* p = static_cast<char*>(alloc(ctx, joined));
    if (!out->sections || !p) throw OutOfPool{};
    out->access.data = p;
    for (size_t i = 0; i < v.nsections; i++) {
      if (i) *p++ = ',';
      std::memcpy(p, v.sections[i].data(), v.sections[i].size());
      out->sections[i].data = p;
      out->sections[i].len = v.sections[i].size();
      p += v.sections[i].size();
    }
    out->access.len = joined - 1;
  }
  out->customer_signup = v.customer_signup;
  out->carrier_signup = v.carrier_signup;
  out->suspended = v.suspended;
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

portal_reader_t* portal_reader_open(const char* dir, char* err, size_t errlen) noexcept {
  try {
    return new portal_reader_s(dir);
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
    bool first = false;
    auto rc = r->reader.lookup(
        std::string_view(host, len),
        [&](const portal::DomainView& v) { fill(v, host, len, alloc, ctx, out); }, &first);
    switch (rc) {
      case portal::SnapshotReader::Result::found:
        return PORTAL_FOUND;
      case portal::SnapshotReader::Result::not_found:
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

}  // extern "C"
