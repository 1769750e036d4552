// extended.h: build -> decodeFrame -> parse round trips and malformed bodies.
#include "protocol/extended.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "wire_util.h"

namespace pgpilot::protocol {
namespace {

using testing::bodyOf;

std::string int16Bytes(int16_t v) {
  std::string s;
  Writer(s).int16(v);
  return s;
}

std::string int32Bytes(int32_t v) {
  std::string s;
  Writer(s).int32(v);
  return s;
}

// ---- frontend ----------------------------------------------------------------------------

TEST(Parse, RoundTrip) {
  const ParseMessage m{"stmt_1", "SELECT $1::int, $2", {23, 0, 0xffffffffU}};
  std::string s;
  buildParse(s, m);
  const auto p = parseParse(bodyOf(s, 'P'));
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, m);
  EXPECT_EQ(p->param_types[2], 0xffffffffU);
}

TEST(Parse, UnnamedWithoutTypes) {
  const ParseMessage m{"", "SELECT 1", {}};
  std::string s;
  buildParse(s, m);
  EXPECT_EQ(bodyOf(s, 'P'), std::string("\0SELECT 1\0\0\0", 12));
  EXPECT_EQ(parseParse(bodyOf(s, 'P')), m);
}

TEST(Parse, Malformed) {
  const std::string head("s\0q\0", 4);
  EXPECT_FALSE(parseParse(head));
  EXPECT_FALSE(parseParse(head + int16Bytes(-1)));
  EXPECT_FALSE(parseParse(head + int16Bytes(2) + int32Bytes(23)));
  EXPECT_FALSE(parseParse(head + int16Bytes(1) + int32Bytes(23) + "x"));
  EXPECT_FALSE(parseParse(head + int16Bytes(32767)));
}

TEST(Bind, RoundTripWithNullAndEmptyAndBinary) {
  const BindMessage m{"portal",
                      "stmt",
                      {0, 1, 0},
                      {Value("42"), std::nullopt, Value(std::string_view("\0\x01", 2))},
                      {1}};
  std::string s;
  buildBind(s, m);
  const auto b = parseBind(bodyOf(s, 'B'));
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, m);
  EXPECT_FALSE(b->params[1].has_value());
}

TEST(Bind, EmptyValueIsNotNull) {
  const BindMessage m{"", "", {}, {Value(""), std::nullopt}, {}};
  std::string s;
  buildBind(s, m);
  const auto b = parseBind(bodyOf(s, 'B'));
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->params[0].has_value());
  EXPECT_EQ(*b->params[0], "");
  EXPECT_FALSE(b->params[1].has_value());
}

TEST(Bind, SingleFormatAppliesToAll) {
  const BindMessage m{"", "s", {1}, {Value("a"), Value("b"), Value("c")}, {0, 1}};
  std::string s;
  buildBind(s, m);
  EXPECT_EQ(parseBind(bodyOf(s, 'B')), m);
}

TEST(Bind, Malformed) {
  const std::string head("\0s\0", 3);
  const std::string no_formats = int16Bytes(0);
  // NULL is -1; other negative lengths are broken.
  EXPECT_FALSE(parseBind(head + no_formats + int16Bytes(1) + int32Bytes(-2) + int16Bytes(0)));
  // Two formats for three parameters.
  EXPECT_FALSE(parseBind(head + int16Bytes(2) + int16Bytes(0) + int16Bytes(0) + int16Bytes(3) +
                         int32Bytes(-1) + int32Bytes(-1) + int32Bytes(-1) + int16Bytes(0)));
  // Value longer than the message.
  EXPECT_FALSE(parseBind(head + no_formats + int16Bytes(1) + int32Bytes(100) + "abc"));
  // Negative counts.
  EXPECT_FALSE(parseBind(head + int16Bytes(-1)));
  EXPECT_FALSE(parseBind(head + no_formats + int16Bytes(-3) + int16Bytes(0)));
  EXPECT_FALSE(parseBind(head + no_formats + int16Bytes(0) + int16Bytes(-1)));
  // Missing result formats, and trailing bytes.
  EXPECT_FALSE(parseBind(head + no_formats + int16Bytes(0)));
  EXPECT_FALSE(parseBind(head + no_formats + int16Bytes(0) + int16Bytes(0) + "x"));
  EXPECT_TRUE(parseBind(head + no_formats + int16Bytes(0) + int16Bytes(0)));
}

TEST(DescribeAndClose, RoundTripStatementAndPortal) {
  for (const Target& t : {Target{TargetKind::kStatement, "s1"}, Target{TargetKind::kPortal, ""}}) {
    std::string d;
    buildDescribe(d, t);
    EXPECT_EQ(parseDescribe(bodyOf(d, 'D')), t);
    std::string c;
    buildClose(c, t);
    EXPECT_EQ(parseClose(bodyOf(c, 'C')), t);
  }
  std::string d;
  buildDescribe(d, {TargetKind::kPortal, "p"});
  EXPECT_EQ(bodyOf(d, 'D'), std::string_view("Pp\0", 3));
}

TEST(DescribeAndClose, Malformed) {
  EXPECT_FALSE(parseDescribe(""));
  EXPECT_FALSE(parseDescribe("S"));
  EXPECT_FALSE(parseDescribe("Sname"));
  EXPECT_FALSE(parseDescribe(std::string("Xname\0", 6)));
  EXPECT_FALSE(parseClose(std::string("Sname\0\0", 7)));
  EXPECT_FALSE(parseClose(std::string("p\0", 2)));
}

TEST(Execute, RoundTrip) {
  for (const ExecuteMessage& m : {ExecuteMessage{"", 0}, ExecuteMessage{"cursor", 100}}) {
    std::string s;
    buildExecute(s, m);
    EXPECT_EQ(parseExecute(bodyOf(s, 'E')), m);
  }
  EXPECT_FALSE(parseExecute(std::string("p\0\0\0\0", 5)));
  EXPECT_FALSE(parseExecute(std::string("p\0\0\0\0\0\0", 7)));
}

TEST(FlushAndSync, EmptyBodies) {
  std::string f;
  buildFlush(f);
  EXPECT_TRUE(parseEmptyBody(bodyOf(f, 'H')));
  std::string s;
  buildSync(s);
  EXPECT_TRUE(parseEmptyBody(bodyOf(s, 'S')));
  EXPECT_FALSE(parseEmptyBody("x"));
}

TEST(Copy, DataDoneFailRoundTrip) {
  const std::string data("1\tbob\n\0\xff", 8);
  std::string d;
  buildCopyData(d, data);
  EXPECT_EQ(parseCopyData(bodyOf(d, 'd')), data);
  std::string empty;
  buildCopyData(empty, "");
  EXPECT_EQ(parseCopyData(bodyOf(empty, 'd')), "");
  std::string done;
  buildCopyDone(done);
  EXPECT_TRUE(parseEmptyBody(bodyOf(done, 'c')));
  std::string fail;
  buildCopyFail(fail, "client gave up");
  EXPECT_EQ(parseCopyFail(bodyOf(fail, 'f')), "client gave up");
  EXPECT_FALSE(parseCopyFail("no terminator"));
  EXPECT_FALSE(parseCopyFail(std::string("a\0b", 3)));
}

TEST(FunctionCall, RoundTrip) {
  const FunctionCallMessage m{1598, {1}, {Value("abc"), std::nullopt}, 1};
  std::string s;
  buildFunctionCall(s, m);
  const auto f = parseFunctionCall(bodyOf(s, 'F'));
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, m);
  const FunctionCallMessage none{7, {}, {}, 0};
  std::string n;
  buildFunctionCall(n, none);
  EXPECT_EQ(parseFunctionCall(bodyOf(n, 'F')), none);
}

TEST(FunctionCall, Malformed) {
  const std::string oid = int32Bytes(1598);
  EXPECT_FALSE(parseFunctionCall(oid + int16Bytes(0) + int16Bytes(0)));  // no result format
  EXPECT_FALSE(parseFunctionCall(oid + int16Bytes(0) + int16Bytes(0) + int16Bytes(0) + "x"));
  EXPECT_FALSE(parseFunctionCall(oid + int16Bytes(2) + int16Bytes(0) + int16Bytes(0) +
                                 int16Bytes(1) + int32Bytes(-1) + int16Bytes(0)));
  EXPECT_FALSE(
      parseFunctionCall(oid + int16Bytes(0) + int16Bytes(1) + int32Bytes(-7) + int16Bytes(0)));
}

// ---- backend -----------------------------------------------------------------------------

TEST(RowDescription, RoundTrip) {
  const RowDescription m{{
      {"id", 16384, 1, 23, 4, -1, 0},
      {"payload", 16384, 2, 17, -1, -1, 1},
      {"", 0, 0, 3000000000U, -2, 12, 0},
  }};
  std::string s;
  buildRowDescriptionMessage(s, m);
  EXPECT_EQ(parseRowDescription(bodyOf(s, 'T')), m);
}

TEST(RowDescription, TextBuilderParsesAsTextColumns) {
  std::string s;
  buildRowDescription(s, {"name", "value"});
  const auto rd = parseRowDescription(bodyOf(s, 'T'));
  ASSERT_TRUE(rd);
  ASSERT_EQ(rd->fields.size(), 2U);
  for (const FieldDescription& f : rd->fields) {
    EXPECT_EQ(f.type_oid, 25U);
    EXPECT_EQ(f.type_size, -1);
    EXPECT_EQ(f.type_modifier, -1);
    EXPECT_EQ(f.format, 0);
    EXPECT_EQ(f.table_oid, 0U);
    EXPECT_EQ(f.column, 0);
  }
  EXPECT_EQ(rd->fields[1].name, "value");
}

TEST(RowDescription, Malformed) {
  EXPECT_FALSE(parseRowDescription(""));
  EXPECT_FALSE(parseRowDescription(int16Bytes(-1)));
  EXPECT_FALSE(parseRowDescription(int16Bytes(1)));
  EXPECT_FALSE(parseRowDescription(int16Bytes(1) + std::string("a\0", 2) + int32Bytes(0)));
  EXPECT_FALSE(parseRowDescription(int16Bytes(0) + "x"));
  EXPECT_TRUE(parseRowDescription(int16Bytes(0)));
}

TEST(DataRow, RoundTrip) {
  const DataRow m{{Value("1"), std::nullopt, Value(""), Value(std::string_view("\0\0", 2))}};
  std::string s;
  buildDataRowMessage(s, m);
  EXPECT_EQ(parseDataRow(bodyOf(s, 'D')), m);
}

TEST(DataRow, TextBuilderParses) {
  std::string s;
  buildDataRow(s, {std::string("x"), std::nullopt});
  const auto row = parseDataRow(bodyOf(s, 'D'));
  ASSERT_TRUE(row);
  EXPECT_EQ(row->values, (std::vector<Value>{"x", std::nullopt}));
}

TEST(DataRow, Malformed) {
  EXPECT_FALSE(parseDataRow(""));
  EXPECT_FALSE(parseDataRow(int16Bytes(1) + int32Bytes(5) + "abcd"));
  EXPECT_FALSE(parseDataRow(int16Bytes(1) + int32Bytes(-5)));
  EXPECT_FALSE(parseDataRow(int16Bytes(1) + int32Bytes(1) + "ab"));
  EXPECT_FALSE(parseDataRow(int16Bytes(-1)));
}

TEST(CommandComplete, RoundTrip) {
  for (std::string_view tag : {"SELECT 3", "INSERT 0 1", "BEGIN", ""}) {
    std::string s;
    buildCommandComplete(s, tag);
    EXPECT_EQ(parseCommandComplete(bodyOf(s, 'C')), tag);
  }
  EXPECT_FALSE(parseCommandComplete("SELECT 3"));
  EXPECT_FALSE(parseCommandComplete(std::string("SELECT 3\0\0", 10)));
}

TEST(ParameterDescription, RoundTrip) {
  for (const ParameterDescription& m :
       {ParameterDescription{{}}, ParameterDescription{{23, 25, 4294967295U}}}) {
    std::string s;
    buildParameterDescription(s, m);
    EXPECT_EQ(parseParameterDescription(bodyOf(s, 't')), m);
  }
  EXPECT_FALSE(parseParameterDescription(int16Bytes(1)));
  EXPECT_FALSE(parseParameterDescription(int16Bytes(-1)));
  EXPECT_FALSE(parseParameterDescription(int16Bytes(0) + "x"));
}

TEST(EmptyBackendMessages, RoundTripWithTheirTypes) {
  const struct {
    void (*build)(std::string&);
    char type;
  } cases[] = {
      {buildNoData, 'n'},        {buildParseComplete, '1'},   {buildBindComplete, '2'},
      {buildCloseComplete, '3'}, {buildPortalSuspended, 's'}, {buildEmptyQueryResponse, 'I'},
      {buildCopyDone, 'c'},      {buildFlush, 'H'},           {buildSync, 'S'},
      {buildTerminate, 'X'},
  };
  for (const auto& c : cases) {
    std::string s;
    c.build(s);
    EXPECT_EQ(s.size(), 5U) << c.type;
    EXPECT_TRUE(parseEmptyBody(bodyOf(s, c.type))) << c.type;
  }
}

TEST(CopyResponse, RoundTripAllThreeTypes) {
  const CopyResponse text{0, {0, 0, 0}};
  const CopyResponse binary{1, {1}};
  const CopyResponse none{0, {}};
  for (char type : {be::kCopyInResponse, be::kCopyOutResponse, be::kCopyBothResponse}) {
    for (const CopyResponse& m : {text, binary, none}) {
      std::string s;
      buildCopyResponse(s, type, m);
      EXPECT_EQ(parseCopyResponse(bodyOf(s, type)), m) << type;
    }
  }
  EXPECT_FALSE(parseCopyResponse(""));
  EXPECT_FALSE(parseCopyResponse(std::string("\0", 1)));
  EXPECT_FALSE(parseCopyResponse(std::string("\0", 1) + int16Bytes(2) + int16Bytes(0)));
  EXPECT_FALSE(parseCopyResponse(std::string("\0", 1) + int16Bytes(-2)));
}

TEST(NotificationResponse, RoundTrip) {
  for (const NotificationResponse& m :
       {NotificationResponse{1234, "jobs", "{\"id\":1}"}, NotificationResponse{-1, "c", ""}}) {
    std::string s;
    buildNotificationResponse(s, m);
    EXPECT_EQ(parseNotificationResponse(bodyOf(s, 'A')), m);
  }
  EXPECT_FALSE(parseNotificationResponse(int32Bytes(1) + std::string("chan\0", 5)));
  EXPECT_FALSE(parseNotificationResponse(int32Bytes(1) + std::string("c\0p\0x", 5)));
  EXPECT_FALSE(parseNotificationResponse("abc"));
}

TEST(NegotiateProtocolVersion, RoundTrip) {
  for (const NegotiateProtocolVersion& m :
       {NegotiateProtocolVersion{0, {}},
        NegotiateProtocolVersion{2, {"_pq_.compression", "_pq_.other"}}}) {
    std::string s;
    buildNegotiateProtocolVersion(s, m);
    EXPECT_EQ(parseNegotiateProtocolVersion(bodyOf(s, 'v')), m);
  }
  EXPECT_FALSE(parseNegotiateProtocolVersion(int32Bytes(0)));
  EXPECT_FALSE(parseNegotiateProtocolVersion(int32Bytes(0) + int32Bytes(-1)));
  EXPECT_FALSE(parseNegotiateProtocolVersion(int32Bytes(0) + int32Bytes(2) + "a"));
  EXPECT_FALSE(
      parseNegotiateProtocolVersion(int32Bytes(0) + int32Bytes(1) + std::string("a\0b", 3)));
  EXPECT_FALSE(parseNegotiateProtocolVersion(int32Bytes(0) + int32Bytes(0x7fffffff)));
}

TEST(FunctionCallResponse, RoundTrip) {
  for (const FunctionCallResponse& m :
       {FunctionCallResponse{Value("result")}, FunctionCallResponse{std::nullopt},
        FunctionCallResponse{Value("")}}) {
    std::string s;
    buildFunctionCallResponse(s, m);
    EXPECT_EQ(parseFunctionCallResponse(bodyOf(s, 'V')), m);
  }
  EXPECT_FALSE(parseFunctionCallResponse(""));
  EXPECT_FALSE(parseFunctionCallResponse(int32Bytes(-2)));
  EXPECT_FALSE(parseFunctionCallResponse(int32Bytes(3) + "ab"));
  EXPECT_FALSE(parseFunctionCallResponse(int32Bytes(-1) + "x"));
}

}  // namespace
}  // namespace pgpilot::protocol
