// portalctl cert import|show|list|rm: the certificates an operator brings, in the state store.
// A private key is read, checked and stored, and never printed.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <cstdlib>
#include <map>
#include <memory>

#include "commands.h"
#include "errors.h"
#include "host/idn.h"
#include "iso_time.h"
#include "output.h"
#include "store/snapshot.h"
#include "store/state.h"
#include "tls/pem.h"
#include "util/text.h"

namespace portalctl {

namespace {

// A chain of 8 certificates is far below this; anything bigger is not a PEM file.
constexpr size_t kMaxPemSize = size_t(1) << 20;

struct CertArgs {
  std::string host;
  std::string cert_file;
  std::string key_file;
  std::string type;
};

std::string input_host(const std::string& text) {
  std::string host, why;
  if (!portal::host_from_input(text, host, &why)) throw UsageError("HOST: " + why);
  return host;
}

bool parse_key_type(const std::string& text, portal::KeyType* type) {
  if (text == "ecdsa") { *type = portal::KeyType::ecdsa; return true; }
  if (text == "rsa") { *type = portal::KeyType::rsa; return true; }
  return false;
}

// The whole file; bad input (exit 2) when it cannot be read, since nothing has been written.
std::string read_pem(const char* option, const std::string& file, const std::string& where = "") {
  auto fail = [&](const std::string& why) {
    throw UsageError(where + option + ": cannot read " + portal::quoted(file) + ": " + why);
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!in) fail(std::strerror(errno));
  std::string text;
  char buf[16384];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, in.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxPemSize) fail("larger than 1 MiB");
  }
  if (std::ferror(in.get())) fail(std::strerror(errno));
  OPENSSL_cleanse(buf, sizeof buf);
  return text;
}

// Whole days, rounded down: a certificate that expires in 23 hours has 0 days left.
int64_t days_left(int64_t not_after, int64_t now) {
  int64_t d = not_after - now;
  return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

[[noreturn]] void no_certificate(const std::string& host) {
  throw std::runtime_error("no certificate for " + portal::quoted(host));
}

portal::CertInfo info_of(const std::string& host, const portal::CertPair& pair) {
  portal::CertInfo info;
  std::string why;
  if (!portal::describe(pair, &info, &why)) {
    throw std::runtime_error("the " + std::string(portal::key_type_name(pair.type)) +
                             " certificate of " + portal::quoted(host) + " is damaged: " + why);
  }
  return info;
}

std::vector<std::string> split_names(const std::string& sans) {
  std::vector<std::string> names;
  for (size_t at = 0; !sans.empty();) {
    size_t comma = sans.find(',', at);
    names.push_back(sans.substr(at, comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return names;
}

// The operator may add the portal domain after its certificate, so this only warns.
void warn_unless_portal_domain(const Globals& g, const std::string& host) {
  bool known = false;
  if (portal::SnapshotStore::exists(g.data_dir)) {
    portal::SnapshotStore snapshot(g.data_dir, false);
    snapshot.read([&](const portal::SnapshotTxn& tx) { known = tx.get(host).has_value(); });
  }
  if (!known) {
    std::fprintf(stderr,
                 "portalctl: warning: %s is not a portal domain: its certificate is stored all "
                 "the same, and used once the domain is added\n",
                 portal::quoted(host).c_str());
  }
}

// Reads and checks one certificate and its key for host; bad input throws UsageError, with
// where (a line of a list) in front of the message.
portal::CertPair load_checked(const std::string& host, const std::string& cert_file,
                              const std::string& key_file, const std::string& where = "") {
  std::string cert_pem = read_pem("--cert", cert_file, where);
  std::string key_pem = read_pem("--key", key_file, where);
  portal::CertPair pair;
  std::string why;
  bool ok = portal::load_pair(host, cert_pem, key_pem, "--cert " + portal::quoted(cert_file),
                              "--key " + portal::quoted(key_file), &pair, &why);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!ok) throw UsageError(where + why);
  return pair;
}

// Stores an imported pair in host's record: one pair per key type, so the other type's
// imported pair stays; an import takes a record over from ACME whole, so that no ACME pair is
// left without its renewals. Returns the new generation.
uint64_t store_imported(portal::StateTxn& tx, const std::string& host,
                        const portal::CertPair& pair, int64_t now, bool* replaced_acme) {
  portal::CertRecord rec;
  std::optional<portal::CertRecord> old = tx.get_cert(host);
  *replaced_acme = old && old->source == portal::CertSource::acme;
  if (old && !*replaced_acme) {
    for (const portal::CertPair& p : old->pairs) {
      if (p.type != pair.type) rec.pairs.push_back(p);
    }
  }
  rec.pairs.push_back(pair);
  rec.source = portal::CertSource::imported;
  rec.updated = now;
  return tx.put_cert(host, std::move(rec));
}

void cert_import(const Globals& g, const CertArgs& a) {
  std::string host = input_host(a.host);
  portal::CertPair pair = load_checked(host, a.cert_file, a.key_file);
  warn_unless_portal_domain(g, host);

  int64_t now = std::time(nullptr);
  uint64_t generation = 0;
  bool replaced_acme = false;
  portal::StateStore store(g.data_dir, true);
  // May run twice (the map grew): it derives everything from the transaction's data.
  store.write([&](portal::StateTxn& tx) {
    generation = store_imported(tx, host, pair, now, &replaced_acme);
  });
  OPENSSL_cleanse(pair.key_der.data(), pair.key_der.size());

  const char* type = portal::key_type_name(pair.type);
  if (g.json) {
    nlohmann::ordered_json j = {{"host", host},
                                {"key_type", type},
                                {"not_after", format_time(pair.not_after)},
                                {"days_left", days_left(pair.not_after, now)},
                                {"generation", generation}};
    out(j.dump() + "\n");
    return;
  }
  out("imported the " + std::string(type) + " certificate of " + host + ": not after " +
      format_time(pair.not_after) + " (" + std::to_string(days_left(pair.not_after, now)) +
      " days left), generation " + std::to_string(generation) +
      (replaced_acme ? "; it replaces the ACME certificates" : "") + "\n");
}

// cert import-list FILE: one "HOST CERT_FILE KEY_FILE" per line (blank lines and lines
// starting with # are skipped; a relative path is taken from the list's directory). Every
// pair is read and checked first; the first bad line stops everything (exit 2, its number
// and why); then all of them are stored in one transaction.
void cert_import_list(const Globals& g, const std::string& list_file) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(list_file.c_str(), "r"),
                                                     &std::fclose);
  if (!in) {
    throw UsageError("cannot read " + portal::quoted(list_file) + ": " + std::strerror(errno));
  }
  std::string dir;
  if (size_t slash = list_file.rfind('/'); slash != std::string::npos)
    dir = list_file.substr(0, slash + 1);
  auto path = [&](const std::string& p) { return p.empty() || p[0] == '/' ? p : dir + p; };

  struct Item {
    std::string host;
    portal::CertPair pair;
  };
  std::vector<Item> items;
  std::map<std::pair<std::string, int>, size_t> seen;  // (host, key type) -> line
  char* line = nullptr;
  size_t cap = 0;
  std::unique_ptr<char*, void (*)(char**)> free_line(&line, [](char** l) { std::free(*l); });
  size_t number = 0;
  for (ssize_t n; (n = getline(&line, &cap, in.get())) >= 0;) {
    number++;
    std::string where = list_file + ", line " + std::to_string(number) + ": ";
    std::vector<std::string> fields;
    std::string text(line, static_cast<size_t>(n));
    for (size_t at = 0;;) {
      at = text.find_first_not_of(" \t\r\n", at);
      if (at == std::string::npos) break;
      size_t end = text.find_first_of(" \t\r\n", at);
      fields.push_back(text.substr(at, end - at));
      if (end == std::string::npos) break;
      at = end;
    }
    if (fields.empty() || fields[0][0] == '#') continue;
    if (fields.size() != 3) throw UsageError(where + "expected HOST CERT_FILE KEY_FILE");
    std::string host;
    std::string why;
    if (!portal::host_from_input(fields[0], host, &why)) throw UsageError(where + "HOST: " + why);
    portal::CertPair pair = load_checked(host, path(fields[1]), path(fields[2]), where);
    auto [it, fresh] = seen.emplace(std::make_pair(host, static_cast<int>(pair.type)), number);
    if (!fresh) {
      OPENSSL_cleanse(pair.key_der.data(), pair.key_der.size());
      throw UsageError(where + "a second " + portal::key_type_name(pair.type) +
                       " certificate for " + portal::quoted(host) + " (line " +
                       std::to_string(it->second) + ")");
    }
    items.push_back(Item{std::move(host), std::move(pair)});
  }
  if (std::ferror(in.get())) {
    throw UsageError("cannot read " + portal::quoted(list_file) + ": " + std::strerror(errno));
  }

  int64_t now = std::time(nullptr);
  size_t replaced_acme = 0;
  portal::StateStore store(g.data_dir, true);
  store.write([&](portal::StateTxn& tx) {
    replaced_acme = 0;
    for (const Item& item : items) {
      bool replaced = false;
      store_imported(tx, item.host, item.pair, now, &replaced);
      replaced_acme += replaced;
    }
  });
  for (Item& item : items) OPENSSL_cleanse(item.pair.key_der.data(), item.pair.key_der.size());

  if (g.json) {
    nlohmann::ordered_json j = {{"imported", items.size()}, {"replaced_acme", replaced_acme}};
    out(j.dump() + "\n");
    return;
  }
  out("imported " + std::to_string(items.size()) + " certificates" +
      (replaced_acme ? "; " + std::to_string(replaced_acme) + " of them replace ACME ones" : "") +
      "\n");
}

void cert_show(const Globals& g, const std::string& host_arg) {
  std::string host = input_host(host_arg);
  portal::StateStore store(g.data_dir, false);
  int64_t now = std::time(nullptr);
  store.read([&](const portal::StateTxn& tx) {
    std::optional<portal::CertRecord> rec = tx.get_cert(host);
    if (!rec) no_certificate(host);
    if (g.json) {
      nlohmann::ordered_json pairs = nlohmann::ordered_json::array();
      for (const portal::CertPair& p : rec->pairs) {
        portal::CertInfo info = info_of(host, p);
        pairs.push_back({{"key_type", portal::key_type_name(p.type)},
                         {"subject", info.subject},
                         {"issuer", info.issuer},
                         {"serial", info.serial},
                         {"sans", split_names(info.sans)},
                         {"not_before", format_time(info.not_before)},
                         {"not_after", format_time(info.not_after)},
                         {"days_left", days_left(info.not_after, now)},
                         {"chain_length", p.chain_der.size()}});
      }
      nlohmann::ordered_json j = {{"host", host},
                                  {"source", portal::source_name(rec->source)},
                                  {"generation", rec->generation},
                                  {"updated", format_time(rec->updated)},
                                  {"pairs", pairs}};
      out(j.dump(2) + "\n");
      return;
    }
    std::string text = "host: " + host + "\nsource: " + portal::source_name(rec->source) +
                       "\ngeneration: " + std::to_string(rec->generation) +
                       "\nupdated: " + format_time(rec->updated) + "\n";
    for (const portal::CertPair& p : rec->pairs) {
      portal::CertInfo info = info_of(host, p);
      text += "\nkey_type: " + std::string(portal::key_type_name(p.type)) +
              "\nsubject: " + info.subject + "\nissuer: " + info.issuer +
              "\nserial: " + info.serial + "\nsans: " + (info.sans.empty() ? "-" : info.sans) +
              "\nnot_before: " + format_time(info.not_before) +
              "\nnot_after: " + format_time(info.not_after) +
              "\ndays_left: " + std::to_string(days_left(info.not_after, now)) +
              "\nchain_length: " + std::to_string(p.chain_der.size()) + "\n";
    }
    out(text);
  });
}

// Like domain list: fixed minimum widths, a longer value pushes the line right. The issuer
// (a distinguished name, with spaces) comes last.
std::string list_row(std::string_view host, std::string_view type, std::string_view not_after,
                     std::string_view days, std::string_view source, std::string_view issuer) {
  std::string s;
  auto cell = [&s](std::string_view v, size_t width) {
    s += v;
    s.append(v.size() < width ? width - v.size() + 1 : 1, ' ');
  };
  cell(host, 32);
  cell(type, 8);
  cell(not_after, 20);
  cell(days, 9);
  cell(source, 8);
  s += issuer;
  s += '\n';
  return s;
}

void cert_list(const Globals& g) {
  portal::StateStore store(g.data_dir, false);
  MalformedRecords malformed("certificate record of");
  int64_t now = std::time(nullptr);
  bool first = true;
  if (g.json) out("[");
  if (!g.json) out(list_row("host", "key_type", "not_after", "days_left", "source", "issuer"));
  store.read([&](const portal::StateTxn& tx) {
    tx.for_each_cert(
        [&](std::string_view host, const portal::CertRecord& rec) {
          for (const portal::CertPair& p : rec.pairs) {
            portal::CertInfo info;
            if (!portal::describe(p, &info, nullptr)) {
              malformed(host);
              continue;
            }
            int64_t days = days_left(info.not_after, now);
            if (g.json) {
              nlohmann::ordered_json j = {{"host", host},
                                          {"key_type", portal::key_type_name(p.type)},
                                          {"issuer", info.issuer},
                                          {"not_after", format_time(info.not_after)},
                                          {"days_left", days},
                                          {"source", portal::source_name(rec.source)},
                                          {"generation", rec.generation}};
              out(first ? "\n" : ",\n");
              out(j.dump());
              first = false;
            } else {
              out(list_row(host, portal::key_type_name(p.type), format_time(info.not_after),
                           std::to_string(days), portal::source_name(rec.source), info.issuer));
            }
          }
        },
        std::ref(malformed));
  });
  if (g.json) out(first ? "]\n" : "\n]\n");
  malformed.check();
}

void cert_rm(const Globals& g, const CertArgs& a) {
  std::string host = input_host(a.host);
  portal::KeyType type{};
  bool one_type = !a.type.empty();
  if (one_type && !parse_key_type(a.type, &type))
    throw UsageError("--type: invalid key type " + portal::quoted(a.type) +
                     ": must be ecdsa or rsa");
  portal::StateStore store(g.data_dir, false);
  store.write([&](portal::StateTxn& tx) {
    if (!one_type) {
      if (!tx.remove_cert(host)) no_certificate(host);  // a damaged record goes too
      return;
    }
    std::optional<portal::CertRecord> rec = tx.get_cert(host);
    if (!rec) no_certificate(host);
    auto it = std::find_if(rec->pairs.begin(), rec->pairs.end(),
                           [type](const portal::CertPair& p) { return p.type == type; });
    if (it == rec->pairs.end()) {
      throw std::runtime_error("no " + a.type + " certificate for " + portal::quoted(host));
    }
    rec->pairs.erase(it);
    if (rec->pairs.empty()) {
      tx.remove_cert(host);
    } else {
      rec->updated = std::time(nullptr);
      tx.put_cert(host, std::move(*rec));
    }
  });
}

}  // namespace

void add_cert_commands(CLI::App& app, const Globals& g, Action& run) {
  auto args = std::make_shared<CertArgs>();
  CLI::App* cert = app.add_subcommand(
      "cert", "import, show, list and remove the certificates of portal domains");
  cert->require_subcommand(1);
  auto with_host = [&args](CLI::App* cmd) {
    cmd->add_option("HOST", args->host, "the hostname (an IDN is stored as its A-label)")
        ->type_name("")
        ->required();
    return cmd;
  };

  CLI::App* imp = with_host(cert->add_subcommand(
      "import", "store a certificate and its private key for HOST (one per key type)"));
  imp->add_option("--cert", args->cert_file, "the certificate chain, PEM, leaf first")
      ->type_name("FILE")
      ->required();
  imp->add_option("--key", args->key_file, "its private key, PEM, unencrypted")
      ->type_name("FILE")
      ->required();
  imp->callback([&g, &run, args] { run = [&g, args] { cert_import(g, *args); }; });

  CLI::App* list_imp = cert->add_subcommand(
      "import-list", "store many certificates in one transaction: FILE has one "
                     "\"HOST CERT_FILE KEY_FILE\" per line");
  list_imp->add_option("FILE", args->cert_file, "the list (relative paths are from its directory)")
      ->type_name("")
      ->required();
  list_imp->callback([&g, &run, args] {
    run = [&g, args] { cert_import_list(g, args->cert_file); };
  });

  CLI::App* show = with_host(cert->add_subcommand("show", "show the certificates of HOST"));
  show->callback([&g, &run, args] { run = [&g, args] { cert_show(g, args->host); }; });

  CLI::App* list = cert->add_subcommand("list", "list every certificate, by hostname");
  list->callback([&g, &run] { run = [&g] { cert_list(g); }; });

  CLI::App* rm = with_host(cert->add_subcommand("rm", "remove the certificates of HOST"));
  rm->add_option("--type", args->type, "remove only the certificate of this key type")
      ->type_name("ecdsa|rsa");
  rm->callback([&g, &run, args] { run = [&g, args] { cert_rm(g, *args); }; });
}

}  // namespace portalctl
