// Every parser, systematically: a valid body parses, every truncation of it and the body with
// a trailing byte do not. Formats with a length or a terminator have no valid prefix.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "protocol/extended.h"
#include "protocol/messages.h"

namespace pgpilot::protocol {
namespace {

struct Case {
  std::string name;
  std::string wire;  // one complete message as built
  bool untyped = false;
  std::function<bool(std::string_view)> parses;
};

template <typename F>
std::function<bool(std::string_view)> accepts(F parser) {
  return [parser](std::string_view body) { return parser(body).has_value(); };
}

std::vector<Case> allCases() {
  std::vector<Case> cases;
  auto add = [&cases](std::string name, auto build, std::function<bool(std::string_view)> p,
                      bool untyped = false) {
    Case c{std::move(name), {}, untyped, std::move(p)};
    build(c.wire);
    cases.push_back(std::move(c));
  };
  // messages.h
  add(
      "startup",
      [](std::string& s) {
        buildStartupMessage(s, {{"user", "u"}, {"a", ""}});
      },
      accepts(parseStartupPacket), true);
  add(
      "ssl", [](std::string& s) { buildSslRequest(s); }, accepts(parseStartupPacket), true);
  add(
      "gssenc", [](std::string& s) { buildGssEncRequest(s); }, accepts(parseStartupPacket), true);
  add(
      "cancel", [](std::string& s) { buildCancelRequest(s, 1, 2); }, accepts(parseStartupPacket),
      true);
  add(
      "error", [](std::string& s) { buildError(s, "ERROR", "XX000", "m", "d"); },
      accepts(parseErrorFields));
  add(
      "auth_ok", [](std::string& s) { buildAuthRequest(s, AuthCode::kOk); },
      accepts(parseAuthRequest));
  add(
      "auth_md5", [](std::string& s) { buildAuthRequest(s, AuthCode::kMd5Password, "salt"); },
      accepts(parseAuthRequest));
  add(
      "auth_sasl", [](std::string& s) { buildAuthRequest(s, AuthCode::kSasl, "SCRAM-SHA-256"); },
      accepts(parseAuthRequest));
  add(
      "parameter_status", [](std::string& s) { buildParameterStatus(s, "a", "b"); },
      accepts(parseParameterStatus));
  add(
      "backend_key", [](std::string& s) { buildBackendKeyData(s, 1, 2); },
      accepts(parseBackendKeyData));
  add(
      "ready", [](std::string& s) { buildReadyForQuery(s, 'T'); }, accepts(parseReadyForQuery));
  add(
      "query", [](std::string& s) { buildQuery(s, "SELECT 1"); }, accepts(parseQuery));
  add(
      "password", [](std::string& s) { buildPasswordMessage(s, "pw"); },
      accepts(parsePasswordMessage));
  add(
      "sasl_initial", [](std::string& s) { buildSaslInitialResponse(s, "SCRAM-SHA-256", "n,,"); },
      accepts(parseSaslInitialResponse));
  // extended.h
  add(
      "parse",
      [](std::string& s) {
        buildParse(s, {"s", "q", {23}});
      },
      accepts(parseParse));
  add(
      "bind",
      [](std::string& s) {
        buildBind(s, {"p", "s", {0}, {Value("v"), std::nullopt}, {1}});
      },
      accepts(parseBind));
  add(
      "describe",
      [](std::string& s) {
        buildDescribe(s, {TargetKind::kPortal, "p"});
      },
      accepts(parseDescribe));
  add(
      "close",
      [](std::string& s) {
        buildClose(s, {TargetKind::kStatement, "s"});
      },
      accepts(parseClose));
  add(
      "execute",
      [](std::string& s) {
        buildExecute(s, {"p", 5});
      },
      accepts(parseExecute));
  add(
      "copy_fail", [](std::string& s) { buildCopyFail(s, "why"); }, accepts(parseCopyFail));
  add(
      "function_call",
      [](std::string& s) {
        buildFunctionCall(s, {1, {1}, {Value("a"), Value("")}, 1});
      },
      accepts(parseFunctionCall));
  add(
      "row_description",
      [](std::string& s) {
        buildRowDescriptionMessage(s, {{{"c", 1, 2, 3, 4, 5, 0}}});
      },
      accepts(parseRowDescription));
  add(
      "data_row",
      [](std::string& s) {
        buildDataRowMessage(s, {{Value("x"), std::nullopt}});
      },
      accepts(parseDataRow));
  add(
      "command_complete", [](std::string& s) { buildCommandComplete(s, "SELECT 1"); },
      accepts(parseCommandComplete));
  add(
      "parameter_description",
      [](std::string& s) {
        buildParameterDescription(s, {{23, 25}});
      },
      accepts(parseParameterDescription));
  add(
      "copy_in",
      [](std::string& s) {
        buildCopyResponse(s, be::kCopyInResponse, {0, {0, 0}});
      },
      accepts(parseCopyResponse));
  add(
      "notification",
      [](std::string& s) {
        buildNotificationResponse(s, {7, "ch", "pl"});
      },
      accepts(parseNotificationResponse));
  add(
      "negotiate",
      [](std::string& s) {
        buildNegotiateProtocolVersion(s, {1, {"_pq_.x"}});
      },
      accepts(parseNegotiateProtocolVersion));
  add(
      "function_result", [](std::string& s) { buildFunctionCallResponse(s, {Value("r")}); },
      accepts(parseFunctionCallResponse));
  add(
      "function_result_null", [](std::string& s) { buildFunctionCallResponse(s, {std::nullopt}); },
      accepts(parseFunctionCallResponse));
  add(
      "sync", [](std::string& s) { buildSync(s); }, parseEmptyBody);
  add(
      "no_data", [](std::string& s) { buildNoData(s); }, parseEmptyBody);
  return cases;
}

TEST(Malformed, EveryTruncationAndTrailingByteIsRejected) {
  const std::vector<Case> cases = allCases();
  ASSERT_GE(cases.size(), 30U);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const DecodeResult r = c.untyped ? decodeStartupFrame(c.wire) : decodeFrame(c.wire);
    ASSERT_EQ(r.status, DecodeStatus::kOk);
    const std::string body(r.frame.body);
    EXPECT_TRUE(c.parses(body));
    for (size_t n = 0; n < body.size(); ++n) {
      EXPECT_FALSE(c.parses(body.substr(0, n))) << "prefix of " << n << " bytes";
    }
    EXPECT_FALSE(c.parses(body + "x")) << "trailing byte";
  }
}

TEST(Malformed, ParsersNeverReadPastTheView) {
  // Each body is copied into an exact-size heap buffer, so ASan flags any over-read of a
  // truncated body; the parsers must also reject the message because of the cut.
  for (const Case& c : allCases()) {
    SCOPED_TRACE(c.name);
    const DecodeResult r = c.untyped ? decodeStartupFrame(c.wire) : decodeFrame(c.wire);
    ASSERT_EQ(r.status, DecodeStatus::kOk);
    for (size_t n = 0; n < r.frame.body.size(); ++n) {
      std::vector<char> exact(r.frame.body.begin(), r.frame.body.begin() + static_cast<long>(n));
      EXPECT_FALSE(c.parses(std::string_view(exact.data(), exact.size())));
    }
  }
}

}  // namespace
}  // namespace pgpilot::protocol
