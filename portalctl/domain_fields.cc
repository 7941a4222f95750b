#include "domain_fields.h"

#include <CLI/CLI.hpp>

#include <algorithm>

#include "errors.h"
#include "util/text.h"

namespace portalctl {

namespace {

bool parse_yes_no(const std::string& text, const char* field, std::string* why) {
  if (text != "yes" && text != "no")
    *why = std::string("invalid ") + field + " " + portal::quoted(text) + ": must be yes or no";
  return text == "yes";
}

[[noreturn]] void bad(const char* option, const std::string& why) {
  throw UsageError(std::string(option) + ": " + why);
}

}  // namespace

void add_field_options(CLI::App& cmd, FieldArgs& args, bool with_edits) {
  cmd.add_option("--brand", args.brand, "the name shown on the portal (1 to 128 bytes of UTF-8)")
      ->type_name("NAME");
  cmd.add_option("--customer-signup", args.customer_signup, "new customers may sign up")
      ->type_name("yes|no");
  cmd.add_option("--carrier-signup", args.carrier_signup, "new carriers may sign up")
      ->type_name("yes|no");
  cmd.add_option("--customer-limit", args.customer_limit, "credit given to a new customer")
      ->type_name("AMOUNT");
  CLI::Option* access =
      cmd.add_option("--access", args.access, "the sections customers may use (\"\" for none)")
          ->type_name("a,b,c");
  cmd.add_option("--status", args.status, "a suspended domain is refused at the edge")
      ->type_name("active|suspended");
  if (with_edits) {
    access->excludes(cmd.add_option("--access-add", args.access_add, "grant these sections too")
                         ->type_name("a,b"));
    access->excludes(
        cmd.add_option("--access-rm", args.access_rm, "withdraw these sections")->type_name("a,b"));
  }
}

bool Change::empty() const {
  return !brand && !customer_signup && !carrier_signup && !customer_limit_cents && !access &&
         access_add.empty() && access_rm.empty() && !status;
}

Change parse_change(const CLI::App& cmd, const FieldArgs& args) {
  auto given = [&cmd](const char* option) {
    const CLI::Option* o = cmd.get_option_no_throw(option);
    return o && o->count() > 0;
  };
  Change c;
  std::string why;
  if (given("--brand")) {
    if (!portal::valid_brand(args.brand, &why)) bad("--brand", why);
    c.brand = args.brand;
  }
  if (given("--customer-signup")) {
    c.customer_signup = parse_yes_no(args.customer_signup, "customer sign-up", &why);
    if (!why.empty()) bad("--customer-signup", why);
  }
  if (given("--carrier-signup")) {
    c.carrier_signup = parse_yes_no(args.carrier_signup, "carrier sign-up", &why);
    if (!why.empty()) bad("--carrier-signup", why);
  }
  if (given("--customer-limit")) {
    uint64_t cents;
    if (!portal::parse_limit(args.customer_limit, &cents, &why)) bad("--customer-limit", why);
    c.customer_limit_cents = cents;
  }
  if (given("--access")) {
    std::vector<std::string> access;
    if (!portal::parse_access(args.access, &access, &why)) bad("--access", why);
    c.access = std::move(access);
  }
  if (given("--access-add") && !portal::parse_access(args.access_add, &c.access_add, &why))
    bad("--access-add", why);
  if (given("--access-rm") && !portal::parse_access(args.access_rm, &c.access_rm, &why))
    bad("--access-rm", why);
  if (given("--status")) {
    portal::DomainStatus status;
    if (!portal::parse_status(args.status, &status, &why)) bad("--status", why);
    c.status = status;
  }
  return c;
}

void apply(const Change& c, portal::Domain& d) {
  if (c.brand) d.brand = *c.brand;
  if (c.customer_signup) d.customer_signup = *c.customer_signup;
  if (c.carrier_signup) d.carrier_signup = *c.carrier_signup;
  if (c.customer_limit_cents) d.customer_limit_cents = *c.customer_limit_cents;
  if (c.access) d.access = *c.access;
  if (c.status) d.status = *c.status;
  if (c.access_add.empty() && c.access_rm.empty()) return;
  std::vector<std::string> access = d.access;
  access.insert(access.end(), c.access_add.begin(), c.access_add.end());
  access.erase(std::remove_if(access.begin(), access.end(),
                              [&c](const std::string& name) {
                                return std::binary_search(c.access_rm.begin(), c.access_rm.end(),
                                                          name);
                              }),
               access.end());
  std::string why;
  if (!portal::normalise_access(&access, &why)) bad("--access-add", why);
  d.access = std::move(access);
}

}  // namespace portalctl
