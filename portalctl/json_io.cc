#include "json_io.h"

#include <nlohmann/json.hpp>

#include <array>
#include <string_view>

#include "errors.h"
#include "host/idn.h"
#include "iso_time.h"
#include "util/text.h"

namespace portalctl {

namespace {

using json = nlohmann::json;

enum Field {
  kHost,
  kBrand,
  kCustomerSignup,
  kCarrierSignup,
  kCustomerLimit,
  kAccess,
  kStatus,
  kCreated,
  kUpdated,
  kFieldCount
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "host",   "brand",  "customer_signup", "carrier_signup", "customer_limit",
    "access", "status", "created",         "updated"};

// A JSON value as the messages show it.
struct Value {
  enum Kind { null, boolean, number, string, object, array };
  Value(Kind k, std::string_view t = {}, bool f = false) : kind(k), text(t), flag(f) {}

  Kind kind;
  std::string_view text;  // the string, or the number as written
  bool flag;

  std::string describe() const {
    switch (kind) {
      case null: return "null";
      case boolean: return flag ? "true" : "false";
      case number: return std::string(text);
      case string: return portal::quoted(text);
      case object: return "an object";
      case array: return "an array";
    }
    return {};
  }
};

// Turns nlohmann's SAX events into checked entries; stops at the first error (in error).
class ImportSax : public nlohmann::json_sax<json> {
 public:
  ImportSax(std::vector<ImportEntry>& entries, const std::string& name, int64_t now)
      : entries_(entries), name_(name), now_(now) {}

  std::string error;

  bool null() override { return value({Value::null}); }
  bool boolean(bool v) override { return value({Value::boolean, {}, v}); }
  bool number_integer(number_integer_t v) override { return number(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(std::to_string(v)); }
  // The text as written, so that 0.1 is never read back through a binary fraction.
  bool number_float(number_float_t, const string_t& s) override { return number(s); }
  bool string(string_t& s) override { return value({Value::string, s}); }
  bool binary(binary_t&) override { return fail("", "binary values are not JSON"); }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::start: state_ = State::top; return true;
      case State::domains:
        entries_.emplace_back();
        entries_.back().index = entries_.size() - 1;
        seen_ = 0;
        state_ = State::entry;
        return true;
      default: return value({Value::object});
    }
  }

  bool key(string_t& k) override {
    if (state_ == State::top) {
      if (k != "domains")
        return fail("", "unknown key " + portal::quoted(k) + " (expected \"domains\")");
      if (has_domains_) return fail("", "duplicate key \"domains\"");
      has_domains_ = true;
      state_ = State::domains_value;
      return true;
    }
    size_t f = 0;
    while (f < kFieldCount && kFieldNames[f] != k) f++;
    if (f == kFieldCount) return fail(entry_path(), "unknown key " + portal::quoted(k));
    if (seen_ & (1u << f)) return fail(entry_path(), "duplicate key " + portal::quoted(k));
    seen_ |= 1u << f;
    field_ = static_cast<Field>(f);
    state_ = State::field_value;
    return true;
  }

  bool end_object() override {
    if (state_ == State::top) {
      if (!has_domains_) return fail("", "missing key \"domains\"");
      state_ = State::done;
      return true;
    }
    state_ = State::domains;
    return finish_entry();
  }

  bool start_array(std::size_t) override {
    if (state_ == State::domains_value) {
      state_ = State::domains;
      return true;
    }
    if (state_ == State::field_value && field_ == kAccess) {
      state_ = State::access;
      return true;
    }
    return value({Value::array});
  }

  bool end_array() override {
    if (state_ == State::domains) {
      state_ = State::top;
      return true;
    }
    state_ = State::entry;  // the end of "access"
    auto& access = entries_.back().domain.access;
    std::string why;
    return portal::normalise_access(&access, &why) || fail(field_path(), why);
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string_view what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
    size_t cut = what.find("] ");
    if (cut != std::string_view::npos) what.remove_prefix(cut + 2);
    error = "malformed JSON in " + portal::quoted(name_) + ": " + std::string(what);
    return false;
  }

 private:
  enum class State { start, top, domains_value, domains, entry, field_value, access, done };

  std::string entry_path() const { return "domains[" + std::to_string(entries_.size() - 1) + "]"; }
  std::string field_path() const { return entry_path() + "." + std::string(kFieldNames[field_]); }

  bool fail(const std::string& path, const std::string& why) {
    error = path.empty() ? why : path + ": " + why;
    return false;
  }

  bool number(const std::string& text) { return value({Value::number, text}); }

  bool value(const Value& v) {
    switch (state_) {
      case State::field_value: state_ = State::entry; return field(v);
      case State::access:
        if (v.kind != Value::string)
          return fail(field_path(), "sections must be strings, not " + v.describe());
        entries_.back().domain.access.emplace_back(v.text);
        return true;
      case State::domains_value: return fail("domains", "must be an array, not " + v.describe());
      case State::domains:
        return fail("domains[" + std::to_string(entries_.size()) + "]",
                    "must be an object, not " + v.describe());
      default:
        return fail("", "the document must be an object {\"domains\": [...]}, not " + v.describe());
    }
  }

  bool field(const Value& v) {
    portal::Domain& d = entries_.back().domain;
    std::string why;
    auto want = [&](Value::Kind kind, const char* what) {
      if (v.kind != kind) why = std::string("must be ") + what + ", not " + v.describe();
      return v.kind == kind;
    };
    bool ok = false;
    switch (field_) {
      case kHost:
        ok = want(Value::string, "a string") && portal::host_from_input(v.text, d.host, &why);
        break;
      case kBrand:
        ok = want(Value::string, "a string") && portal::valid_brand(v.text, &why);
        if (ok) d.brand.assign(v.text);
        break;
      case kCustomerSignup:
        ok = want(Value::boolean, "true or false");
        d.customer_signup = v.flag;
        break;
      case kCarrierSignup:
        ok = want(Value::boolean, "true or false");
        d.carrier_signup = v.flag;
        break;
      case kCustomerLimit:
        // A number is read from its text as written, like a string.
        ok = (v.kind == Value::number || want(Value::string, "an amount")) &&
             portal::parse_limit(v.text, &d.customer_limit_cents, &why);
        break;
      case kAccess: why = "must be an array of section names, not " + v.describe(); break;
      case kStatus:
        ok = want(Value::string, "a string") && portal::parse_status(v.text, &d.status, &why);
        break;
      case kCreated:
        ok = want(Value::string, "a string") && parse_time(v.text, &d.created, &why);
        break;
      case kUpdated:
        ok = want(Value::string, "a string") && parse_time(v.text, &d.updated, &why);
        break;
      case kFieldCount: break;
    }
    return ok || fail(field_path(), why);
  }

  bool finish_entry() {
    ImportEntry& e = entries_.back();
    for (Field f : {kHost, kBrand}) {
      if (!(seen_ & (1u << f)))
        return fail(entry_path(), "missing key \"" + std::string(kFieldNames[f]) + "\"");
    }
    e.has_created = seen_ & (1u << kCreated);
    if (!e.has_created) e.domain.created = now_;
    if (!(seen_ & (1u << kUpdated))) e.domain.updated = now_;
    std::string why;
    return portal::validate(e.domain, &why) || fail(entry_path(), why);
  }

  std::vector<ImportEntry>& entries_;
  const std::string& name_;
  int64_t now_;
  State state_ = State::start;
  bool has_domains_ = false;
  Field field_ = kHost;
  unsigned seen_ = 0;  // bit per Field met in the current entry
};

}  // namespace

std::vector<ImportEntry> read_import(std::FILE* in, const std::string& name, int64_t now) {
  std::vector<ImportEntry> entries;
  ImportSax sax(entries, name, now);
  if (!json::sax_parse(in, &sax)) throw UsageError(sax.error);
  return entries;
}

std::string domain_json(const portal::Domain& d, int indent) {
  nlohmann::ordered_json j;
  j["host"] = d.host;
  j["brand"] = d.brand;
  j["customer_signup"] = d.customer_signup;
  j["carrier_signup"] = d.carrier_signup;
  j["customer_limit"] = portal::format_limit(d.customer_limit_cents);
  j["access"] = d.access;
  j["status"] = portal::status_name(d.status);
  j["created"] = format_time(d.created);
  j["updated"] = format_time(d.updated);
  return j.dump(indent);
}

}  // namespace portalctl
