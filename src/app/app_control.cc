#include "app/app_control.h"

#include <fmt/format.h>

#include "common/log.h"

namespace pgpilot::app {

using cluster::CommandKind;
using cluster::CommandResult;

namespace {

// The shutdown starts a little after the answer is on its way, so the client that asked
// (pgpilotctl stop) reads "SHUTDOWN" instead of a closed connection.
constexpr auto kShutdownDelay = std::chrono::milliseconds(100);

std::string by(const cluster::Command& cmd) {
  return cmd.source.empty() ? std::string() : fmt::format(" (requested by {})", cmd.source);
}

}  // namespace

AppControl::AppControl(asio::io_context& control, session::Shared& shared,
                       cluster::ClusterState& cluster, Hooks hooks)
    : control_(control), shared_(shared), cluster_(cluster), hooks_(std::move(hooks)) {}

void AppControl::submit(cluster::Command cmd, cluster::CommandCallback done) {
  asio::post(control_, [this, cmd = std::move(cmd), done = std::move(done)]() mutable {
    run(std::move(cmd), std::move(done));
  });
}

void AppControl::run(cluster::Command cmd, cluster::CommandCallback done) {
  switch (cmd.kind) {
    case CommandKind::kAttach:
    case CommandKind::kDetach:
    case CommandKind::kPromote:
    case CommandKind::kSwitchover:
      if (node_control_ == nullptr) {
        done(CommandResult{
            .ok = false, .message = "node commands are not available", .sqlstate = "0A000"});
        return;
      }
      node_control_->submit(std::move(cmd), std::move(done));
      return;
    case CommandKind::kReload: {
      CommandResult r = hooks_.reload ? hooks_.reload(by(cmd))
                                      : CommandResult{.ok = false, .message = "reload unavailable"};
      done(std::move(r));
      return;
    }
    case CommandKind::kPause: {
      const bool was = shared_.hold_new_statements.exchange(true);
      std::string msg = was ? "already paused: new statements are held"
                            : "paused: new statements are held until RESUME";
      if (!was) cluster_.events().add("pause", -1, msg + by(cmd));
      done(CommandResult{.ok = true, .message = std::move(msg)});
      return;
    }
    case CommandKind::kResume: {
      const bool was = shared_.hold_new_statements.exchange(false);
      std::string msg = was ? "resumed: held statements go on" : "not paused";
      if (was) cluster_.events().add("resume", -1, msg + by(cmd));
      done(CommandResult{.ok = true, .message = std::move(msg)});
      return;
    }
    case CommandKind::kShutdown: {
      const bool fast = cmd.mode == "fast";
      if (!fast && !cmd.mode.empty() && cmd.mode != "smart") {
        done(CommandResult{.ok = false,
                           .message = fmt::format("unknown shutdown mode \"{}\"", cmd.mode),
                           .sqlstate = "22023"});
        return;
      }
      cluster_.events().add("shutdown", -1,
                            fmt::format("{} shutdown{}", fast ? "fast" : "smart", by(cmd)));
      done(CommandResult{.ok = true,
                         .message = fmt::format("{} shutdown started", fast ? "fast" : "smart")});
      auto t = std::make_shared<asio::steady_timer>(control_, kShutdownDelay);
      t->async_wait([this, t, fast](std::error_code) {
        if (hooks_.shutdown) hooks_.shutdown(fast);
      });
      return;
    }
  }
  done(CommandResult{.ok = false, .message = "unknown command", .sqlstate = "0A000"});
}

}  // namespace pgpilot::app
