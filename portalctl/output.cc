#include "output.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "iso_time.h"
#include "json_io.h"
#include "util/text.h"

namespace portalctl {

namespace {

const char* yes_no(bool v) { return v ? "yes" : "no"; }

std::string access_list(const portal::Domain& d) {
  if (d.access.empty()) return "-";
  std::string s;
  for (const auto& name : d.access) {
    if (!s.empty()) s += ',';
    s += name;
  }
  return s;
}

// Columns are padded to these widths and pushed right by a longer value, like ps(1) does:
// a million rows are printed as they are read, without a pass to measure them first.
std::string row(std::string_view host, std::string_view brand, std::string_view status,
                std::string_view customer, std::string_view carrier, std::string_view limit,
                std::string_view access) {
  std::string s;
  auto cell = [&s](std::string_view v, size_t width) {
    size_t chars = 0;  // UTF-8 characters: continuation bytes take no column
    for (unsigned char ch : v) chars += (ch & 0xc0) != 0x80;
    s += v;
    s.append(chars < width ? width - chars + 1 : 1, ' ');
  };
  cell(host, 32);
  cell(brand, 24);
  cell(status, 9);
  cell(customer, 15);
  cell(carrier, 14);
  cell(limit, 14);
  s += access;
  s += '\n';
  return s;
}

}  // namespace

void out(std::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); }

void finish_output() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout))
    throw std::runtime_error(std::string("cannot write to standard output: ") +
                             std::strerror(errno));
}

std::string domain_text(const portal::Domain& d) {
  return "host: " + d.host + "\nbrand: " + d.brand +
         "\ncustomer_signup: " + yes_no(d.customer_signup) +
         "\ncarrier_signup: " + yes_no(d.carrier_signup) +
         "\ncustomer_limit: " + portal::format_limit(d.customer_limit_cents) +
         "\naccess: " + access_list(d) + "\nstatus: " + portal::status_name(d.status) +
         "\ncreated: " + format_time(d.created) + "\nupdated: " + format_time(d.updated) + "\n";
}

std::string table_header() {
  return row("host", "brand", "status", "customer_signup", "carrier_signup", "customer_limit",
             "access");
}

std::string table_row(const portal::Domain& d) {
  return row(d.host, d.brand, portal::status_name(d.status), yes_no(d.customer_signup),
             yes_no(d.carrier_signup), portal::format_limit(d.customer_limit_cents),
             access_list(d));
}

void MalformedRecords::operator()(std::string_view host) {
  std::fprintf(stderr, "portalctl: skipping the malformed %s %s\n", what_,
               portal::quoted(host).c_str());
  count_++;
}

void MalformedRecords::check() const {
  if (count_) throw std::runtime_error(std::to_string(count_) + " malformed record(s) skipped");
}

void out_domains_json(const portal::SnapshotTxn& tx, MalformedRecords& malformed) {
  bool first = true;
  out("[");
  tx.for_each(
      [&first](const portal::Domain& d) {
        out(first ? "\n" : ",\n");
        out(domain_json(d));
        first = false;
      },
      std::ref(malformed));
  out(first ? "]" : "\n]");
}

}  // namespace portalctl
