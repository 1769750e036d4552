// Framing: decodeFrame / decodeStartupFrame on streams, split reads and bad lengths.
#include "protocol/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/extended.h"
#include "protocol/messages.h"
#include "wire_util.h"

namespace pgpilot::protocol {
namespace {

using testing::decodeIncrementally;
using testing::OwnedFrame;

// A header with an arbitrary (possibly hostile) length word.
std::string typedHeader(char type, uint32_t length) {
  std::string s(1, type);
  s.push_back(static_cast<char>(length >> 24));
  s.push_back(static_cast<char>((length >> 16) & 0xff));
  s.push_back(static_cast<char>((length >> 8) & 0xff));
  s.push_back(static_cast<char>(length & 0xff));
  return s;
}

std::string untypedHeader(uint32_t length) {
  return typedHeader('\0', length).substr(1);
}

// A backend stream with a mix of message types, as a server sends for an extended query.
std::string backendStream() {
  std::string s;
  buildParseComplete(s);
  buildBindComplete(s);
  buildRowDescription(s, {"id", "name"});
  buildDataRow(s, {std::string("1"), std::nullopt});
  buildDataRow(s, {std::string("22"), std::string("bob")});
  buildCommandComplete(s, "SELECT 2");
  buildError(s, "ERROR", "42P01", "relation \"x\" does not exist", "detail");
  buildEmptyQueryResponse(s);
  buildReadyForQuery(s, 'I');
  return s;
}

std::vector<OwnedFrame> decodeAllAtOnce(const std::string& s, size_t untyped_first = 0) {
  return decodeIncrementally({s}, untyped_first);
}

TEST(DecodeFrame, EmptyMessageHasEmptyBody) {
  std::string s;
  buildSync(s);
  ASSERT_EQ(s.size(), 5U);
  const DecodeResult r = decodeFrame(s);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  EXPECT_EQ(r.frame.type, 'S');
  EXPECT_TRUE(r.frame.body.empty());
  EXPECT_EQ(r.frame.total_size, 5U);
}

TEST(DecodeFrame, NeedsMoreDataForEveryPrefix) {
  std::string s;
  buildQuery(s, "SELECT 1");
  for (size_t n = 0; n < s.size(); ++n) {
    EXPECT_EQ(decodeFrame(std::string_view(s).substr(0, n)).status, DecodeStatus::kNeedMoreData)
        << "prefix " << n;
  }
  EXPECT_EQ(decodeFrame(s).status, DecodeStatus::kOk);
}

TEST(DecodeFrame, SeveralMessagesInOneBuffer) {
  std::string s;
  buildQuery(s, "SELECT 1");
  buildSync(s);
  buildTerminate(s);
  std::string_view rest = s;
  std::vector<char> types;
  while (!rest.empty()) {
    const DecodeResult r = decodeFrame(rest);
    ASSERT_EQ(r.status, DecodeStatus::kOk);
    types.push_back(r.frame.type);
    if (r.frame.type == 'Q') {
      EXPECT_EQ(parseQuery(r.frame.body), "SELECT 1");
    }
    rest.remove_prefix(r.frame.total_size);
  }
  EXPECT_EQ(types, (std::vector<char>{'Q', 'S', 'X'}));
}

TEST(DecodeFrame, LengthBelowFourIsInvalid) {
  for (uint32_t len : {0U, 1U, 2U, 3U}) {
    const DecodeResult r = decodeFrame(typedHeader('Q', len) + "xxxx");
    EXPECT_EQ(r.status, DecodeStatus::kInvalid) << len;
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(DecodeFrame, NegativeLengthIsInvalid) {
  for (uint32_t len : {0xffffffffU, 0x80000000U, 0xfffffffcU}) {
    EXPECT_EQ(decodeFrame(typedHeader('D', len)).status, DecodeStatus::kInvalid) << len;
  }
}

TEST(DecodeFrame, OversizedLengthIsInvalidBeforeTheBodyArrives) {
  // Only the header is there: the length alone must be enough to refuse it, so a hostile
  // peer cannot make us buffer a gigabyte.
  EXPECT_EQ(decodeFrame(typedHeader('d', kMaxMessageLength + 1)).status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeFrame(typedHeader('d', 0x7fffffffU)).status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeFrame(typedHeader('d', kMaxMessageLength)).status, DecodeStatus::kNeedMoreData);
  // A caller-supplied limit.
  EXPECT_EQ(decodeFrame(typedHeader('d', 101), 100).status, DecodeStatus::kInvalid);
  std::string ok = typedHeader('d', 100) + std::string(96, 'x');
  EXPECT_EQ(decodeFrame(ok, 100).status, DecodeStatus::kOk);
}

TEST(DecodeFrame, StreamSplitAtEveryByteBoundaryYieldsSameMessages) {
  const std::string s = backendStream();
  const std::vector<OwnedFrame> expected = decodeAllAtOnce(s);
  ASSERT_EQ(expected.size(), 9U);
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    const std::string_view v = s;
    EXPECT_EQ(decodeIncrementally({v.substr(0, cut), v.substr(cut)}), expected) << "cut " << cut;
  }
  for (size_t a = 0; a <= s.size(); a += 7) {
    for (size_t b = a; b <= s.size(); ++b) {
      const std::string_view v = s;
      EXPECT_EQ(decodeIncrementally({v.substr(0, a), v.substr(a, b - a), v.substr(b)}), expected)
          << "cuts " << a << "," << b;
    }
  }
}

TEST(DecodeFrame, StreamFedOneByteAtATimeYieldsSameMessages) {
  const std::string s = backendStream();
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < s.size(); ++i) chunks.push_back(std::string_view(s).substr(i, 1));
  const std::vector<OwnedFrame> frames = decodeIncrementally(chunks);
  EXPECT_EQ(frames, decodeAllAtOnce(s));
  // The decoded bodies still parse as the messages that were built.
  ASSERT_EQ(frames.size(), 9U);
  EXPECT_EQ(frames[2].type, 'T');
  const auto rd = parseRowDescription(frames[2].body);
  ASSERT_TRUE(rd);
  ASSERT_EQ(rd->fields.size(), 2U);
  EXPECT_EQ(rd->fields[1].name, "name");
  const auto row = parseDataRow(frames[3].body);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->values, (std::vector<Value>{"1", std::nullopt}));
  const auto err = parseErrorFields(frames[6].body);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, "42P01");
  EXPECT_EQ(parseReadyForQuery(frames[8].body), 'I');
}

TEST(DecodeFrame, InvalidLengthInTheMiddleOfAStreamStopsIt) {
  std::string s;
  buildQuery(s, "SELECT 1");
  s += typedHeader('Q', 2);
  buildSync(s);
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    const std::string_view v = s;
    bool invalid = false;
    const auto frames = decodeIncrementally({v.substr(0, cut), v.substr(cut)}, 0, &invalid);
    EXPECT_TRUE(invalid) << cut;
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(frames[0].type, 'Q');
  }
}

TEST(DecodeStartupFrame, SslRequestThenStartupSplitAtEveryByte) {
  std::string s;
  buildSslRequest(s);
  buildStartupMessage(s, {{"user", "alice"}, {"database", "app"}});
  buildQuery(s, "SELECT 1");
  const std::vector<OwnedFrame> expected = decodeAllAtOnce(s, 2);
  ASSERT_EQ(expected.size(), 3U);
  EXPECT_EQ(expected[2].type, 'Q');
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    const std::string_view v = s;
    EXPECT_EQ(decodeIncrementally({v.substr(0, cut), v.substr(cut)}, 2), expected) << cut;
  }
  const auto ssl = parseStartupPacket(expected[0].body);
  ASSERT_TRUE(ssl);
  EXPECT_EQ(ssl->kind, StartupPacket::Kind::kSslRequest);
  const auto startup = parseStartupPacket(expected[1].body);
  ASSERT_TRUE(startup);
  EXPECT_EQ(startup->param("database"), "app");
}

TEST(DecodeStartupFrame, LengthLimits) {
  EXPECT_EQ(decodeStartupFrame(untypedHeader(7) + "xxxx").status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeStartupFrame(untypedHeader(4) + "xxxx").status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeStartupFrame(untypedHeader(0)).status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeStartupFrame(untypedHeader(0xffffffffU)).status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeStartupFrame(untypedHeader(kMaxStartupLength + 1)).status,
            DecodeStatus::kInvalid);
  EXPECT_EQ(decodeStartupFrame(untypedHeader(100000)).status, DecodeStatus::kInvalid);
  // The boundaries themselves are fine.
  const std::string min = untypedHeader(8) + "abcd";
  const DecodeResult eight = decodeStartupFrame(min);
  ASSERT_EQ(eight.status, DecodeStatus::kOk);
  EXPECT_EQ(eight.frame.body, "abcd");
  const std::string max =
      untypedHeader(kMaxStartupLength) + std::string(kMaxStartupLength - 4, 'x');
  EXPECT_EQ(decodeStartupFrame(std::string_view(max).substr(0, 100)).status,
            DecodeStatus::kNeedMoreData);
  EXPECT_EQ(decodeStartupFrame(max).status, DecodeStatus::kOk);
}

TEST(DecodeStartupFrame, OversizedStartupMessageIsRejected) {
  std::string s;
  buildStartupMessage(s, {{"user", "alice"}, {"options", std::string(10000, 'o')}});
  ASSERT_GT(s.size(), kMaxStartupLength);
  EXPECT_EQ(decodeStartupFrame(s).status, DecodeStatus::kInvalid);
  EXPECT_EQ(decodeStartupFrame(std::string_view(s).substr(0, 4)).status, DecodeStatus::kInvalid);
}

TEST(ReaderWriter, RoundTripPrimitivesAndFailureIsSticky) {
  std::string s;
  Writer w(s);
  w.begin('x').int8(-5).int16(-300).int32(-70000).cstring("abc").bytes("zz");
  w.finish();
  const DecodeResult r = decodeFrame(s);
  ASSERT_EQ(r.status, DecodeStatus::kOk);
  Reader rd(r.frame.body);
  EXPECT_EQ(rd.int8(), -5);
  EXPECT_EQ(rd.int16(), -300);
  EXPECT_EQ(rd.int32(), -70000);
  EXPECT_EQ(rd.cstring(), "abc");
  EXPECT_EQ(rd.bytes(2), "zz");
  EXPECT_TRUE(rd.atEnd());
  EXPECT_FALSE(rd.failed());
  EXPECT_EQ(rd.int32(), 0);
  EXPECT_TRUE(rd.failed());
}

}  // namespace
}  // namespace pgpilot::protocol
