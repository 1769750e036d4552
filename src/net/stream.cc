#include "net/stream.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <asio/experimental/awaitable_operators.hpp>

namespace pgpilot::net {

Task<std::error_code> Stream::tlsAccept(asio::ssl::context& ctx) {
  tls_ = std::make_unique<TlsStream>(std::move(*socket_), ctx);
  socket_.reset();
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, kUseAwaitable);
  co_return ec;
}

Task<std::error_code> Stream::tlsConnect(asio::ssl::context& ctx) {
  tls_ = std::make_unique<TlsStream>(std::move(*socket_), ctx);
  socket_.reset();
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUseAwaitable);
  co_return ec;
}

Task<std::tuple<std::error_code, size_t>> Stream::readSome(asio::mutable_buffer buf) {
  if (tls_) return tls_->async_read_some(buf, kUseAwaitable);
  return socket_->async_read_some(buf, kUseAwaitable);
}

Task<std::error_code> Stream::writeAll(asio::const_buffer buf) {
  if (tls_) {
    auto [ec, n] = co_await asio::async_write(*tls_, buf, kUseAwaitable);
    co_return ec;
  }
  // After a trySend that found the send buffer full (a fast path's, just before this
  // call), another send() now would only fail again: go straight to waiting for room.
  std::error_code now_ec;
  if (!send_buffer_full_ && trySend(buf, now_ec)) co_return now_ec;
  auto [ec, n] = co_await asio::async_write(*socket_, buf, kUseAwaitable);
  send_buffer_full_ = false;
  co_return ec;
}

bool Stream::trySend(asio::const_buffer& buf, std::error_code& ec) {
  if (tls_) return buf.size() == 0;
  // A query or a result almost always fits in the socket's send buffer, so one
  // non-blocking send() finishes the write without an asio operation (no handler, no trip
  // through the scheduler, no suspension). Writers on one stream are serialised (WriteLock,
  // one pump per server stream), so nothing of ours can be queued ahead of these bytes.
  while (buf.size() > 0) {
    const ssize_t n =
        ::send(socket_->native_handle(), buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      buf += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = std::error_code(errno, asio::error::get_system_category());
      return true;
    } else {
      send_buffer_full_ = true;
      return false;  // the send buffer is full: the rest waits for room
    }
  }
  send_buffer_full_ = false;
  return true;
}

tcp::socket& Stream::socket() {
  return tls_ ? tls_->next_layer() : *socket_;
}

bool Stream::isOpen() const {
  return tls_ ? tls_->next_layer().is_open() : socket_->is_open();
}

void Stream::cancel() {
  std::error_code ignored;
  socket().cancel(ignored);
}

void Stream::close() {
  std::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
}

bool Stream::peerClosedOrReadable() {
  if (!isOpen()) return true;
  char c;
  const ssize_t n = ::recv(socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;  // orderly shutdown by the peer
  if (n > 0) return true;   // an idle server has nothing to say; data means trouble
  return errno != EAGAIN && errno != EWOULDBLOCK;
}

std::string Stream::peerAddress() const {
  if (local_) return {};
  std::error_code ec;
  const tcp::socket& s = tls_ ? tls_->next_layer() : *socket_;
  auto ep = s.remote_endpoint(ec);
  if (ec) return {};
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

Deadline::Deadline(asio::any_io_executor ex, std::chrono::milliseconds timeout, Stream& stream)
    : timer_(std::make_shared<asio::steady_timer>(ex)), expired_(std::make_shared<bool>(false)) {
  timer_->expires_after(timeout);
  // The handler owns shared state only; the stream outlives the Deadline (RAII scope).
  timer_->async_wait([expired = expired_, &stream](std::error_code ec) {
    if (ec) return;
    *expired = true;
    stream.close();
  });
}

Deadline::~Deadline() {
  timer_->cancel();
}

Task<bool> Event::wait(std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  // The shared timer never expires by itself; notify() cancels it, waking every waiter.
  // A private timer bounds this waiter only.
  asio::steady_timer local(timer_.get_executor());
  local.expires_after(timeout);
  auto result = co_await (timer_.async_wait(kUseAwaitable) || local.async_wait(kUseAwaitable));
  co_return result.index() == 0;
}

Task<void> Event::wait() {
  co_await timer_.async_wait(kUseAwaitable);
}

Task<void> WriteLock::lock() {
  while (held_) co_await released_.wait();
  held_ = true;
}

void WriteLock::unlock() {
  held_ = false;
  released_.notify();
}

namespace {

// Runs `connect` (an awaitable connecting `sock`) but closes `sock` if `timeout` passes
// first; the error is then asio::error::timed_out.
template <typename Socket, typename Connect>
Task<std::error_code> connectWithin(Socket& sock, std::chrono::milliseconds timeout,
                                    Connect& connect) {
  asio::steady_timer timer(sock.get_executor());
  timer.expires_after(timeout);
  bool timed_out = false;
  timer.async_wait([&](std::error_code ec) {
    if (!ec) {
      timed_out = true;
      std::error_code ignored;
      sock.close(ignored);
    }
  });
  std::error_code ec = co_await connect();
  timer.cancel();
  if (timed_out) ec = asio::error::timed_out;
  co_return ec;
}

}  // namespace

tcp::socket adoptUnixSocket(asio::local::stream_protocol::socket& s, std::error_code& ec) {
  tcp::socket out(s.get_executor());
  const int fd = s.release(ec);
  if (ec) return out;
  out.assign(tcp::v4(), fd, ec);
  if (ec) ::close(fd);
  return out;
}

bool isUnixSocketDir(std::string_view host) {
  return host.starts_with('/');
}

std::string unixSocketPath(std::string_view dir, int port) {
  return fmt::format("{}/.s.PGSQL.{}", dir, port);
}

Task<std::pair<std::error_code, tcp::socket>> connectTo(asio::any_io_executor ex,
                                                        const std::string& host, int port,
                                                        std::chrono::milliseconds timeout) {
  tcp::socket sock(ex);
  if (isUnixSocketDir(host)) {
    using local = asio::local::stream_protocol;
    local::socket us(ex);
    const local::endpoint ep(unixSocketPath(host, port));
    auto connect = [&]() -> Task<std::error_code> {
      auto [cec] = co_await us.async_connect(ep, kUseAwaitable);
      co_return cec;
    };
    std::error_code ec = co_await connectWithin(us, timeout, connect);
    if (!ec) sock = adoptUnixSocket(us, ec);
    co_return std::pair{ec, std::move(sock)};
  }
  tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), kUseAwaitable);
  if (rec) co_return std::pair{rec, std::move(sock)};
  auto connect = [&]() -> Task<std::error_code> {
    auto [cec, ep] = co_await asio::async_connect(sock, results, kUseAwaitable);
    co_return cec;
  };
  std::error_code ec = co_await connectWithin(sock, timeout, connect);
  if (!ec) {
    sock.set_option(tcp::no_delay(true), ec);
    std::error_code ignored;
    sock.set_option(asio::socket_base::keep_alive(true), ignored);
  }
  co_return std::pair{ec, std::move(sock)};
}

std::expected<std::shared_ptr<asio::ssl::context>, std::string> makeServerTlsContext(
    const std::string& cert, const std::string& key, const std::string& ciphers,
    bool prefer_server_ciphers) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  std::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  if (ec) return std::unexpected("cannot set TLS options: " + ec.message());
  ctx->use_certificate_chain_file(cert, ec);
  if (ec)
    return std::unexpected("could not load server certificate file \"" + cert +
                           "\": " + ec.message());
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec)
    return std::unexpected("could not load private key file \"" + key + "\": " + ec.message());
  if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx->native_handle(), ciphers.c_str()) != 1) {
    return std::unexpected("could not set the cipher list \"" + ciphers + "\"");
  }
  if (prefer_server_ciphers)
    SSL_CTX_set_options(ctx->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  return ctx;
}

std::shared_ptr<asio::ssl::context> makeClientTlsContext() {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_verify_mode(asio::ssl::verify_none);
  return ctx;
}

}  // namespace pgpilot::net
