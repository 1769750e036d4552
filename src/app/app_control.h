// AppControl: pgpilot's cluster::Control — where every operator command is carried out.
//
// Purpose: the admin console, pgpilotctl (through the admin port), the HTTP API and signals
// submit Commands here. They run on the control thread: RELOAD, PAUSE, RESUME and SHUTDOWN
// are handled by the application (the hooks), node commands (attach, detach, promote,
// switchover) are forwarded to the failover controller set with setNodeControl(); while
// there is none they are refused with "node commands are not available".
// Every command that changes something is recorded in ClusterState::events().
// Thread-safety: submit() from any thread; the hooks and `done` run on the control thread.
//
//   AppControl control(rt.control, rt.shared, rt.cluster,
//                      {.reload = [&] { return reloadConfig(rt); },
//                       .shutdown = [&](bool fast) { ... }});
//   rt.shared.control = &control;
#pragma once

#include <functional>

#include "cluster/control.h"
#include "session/shared.h"

namespace pgpilot::app {

class AppControl : public cluster::Control {
 public:
  struct Hooks {
    // Re-reads the configuration file; the result is the RELOAD answer. `requested_by`:
    // who asked, for the event log (" (requested by ...)" or empty).
    std::function<cluster::CommandResult(const std::string& requested_by)> reload;
    // Starts a shutdown (smart: wait for clients; fast: close them now).
    std::function<void(bool fast)> shutdown;
  };

  AppControl(asio::io_context& control, session::Shared& shared, cluster::ClusterState& cluster,
             Hooks hooks);

  // The failover controller, once it exists (control thread, or before commands arrive).
  void setNodeControl(cluster::Control* c) { node_control_ = c; }

  void submit(cluster::Command cmd, cluster::CommandCallback done) override;

 private:
  void run(cluster::Command cmd, cluster::CommandCallback done);

  asio::io_context& control_;
  session::Shared& shared_;
  cluster::ClusterState& cluster_;
  Hooks hooks_;
  cluster::Control* node_control_ = nullptr;
};

}  // namespace pgpilot::app
