#include "cluster/failover_policy.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace pgpilot::cluster {
namespace {

Candidate cand(int id, uint64_t recv, uint64_t replay, bool allow = true) {
  Candidate c;
  c.id = id;
  c.receive_lsn = recv;
  c.replay_lsn = replay;
  c.allow_failover = allow;
  c.application_name = "node" + std::to_string(id);
  return c;
}

TEST(ChooseCandidate, LsnPicksHighestReceivedThenReplayedThenNodeOrder) {
  EXPECT_EQ(chooseCandidate("lsn", {cand(1, 100, 90), cand(2, 200, 10)}), 2);
  EXPECT_EQ(chooseCandidate("lsn", {cand(1, 200, 90), cand(2, 200, 150)}), 2);
  EXPECT_EQ(chooseCandidate("lsn", {cand(2, 200, 150), cand(1, 200, 150)}), 1);
}

TEST(ChooseCandidate, SkipsNodesThatDisallowFailover) {
  EXPECT_EQ(chooseCandidate("lsn", {cand(1, 100, 90), cand(2, 900, 900, false)}), 1);
  EXPECT_EQ(chooseCandidate("lsn", {cand(2, 900, 900, false)}), std::nullopt);
  EXPECT_EQ(chooseCandidate("lsn", {}), std::nullopt);
}

TEST(ChooseCandidate, SyncPriorityPrefersTheSynchronousStandby) {
  auto a = cand(1, 500, 500);
  auto b = cand(2, 100, 100);
  b.was_sync = true;
  b.sync_priority = 1;
  EXPECT_EQ(chooseCandidate("sync_priority", {a, b}), 2);
  EXPECT_EQ(chooseCandidate("lsn", {a, b}), 1);
  auto c = cand(3, 50, 50);
  c.was_sync = true;
  c.sync_priority = 2;
  EXPECT_EQ(chooseCandidate("sync_priority", {a, c, b}), 2);
  // Nobody synchronous: falls back to LSN order.
  EXPECT_EQ(chooseCandidate("sync_priority", {cand(1, 1, 1), cand(2, 9, 9)}), 2);
}

TEST(ChooseCandidate, NodeOrder) {
  EXPECT_EQ(chooseCandidate("node_order", {cand(3, 900, 900), cand(2, 1, 1)}), 2);
}

TEST(SyncNames, ParsesEveryForm) {
  auto a = parseSyncNames("FIRST 2 (s1, \"S2\", s3)");
  EXPECT_EQ(a.method, "FIRST");
  EXPECT_EQ(a.num_sync, 2);
  EXPECT_EQ(a.names, (std::vector<std::string>{"s1", "S2", "s3"}));
  auto b = parseSyncNames("any 1 (a,b)");
  EXPECT_EQ(b.method, "ANY");
  EXPECT_EQ(b.num_sync, 1);
  EXPECT_EQ(b.names.size(), 2U);
  auto c = parseSyncNames("2 (a, b)");
  EXPECT_EQ(c.method, "FIRST");
  EXPECT_EQ(c.num_sync, 2);
  auto d = parseSyncNames("a, b");
  EXPECT_EQ(d.num_sync, 1);
  EXPECT_EQ(d.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(parseSyncNames("").empty());
  EXPECT_TRUE(parseSyncNames("   ").empty());
  EXPECT_TRUE(syncNamesInclude(parseSyncNames("*"), "anything"));
  EXPECT_TRUE(syncNamesInclude(d, "A"));
  EXPECT_FALSE(syncNamesInclude(d, "c"));
}

TEST(SyncNames, FormatRoundTripsAndCapsNumSync) {
  auto a = parseSyncNames("ANY 2 (x, \"y\"\"z\")");
  EXPECT_EQ(a.names[1], "y\"z");
  EXPECT_EQ(formatSyncNames(a), "ANY 2 (\"x\", \"y\"\"z\")");
  EXPECT_EQ(parseSyncNames(formatSyncNames(a)).names, a.names);
  a.names = {"only"};
  EXPECT_EQ(formatSyncNames(a), "ANY 1 (\"only\")");
  a.names.clear();
  EXPECT_EQ(formatSyncNames(a), "");
}

TEST(PromotionIsSafe, FirstNeedsOneSurvivingSyncStandby) {
  const auto names = parseSyncNames("FIRST 1 (s1, s2)");
  EXPECT_TRUE(promotionIsSafe(names, {"s1"}, {"s1", "s2"}));
  EXPECT_FALSE(promotionIsSafe(names, {"s1"}, {"s2"}));
  EXPECT_TRUE(promotionIsSafe(names, {}, {"s2"}));  // nothing was synchronous
  EXPECT_FALSE(promotionIsSafe(names, {"s1"}, {}));
}

TEST(PromotionIsSafe, AnyNeedsEnoughQuorumMembers) {
  const auto names = parseSyncNames("ANY 2 (a, b, c)");
  // A commit was acknowledged by 2 of 3: any 2 survivors include one that has it.
  EXPECT_TRUE(promotionIsSafe(names, {"a", "b", "c"}, {"a", "b"}));
  EXPECT_FALSE(promotionIsSafe(names, {"a", "b", "c"}, {"c"}));
  const auto one = parseSyncNames("ANY 1 (a, b)");
  EXPECT_FALSE(promotionIsSafe(one, {"a", "b"}, {"a"}));
  EXPECT_TRUE(promotionIsSafe(one, {"a", "b"}, {"a", "b"}));
}

TEST(RepointConninfo, ReplacesHostAndPortKeepsTheRest) {
  auto r = repointConninfo(
      "user=repl passfile='/var/lib/pg/.pgpass' host=10.0.0.1 port=5432 sslmode=prefer "
      "application_name=node2",
      "127.0.0.1", 6543);
  ASSERT_TRUE(r) << r.error();
  EXPECT_NE(r->find("host='127.0.0.1'"), std::string::npos);
  EXPECT_NE(r->find("port='6543'"), std::string::npos);
  EXPECT_NE(r->find("user='repl'"), std::string::npos);
  EXPECT_NE(r->find("application_name='node2'"), std::string::npos);
  EXPECT_EQ(r->find("10.0.0.1"), std::string::npos);
  EXPECT_EQ(r->find("5432"), std::string::npos);
}

TEST(RepointConninfo, QuotesValuesAndRejectsGarbage) {
  auto r = repointConninfo("password='it''s' host=a", "h", 1);
  ASSERT_FALSE(r);  // '' is not an escape in conninfo syntax: unterminated
  auto q = repointConninfo("password='it\\'s' host=a", "h", 1);
  ASSERT_TRUE(q) << q.error();
  EXPECT_NE(q->find("password='it\\'s'"), std::string::npos);
  EXPECT_FALSE(repointConninfo("nokey", "h", 1));
  EXPECT_FALSE(repointConninfo("bogus_keyword=1", "h", 1));
}

TEST(RepointConninfo, ReplacesApplicationNameWhenGiven) {
  auto r = repointConninfo("host=a port=1 user=repl application_name=node1", "b", 2, "node0");
  ASSERT_TRUE(r) << r.error();
  EXPECT_NE(r->find("application_name='node0'"), std::string::npos);
  EXPECT_EQ(r->find("node1"), std::string::npos);
  EXPECT_NE(r->find("user='repl'"), std::string::npos);
  auto added = repointConninfo("host=a user=repl", "b", 2, "node0");
  ASSERT_TRUE(added) << added.error();
  EXPECT_NE(added->find("application_name='node0'"), std::string::npos);
}

// What /bin/sh makes of `printf %s <quoted>`.
std::string shellEcho(const std::string& quoted) {
  const std::string cmd = "printf %s " + quoted;
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), &::pclose);
  std::string out;
  std::array<char, 256> buf{};
  size_t n = 0;
  while (p && (n = std::fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  return out;
}

TEST(ShellQuote, SurvivesTheShellUnchanged) {
  for (const std::string w : {"plain", "two words", "it's", "$HOME `id` \\ \"q\" ;|&", "", "'"}) {
    EXPECT_EQ(shellEcho(shellQuote(w)), w) << w;
  }
}

TEST(RestartAsStandby, DetachesAndQuotesPaths) {
  const auto cmd = restartAsStandbyCommand("/usr/lib/postgresql/15/bin", "/data/it's here");
  const std::string head = "setsid sh -c ";
  const std::string tail = " </dev/null >/dev/null 2>&1 &";
  ASSERT_TRUE(cmd.starts_with(head)) << cmd;
  ASSERT_TRUE(cmd.ends_with(tail)) << cmd;
  // The script handed to sh -c, once unquoted, names pg_ctl and the directory quoted.
  const std::string quoted = cmd.substr(head.size(), cmd.size() - head.size() - tail.size());
  const std::string script = shellEcho(quoted);
  EXPECT_NE(script.find("'/usr/lib/postgresql/15/bin/pg_ctl' restart -D '/data/it'\\''s here' "
                        "-m fast -w"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("pgpilot_restart.log"), std::string::npos);
}

TEST(Placeholders, ExpandsPgpoolSet) {
  PlaceholderValues v;
  v.failed_id = 0;
  v.failed_host = "h0";
  v.failed_port = 5432;
  v.failed_dir = "/d0";
  v.new_id = 1;
  v.new_host = "h1";
  v.new_port = 5433;
  v.new_dir = "/d1";
  v.old_main_id = 0;
  v.old_primary_id = 0;
  v.old_primary_host = "h0";
  v.old_primary_port = 5432;
  EXPECT_EQ(expandPlaceholders("%d %h %p %D %m %H %r %R %M %P %N %S %% %x %", v),
            "0 h0 5432 /d0 1 h1 5433 /d1 0 0 h0 5432 % %x %");
}

}  // namespace
}  // namespace pgpilot::cluster
