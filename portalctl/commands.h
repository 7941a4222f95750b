// The commands of portalctl: each registers its options on the parser, and its callback
// sets the action main runs once the whole command line has been parsed.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace portalctl {

// Options every command shares.
struct Globals {
  std::string data_dir;
  bool json = false;
};

using Action = std::function<void()>;

void add_init_command(CLI::App& app, const Globals& g, Action& run);
void add_domain_commands(CLI::App& app, const Globals& g, Action& run);
void add_transfer_commands(CLI::App& app, const Globals& g, Action& run);
void add_cert_commands(CLI::App& app, const Globals& g, Action& run);
void add_acme_commands(CLI::App& app, const Globals& g, Action& run);
void add_status_command(CLI::App& app, const Globals& g, Action& run);

}  // namespace portalctl
