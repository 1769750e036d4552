// PostgreSQL frontend/backend protocol 3.0: framing and primitive readers/writers.
//
// Purpose: split a byte stream into messages and build messages into a byte buffer,
// as pure functions on buffers (no I/O, no allocation per field). Everything that the
// session, pool and admin modules put on the wire goes through here.
// Thread-safety: all functions are pure; objects are not shared between threads.
// Protocol reference: PostgreSQL docs, "Frontend/Backend Protocol", "Message Formats".
//
// Usage:
//   auto r = protocol::decodeFrame(buffer, kMaxMessageLength);
//   if (r.status == DecodeStatus::kNeedMoreData) read more;
//   else if (r.status == DecodeStatus::kInvalid) send error, close session;
//   else handle(r.frame) and consume r.frame.total_size bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgpilot::protocol {

inline constexpr int32_t kProtocolV3 = 196608;  // 3.0
inline constexpr int32_t kCancelRequestCode = 80877102;
inline constexpr int32_t kSslRequestCode = 80877103;
inline constexpr int32_t kGssEncRequestCode = 80877104;
// A startup packet larger than this is refused (PostgreSQL's MAX_STARTUP_PACKET_LENGTH).
inline constexpr uint32_t kMaxStartupLength = 10000;
// Upper bound on one regular message (PostgreSQL itself allows up to 1 GB for a field).
inline constexpr uint32_t kMaxMessageLength = 1U << 30;

enum class DecodeStatus { kOk, kNeedMoreData, kInvalid };

// One typed message: the type byte, its body (after the length word), and how many bytes
// of the stream the whole message takes (1 + length).
struct Frame {
  char type = 0;
  std::string_view body;
  size_t total_size = 0;
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMoreData;
  Frame frame;
  std::string_view error;  // set when status == kInvalid
};

// Decodes one typed message ("type byte, int32 length including itself, body") from the
// front of `data`. Lengths below 4 or above `max_length` are invalid: the peer is broken
// or hostile and the session must end.
DecodeResult decodeFrame(std::string_view data, uint32_t max_length = kMaxMessageLength);

// Decodes an untyped startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest,
// CancelRequest): "int32 length including itself, body". Body excludes the length word.
DecodeResult decodeStartupFrame(std::string_view data);

// Reads big-endian fields from a message body. A read past the end sets failed() and
// returns zero/empty values so that callers can check once at the end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  int8_t int8();
  int16_t int16();
  int32_t int32();
  // A NUL-terminated string; the terminator is consumed, not returned.
  std::string_view cstring();
  std::string_view bytes(size_t n);
  std::string_view rest();

  bool failed() const { return failed_; }
  // Every read succeeded and the whole body was consumed: the formats in "Message Formats"
  // have no trailing bytes, so anything left over means a broken peer.
  bool consumedAll() const { return !failed_ && atEnd(); }
  bool atEnd() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// Appends one message to `out`. Call begin(), add fields, then finish() which patches the
// length word. Several messages can be built into one buffer back to back.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  // Starts a typed message; type 0 starts an untyped (startup-phase) message.
  Writer& begin(char type);
  Writer& int8(int8_t v);
  Writer& int16(int16_t v);
  Writer& int32(int32_t v);
  Writer& cstring(std::string_view s);
  Writer& bytes(std::string_view s);
  void finish();

 private:
  std::string& out_;
  size_t length_pos_ = 0;
};

int32_t readInt32(const char* p);
int16_t readInt16(const char* p);

}  // namespace pgpilot::protocol
