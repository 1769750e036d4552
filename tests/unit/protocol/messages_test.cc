// messages.h: build -> decodeFrame -> parse round trips and malformed bodies.
#include "protocol/messages.h"

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
using testing::startupBodyOf;

std::string int32Bytes(int32_t v) {
  std::string s;
  Writer w(s);
  w.int32(v);
  return s;
}

// ---- startup phase -------------------------------------------------------------------

TEST(StartupPacket, StartupMessageRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> params = {
      {"user", "alice"}, {"database", "app"}, {"application_name", ""}, {"options", "-c x=y"}};
  std::string s;
  buildStartupMessage(s, params);
  const auto p = parseStartupPacket(startupBodyOf(s));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, StartupPacket::Kind::kStartup);
  EXPECT_EQ(p->code, kProtocolV3);
  EXPECT_EQ(p->params, params);
  EXPECT_EQ(p->param("user"), "alice");
  EXPECT_EQ(p->param("application_name"), "");
  EXPECT_EQ(p->param("missing"), "");
}

TEST(StartupPacket, EmptyParameterListRoundTrip) {
  std::string s;
  buildStartupMessage(s, {});
  EXPECT_EQ(s.size(), 9U);  // length + version + terminator
  const auto p = parseStartupPacket(startupBodyOf(s));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, StartupPacket::Kind::kStartup);
  EXPECT_TRUE(p->params.empty());
}

TEST(StartupPacket, SslRequestRoundTrip) {
  std::string s;
  buildSslRequest(s);
  EXPECT_EQ(s, int32Bytes(8) + int32Bytes(kSslRequestCode));
  const auto p = parseStartupPacket(startupBodyOf(s));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, StartupPacket::Kind::kSslRequest);
  EXPECT_EQ(p->code, kSslRequestCode);
}

TEST(StartupPacket, GssEncRequestRoundTrip) {
  std::string s;
  buildGssEncRequest(s);
  EXPECT_EQ(s, int32Bytes(8) + int32Bytes(kGssEncRequestCode));
  const auto p = parseStartupPacket(startupBodyOf(s));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, StartupPacket::Kind::kGssEncRequest);
  EXPECT_EQ(p->code, kGssEncRequestCode);
}

TEST(StartupPacket, CancelRequestRoundTrip) {
  std::string s;
  buildCancelRequest(s, 4242, -123456789);
  EXPECT_EQ(s.size(), 16U);
  const auto p = parseStartupPacket(startupBodyOf(s));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, StartupPacket::Kind::kCancelRequest);
  EXPECT_EQ(p->cancel_pid, 4242);
  EXPECT_EQ(p->cancel_key, -123456789);
}

TEST(StartupPacket, OtherVersionsAreUnsupportedNotMalformed) {
  const auto v2 = parseStartupPacket(int32Bytes(0x00020000) + "anything");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->kind, StartupPacket::Kind::kUnsupported);
  EXPECT_EQ(v2->code, 0x00020000);
  // 3.2 is still a v3 startup (the session answers NegotiateProtocolVersion).
  const auto v32 = parseStartupPacket(int32Bytes(0x00030002) + std::string("user\0u\0\0", 8));
  ASSERT_TRUE(v32);
  EXPECT_EQ(v32->kind, StartupPacket::Kind::kStartup);
  EXPECT_EQ(v32->param("user"), "u");
}

TEST(StartupPacket, Malformed) {
  const std::string v3 = int32Bytes(kProtocolV3);
  EXPECT_FALSE(parseStartupPacket(""));
  EXPECT_FALSE(parseStartupPacket("abc"));
  EXPECT_FALSE(parseStartupPacket(v3));                                      // no terminator
  EXPECT_FALSE(parseStartupPacket(v3 + std::string("user\0", 5)));           // no value
  EXPECT_FALSE(parseStartupPacket(v3 + std::string("user\0bob\0", 9)));      // no terminator
  EXPECT_FALSE(parseStartupPacket(v3 + std::string("user\0bob\0\0x", 11)));  // garbage
  EXPECT_FALSE(parseStartupPacket(int32Bytes(kSslRequestCode) + "x"));
  EXPECT_FALSE(parseStartupPacket(int32Bytes(kGssEncRequestCode) + "x"));
  EXPECT_FALSE(parseStartupPacket(int32Bytes(kCancelRequestCode) + int32Bytes(1)));
  EXPECT_FALSE(
      parseStartupPacket(int32Bytes(kCancelRequestCode) + int32Bytes(1) + int32Bytes(2) + "x"));
}

// ---- errors and notices ----------------------------------------------------------------

TEST(ErrorFields, FullRoundTripAsErrorAndNotice) {
  ErrorFields e;
  e.severity = "FATAL";
  e.code = "28P01";
  e.message = "password authentication failed for user \"bob\"";
  e.detail = "some detail";
  e.hint = "a hint";
  e.other = {{'P', "17"}, {'F', "auth.c"}, {'L', "330"}, {'R', "auth_failed"}};
  for (char type : {be::kErrorResponse, be::kNoticeResponse}) {
    std::string s;
    buildError(s, e, type);
    const auto parsed = parseErrorFields(bodyOf(s, type));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, e);
  }
}

TEST(ErrorFields, FieldOrderOnTheWire) {
  ErrorFields e;
  e.severity = "ERROR";
  e.code = "42000";
  e.message = "m";
  e.other = {{'W', "w"}};
  std::string s;
  buildError(s, e);
  const std::string_view body = bodyOf(s, 'E');
  EXPECT_EQ(body, std::string_view("SERROR\0VERROR\0C42000\0Mm\0Ww\0\0", 28));
}

TEST(ErrorFields, ShortBuilderRoundTrip) {
  std::string s;
  buildError(s, "ERROR", "08P01", "protocol violation", "bad length");
  const auto e = parseErrorFields(bodyOf(s, 'E'));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "ERROR");
  EXPECT_EQ(e->code, "08P01");
  EXPECT_EQ(e->message, "protocol violation");
  EXPECT_EQ(e->detail, "bad length");
  EXPECT_TRUE(e->hint.empty());
  EXPECT_TRUE(e->other.empty());

  std::string no_detail;
  buildError(no_detail, "FATAL", "53300", "too many connections");
  EXPECT_EQ(no_detail.find(std::string_view("\0D", 2)), std::string::npos);
}

TEST(ErrorFields, NonLocalizedSeverityWins) {
  const std::string body("SFEHLER\0VERROR\0C42P01\0Mx\0\0", 26);
  const auto e = parseErrorFields(body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "ERROR");
  const auto only_s = parseErrorFields(std::string("SFEHLER\0\0", 9));
  ASSERT_TRUE(only_s);
  EXPECT_EQ(only_s->severity, "FEHLER");
}

TEST(ErrorFields, Malformed) {
  EXPECT_FALSE(parseErrorFields(""));
  EXPECT_FALSE(parseErrorFields("SERROR"));
  EXPECT_FALSE(parseErrorFields(std::string("SERROR\0", 7)));
  EXPECT_FALSE(parseErrorFields(std::string("SERROR\0\0x", 9)));
  EXPECT_TRUE(parseErrorFields(std::string("\0", 1)));
}

// ---- authentication ---------------------------------------------------------------------

TEST(AuthRequest, RoundTripEveryCode) {
  const std::string salt("\x01\x00\xff\x7f", 4);
  const struct {
    AuthCode code;
    std::string data;
  } cases[] = {
      {AuthCode::kOk, ""},
      {AuthCode::kCleartextPassword, ""},
      {AuthCode::kMd5Password, salt},
      {AuthCode::kSasl, "SCRAM-SHA-256"},
      {AuthCode::kSasl, std::string("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256", 32)},
      {AuthCode::kSasl, ""},
      {AuthCode::kSaslContinue, "r=abc,s=c2FsdA==,i=4096"},
      {AuthCode::kSaslContinue, ""},
      {AuthCode::kSaslFinal, "v=c2lnbmF0dXJl"},
      {static_cast<AuthCode>(7), "gss"},
  };
  for (const auto& c : cases) {
    std::string s;
    buildAuthRequest(s, c.code, c.data);
    const auto a = parseAuthRequest(bodyOf(s, 'R'));
    ASSERT_TRUE(a) << static_cast<int>(c.code);
    EXPECT_EQ(a->code, c.code);
    EXPECT_EQ(a->data, c.data);
  }
}

TEST(AuthRequest, SaslMechanismListOnTheWire) {
  std::string s;
  buildAuthRequest(s, AuthCode::kSasl, "SCRAM-SHA-256");
  EXPECT_EQ(bodyOf(s, 'R'), int32Bytes(10) + std::string("SCRAM-SHA-256\0\0", 15));
  // Callers that terminate the list themselves get the same bytes.
  for (std::string_view pre :
       {std::string_view("SCRAM-SHA-256\0\0", 15), std::string_view("SCRAM-SHA-256\0", 14)}) {
    std::string t;
    buildAuthRequest(t, AuthCode::kSasl, pre);
    EXPECT_EQ(t, s);
  }
  std::string none;
  buildAuthRequest(none, AuthCode::kSasl, "");
  EXPECT_EQ(bodyOf(none, 'R'), int32Bytes(10) + std::string("\0", 1));
  EXPECT_EQ(splitSaslMechanisms(std::string("A\0B", 3)), (std::vector<std::string_view>{"A", "B"}));
  EXPECT_EQ(splitSaslMechanisms("SCRAM-SHA-256"), (std::vector<std::string_view>{"SCRAM-SHA-256"}));
  EXPECT_TRUE(splitSaslMechanisms("").empty());
}

TEST(AuthRequest, Malformed) {
  EXPECT_FALSE(parseAuthRequest(""));
  EXPECT_FALSE(parseAuthRequest("\0\0\0"));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(0) + "x"));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(3) + "x"));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(5) + "abc"));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(5) + "abcde"));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(10)));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(10) + "SCRAM"));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(10) + std::string("SCRAM\0", 6)));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(10) + std::string("A\0\0B\0\0", 6)));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(10) + std::string("\0\0", 2)));
  EXPECT_FALSE(parseAuthRequest(int32Bytes(10) + std::string("A\0\0\0", 4)));
}

TEST(SaslMessages, InitialResponseRoundTrip) {
  std::string s;
  buildSaslInitialResponse(s, "SCRAM-SHA-256", std::string("n,,n=,r=abc\0x", 13));
  const auto m = parseSaslInitialResponse(bodyOf(s, 'p'));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(m->data, std::string_view("n,,n=,r=abc\0x", 13));
}

TEST(SaslMessages, InitialResponseWithoutDataUsesMinusOne) {
  const std::string body = std::string("SCRAM-SHA-256\0", 14) + int32Bytes(-1);
  const auto m = parseSaslInitialResponse(body);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->data.empty());
  EXPECT_FALSE(parseSaslInitialResponse(std::string("M\0", 2) + int32Bytes(-2)));
  EXPECT_FALSE(parseSaslInitialResponse(std::string("M\0", 2) + int32Bytes(5) + "abcd"));
  EXPECT_FALSE(parseSaslInitialResponse(std::string("M\0", 2) + int32Bytes(3) + "abcd"));
}

TEST(SaslMessages, ResponseRoundTrip) {
  std::string s;
  buildSaslResponse(s, "c=biws,r=abc,p=proof");
  EXPECT_EQ(parseSaslResponse(bodyOf(s, 'p')), "c=biws,r=abc,p=proof");
}

TEST(PasswordMessage, RoundTrip) {
  std::string s;
  buildPasswordMessage(s, "md5a3556571e93b0d20722ba62be61e8c2d");
  EXPECT_EQ(parsePasswordMessage(bodyOf(s, 'p')), "md5a3556571e93b0d20722ba62be61e8c2d");
  EXPECT_FALSE(parsePasswordMessage("secret"));
  EXPECT_FALSE(parsePasswordMessage(std::string("secret\0x", 8)));
}

// ---- backend messages ------------------------------------------------------------------

TEST(BackendMessages, ParameterStatusRoundTrip) {
  std::string s;
  buildParameterStatus(s, "server_version", "15.4");
  const auto p = parseParameterStatus(bodyOf(s, 'S'));
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (ParameterStatus{"server_version", "15.4"}));
  EXPECT_FALSE(parseParameterStatus(std::string("a\0", 2)));
  EXPECT_FALSE(parseParameterStatus(std::string("a\0b\0c", 5)));
}

TEST(BackendMessages, BackendKeyDataRoundTrip) {
  std::string s;
  buildBackendKeyData(s, 31337, -2);
  const auto k = parseBackendKeyData(bodyOf(s, 'K'));
  ASSERT_TRUE(k);
  EXPECT_EQ(*k, (BackendKeyData{31337, -2}));
  EXPECT_FALSE(parseBackendKeyData("1234567"));
  EXPECT_FALSE(parseBackendKeyData("123456789"));
}

TEST(BackendMessages, ReadyForQueryRoundTrip) {
  for (char status : {'I', 'T', 'E'}) {
    std::string s;
    buildReadyForQuery(s, status);
    EXPECT_EQ(parseReadyForQuery(bodyOf(s, 'Z')), status);
  }
  EXPECT_FALSE(parseReadyForQuery(""));
  EXPECT_FALSE(parseReadyForQuery("X"));
  EXPECT_FALSE(parseReadyForQuery("II"));
}

TEST(BackendMessages, CommandCompleteAndEmptyQueryOnTheWire) {
  std::string s;
  buildCommandComplete(s, "INSERT 0 1");
  EXPECT_EQ(bodyOf(s, 'C'), std::string_view("INSERT 0 1\0", 11));
  std::string e;
  buildEmptyQueryResponse(e);
  EXPECT_EQ(bodyOf(e, 'I'), "");
}

TEST(BackendMessages, TextRowDescriptionOnTheWire) {
  std::string s;
  buildRowDescription(s, {"a"});
  // name, table oid 0, attnum 0, type 25, typlen -1, typmod -1, format 0.
  const std::string expected = std::string(
                                   "\0\x01"
                                   "a\0",
                                   4) +
                               int32Bytes(0) + std::string("\0\0", 2) + int32Bytes(25) +
                               "\xff\xff" + int32Bytes(-1) + std::string("\0\0", 2);
  EXPECT_EQ(bodyOf(s, 'T'), expected);
}

TEST(BackendMessages, TextDataRowOnTheWire) {
  std::string s;
  buildDataRow(s, {std::string("ab"), std::nullopt, std::string()});
  const std::string expected =
      std::string("\0\x03", 2) + int32Bytes(2) + "ab" + int32Bytes(-1) + int32Bytes(0);
  EXPECT_EQ(bodyOf(s, 'D'), expected);
}

// ---- frontend messages ------------------------------------------------------------------

TEST(FrontendMessages, QueryRoundTrip) {
  std::string s;
  buildQuery(s, "SELECT 'x'; SELECT 2");
  EXPECT_EQ(parseQuery(bodyOf(s, 'Q')), "SELECT 'x'; SELECT 2");
  EXPECT_FALSE(parseQuery("SELECT 1"));
  EXPECT_FALSE(parseQuery(std::string("SELECT 1\0\0", 10)));
}

TEST(FrontendMessages, TerminateAndSyncAreEmpty) {
  std::string t;
  buildTerminate(t);
  EXPECT_EQ(bodyOf(t, 'X'), "");
  std::string s;
  buildSync(s);
  EXPECT_EQ(bodyOf(s, 'S'), "");
}

}  // namespace
}  // namespace pgpilot::protocol

namespace pgpilot::protocol {
namespace {

TEST(FrontendMessageType, OnlyWhatAClientMaySendAfterStartup) {
  for (char t : std::string_view("QPBDECSHXdcfF")) EXPECT_TRUE(fe::isFrontendMessageType(t)) << t;
  // Password/SASL messages belong to startup; the rest are backend types or nothing.
  for (char t : std::string_view("pRKGAZTzx\0\x7f", 11)) {
    EXPECT_FALSE(fe::isFrontendMessageType(t)) << static_cast<int>(t);
  }
}

}  // namespace
}  // namespace pgpilot::protocol
