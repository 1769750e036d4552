#include "app/app_control.h"

#include <gtest/gtest.h>

namespace pgpilot::app {
namespace {

using cluster::Command;
using cluster::CommandKind;
using cluster::CommandResult;

// Runs one command through AppControl on a local io_context and returns its result.
struct Fixture {
  asio::io_context ctx;
  session::Shared shared;
  cluster::ClusterState cluster;
  int reloads = 0;
  std::string reload_by;
  int shutdowns = 0;
  bool fast = false;
  AppControl control{ctx, shared, cluster,
                     AppControl::Hooks{.reload =
                                           [this](const std::string& by) {
                                             ++reloads;
                                             reload_by = by;
                                             return CommandResult{.ok = true, .message = "done"};
                                           },
                                       .shutdown =
                                           [this](bool f) {
                                             ++shutdowns;
                                             fast = f;
                                           }}};

  CommandResult run(Command cmd) {
    CommandResult out;
    control.submit(std::move(cmd), [&out](CommandResult r) { out = std::move(r); });
    ctx.run();
    ctx.restart();
    return out;
  }
};

TEST(AppControl, PauseAndResumeSetTheHoldFlagAndRecordEvents) {
  Fixture f;
  auto r = f.run({.kind = CommandKind::kPause, .source = "test"});
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(f.shared.hold_new_statements.load());
  r = f.run({.kind = CommandKind::kPause});
  EXPECT_TRUE(r.ok);
  EXPECT_NE(r.message.find("already paused"), std::string::npos);
  r = f.run({.kind = CommandKind::kResume});
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(f.shared.hold_new_statements.load());
  auto events = f.cluster.events().snapshot();
  ASSERT_EQ(events.size(), 2u);  // the second PAUSE changed nothing
  EXPECT_EQ(events[0].kind, "pause");
  EXPECT_NE(events[0].message.find("requested by test"), std::string::npos);
  EXPECT_EQ(events[1].kind, "resume");
}

TEST(AppControl, ReloadCallsTheHook) {
  Fixture f;
  auto r = f.run({.kind = CommandKind::kReload, .source = "sql (me@here)"});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.message, "done");
  EXPECT_EQ(f.reloads, 1);
  EXPECT_EQ(f.reload_by, " (requested by sql (me@here))");
}

TEST(AppControl, NodeCommandsWaitForTheFailoverController) {
  Fixture f;
  auto r = f.run({.kind = CommandKind::kDetach, .node = 1});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.sqlstate, "0A000");
  EXPECT_EQ(r.message, "node commands are not available");

  struct Fake : cluster::Control {
    Command last;
    void submit(Command cmd, cluster::CommandCallback done) override {
      last = cmd;
      done({.ok = true, .message = "detached"});
    }
  } fake;
  f.control.setNodeControl(&fake);
  r = f.run({.kind = CommandKind::kDetach, .node = 1});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.message, "detached");
  EXPECT_EQ(fake.last.kind, CommandKind::kDetach);
  EXPECT_EQ(fake.last.node, 1);
}

TEST(AppControl, ShutdownAnswersFirstThenStops) {
  Fixture f;
  auto r = f.run({.kind = CommandKind::kShutdown, .mode = "fast"});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(f.shutdowns, 1);  // ctx.run() also ran the short delay timer
  EXPECT_TRUE(f.fast);
  r = f.run({.kind = CommandKind::kShutdown, .mode = "slow"});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(f.shutdowns, 1);
}

}  // namespace
}  // namespace pgpilot::app
