// portalctl domain add|set|rm|show|list: one portal domain at a time, one transaction each.
#include <CLI/CLI.hpp>

#include <ctime>
#include <memory>

#include "commands.h"
#include "domain_fields.h"
#include "errors.h"
#include "host/idn.h"
#include "json_io.h"
#include "output.h"
#include "store/snapshot.h"
#include "util/text.h"

namespace portalctl {

namespace {

struct DomainArgs {
  std::string host;
  FieldArgs fields;
};

std::string input_host(const std::string& text) {
  std::string host, why;
  if (!portal::host_from_input(text, host, &why)) throw UsageError("HOST: " + why);
  return host;
}

[[noreturn]] void not_found(const std::string& host) {
  throw std::runtime_error("portal domain " + portal::quoted(host) + " not found");
}

void domain_add(const Globals& g, const std::string& host_arg, const Change& change) {
  portal::Domain d;
  d.host = input_host(host_arg);
  apply(change, d);
  d.created = d.updated = std::time(nullptr);
  std::string why;
  if (!portal::validate(d, &why)) throw UsageError(why);
  portal::SnapshotStore store(g.data_dir, true);
  store.write([&d](portal::SnapshotTxn& tx) {
    if (tx.get(d.host))
      throw std::runtime_error("portal domain " + portal::quoted(d.host) + " already exists");
    tx.put(d);
  });
}

void domain_set(const Globals& g, const std::string& host_arg, const Change& change) {
  std::string host = input_host(host_arg);
  if (change.empty()) throw UsageError("nothing to change: give at least one field option");
  portal::SnapshotStore store(g.data_dir, false);
  store.write([&](portal::SnapshotTxn& tx) {
    std::optional<portal::Domain> d = tx.get(host);
    if (!d) not_found(host);
    apply(change, *d);
    d->updated = std::time(nullptr);
    tx.put(*d);
  });
}

void domain_rm(const Globals& g, const std::string& host_arg) {
  std::string host = input_host(host_arg);
  portal::SnapshotStore store(g.data_dir, false);
  store.write([&host](portal::SnapshotTxn& tx) {
    if (!tx.remove(host)) not_found(host);
  });
}

void domain_show(const Globals& g, const std::string& host_arg) {
  std::string host = input_host(host_arg);
  portal::SnapshotStore store(g.data_dir, false);
  store.read([&](const portal::SnapshotTxn& tx) {
    std::optional<portal::Domain> d = tx.get(host);
    if (!d) not_found(host);
    out(g.json ? domain_json(*d, 2) + "\n" : domain_text(*d));
  });
}

// Streams: one record decoded and printed at a time, whatever the size of the snapshot.
void domain_list(const Globals& g) {
  portal::SnapshotStore store(g.data_dir, false);
  MalformedRecords malformed;
  store.read([&](const portal::SnapshotTxn& tx) {
    if (!g.json) {
      out(table_header());
      tx.for_each([](const portal::Domain& d) { out(table_row(d)); }, std::ref(malformed));
      return;
    }
    out_domains_json(tx, malformed);
    out("\n");
  });
  malformed.check();
}

}  // namespace

void add_domain_commands(CLI::App& app, const Globals& g, Action& run) {
  auto args = std::make_shared<DomainArgs>();
  CLI::App* domain = app.add_subcommand("domain", "add, change, remove and show portal domains");
  domain->require_subcommand(1);
  auto with_host = [&args](CLI::App* cmd) {
    cmd->add_option("HOST", args->host, "the hostname (an IDN is stored as its A-label)")
        ->type_name("")
        ->required();
    return cmd;
  };

  CLI::App* add = with_host(domain->add_subcommand("add", "add a portal domain"));
  add_field_options(*add, args->fields, false);
  add->get_option("--brand")->required();
  add->callback([&g, &run, args, add] {
    run = [&g, args, add] { domain_add(g, args->host, parse_change(*add, args->fields)); };
  });

  CLI::App* set = with_host(domain->add_subcommand("set", "change fields of a portal domain"));
  add_field_options(*set, args->fields, true);
  set->callback([&g, &run, args, set] {
    run = [&g, args, set] { domain_set(g, args->host, parse_change(*set, args->fields)); };
  });

  CLI::App* rm = with_host(domain->add_subcommand("rm", "remove a portal domain"));
  rm->callback([&g, &run, args] { run = [&g, args] { domain_rm(g, args->host); }; });

  CLI::App* show = with_host(domain->add_subcommand("show", "show one portal domain"));
  show->callback([&g, &run, args] { run = [&g, args] { domain_show(g, args->host); }; });

  CLI::App* list = domain->add_subcommand("list", "list every portal domain, by hostname");
  list->callback([&g, &run] { run = [&g] { domain_list(g); }; });
}

}  // namespace portalctl
