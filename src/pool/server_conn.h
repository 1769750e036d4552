// ServerConn: one authenticated connection to a PostgreSQL server, and the code that
// opens it (startup, authentication with whatever the server asks) and runs simple
// queries on it (probes, reset, session parameter replay).
//
// Purpose: the pool owns idle ServerConns; a session owns the one it is using. Move-only;
// lives on one worker's io_context. The cluster module uses the same code for health
// checks and role probes, so there is exactly one server-side startup implementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "config/config.h"
#include "net/stream.h"
#include "protocol/messages.h"

namespace pgpilot::pool {

using Clock = std::chrono::steady_clock;
using Params = std::vector<std::pair<std::string, std::string>>;

// An error from opening or using a server connection, ready to be relayed to a client.
struct ServerError {
  protocol::ErrorFields fields;    // severity, SQLSTATE, message (from the server or ours)
  bool from_server = false;        // the server said it (e.g. database does not exist)
  bool connection_failed = false;  // I/O failure or timeout: the node may be down
  bool timed_out = false;          // no answer in time: the node may only be slow
  std::string str() const;
};
ServerError makeError(std::string_view sqlstate, std::string message,
                      bool connection_failed = false);

// How pgpilot proves who it is to a server.
struct Credentials {
  std::string user;
  std::optional<auth::PasswordEntry> password;  // from the password file
  // SCRAM pass-through (RFC 5802 keys proven by the client), used when only a verifier is
  // stored and the server asks for SCRAM.
  std::string scram_client_key;
  std::string scram_server_key;
};

// Reads whole messages (typed, or the untyped startup packet) from a Stream.
class MessageReader {
 public:
  explicit MessageReader(size_t initial = 8192) { buf_.reserve(initial); }
  // The frame stays valid until the next call. Errors: I/O errors, or
  // asio::error::invalid_argument for a malformed length.
  net::Task<std::pair<std::error_code, protocol::Frame>> next(
      net::Stream& s, bool startup = false, uint32_t max_len = protocol::kMaxMessageLength);
  // Bytes read past the last returned frame (handed to whoever reads next).
  std::string takeBuffered();
  bool hasBuffered() const { return buf_.size() > start_; }

 private:
  std::string buf_;
  size_t start_ = 0;
};

class ServerConn {
 public:
  ServerConn(net::Stream stream, int node) : stream_(std::move(stream)), node_(node) {}

  net::Stream& stream() { return stream_; }
  int node() const { return node_; }
  int32_t backendPid() const { return backend_pid_; }
  int32_t backendKey() const { return backend_key_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // Current values of reported parameters (ParameterStatus), kept up to date by whoever
  // reads the connection.
  std::map<std::string, std::string>& params() { return params_; }
  char txStatus() const { return tx_status_; }
  void setTxStatus(char s) { tx_status_ = s; }
  Clock::time_point createdAt() const { return created_at_; }
  Clock::time_point lastUsed() const { return last_used_; }
  void touch() { last_used_ = Clock::now(); }
  // Bytes already read from the server that belong to the next reader.
  std::string& pending() { return pending_; }

  // Runs one simple query and collects the result (text values; NULL = nullopt).
  struct Result {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::string command_tag;
  };
  net::Task<std::expected<Result, ServerError>> query(std::string_view sql,
                                                      std::chrono::milliseconds timeout);

 private:
  friend net::Task<std::expected<std::unique_ptr<ServerConn>, ServerError>> connectServer(
      asio::any_io_executor, const config::BackendConfig&, const Params&, const Credentials&,
      std::chrono::milliseconds, asio::ssl::context*, config::ServerSslMode);

  net::Stream stream_;
  int node_;
  std::string host_;
  int port_ = 0;
  int32_t backend_pid_ = 0;
  int32_t backend_key_ = 0;
  std::map<std::string, std::string> params_;
  char tx_status_ = 'I';
  Clock::time_point created_at_ = Clock::now();
  Clock::time_point last_used_ = Clock::now();
  std::string pending_;
};

// Opens a connection to `backend`, sends a StartupMessage with `params` (user, database,
// options ...), answers the server's authentication request using `creds`, and reads up to
// the first ReadyForQuery. Bounded by `timeout` as a whole.
net::Task<std::expected<std::unique_ptr<ServerConn>, ServerError>> connectServer(
    asio::any_io_executor ex, const config::BackendConfig& backend, const Params& params,
    const Credentials& creds, std::chrono::milliseconds timeout, asio::ssl::context* tls,
    config::ServerSslMode sslmode);

// Sends a CancelRequest for (pid, key) to host:port on a new connection.
net::Task<void> sendCancel(asio::any_io_executor ex, std::string host, int port, int32_t pid,
                           int32_t key);

}  // namespace pgpilot::pool
