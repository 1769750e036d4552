#include "pool/server_conn.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgpilot::pool {

using protocol::AuthCode;
namespace be = protocol::be;

std::string ServerError::str() const {
  return fields.code.empty() ? fields.message : fields.message + " (SQLSTATE " + fields.code + ")";
}

ServerError makeError(std::string_view sqlstate, std::string message, bool connection_failed) {
  ServerError e;
  e.fields.severity = "FATAL";
  e.fields.code = std::string(sqlstate);
  e.fields.message = std::move(message);
  e.connection_failed = connection_failed;
  return e;
}

net::Task<std::pair<std::error_code, protocol::Frame>> MessageReader::next(net::Stream& s,
                                                                           bool startup,
                                                                           uint32_t max_len) {
  for (;;) {
    std::string_view view(buf_.data() + start_, buf_.size() - start_);
    auto r = startup ? protocol::decodeStartupFrame(view) : protocol::decodeFrame(view, max_len);
    if (r.status == protocol::DecodeStatus::kOk) {
      start_ += r.frame.total_size;
      co_return std::pair{std::error_code{}, r.frame};
    }
    if (r.status == protocol::DecodeStatus::kInvalid) {
      co_return std::pair{std::make_error_code(std::errc::invalid_argument), protocol::Frame{}};
    }
    // Compact before growing so the buffer never holds consumed bytes for long.
    if (start_ > 0) {
      buf_.erase(0, start_);
      start_ = 0;
    }
    const size_t old = buf_.size();
    buf_.resize(old + 8192);
    auto [ec, n] = co_await s.readSome(asio::buffer(buf_.data() + old, 8192));
    buf_.resize(old + n);
    if (ec) co_return std::pair{ec, protocol::Frame{}};
  }
}

std::string MessageReader::takeBuffered() {
  std::string rest = buf_.substr(start_);
  buf_.clear();
  start_ = 0;
  return rest;
}

namespace {

ServerError ioError(const config::BackendConfig& b, std::string_view what, std::error_code ec) {
  auto e = makeError(
      "08006", fmt::format("{} node {} ({}:{}): {}", what, b.id, b.hostname, b.port, ec.message()),
      true);
  e.timed_out = ec == asio::error::timed_out;
  return e;
}

ServerError serverError(std::string_view body) {
  ServerError e;
  auto f = protocol::parseErrorFields(body);
  if (f) {
    e.fields = std::move(*f);
  } else {
    e.fields.severity = "FATAL";
    e.fields.code = "08P01";
    e.fields.message = "malformed ErrorResponse from server";
  }
  e.from_server = true;
  return e;
}

// Answers one authentication request from the server. Returns an error when pgpilot
// cannot satisfy it (no usable secret) or the server's SCRAM signature is wrong.
struct AuthState {
  std::optional<auth::ScramClient> scram;
};

std::expected<std::string, ServerError> answerAuth(const protocol::AuthRequest& req,
                                                   const Credentials& creds, AuthState& st) {
  std::string out;
  const auth::PasswordEntry* pw = creds.password ? &*creds.password : nullptr;
  const bool plain = pw && pw->kind == auth::PasswordEntry::Kind::kPlain;
  auto noSecret = [&](std::string_view method) {
    return std::unexpected(makeError(
        "28000", fmt::format("server requested {} authentication for user \"{}\", but pgpilot "
                             "has no usable password for it in pool_passwd",
                             method, creds.user)));
  };
  switch (req.code) {
    case AuthCode::kCleartextPassword:
      if (!plain) return noSecret("password");
      protocol::buildPasswordMessage(out, pw->secret);
      return out;
    case AuthCode::kMd5Password: {
      if (!pw || pw->kind == auth::PasswordEntry::Kind::kScram) return noSecret("md5");
      const std::string hash = plain ? auth::md5PasswordHash(pw->secret, creds.user) : pw->secret;
      protocol::buildPasswordMessage(out, auth::md5Response(hash, req.data));
      return out;
    }
    case AuthCode::kSasl: {
      const auto mechs = protocol::splitSaslMechanisms(req.data);
      if (std::find(mechs.begin(), mechs.end(), "SCRAM-SHA-256") == mechs.end()) {
        return std::unexpected(makeError("28000", "server offered no supported SASL mechanism"));
      }
      if (plain) {
        st.scram.emplace(pw->secret);
      } else if (!creds.scram_client_key.empty()) {
        st.scram.emplace(
            auth::ScramClient::fromKeys(creds.scram_client_key, creds.scram_server_key));
      } else {
        return noSecret("SCRAM-SHA-256");
      }
      protocol::buildSaslInitialResponse(out, "SCRAM-SHA-256", st.scram->clientFirst());
      return out;
    }
    case AuthCode::kSaslContinue: {
      if (!st.scram) return std::unexpected(makeError("08P01", "unexpected SASL continue"));
      auto final_msg = st.scram->handleServerFirst(req.data);
      if (!final_msg) return std::unexpected(makeError("28000", final_msg.error().message));
      protocol::buildSaslResponse(out, *final_msg);
      return out;
    }
    case AuthCode::kSaslFinal: {
      if (!st.scram) return std::unexpected(makeError("08P01", "unexpected SASL final"));
      auto ok = st.scram->verifyServerFinal(req.data);
      if (!ok) return std::unexpected(makeError("28000", ok.error().message));
      return out;  // nothing to send
    }
    default:
      return std::unexpected(makeError(
          "28000", fmt::format("server requested an unsupported authentication method ({})",
                               static_cast<int>(req.code))));
  }
}

}  // namespace

net::Task<std::expected<std::unique_ptr<ServerConn>, ServerError>> connectServer(
    asio::any_io_executor ex, const config::BackendConfig& backend, const Params& params,
    const Credentials& creds, std::chrono::milliseconds timeout, asio::ssl::context* tls,
    config::ServerSslMode sslmode) {
  const auto deadline_at = Clock::now() + timeout;
  auto [cec, sock] = co_await net::connectTo(ex, backend.hostname, backend.port, timeout);
  if (cec) co_return std::unexpected(ioError(backend, "could not connect to", cec));
  auto conn = std::make_unique<ServerConn>(
      net::Stream(std::move(sock), net::isUnixSocketDir(backend.hostname)), backend.id);
  conn->host_ = backend.hostname;
  conn->port_ = backend.port;
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline_at - Clock::now());
  net::Deadline deadline(ex, std::max(left, std::chrono::milliseconds(1)), conn->stream());
  MessageReader reader(4096);
  std::string out;

  // As libpq: no SSL over a Unix-domain socket, whatever the sslmode (the server would
  // refuse it, and the traffic does not leave the host).
  if (sslmode != config::ServerSslMode::kDisable && tls != nullptr &&
      !net::isUnixSocketDir(backend.hostname)) {
    protocol::buildSslRequest(out);
    if (auto ec = co_await conn->stream().writeAll(out)) {
      co_return std::unexpected(ioError(backend, "could not send SSLRequest to", ec));
    }
    char answer = 0;
    auto [rec, n] = co_await conn->stream().readSome(asio::buffer(&answer, 1));
    if (rec || n != 1)
      co_return std::unexpected(ioError(backend, "SSL negotiation failed with", rec));
    if (answer == 'S') {
      if (auto ec = co_await conn->stream().tlsConnect(*tls)) {
        co_return std::unexpected(ioError(backend, "TLS handshake failed with", ec));
      }
    } else if (sslmode == config::ServerSslMode::kRequire) {
      co_return std::unexpected(makeError(
          "08001",
          fmt::format("node {} does not support SSL, but backend_sslmode is require", backend.id)));
    }
    out.clear();
  }

  protocol::buildStartupMessage(out, params);
  if (auto ec = co_await conn->stream().writeAll(out)) {
    co_return std::unexpected(ioError(backend, "could not send startup packet to", ec));
  }
  AuthState auth_state;
  for (;;) {
    auto [ec, frame] = co_await reader.next(conn->stream());
    if (ec) {
      co_return std::unexpected(
          ioError(backend, deadline.expired() ? "timeout talking to" : "lost connection to",
                  deadline.expired() ? asio::error::timed_out : ec));
    }
    switch (frame.type) {
      case be::kAuthentication: {
        auto req = protocol::parseAuthRequest(frame.body);
        if (!req) co_return std::unexpected(makeError("08P01", "malformed authentication request"));
        if (req->code == AuthCode::kOk) break;
        auto reply = answerAuth(*req, creds, auth_state);
        if (!reply) co_return std::unexpected(reply.error());
        if (!reply->empty()) {
          if (auto wec = co_await conn->stream().writeAll(*reply)) {
            co_return std::unexpected(ioError(backend, "lost connection to", wec));
          }
        }
        break;
      }
      case be::kBackendKeyData:
        if (auto k = protocol::parseBackendKeyData(frame.body)) {
          conn->backend_pid_ = k->pid;
          conn->backend_key_ = k->key;
        }
        break;
      case be::kParameterStatus:
        if (auto p = protocol::parseParameterStatus(frame.body)) {
          conn->params_[std::string(p->name)] = std::string(p->value);
        }
        break;
      case be::kErrorResponse:
        co_return std::unexpected(serverError(frame.body));
      case be::kReadyForQuery:
        conn->tx_status_ = protocol::parseReadyForQuery(frame.body).value_or('I');
        conn->pending_ = reader.takeBuffered();
        co_return conn;
      default:  // NoticeResponse, NegotiateProtocolVersion: nothing to do
        break;
    }
  }
}

net::Task<std::expected<ServerConn::Result, ServerError>> ServerConn::query(
    std::string_view sql, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  net::Deadline deadline(ex, timeout, stream_);
  std::string out;
  protocol::buildQuery(out, sql);
  if (auto ec = co_await stream_.writeAll(out)) {
    co_return std::unexpected(makeError("08006", "lost connection: " + ec.message(), true));
  }
  MessageReader reader(4096);
  if (!pending_.empty()) {
    // Nothing should be pending on an idle connection; treat it as a broken stream.
    co_return std::unexpected(makeError("08P01", "unexpected data from an idle server", true));
  }
  Result result;
  std::optional<ServerError> error;
  for (;;) {
    auto [ec, frame] = co_await reader.next(stream_);
    if (ec) {
      auto e = makeError(
          "08006", deadline.expired() ? "query timed out" : "lost connection: " + ec.message(),
          true);
      e.timed_out = deadline.expired();
      co_return std::unexpected(std::move(e));
    }
    switch (frame.type) {
      case be::kRowDescription: {
        protocol::Reader r(frame.body);
        const int n = r.int16();
        for (int i = 0; i < n && !r.failed(); ++i) {
          result.columns.emplace_back(r.cstring());
          r.bytes(18);
        }
        break;
      }
      case be::kDataRow: {
        protocol::Reader r(frame.body);
        const int n = r.int16();
        auto& row = result.rows.emplace_back();
        for (int i = 0; i < n && !r.failed(); ++i) {
          const int32_t len = r.int32();
          if (len < 0) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(r.bytes(static_cast<size_t>(len))));
          }
        }
        break;
      }
      case be::kCommandComplete:
        result.command_tag = std::string(frame.body.substr(0, frame.body.find('\0')));
        break;
      case be::kParameterStatus:
        if (auto p = protocol::parseParameterStatus(frame.body)) {
          params_[std::string(p->name)] = std::string(p->value);
        }
        break;
      case be::kErrorResponse:
        error = serverError(frame.body);
        break;
      case be::kCopyInResponse: {
        // A reset or probe query never copies; refuse politely so the server ends it.
        std::string fail;
        protocol::Writer(fail).begin(protocol::fe::kCopyFail).cstring("not supported").finish();
        co_await stream_.writeAll(fail);
        break;
      }
      case be::kReadyForQuery:
        tx_status_ = protocol::parseReadyForQuery(frame.body).value_or('I');
        if (reader.hasBuffered()) {
          co_return std::unexpected(
              makeError("08P01", "unexpected data after ReadyForQuery", true));
        }
        if (error) co_return std::unexpected(*error);
        co_return result;
      default:
        break;
    }
  }
}

net::Task<void> sendCancel(asio::any_io_executor ex, std::string host, int port, int32_t pid,
                           int32_t key) {
  auto [ec, sock] = co_await net::connectTo(ex, host, port, std::chrono::seconds(5));
  if (ec) co_return;
  net::Stream s(std::move(sock));
  std::string out;
  protocol::buildCancelRequest(out, pid, key);
  co_await s.writeAll(out);
  // The server closes the connection after reading the request; wait for that so the
  // request is not lost by closing too early.
  char c;
  net::Deadline d(ex, std::chrono::seconds(5), s);
  co_await s.readSome(asio::buffer(&c, 1));
}

}  // namespace pgpilot::pool
