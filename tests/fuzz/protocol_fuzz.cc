// libFuzzer target for the protocol codec (framing, messages.h, extended.h).
//
// The input is used three ways: as a stream of typed messages (decodeFrame), as a
// startup-phase packet followed by typed messages (decodeStartupFrame first), and as one raw
// body. Every parser runs on every frame body whatever its type byte. Whatever a parser
// accepts must survive build -> decodeFrame -> parse unchanged, and for canonical formats
// the rebuilt body must equal the input bytes; a violation traps, so libFuzzer reports it.
// The seed corpus is tests/fuzz/corpus/protocol_fuzz/ (made by make_protocol_corpus.py)
// and also replays under ctest through replay_main.cc.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/codec.h"
#include "protocol/extended.h"
#include "protocol/messages.h"

namespace pgpilot::protocol {
namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// Re-encodes an accepted message and checks that it decodes and parses back to the same
// value. `canonical`: the format has a single encoding, so the bytes must match too.
template <typename Parse, typename Build>
void roundTrip(std::string_view body, Parse parse, Build build, bool canonical = true) {
  const auto first = parse(body);
  if (!first) return;
  std::string out;
  build(out, *first);
  const DecodeResult r = decodeFrame(out);
  require(r.status == DecodeStatus::kOk && r.frame.total_size == out.size());
  const auto second = parse(r.frame.body);
  require(second.has_value() && *second == *first);
  if (canonical) require(r.frame.body == body);
}

void checkStartup(std::string_view body) {
  const auto p = parseStartupPacket(body);
  if (!p) return;
  std::string out;
  switch (p->kind) {
    case StartupPacket::Kind::kStartup:
      buildStartupMessage(out, p->params);
      break;
    case StartupPacket::Kind::kSslRequest:
      buildSslRequest(out);
      break;
    case StartupPacket::Kind::kGssEncRequest:
      buildGssEncRequest(out);
      break;
    case StartupPacket::Kind::kCancelRequest:
      buildCancelRequest(out, p->cancel_pid, p->cancel_key);
      break;
    case StartupPacket::Kind::kUnsupported:
      return;
  }
  const DecodeResult r = decodeStartupFrame(out);
  // A re-encoded startup packet can only outgrow the limit if the input did too.
  if (r.status == DecodeStatus::kInvalid) {
    require(out.size() > kMaxStartupLength);
    return;
  }
  require(r.status == DecodeStatus::kOk && r.frame.total_size == out.size());
  const auto again = parseStartupPacket(r.frame.body);
  require(again.has_value() && again->kind == p->kind && again->params == p->params &&
          again->cancel_pid == p->cancel_pid && again->cancel_key == p->cancel_key);
  if (p->code == kProtocolV3 || p->kind != StartupPacket::Kind::kStartup) {
    require(r.frame.body == body);
  }
}

void checkMessagesH(std::string_view body) {
  roundTrip(
      body, parseErrorFields, [](std::string& o, const ErrorFields& e) { buildError(o, e); },
      false);
  roundTrip(body, parseAuthRequest,
            [](std::string& o, const AuthRequest& a) { buildAuthRequest(o, a.code, a.data); });
  if (const auto a = parseAuthRequest(body); a && a->code == AuthCode::kSasl) {
    for (const std::string_view m : splitSaslMechanisms(a->data)) require(!m.empty());
  }
  roundTrip(body, parseParameterStatus, [](std::string& o, const ParameterStatus& p) {
    buildParameterStatus(o, p.name, p.value);
  });
  roundTrip(body, parseBackendKeyData,
            [](std::string& o, const BackendKeyData& k) { buildBackendKeyData(o, k.pid, k.key); });
  roundTrip(body, parseQuery, [](std::string& o, std::string_view q) { buildQuery(o, q); });
  roundTrip(body, parseReadyForQuery, [](std::string& o, char s) { buildReadyForQuery(o, s); });
  roundTrip(body, parsePasswordMessage,
            [](std::string& o, std::string_view p) { buildPasswordMessage(o, p); });
  roundTrip(
      body, parseSaslInitialResponse,
      [](std::string& o, const SaslInitialResponse& s) {
        buildSaslInitialResponse(o, s.mechanism, s.data);
      },
      false);
  roundTrip(body, parseSaslResponse,
            [](std::string& o, std::string_view d) { buildSaslResponse(o, d); });
}

void checkExtendedH(std::string_view body) {
  roundTrip(body, parseParse, buildParse);
  roundTrip(body, parseBind, buildBind);
  roundTrip(body, parseDescribe, buildDescribe);
  roundTrip(body, parseClose, buildClose);
  roundTrip(body, parseExecute, buildExecute);
  roundTrip(body, parseCopyData, buildCopyData);
  roundTrip(body, parseCopyFail, buildCopyFail);
  roundTrip(body, parseFunctionCall, buildFunctionCall);
  roundTrip(body, parseRowDescription, buildRowDescriptionMessage);
  roundTrip(body, parseDataRow, buildDataRowMessage);
  roundTrip(body, parseCommandComplete,
            [](std::string& o, std::string_view t) { buildCommandComplete(o, t); });
  roundTrip(body, parseParameterDescription, buildParameterDescription);
  roundTrip(body, parseCopyResponse, [](std::string& o, const CopyResponse& c) {
    buildCopyResponse(o, be::kCopyOutResponse, c);
  });
  roundTrip(body, parseNotificationResponse, buildNotificationResponse);
  roundTrip(body, parseNegotiateProtocolVersion, buildNegotiateProtocolVersion);
  roundTrip(body, parseFunctionCallResponse, buildFunctionCallResponse);
  require(parseEmptyBody(body) == body.empty());
}

void checkBody(std::string_view body) {
  checkStartup(body);
  checkMessagesH(body);
  checkExtendedH(body);
}

// Splits `data` into typed frames the way a session does and checks every frame.
void checkTypedStream(std::string_view data) {
  while (true) {
    const DecodeResult r = decodeFrame(data);
    if (r.status != DecodeStatus::kOk) {
      require(r.status == DecodeStatus::kNeedMoreData || !r.error.empty());
      return;
    }
    require(r.frame.total_size >= 5 && r.frame.total_size <= data.size() &&
            r.frame.body.size() == r.frame.total_size - 5);
    checkBody(r.frame.body);
    data.remove_prefix(r.frame.total_size);
  }
}

void checkStartupStream(std::string_view data) {
  const DecodeResult r = decodeStartupFrame(data);
  if (r.status != DecodeStatus::kOk) return;
  require(r.frame.total_size >= 8 && r.frame.total_size <= kMaxStartupLength &&
          r.frame.total_size <= data.size());
  checkBody(r.frame.body);
  checkTypedStream(data.substr(r.frame.total_size));
}

}  // namespace
}  // namespace pgpilot::protocol

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgpilot::protocol;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  checkTypedStream(input);
  checkStartupStream(input);
  checkBody(input);
  return 0;
}
