// StreamScanner: walks a protocol 3.0 byte stream one message at a time without needing
// whole messages in memory.
//
// Purpose: the proxy forwards bytes between client and server as they arrive (a 1 GB
// result is never buffered) but must still see the messages that drive its state machine
// (ReadyForQuery, Query, Sync, Terminate, CopyInResponse ...). The caller says which
// message types it needs whole; all other messages are reported by header only and their
// bodies are passed over in whatever pieces the network delivers.
// Thread-safety: one scanner per direction of one connection; not shared.
//
// Usage:
//   StreamScanner sc([](char t) { return t == 'Z' || t == 'E'; });
//   for (;;) {
//     auto s = sc.next(buffer.substr(pos));
//     if (s.kind == ScanKind::kNeedMoreData) break;       // keep buffer[pos..] and read
//     if (s.kind == ScanKind::kInvalid) { fail(); break; }
//     if (s.kind == ScanKind::kMessage) handle(s.type, s.body);
//     pos += s.size;                                       // these bytes may be forwarded
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "protocol/codec.h"

namespace pgpilot::protocol {

enum class ScanKind {
  kMessage,       // a whole message the caller asked for: type + body
  kHeader,        // the start of a message the caller did not ask for (body follows)
  kBodyPart,      // a piece of such a message's body
  kNeedMoreData,  // not enough bytes to make progress; keep them and read more
  kInvalid,       // bad length: the stream is broken
};

struct ScanStep {
  ScanKind kind = ScanKind::kNeedMoreData;
  char type = 0;
  std::string_view body;  // kMessage only
  uint32_t length = 0;    // message length word (kMessage, kHeader)
  size_t size = 0;        // bytes of input this step covers
};

class StreamScanner {
 public:
  using WantBody = bool (*)(char type);

  explicit StreamScanner(WantBody want_body, uint32_t max_length = kMaxMessageLength)
      : want_body_(want_body), max_length_(max_length) {}

  ScanStep next(std::string_view data);
  // True when positioned at a message boundary (no body bytes still to pass over).
  bool atBoundary() const { return remaining_ == 0; }

 private:
  WantBody want_body_;
  uint32_t max_length_;
  uint64_t remaining_ = 0;  // body bytes of a passed-over message not yet seen
};

}  // namespace pgpilot::protocol
