#include "protocol/reply_tracker.h"

#include "protocol/messages.h"

namespace pgpilot::protocol {

void ReplyTracker::reset() {
  head_ = 0;
  size_ = 0;
  lost_ = false;
  skipping_ = false;
  copy_in_open_ = false;
}

void ReplyTracker::lose(char type, bool reply) {
  if (!lost_) {
    lost_at_ = type;
    lost_on_reply_ = reply;
  }
  lost_ = true;
  size_ = 0;
  skipping_ = false;
  copy_in_open_ = false;
}

void ReplyTracker::push(Unit u) {
  if (size_ == kCapacity) {
    lose(0, false);
    return;
  }
  units_[(head_ + size_) % kCapacity] = u;
  ++size_;
}

void ReplyTracker::popFront() {
  head_ = (head_ + 1) % kCapacity;
  --size_;
  // A copy end has no reply: it is done once everything before it is.
  while (size_ > 0 && at(0) == Unit::kCopyEnd) {
    head_ = (head_ + 1) % kCapacity;
    --size_;
  }
}

void ReplyTracker::completeFront(Unit expected, char reply) {
  if (size_ == 0 || at(0) != expected) {
    lose(reply, true);
    return;
  }
  if (expected == Unit::kExecute || expected == Unit::kQuery) copy_in_open_ = false;
  popFront();
}

void ReplyTracker::removeAt(size_t i) {
  for (size_t j = i; j + 1 < size_; ++j) {
    units_[(head_ + j) % kCapacity] = units_[(head_ + j + 1) % kCapacity];
  }
  --size_;
}

bool ReplyTracker::sent(char type) {
  Unit u;
  switch (type) {
    case fe::kParse:
    case fe::kBind:
    case fe::kDescribe:
    case fe::kExecute:
    case fe::kClose:
    case fe::kSync:
    case fe::kQuery:
    case fe::kFunctionCall:
      u = static_cast<Unit>(type);  // a unit is named by its message's type byte
      break;
    case fe::kCopyDone:
    case fe::kCopyFail:
      u = Unit::kCopyEnd;
      break;
    case fe::kCopyData:
    case fe::kFlush:
      return false;  // no reply; neither ends a copy
    default:
      // Nothing else is valid after startup; the session is about to end.
      lose(type, false);
      return false;
  }
  if (lost_) return owesReady(u);
  if (copy_in_open_) {
    if (u == Unit::kSync) return false;  // ignored by the server in copy-in
    copy_in_open_ = false;
    // Anything but CopyDone/CopyFail ends the copy as an error, consumed without a reply.
    if (u != Unit::kCopyEnd) return false;
  }
  if (skipping_) {
    if (u != Unit::kSync) return false;  // discarded by the server: no reply at all
    skipping_ = false;
  }
  // A copy end with nothing before it: the copy is already over (it failed), and the
  // server drops it.
  if (u == Unit::kCopyEnd && size_ == 0) return false;
  push(u);
  return owesReady(u);
}

// An extended message at the front failed: the server discards what follows up to the
// next Sync. Returns the ReadyForQuery messages that were owed by discarded units.
int ReplyTracker::skipToSync() {
  int voided = 0;
  while (size_ > 0 && at(0) != Unit::kSync) {
    if (owesReady(at(0))) ++voided;
    popFront();
  }
  if (size_ == 0) skipping_ = true;  // the Sync is still to come
  copy_in_open_ = false;
  return voided;
}

// The statement at the front put the server in copy-in. What the client sent after it
// reaches a server in copy-in: Syncs are ignored, and the first message other than a copy
// end is consumed as the error that ends the copy. Returns the ReadyForQuery messages that
// this voids.
int ReplyTracker::enterCopyIn() {
  int voided = 0;
  while (size_ > 1) {
    const Unit next = at(1);
    if (next == Unit::kCopyEnd) return voided;  // the copy ends normally
    removeAt(1);
    if (owesReady(next)) ++voided;
    if (next != Unit::kSync) return voided;  // consumed as the copy's error
  }
  copy_in_open_ = true;  // nothing sent after the statement yet
  return voided;
}

int ReplyTracker::received(char type) {
  if (lost_) return 0;
  switch (type) {
    case be::kNoticeResponse:
    case be::kParameterStatus:
    case be::kNotificationResponse:
    case be::kDataRow:
    case be::kParameterDescription:
    case be::kCopyData:
    case be::kCopyDone:
    case be::kCopyOutResponse:
    case be::kFunctionCallResponse:
      return 0;  // part of a reply, never its end
    case be::kParseComplete:
      completeFront(Unit::kParse, type);
      return 0;
    case be::kBindComplete:
      completeFront(Unit::kBind, type);
      return 0;
    case be::kCloseComplete:
      completeFront(Unit::kClose, type);
      return 0;
    case be::kNoData:
      completeFront(Unit::kDescribe, type);
      return 0;
    case be::kRowDescription:
      // Ends a Describe; a Query's or FunctionCall's result carries on.
      if (size_ > 0 && at(0) == Unit::kDescribe) popFront();
      return 0;
    case be::kCommandComplete:
    case be::kEmptyQueryResponse:
    case be::kPortalSuspended:
      // Ends an Execute; within a Query, one of its statements.
      if (size_ > 0 && at(0) == Unit::kQuery) return 0;
      completeFront(Unit::kExecute, type);
      return 0;
    case be::kCopyInResponse:
      if (size_ == 0 || (at(0) != Unit::kExecute && at(0) != Unit::kQuery)) {
        lose(type, true);
        return 0;
      }
      return enterCopyIn();
    case be::kErrorResponse:
      if (size_ == 0) {
        lose(type, true);  // not ours to judge (a server going away while idle)
        return 0;
      }
      if (isExtended(at(0))) return skipToSync();
      // A Query's, FunctionCall's or Sync's error: its ReadyForQuery follows.
      copy_in_open_ = false;
      return 0;
    case be::kReadyForQuery:
      if (size_ == 0 || !owesReady(at(0))) {
        lose(type, true);
        return 0;
      }
      copy_in_open_ = false;
      popFront();
      return 0;
    default:
      lose(type, true);
      return 0;
  }
}

}  // namespace pgpilot::protocol
