// portalctl: the operator's CLI for nginx-portal, on top of the core library.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "errors.h"
#include "output.h"

namespace {

std::string default_data_dir() {
  const char* env = std::getenv("PORTAL_DATA");
  return env && *env ? env : "/var/lib/nginx-portal";
}

int report(const char* what, int status) {
  std::fprintf(stderr, "portalctl: %s\n", what);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace portalctl;
  CLI::App app("Manages the portal domains of nginx-portal and their certificates.",
               "portalctl");
  Globals g;
  g.data_dir = default_data_dir();
  app.add_option("--data", g.data_dir,
                 "data directory (default: $PORTAL_DATA, else /var/lib/nginx-portal)")
      ->type_name("DIR");
  app.add_flag("--json", g.json, "machine-readable output");
  app.require_subcommand(1);
  app.fallthrough();  // --data and --json are accepted after the command too
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "portalctl: " + std::string(e.what()) + "\nRun portalctl --help for usage.\n";
  });

  Action run;
  add_init_command(app, g, run);
  add_domain_commands(app, g, run);
  add_transfer_commands(app, g, run);
  add_cert_commands(app, g, run);
  add_acme_commands(app, g, run);
  add_status_command(app, g, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help is no error
  }

  try {
    run();
    finish_output();
    return kExitOk;
  } catch (const UsageError& e) {
    return report(e.what(), kExitUsage);
  } catch (const std::invalid_argument& e) {  // a record the core refuses to write
    return report(e.what(), kExitUsage);
  } catch (const std::exception& e) {
    return report(e.what(), kExitFailure);
  }
}
