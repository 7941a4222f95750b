// portalctl import|export: the whole snapshot as one JSON document, in one transaction.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include "commands.h"
#include "errors.h"
#include "json_io.h"
#include "output.h"
#include "store/snapshot.h"
#include "util/text.h"

namespace portalctl {

namespace {

struct TransferArgs {
  std::string file;
  bool replace = false;
};

struct ImportCounts {
  size_t added = 0, updated = 0, removed = 0;
};

std::vector<ImportEntry> read_file(const std::string& file) {
  bool use_stdin = file == "-";
  std::FILE* in = use_stdin ? stdin : std::fopen(file.c_str(), "rb");
  if (!in)
    throw std::runtime_error("cannot open " + portal::quoted(file) + ": " + std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(use_stdin ? nullptr : in, &std::fclose);
  std::string name = use_stdin ? "<stdin>" : file;
  std::vector<ImportEntry> entries = read_import(in, name, std::time(nullptr));
  // A read error looks like the end of the file to the parser: do not take it for one.
  if (std::ferror(in)) throw std::runtime_error("cannot read " + portal::quoted(name));
  return entries;
}

// The entries in key order, as LMDB stores them; a host named twice is an error, even in two
// spellings. Sorts small handles, not the entries: a million of them move and compare faster.
std::vector<ImportEntry*> sort_unique(std::vector<ImportEntry>& entries) {
  struct Handle {
    std::string_view host;
    ImportEntry* entry;
  };
  std::vector<Handle> handles;
  handles.reserve(entries.size());
  for (ImportEntry& e : entries) handles.push_back({e.domain.host, &e});
  std::sort(handles.begin(), handles.end(), [](const Handle& a, const Handle& b) {
    int c = a.host.compare(b.host);
    return c != 0 ? c < 0 : a.entry->index < b.entry->index;
  });
  auto dup = std::adjacent_find(handles.begin(), handles.end(),
                                [](const Handle& a, const Handle& b) { return a.host == b.host; });
  if (dup != handles.end()) {
    throw UsageError("domains[" + std::to_string(dup[1].entry->index) + "].host: duplicate host " +
                     portal::quoted(dup->host) + " (also domains[" +
                     std::to_string(dup->entry->index) + "])");
  }
  std::vector<ImportEntry*> sorted;
  sorted.reserve(handles.size());
  for (const Handle& h : handles) sorted.push_back(h.entry);
  return sorted;
}

// Runs inside the write transaction, so it must give the same result if the store runs it
// again (after growing the map): it only ever sets created from the unchanged old data.
ImportCounts load(portal::SnapshotTxn& tx, const std::vector<ImportEntry*>& sorted, bool replace) {
  ImportCounts n;
  size_t before = tx.count();
  if (before) {
    for (ImportEntry* e : sorted) {
      std::optional<portal::Domain> old = tx.get(e->domain.host);
      if (old && !e->has_created) e->domain.created = old->created;
      (old ? n.updated : n.added)++;
    }
  } else {
    n.added = sorted.size();
  }
  if (replace && before) {
    tx.clear();
    n.removed = before - n.updated;
  }
  // Into an empty database, sorted keys are appended: full pages instead of half-split ones.
  bool append = replace || !before;
  for (const ImportEntry* e : sorted) append ? tx.put_append(e->domain) : tx.put(e->domain);
  return n;
}

void import(const Globals& g, const TransferArgs& a) {
  std::vector<ImportEntry> entries = read_file(a.file);
  std::vector<ImportEntry*> sorted = sort_unique(entries);
  portal::SnapshotStore store(g.data_dir, true);
  ImportCounts n;
  store.write([&](portal::SnapshotTxn& tx) { n = load(tx, sorted, a.replace); });
  if (g.json) {
    nlohmann::ordered_json j = {{"imported", entries.size()},
                                {"added", n.added},
                                {"updated", n.updated},
                                {"removed", n.removed}};
    out(j.dump() + "\n");
  } else {
    out("imported " + std::to_string(entries.size()) +
        " portal domains: " + std::to_string(n.added) + " added, " + std::to_string(n.updated) +
        " updated, " + std::to_string(n.removed) + " removed\n");
  }
}

// Streams, one line per domain, in one read transaction: a consistent copy of the snapshot.
void export_all(const Globals& g) {
  portal::SnapshotStore store(g.data_dir, false);
  MalformedRecords malformed;
  store.read([&](const portal::SnapshotTxn& tx) {
    out("{\"domains\":");
    out_domains_json(tx, malformed);
    out("}\n");
  });
  malformed.check();
}

}  // namespace

void add_transfer_commands(CLI::App& app, const Globals& g, Action& run) {
  auto args = std::make_shared<TransferArgs>();
  CLI::App* imp = app.add_subcommand(
      "import", "add or update the portal domains of a JSON file, all in one transaction");
  imp->add_option("FILE", args->file, "the JSON file, or - for standard input")
      ->type_name("")
      ->required();
  imp->add_flag("--replace", args->replace,
                "make the snapshot exactly the file: remove the domains it does not list");
  imp->callback([&g, &run, args] { run = [&g, args] { import(g, *args); }; });

  CLI::App* exp =
      app.add_subcommand("export", "write every portal domain as JSON to standard output");
  exp->callback([&g, &run] { run = [&g] { export_all(g); }; });
}

}  // namespace portalctl
