// Helpers shared by the protocol unit tests: decode one built message and split a stream.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/codec.h"

namespace pgpilot::protocol::testing {

// Decodes `wire`, which must hold exactly one typed message of `type`, and returns its body
// (a view into `wire`).
inline std::string_view bodyOf(const std::string& wire, char type) {
  const DecodeResult r = decodeFrame(wire);
  EXPECT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.frame.type, type);
  EXPECT_EQ(r.frame.total_size, wire.size());
  return r.frame.body;
}

// Same for an untyped startup-phase packet.
inline std::string_view startupBodyOf(const std::string& wire) {
  const DecodeResult r = decodeStartupFrame(wire);
  EXPECT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.frame.total_size, wire.size());
  return r.frame.body;
}

// A decoded message with an owned body, comparable across buffers.
struct OwnedFrame {
  char type = 0;
  std::string body;
  bool operator==(const OwnedFrame&) const = default;
};

// Feeds `chunks` one after the other into a growing buffer, the way a session reads from a
// socket, and decodes every complete message as soon as it is there. The first
// `untyped_first` messages are decoded as untyped startup-phase packets (e.g. SSLRequest
// then StartupMessage). Stops at kInvalid and reports it through `invalid`.
inline std::vector<OwnedFrame> decodeIncrementally(const std::vector<std::string_view>& chunks,
                                                   size_t untyped_first = 0,
                                                   bool* invalid = nullptr) {
  std::vector<OwnedFrame> frames;
  std::string buffer;
  for (const std::string_view chunk : chunks) {
    buffer.append(chunk);
    while (true) {
      const bool untyped = frames.size() < untyped_first;
      const DecodeResult r = untyped ? decodeStartupFrame(buffer) : decodeFrame(buffer);
      if (r.status == DecodeStatus::kInvalid) {
        if (invalid != nullptr) *invalid = true;
        return frames;
      }
      if (r.status == DecodeStatus::kNeedMoreData) break;
      frames.push_back({r.frame.type, std::string(r.frame.body)});
      buffer.erase(0, r.frame.total_size);
    }
  }
  if (invalid != nullptr) *invalid = false;
  return frames;
}

}  // namespace pgpilot::protocol::testing
