// What a server still owes for the messages forwarded to it, in order: tells when a
// ReadyForQuery that the proxy counted will never come.
//
// Purpose: a session counts the ReadyForQuery messages its server owes (one per Query,
// FunctionCall and Sync) to know when the server is idle. PostgreSQL does not always send
// them: after an error in an extended-protocol message (Parse, Bind, Describe, Execute,
// Close) it discards every message up to the next Sync, a Query or FunctionCall included;
// and in copy-in mode it ignores Sync (libpq sends one right after the Execute of a
// COPY FROM STDIN, before it knows the statement is a COPY). ReplyTracker follows each
// forwarded message to the reply that completes it, as the server processes them, and
// reports those voided ReadyForQuery messages, so the count never waits for one.
//
// It only ever takes away from the count. If the replies stop matching what it expects
// (a message type it does not model, more than kCapacity messages in flight), it stops
// voiding anything until reset() at the next idle point, which is the behaviour of a plain
// count. Pure logic, no I/O; one per session, used from the session's thread.
#pragma once

#include <array>
#include <cstddef>

#include "protocol/messages.h"

namespace pgpilot::protocol {

class ReplyTracker {
 public:
  static constexpr size_t kCapacity = 256;

  // A frontend message forwarded to the server (type byte). Returns true when it will be
  // answered by a ReadyForQuery (a Query, FunctionCall or Sync the server will process).
  bool sent(char type);
  // A backend message from the server (type byte). Returns how many ReadyForQuery messages
  // counted by sent() will now never come.
  int received(char type);
  // The server owes nothing and no extended-protocol work is pending: start afresh.
  void reset();

  bool tracking() const { return !lost_; }
  // Why tracking stopped (for the log): the message type that did not fit, and whether the
  // server sent it (false: the client did, or too many messages were in flight).
  char lostAt() const { return lost_at_; }
  bool lostOnReply() const { return lost_on_reply_; }
  size_t inFlight() const { return size_; }

 private:
  // A forwarded message that the server answers, named by its type byte.
  enum class Unit : char {
    kParse = fe::kParse,
    kBind = fe::kBind,
    kDescribe = fe::kDescribe,
    kExecute = fe::kExecute,
    kClose = fe::kClose,
    kSync = fe::kSync,
    kQuery = fe::kQuery,
    kFunctionCall = fe::kFunctionCall,
    kCopyEnd = fe::kCopyDone,  // CopyDone/CopyFail from the client: no reply of its own
  };
  static bool isExtended(Unit u) {
    return u == Unit::kParse || u == Unit::kBind || u == Unit::kDescribe || u == Unit::kExecute ||
           u == Unit::kClose;
  }
  static bool owesReady(Unit u) {
    return u == Unit::kSync || u == Unit::kQuery || u == Unit::kFunctionCall;
  }

  Unit at(size_t i) const { return units_[(head_ + i) % kCapacity]; }
  void push(Unit u);
  void popFront();
  void completeFront(Unit expected, char reply);
  void removeAt(size_t i);
  int skipToSync();
  int enterCopyIn();
  void lose(char type, bool reply);

  std::array<Unit, kCapacity> units_{};
  size_t head_ = 0;
  size_t size_ = 0;
  bool lost_ = false;
  char lost_at_ = 0;
  bool lost_on_reply_ = false;
  // An extended message failed and the server discards everything up to a Sync the client
  // has not sent yet.
  bool skipping_ = false;
  // The server is in copy-in and the client has not ended the copy yet: a Sync now is
  // ignored, and any message other than copy data, Sync or Flush ends the copy with an
  // error, consumed without a reply of its own.
  bool copy_in_open_ = false;
};

}  // namespace pgpilot::protocol
