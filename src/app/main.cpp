// pgpilot: high-availability router and connection pooler for PostgreSQL clusters.
#include <CLI/CLI.hpp>

#include "app/app.h"

int main(int argc, char** argv) {
  CLI::App cli{"pgpilot: high-availability router and connection pooler for PostgreSQL"};
  pgpilot::app::Options opts;
  bool foreground = true;
  std::string mode = "smart";
  cli.add_option("-f,--config-file", opts.config_file, "configuration file")->required();
  cli.add_flag("-n,--no-daemon", foreground,
               "run in the foreground (always; for pgpool compatibility)");
  cli.add_flag("--check", opts.check_only, "validate the configuration file and exit");
  cli.add_flag("-d,--debug", opts.debug, "log at debug1");
  cli.add_option("-m,--mode", mode, "shutdown mode for the stop command: smart or fast")
      ->check(CLI::IsMember({"smart", "s", "fast", "f", "immediate", "i"}));
  auto* stop = cli.add_subcommand("stop", "stop the running pgpilot named by the pid file");
  // Options may follow the subcommand, as in pgpool's `pgpool -f FILE stop -m fast`.
  stop->fallthrough();
  CLI11_PARSE(cli, argc, argv);
  if (stop->parsed()) opts.stop_mode = mode;
  return pgpilot::app::run(opts);
}
