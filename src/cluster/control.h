// Control: the one door through which operators act on pgpilot.
//
// Purpose: the admin console (SQL on the normal and admin ports), pgpilotctl (through the
// admin port) and the HTTP API all turn an operator's request into a Command and submit
// it here. The implementation (app/) runs it on the control thread: node commands go to
// the failover controller, reload/pause/resume/shutdown to the application.
// Thread-safety: submit() may be called from any thread; `done` runs on the control
// thread — use asyncSubmit() from a coroutine to get the result back on your own executor.
//
//   auto r = co_await cluster::asyncSubmit(control, {.kind = CommandKind::kDetach, .node = 1},
//                                          net::kUseAwaitable);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include <asio.hpp>

namespace pgpilot::cluster {

enum class CommandKind {
  kAttach,      // node: put a detached node back into use
  kDetach,      // node: take a node out of use (a detached primary triggers failover)
  kPromote,     // node: make it the primary (failover to it); force: even if it may lack
                // acknowledged synchronous commits
  kSwitchover,  // node: planned switchover to it (hold, catch up, promote, demote old)
  kReload,      // re-read the configuration file
  kPause,       // hold new statements
  kResume,      // release held statements
  kShutdown,    // mode: "smart" or "fast"
};

std::string_view commandName(CommandKind k);

struct Command {
  CommandKind kind = CommandKind::kReload;
  int node = -1;
  bool force = false;
  std::string mode;    // kShutdown: smart | fast
  std::string source;  // who asked: "admin port", "sql", "http", "signal" (for the event log)
};

struct CommandResult {
  bool ok = false;
  std::string message;   // human words; for errors the reason
  std::string sqlstate;  // optional, for errors: what the admin console reports (else 55000)
};

using CommandCallback = std::function<void(CommandResult)>;

class Control {
 public:
  virtual ~Control() = default;
  virtual void submit(Command cmd, CommandCallback done) = 0;
};

// Submits and completes on the caller's executor (e.g. co_await with net::kUseAwaitable,
// which yields std::tuple<CommandResult>).
template <typename Token>
auto asyncSubmit(Control& control, Command cmd, Token&& token) {
  return asio::async_initiate<Token, void(CommandResult)>(
      [&control](auto handler, Command c) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        control.submit(std::move(c), [ex, h](CommandResult r) {
          asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        });
      },
      token, std::move(cmd));
}

}  // namespace pgpilot::cluster
