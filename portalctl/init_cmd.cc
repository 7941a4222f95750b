// portalctl init: the data directory, an empty snapshot and an empty state store, owned by
// the nginx workers' user.
#include <CLI/CLI.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "commands.h"
#include "errors.h"
#include "store/snapshot.h"
#include "store/state.h"
#include "util/text.h"

namespace portalctl {

namespace {

struct Owner {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);  // -1: chown(2) leaves it as it is
};

bool parse_id(const std::string& text, unsigned long* id) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  *id = std::stoul(text);
  return true;
}

// "USER[:GROUP]", names or numbers; without a group, the user's own group.
Owner parse_owner(const std::string& text) {
  Owner o;
  size_t colon = text.find(':');
  std::string user = text.substr(0, colon);
  unsigned long id;
  if (const struct passwd* pw = getpwnam(user.c_str())) {
    o.uid = pw->pw_uid;
    o.gid = pw->pw_gid;
  } else if (parse_id(user, &id)) {
    o.uid = static_cast<uid_t>(id);
  } else {
    throw UsageError("--owner: unknown user " + portal::quoted(user));
  }
  if (colon == std::string::npos) return o;
  std::string group = text.substr(colon + 1);
  if (const struct group* gr = getgrnam(group.c_str())) {
    o.gid = gr->gr_gid;
  } else if (parse_id(group, &id)) {
    o.gid = static_cast<gid_t>(id);
  } else {
    throw UsageError("--owner: unknown group " + portal::quoted(group));
  }
  return o;
}

void init(const Globals& g, const std::string& owner_arg) {
  if (!owner_arg.empty()) {
    Owner o = parse_owner(owner_arg);
    const std::string& dir = g.data_dir;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create data directory " + portal::quoted(dir) + ": " +
                               std::strerror(errno));
    // First, so that the store makes the files it creates owned like the directory.
    if (chown(dir.c_str(), o.uid, o.gid) != 0)
      throw std::runtime_error("cannot chown " + portal::quoted(dir) + ": " + std::strerror(errno));
  }
  portal::SnapshotStore snapshot(g.data_dir, true);
  portal::StateStore state(g.data_dir, true);
}

}  // namespace

void add_init_command(CLI::App& app, const Globals& g, Action& run) {
  auto owner = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "init", "create the data directory, an empty snapshot and an empty state store");
  cmd->add_option("--owner", *owner,
                  "the user the nginx workers run as: the data directory and its files "
                  "are made theirs")
      ->type_name("USER[:GROUP]");
  cmd->callback([&g, &run, owner] { run = [&g, owner] { init(g, *owner); }; });
}

}  // namespace portalctl
