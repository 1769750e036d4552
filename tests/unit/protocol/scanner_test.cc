// StreamScanner: messages are found whatever the read boundaries, wanted bodies are whole,
// other bodies are passed over in pieces, bad lengths are reported.
#include "protocol/scanner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/messages.h"

namespace pgpilot::protocol {
namespace {

bool wantZ(char t) {
  return t == 'Z';
}

struct Seen {
  char type;
  std::string body;  // whole body for kMessage, concatenated pieces for passed-over ones
};

// Feeds `stream` in chunks of `chunk` bytes, keeping unconsumed bytes like the session does.
std::vector<Seen> scanAll(const std::string& stream, size_t chunk) {
  StreamScanner sc(&wantZ);
  std::vector<Seen> out;
  std::string buf;
  size_t fed = 0;
  while (fed < stream.size()) {
    buf += stream.substr(fed, chunk);
    fed += chunk;
    size_t pos = 0;
    for (;;) {
      auto s = sc.next(std::string_view(buf).substr(pos));
      if (s.kind == ScanKind::kNeedMoreData) break;
      EXPECT_NE(s.kind, ScanKind::kInvalid);
      if (s.kind == ScanKind::kInvalid) return out;
      if (s.kind == ScanKind::kMessage) out.push_back({s.type, std::string(s.body)});
      if (s.kind == ScanKind::kHeader) out.push_back({s.type, ""});
      if (s.kind == ScanKind::kBodyPart) out.back().body += buf.substr(pos, s.size);
      pos += s.size;
    }
    buf.erase(0, pos);
  }
  EXPECT_TRUE(buf.empty());
  EXPECT_TRUE(sc.atBoundary());
  return out;
}

std::string sampleStream() {
  std::string s;
  buildRowDescription(s, {"a", "b"});
  buildDataRow(s, {std::string(3000, 'x'), std::nullopt});
  buildCommandComplete(s, "SELECT 1");
  buildReadyForQuery(s, 'T');
  buildDataRow(s, {std::string("y")});
  buildReadyForQuery(s, 'I');
  return s;
}

TEST(StreamScanner, SameMessagesAtEveryChunkSize) {
  const std::string stream = sampleStream();
  const auto whole = scanAll(stream, stream.size());
  ASSERT_EQ(whole.size(), 6u);
  EXPECT_EQ(whole[3].type, 'Z');
  EXPECT_EQ(whole[3].body, "T");
  EXPECT_EQ(whole[5].body, "I");
  for (size_t chunk = 1; chunk <= 64; ++chunk) {
    const auto got = scanAll(stream, chunk);
    ASSERT_EQ(got.size(), whole.size()) << "chunk " << chunk;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].type, whole[i].type) << "chunk " << chunk << " msg " << i;
      EXPECT_EQ(got[i].body, whole[i].body) << "chunk " << chunk << " msg " << i;
    }
  }
}

TEST(StreamScanner, PassedOverBodyIsNotBufferedWhole) {
  std::string s;
  buildDataRow(s, {std::string(1 << 20, 'z')});
  StreamScanner sc(&wantZ);
  auto h = sc.next(std::string_view(s).substr(0, 100));
  ASSERT_EQ(h.kind, ScanKind::kHeader);
  EXPECT_EQ(h.size, 5u);
  auto p = sc.next(std::string_view(s).substr(5, 95));
  EXPECT_EQ(p.kind, ScanKind::kBodyPart);
  EXPECT_EQ(p.size, 95u);
  EXPECT_FALSE(sc.atBoundary());
}

TEST(StreamScanner, WantedMessageWaitsUntilWhole) {
  std::string s;
  buildReadyForQuery(s, 'E');
  StreamScanner sc(&wantZ);
  auto r = sc.next(std::string_view(s).substr(0, 5));
  EXPECT_EQ(r.kind, ScanKind::kNeedMoreData);
  EXPECT_EQ(r.length, 5u);  // known early so the caller can size its buffer
  auto r2 = sc.next(s);
  EXPECT_EQ(r2.kind, ScanKind::kMessage);
  EXPECT_EQ(r2.body, "E");
}

TEST(StreamScanner, BadLengthsAreInvalid) {
  StreamScanner sc(&wantZ, 1000);
  const std::string too_short("Z\0\0\0\3I", 6);
  EXPECT_EQ(sc.next(too_short).kind, ScanKind::kInvalid);
  const std::string too_long("D\0\0\x10\0xxxx", 9);
  EXPECT_EQ(sc.next(too_long).kind, ScanKind::kInvalid);
  const std::string negative("D\xff\xff\xff\xf0xxxx", 9);
  EXPECT_EQ(sc.next(negative).kind, ScanKind::kInvalid);
}

}  // namespace
}  // namespace pgpilot::protocol
