// ReplyTracker: the ReadyForQuery messages PostgreSQL does not send (skip-to-Sync after an
// extended-protocol error, Sync during copy-in) are reported; ordinary traffic voids nothing.
// Server reply sequences are the ones PostgreSQL 15 sends for each case.
#include "protocol/reply_tracker.h"

#include <gtest/gtest.h>

#include <string_view>

namespace pgpilot::protocol {
namespace {

// Feeds the client's message types; returns how many ReadyForQuery the proxy would count.
int send(ReplyTracker& t, std::string_view types) {
  int owed = 0;
  for (char c : types) owed += t.sent(c) ? 1 : 0;
  return owed;
}

// Feeds the server's message types; returns how many counted ReadyForQuery are voided.
int receive(ReplyTracker& t, std::string_view types) {
  int voided = 0;
  for (char c : types) voided += t.received(c);
  return voided;
}

TEST(ReplyTracker, SimpleQueriesVoidNothing) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "QQ"), 2);
  EXPECT_EQ(receive(t, "TDDCZ"), 0);
  EXPECT_EQ(receive(t, "NSTDCCAZ"), 0);  // two statements, a notice, a notification
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.tracking());
}

TEST(ReplyTracker, QueryErrorIsAnsweredByItsOwnReadyForQuery) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "QQ"), 2);
  EXPECT_EQ(receive(t, "EZ"), 0);
  EXPECT_EQ(receive(t, "TDCZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.tracking());
}

TEST(ReplyTracker, ExtendedBatchesVoidNothing) {
  ReplyTracker t;
  // Parse, Bind, Describe statement, Describe portal, Execute (suspended, then done), Close.
  EXPECT_EQ(send(t, "PBDDESEECS"), 2);
  EXPECT_EQ(receive(t, "12tTTDsZ"), 0);
  EXPECT_EQ(receive(t, "DCI3Z"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.tracking());
  // Flush asks for output without a ReadyForQuery.
  EXPECT_EQ(send(t, "PDH"), 0);
  EXPECT_EQ(receive(t, "1tn"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(ReplyTracker, QueryAfterAFailedExtendedMessageIsDiscardedUntilSync) {
  ReplyTracker t;
  // Bind to a statement that does not exist, then a Query before the Sync: the server
  // discards the Query. The proxy counted two ReadyForQuery; only the Sync's comes.
  EXPECT_EQ(send(t, "BQS"), 2);
  EXPECT_EQ(receive(t, "E"), 1);
  EXPECT_EQ(receive(t, "Z"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.tracking());
}

TEST(ReplyTracker, QueryInsideASuccessfulBatchIsAnswered) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "PBEQS"), 2);
  EXPECT_EQ(receive(t, "12C"), 0);
  EXPECT_EQ(receive(t, "TDCZ"), 0);  // the Query's
  EXPECT_EQ(receive(t, "Z"), 0);     // the Sync's
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(ReplyTracker, MessagesSentAfterTheErrorBeforeSyncAreDiscardedToo) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "PB"), 0);
  EXPECT_EQ(receive(t, "E"), 0);  // the Parse failed; nothing counted is voided yet
  // Sent after the error reached us: the server is still discarding.
  EXPECT_FALSE(t.sent('E'));
  EXPECT_FALSE(t.sent('Q'));
  EXPECT_FALSE(t.sent('F'));
  EXPECT_TRUE(t.sent('S'));
  EXPECT_EQ(receive(t, "Z"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_EQ(send(t, "Q"), 1);  // after the Sync, normal again
  EXPECT_EQ(receive(t, "TDCZ"), 0);
}

TEST(ReplyTracker, ExtendedCopyInIgnoresTheSyncSentWithTheExecute) {
  ReplyTracker t;
  // libpq's PQexecParams("COPY t FROM STDIN"), then PQputCopyData + PQputCopyEnd.
  EXPECT_EQ(send(t, "PBDES"), 1);
  EXPECT_EQ(receive(t, "12n"), 0);
  EXPECT_EQ(receive(t, "G"), 1);  // the Sync reaches a server in copy-in
  EXPECT_EQ(send(t, "ddcS"), 1);
  EXPECT_EQ(receive(t, "CZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.tracking());
}

TEST(ReplyTracker, SyncsSentDuringCopyInAreIgnored) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "Q"), 1);
  EXPECT_EQ(receive(t, "G"), 0);
  EXPECT_EQ(send(t, "dSdHS"), 0);  // ignored by the server in copy-in
  EXPECT_EQ(send(t, "c"), 0);
  EXPECT_EQ(send(t, "S"), 1);  // after the copy: answered
  EXPECT_EQ(receive(t, "CZZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(ReplyTracker, SyncsAlreadySentWhenCopyInStartsAreVoidedUpToTheCopyEnd) {
  ReplyTracker t;
  // A client that streams its copy data without waiting for CopyInResponse.
  EXPECT_EQ(send(t, "PBESdSdcS"), 3);
  EXPECT_EQ(receive(t, "12G"), 2);
  EXPECT_EQ(receive(t, "CZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(ReplyTracker, AMessageThatAbortsACopyGetsNoReplyOfItsOwn) {
  ReplyTracker simple;
  EXPECT_EQ(send(simple, "Q"), 1);
  EXPECT_EQ(receive(simple, "G"), 0);
  EXPECT_FALSE(simple.sent('Q'));  // consumed as the copy's error
  EXPECT_EQ(receive(simple, "EZ"), 0);
  EXPECT_EQ(simple.inFlight(), 0u);

  ReplyTracker extended;
  EXPECT_EQ(send(extended, "BES"), 1);
  EXPECT_EQ(receive(extended, "2G"), 1);
  EXPECT_FALSE(extended.sent('Q'));  // consumed as the copy's error
  EXPECT_TRUE(extended.sent('S'));
  EXPECT_EQ(receive(extended, "EZ"), 0);  // then discarded up to the Sync
  EXPECT_EQ(extended.inFlight(), 0u);
}

TEST(ReplyTracker, CopyFailInExtendedModeSkipsToSync) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "BES"), 1);
  EXPECT_EQ(receive(t, "2G"), 1);
  EXPECT_EQ(send(t, "dfS"), 1);
  EXPECT_EQ(receive(t, "EZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.tracking());
}

TEST(ReplyTracker, CopyOutVoidsNothing) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "QBES"), 2);
  EXPECT_EQ(receive(t, "HddcCZ"), 0);
  EXPECT_EQ(receive(t, "2HdcCZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(ReplyTracker, FunctionCallIsAnsweredLikeAQuery) {
  ReplyTracker t;
  EXPECT_EQ(send(t, "FF"), 2);
  EXPECT_EQ(receive(t, "VZEZ"), 0);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(ReplyTracker, AReplyItDoesNotModelStopsItVoidingUntilReset) {
  ReplyTracker t;
  EXPECT_EQ(receive(t, "Z"), 0);  // nothing was sent
  EXPECT_FALSE(t.tracking());
  // While lost it counts as a plain count would and never voids.
  EXPECT_EQ(send(t, "BQS"), 2);
  EXPECT_EQ(receive(t, "EZ"), 0);
  t.reset();
  EXPECT_TRUE(t.tracking());
  EXPECT_EQ(send(t, "BQS"), 2);
  EXPECT_EQ(receive(t, "EZ"), 1);
}

TEST(ReplyTracker, TooManyMessagesInFlightStopsIt) {
  ReplyTracker t;
  for (size_t i = 0; i < ReplyTracker::kCapacity; ++i) EXPECT_FALSE(t.sent('P'));
  EXPECT_TRUE(t.tracking());
  EXPECT_TRUE(t.sent('S'));  // over capacity: counted, not tracked
  EXPECT_FALSE(t.tracking());
  EXPECT_EQ(receive(t, "E"), 0);
}

}  // namespace
}  // namespace pgpilot::protocol
