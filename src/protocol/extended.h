// PostgreSQL protocol 3.0: typed codecs for the extended-query, COPY, function-call and
// remaining backend messages (the ones messages.h does not cover).
//
// Purpose: together with messages.h, every protocol 3.0 message type has a parser and a
// builder, so the session can inspect and rewrite any message (e.g. prepared statement
// names in Parse/Bind/Describe/Close) and tests and fuzzers can round-trip all of them.
// Ownership: parsed structs BORROW: their string_views point into the frame body passed to
// the parser and are valid only while that buffer is alive and unmodified. Copy the fields
// out (std::string) before consuming the bytes from the read buffer. Only the per-message
// vectors allocate; no field is copied. Builders take the same structs, so
// `build(x) -> decodeFrame -> parse == x`.
// Validation: parsers check structure (lengths, counts, terminators, no trailing bytes,
// discriminator bytes such as Describe's 'S'/'P'); they do not check format codes or oids,
// which PostgreSQL validates with a precise error of its own.
// Thread-safety: pure functions.
//
// Usage:
//   if (frame.type == fe::kBind) {
//     auto bind = protocol::parseBind(frame.body);
//     if (!bind) return protocolViolation();
//     ... bind->statement ...
//   }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "protocol/messages.h"

namespace pgpilot::protocol {

using Oid = uint32_t;

// Describe and Close name either a prepared statement or a portal.
enum class TargetKind : char { kStatement = 'S', kPortal = 'P' };

// A parameter, argument or column value: empty optional = SQL NULL (length -1 on the wire).
using Value = std::optional<std::string_view>;

// ---- frontend ----------------------------------------------------------------------------

struct ParseMessage {
  std::string_view statement;  // "" = unnamed statement
  std::string_view query;
  std::vector<Oid> param_types;  // 0 = unspecified

  bool operator==(const ParseMessage&) const = default;
};
std::optional<ParseMessage> parseParse(std::string_view body);
void buildParse(std::string& out, const ParseMessage& m);

struct BindMessage {
  std::string_view portal;
  std::string_view statement;
  // 0 entries = all text, 1 = applies to all, otherwise one per parameter (checked).
  std::vector<int16_t> param_formats;
  std::vector<Value> params;
  std::vector<int16_t> result_formats;

  bool operator==(const BindMessage&) const = default;
};
std::optional<BindMessage> parseBind(std::string_view body);
void buildBind(std::string& out, const BindMessage& m);

struct Target {
  TargetKind kind = TargetKind::kStatement;
  std::string_view name;

  bool operator==(const Target&) const = default;
};
std::optional<Target> parseDescribe(std::string_view body);
void buildDescribe(std::string& out, const Target& t);
std::optional<Target> parseClose(std::string_view body);
void buildClose(std::string& out, const Target& t);

struct ExecuteMessage {
  std::string_view portal;
  int32_t max_rows = 0;  // 0 = no limit

  bool operator==(const ExecuteMessage&) const = default;
};
std::optional<ExecuteMessage> parseExecute(std::string_view body);
void buildExecute(std::string& out, const ExecuteMessage& m);

void buildFlush(std::string& out);

// CopyData (both directions): the body is the data. Never fails; optional keeps the shape.
std::optional<std::string_view> parseCopyData(std::string_view body);
void buildCopyData(std::string& out, std::string_view data);
void buildCopyDone(std::string& out);
// CopyFail: the error message to report.
std::optional<std::string_view> parseCopyFail(std::string_view body);
void buildCopyFail(std::string& out, std::string_view message);

struct FunctionCallMessage {
  Oid function = 0;
  std::vector<int16_t> arg_formats;  // same 0/1/n rule as Bind
  std::vector<Value> args;
  int16_t result_format = 0;

  bool operator==(const FunctionCallMessage&) const = default;
};
std::optional<FunctionCallMessage> parseFunctionCall(std::string_view body);
void buildFunctionCall(std::string& out, const FunctionCallMessage& m);

// ---- backend -----------------------------------------------------------------------------

struct FieldDescription {
  std::string_view name;
  Oid table_oid = 0;
  int16_t column = 0;  // attribute number, 0 if not a table column
  Oid type_oid = 0;
  int16_t type_size = 0;  // pg_type.typlen; negative = variable width
  int32_t type_modifier = 0;
  int16_t format = 0;  // 0 text, 1 binary

  bool operator==(const FieldDescription&) const = default;
};
struct RowDescription {
  std::vector<FieldDescription> fields;

  bool operator==(const RowDescription&) const = default;
};
std::optional<RowDescription> parseRowDescription(std::string_view body);
// Named apart from messages.h's text-only buildRowDescription/buildDataRow so that calls
// with braced lists there never become ambiguous.
void buildRowDescriptionMessage(std::string& out, const RowDescription& m);

struct DataRow {
  std::vector<Value> values;

  bool operator==(const DataRow&) const = default;
};
std::optional<DataRow> parseDataRow(std::string_view body);
void buildDataRowMessage(std::string& out, const DataRow& m);

// CommandComplete: the command tag ("SELECT 3", "INSERT 0 1"). Built by
// buildCommandComplete in messages.h.
std::optional<std::string_view> parseCommandComplete(std::string_view body);

struct ParameterDescription {
  std::vector<Oid> param_types;

  bool operator==(const ParameterDescription&) const = default;
};
std::optional<ParameterDescription> parseParameterDescription(std::string_view body);
void buildParameterDescription(std::string& out, const ParameterDescription& m);

void buildNoData(std::string& out);
void buildParseComplete(std::string& out);
void buildBindComplete(std::string& out);
void buildCloseComplete(std::string& out);
void buildPortalSuspended(std::string& out);

// CopyInResponse ('G'), CopyOutResponse ('H') and CopyBothResponse ('W') share a body.
struct CopyResponse {
  int8_t format = 0;  // overall: 0 text, 1 binary
  std::vector<int16_t> column_formats;

  bool operator==(const CopyResponse&) const = default;
};
std::optional<CopyResponse> parseCopyResponse(std::string_view body);
// `type` is be::kCopyInResponse, be::kCopyOutResponse or be::kCopyBothResponse.
void buildCopyResponse(std::string& out, char type, const CopyResponse& m);

struct NotificationResponse {
  int32_t pid = 0;
  std::string_view channel;
  std::string_view payload;

  bool operator==(const NotificationResponse&) const = default;
};
std::optional<NotificationResponse> parseNotificationResponse(std::string_view body);
void buildNotificationResponse(std::string& out, const NotificationResponse& m);

struct NegotiateProtocolVersion {
  int32_t newest_minor = 0;  // newest minor version the server supports
  std::vector<std::string_view> unrecognized_options;

  bool operator==(const NegotiateProtocolVersion&) const = default;
};
std::optional<NegotiateProtocolVersion> parseNegotiateProtocolVersion(std::string_view body);
void buildNegotiateProtocolVersion(std::string& out, const NegotiateProtocolVersion& m);

struct FunctionCallResponse {
  Value result;

  bool operator==(const FunctionCallResponse&) const = default;
};
std::optional<FunctionCallResponse> parseFunctionCallResponse(std::string_view body);
void buildFunctionCallResponse(std::string& out, const FunctionCallResponse& m);

// ---- messages without a body -------------------------------------------------------------

// Sync, Flush, Terminate, CopyDone, NoData, ParseComplete, BindComplete, CloseComplete,
// PortalSuspended and EmptyQueryResponse carry nothing: valid iff the body is empty.
bool parseEmptyBody(std::string_view body);

}  // namespace pgpilot::protocol
