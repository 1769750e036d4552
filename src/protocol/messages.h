// Typed PostgreSQL protocol 3.0 messages used by the proxy: parse and build.
//
// Purpose: the session, pool, auth and admin modules speak in these types rather than in
// raw bytes. Parsers take a Frame body and return std::nullopt on malformed input (the
// caller ends the session with a protocol_violation error); builders append to a buffer.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/codec.h"

namespace pgpilot::protocol {

// Frontend message type bytes (PostgreSQL docs, "Message Formats").
namespace fe {
inline constexpr char kQuery = 'Q';
inline constexpr char kParse = 'P';
inline constexpr char kBind = 'B';
inline constexpr char kDescribe = 'D';
inline constexpr char kExecute = 'E';
inline constexpr char kClose = 'C';
inline constexpr char kSync = 'S';
inline constexpr char kFlush = 'H';
inline constexpr char kTerminate = 'X';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyFail = 'f';
inline constexpr char kFunctionCall = 'F';
inline constexpr char kPassword = 'p';  // also SASLInitialResponse / SASLResponse

// The message types a client may send once startup is over (PostgreSQL answers any other
// with FATAL "invalid frontend message type").
constexpr bool isFrontendMessageType(char type) {
  switch (type) {
    case kQuery:
    case kParse:
    case kBind:
    case kDescribe:
    case kExecute:
    case kClose:
    case kSync:
    case kFlush:
    case kTerminate:
    case kCopyData:
    case kCopyDone:
    case kCopyFail:
    case kFunctionCall:
      return true;
    default:
      return false;
  }
}
}  // namespace fe

// Backend message type bytes.
namespace be {
inline constexpr char kAuthentication = 'R';
inline constexpr char kBackendKeyData = 'K';
inline constexpr char kParameterStatus = 'S';
inline constexpr char kReadyForQuery = 'Z';
inline constexpr char kErrorResponse = 'E';
inline constexpr char kNoticeResponse = 'N';
inline constexpr char kRowDescription = 'T';
inline constexpr char kDataRow = 'D';
inline constexpr char kCommandComplete = 'C';
inline constexpr char kEmptyQueryResponse = 'I';
inline constexpr char kParseComplete = '1';
inline constexpr char kBindComplete = '2';
inline constexpr char kCloseComplete = '3';
inline constexpr char kNoData = 'n';
inline constexpr char kParameterDescription = 't';
inline constexpr char kPortalSuspended = 's';
inline constexpr char kCopyInResponse = 'G';
inline constexpr char kCopyOutResponse = 'H';
inline constexpr char kCopyBothResponse = 'W';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kNotificationResponse = 'A';
inline constexpr char kNegotiateProtocolVersion = 'v';
inline constexpr char kFunctionCallResponse = 'V';
}  // namespace be

// Authentication request codes ('R' message, first int32).
enum class AuthCode : int32_t {
  kOk = 0,
  kCleartextPassword = 3,
  kMd5Password = 5,
  kSasl = 10,
  kSaslContinue = 11,
  kSaslFinal = 12,
};

// ---- startup phase -------------------------------------------------------------------

struct StartupPacket {
  enum class Kind { kStartup, kSslRequest, kGssEncRequest, kCancelRequest, kUnsupported };
  Kind kind = Kind::kUnsupported;
  int32_t code = 0;                                         // protocol version or request code
  std::vector<std::pair<std::string, std::string>> params;  // kStartup only
  int32_t cancel_pid = 0;                                   // kCancelRequest only
  int32_t cancel_key = 0;

  std::string_view param(std::string_view name) const;
  bool operator==(const StartupPacket&) const = default;
};

// Parses the body of an untyped startup-phase packet (after the length word). Any protocol
// version with major 3 is kStartup (the session negotiates the minor version); a startup
// packet must end with the empty parameter name as its last byte. SSL/GSSENC requests must
// be exactly the code, a CancelRequest exactly code + pid + key. Other codes are
// kUnsupported with `code` set, so the caller can answer with a precise error.
std::optional<StartupPacket> parseStartupPacket(std::string_view body);
void buildStartupMessage(std::string& out,
                         const std::vector<std::pair<std::string, std::string>>& params);
void buildCancelRequest(std::string& out, int32_t pid, int32_t key);
void buildSslRequest(std::string& out);
void buildGssEncRequest(std::string& out);

// ---- errors and notices ----------------------------------------------------------------

// Fields of ErrorResponse / NoticeResponse (PostgreSQL docs, "Error and Notice Message
// Fields"). Unknown field codes are kept in `other` so a relayed error loses nothing.
struct ErrorFields {
  std::string severity;  // 'S' (localized) and 'V'
  std::string code;      // 'C' SQLSTATE
  std::string message;   // 'M'
  std::string detail;    // 'D'
  std::string hint;      // 'H'
  std::vector<std::pair<char, std::string>> other;

  bool operator==(const ErrorFields&) const = default;
};

// Severity comes from 'V' (never localized) when present, else from 'S'; a localized 'S'
// that differs from 'V' is dropped. Field code 0 ends the list; nothing may follow it.
std::optional<ErrorFields> parseErrorFields(std::string_view body);
// Appends an ErrorResponse (type 'E') or NoticeResponse (type 'N').
void buildError(std::string& out, const ErrorFields& e, char type = be::kErrorResponse);
void buildError(std::string& out, std::string_view severity, std::string_view sqlstate,
                std::string_view message, std::string_view detail = {});

// ---- backend messages the proxy generates ---------------------------------------------

// `extra` follows the code: the 4-byte salt for kMd5Password, the SASL data for
// kSaslContinue/kSaslFinal. For kSasl it is the mechanism list as NUL-separated names
// ("SCRAM-SHA-256" or "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256"); the builder adds the
// terminators, and parseAuthRequest returns the same form, so the two round-trip. An
// already terminated list ("SCRAM-SHA-256\0\0") is accepted too and written unchanged.
void buildAuthRequest(std::string& out, AuthCode code, std::string_view extra = {});
void buildParameterStatus(std::string& out, std::string_view name, std::string_view value);
void buildBackendKeyData(std::string& out, int32_t pid, int32_t key);
void buildReadyForQuery(std::string& out, char tx_status);
void buildCommandComplete(std::string& out, std::string_view tag);
void buildEmptyQueryResponse(std::string& out);
// A result made of text columns: RowDescription with all columns of type text (oid 25).
// Precondition (both builders): at most 32767 columns, each value shorter than 2 GB.
void buildRowDescription(std::string& out, const std::vector<std::string>& columns);
// Empty optional = SQL NULL.
void buildDataRow(std::string& out, const std::vector<std::optional<std::string>>& values);

// ---- frontend messages the proxy generates (towards servers) --------------------------

void buildQuery(std::string& out, std::string_view sql);
void buildPasswordMessage(std::string& out, std::string_view password);
void buildSaslInitialResponse(std::string& out, std::string_view mechanism, std::string_view data);
void buildSaslResponse(std::string& out, std::string_view data);
void buildTerminate(std::string& out);
void buildSync(std::string& out);

// ---- small parsers -----------------------------------------------------------------

// Parsed structs in this section borrow from the body passed in: they are valid only while
// the buffer that holds the frame is.
struct AuthRequest {
  AuthCode code = AuthCode::kOk;
  std::string_view data;  // salt for md5, mechanisms / SASL data otherwise

  bool operator==(const AuthRequest&) const = default;
};
// kOk and kCleartextPassword must have no data, kMd5Password exactly a 4-byte salt, kSasl a
// well-formed mechanism list (see buildAuthRequest). Other codes (GSS, SSPI, ...) are
// returned with the raw data so the caller can refuse them by name.
std::optional<AuthRequest> parseAuthRequest(std::string_view body);
// Splits kSasl data ("A\0B") into mechanism names.
std::vector<std::string_view> splitSaslMechanisms(std::string_view data);

struct ParameterStatus {
  std::string_view name;
  std::string_view value;

  bool operator==(const ParameterStatus&) const = default;
};
std::optional<ParameterStatus> parseParameterStatus(std::string_view body);

struct BackendKeyData {
  int32_t pid = 0;
  int32_t key = 0;

  bool operator==(const BackendKeyData&) const = default;
};
std::optional<BackendKeyData> parseBackendKeyData(std::string_view body);

// The SQL text of a simple Query message (without the terminator).
std::optional<std::string_view> parseQuery(std::string_view body);
// ReadyForQuery's transaction status: 'I' idle, 'T' in transaction, 'E' failed transaction.
std::optional<char> parseReadyForQuery(std::string_view body);

// Password / SASLInitialResponse / SASLResponse bodies.
std::optional<std::string_view> parsePasswordMessage(std::string_view body);
struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;  // empty when the length is -1 (no initial response)

  bool operator==(const SaslInitialResponse&) const = default;
};
std::optional<SaslInitialResponse> parseSaslInitialResponse(std::string_view body);
// A SASLResponse body is the raw SASL data; it never fails, the optional keeps the shape.
std::optional<std::string_view> parseSaslResponse(std::string_view body);

}  // namespace pgpilot::protocol
