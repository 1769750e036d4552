// Application: process lifecycle — config, logging, pid file, control thread, workers,
// signals (SIGTERM smart stop, SIGINT/SIGQUIT fast stop, SIGHUP reload).
#pragma once

#include <string>

namespace pgpilot::app {

struct Options {
  std::string config_file;
  bool check_only = false;
  bool debug = false;
  std::string stop_mode;  // non-empty: "stop" subcommand with this mode
};

// Runs pgpilot in the foreground until it is told to stop. Returns the exit code.
int run(const Options& opts);

}  // namespace pgpilot::app
