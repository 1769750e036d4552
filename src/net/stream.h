// A client or server byte stream: a TCP socket (or a Unix-domain socket to a server, adopted
// by the same socket type: see connectTo), optionally upgraded to TLS in place.
//
// Purpose: the session and pool modules read and write through Stream so that plain and
// TLS connections share one code path. Move-only; owns the socket. Lives on the worker
// thread that created it (its io_context); never touched from another thread.
// Errors are returned as std::error_code; nothing here throws.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

namespace pgpilot::net {

using tcp = asio::ip::tcp;
template <typename T>
using Task = asio::awaitable<T>;

// Completion token used everywhere on the data plane: errors come back as values.
inline constexpr auto kUseAwaitable = asio::experimental::as_tuple(asio::use_awaitable);

class Stream {
 public:
  // `local`: a Unix-domain socket (adoptUnixSocket): no peer address, no TLS.
  explicit Stream(tcp::socket socket, bool local = false)
      : socket_(std::move(socket)), local_(local) {}
  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&&) noexcept = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Upgrades to TLS as the server side (client connections) or client side (servers).
  Task<std::error_code> tlsAccept(asio::ssl::context& ctx);
  Task<std::error_code> tlsConnect(asio::ssl::context& ctx);

  // Not a coroutine: returns the socket's own awaitable (co_await it at once), so a read
  // costs no coroutine frame of its own.
  Task<std::tuple<std::error_code, size_t>> readSome(asio::mutable_buffer buf);
  Task<std::error_code> writeAll(asio::const_buffer buf);
  // Sends what the socket takes now, without waiting, and advances `buf` past it. True when
  // the write is over: every byte sent, or `ec` set. False: the rest of `buf` must wait for
  // room (co_await writeAll(buf)). On TLS nothing is sent here (false unless `buf` is empty).
  // Not a coroutine: the common case costs one send() and no asio operation.
  bool trySend(asio::const_buffer& buf, std::error_code& ec);
  Task<std::error_code> writeAll(std::string_view data) {
    return writeAll(asio::buffer(data.data(), data.size()));
  }

  bool isTls() const { return tls_ != nullptr; }
  bool isLocal() const { return local_; }
  bool isOpen() const;
  // Cancels pending reads/writes; they complete with asio::error::operation_aborted.
  void cancel();
  void close();
  // True if the peer has closed the connection or data is waiting (used on idle pooled
  // connections: an idle server must not have anything to say).
  bool peerClosedOrReadable();

  tcp::socket& socket();
  std::string peerAddress() const;  // textual IP; empty if unknown or a Unix socket

 private:
  using TlsStream = asio::ssl::stream<tcp::socket>;
  std::optional<tcp::socket> socket_;
  std::unique_ptr<TlsStream> tls_;
  bool local_ = false;
  bool send_buffer_full_ = false;  // the last trySend stopped on EAGAIN (see writeAll)
};

// Hands a connected Unix-domain socket to a tcp::socket on the same executor: reads,
// writes, cancel and close are the same system calls, so the rest of pgpilot keeps one
// socket type. TCP options and endpoints do not apply to it (Stream::isLocal()).
tcp::socket adoptUnixSocket(asio::local::stream_protocol::socket& s, std::error_code& ec);

// Waits for `op` but closes `stream`'s socket if `timeout` expires first, so that a hung
// peer cannot hold a coroutine forever. Returns true if the timer fired.
class Deadline {
 public:
  Deadline(asio::any_io_executor ex, std::chrono::milliseconds timeout, Stream& stream);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  bool expired() const { return *expired_; }

 private:
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<bool> expired_;
};

// A one-shot or repeatable signal for coroutines on one io_context (no locking): wait()
// suspends until notify() is called. Used for "server became idle" and pool waiters.
class Event {
 public:
  explicit Event(asio::any_io_executor ex)
      : timer_(ex, std::chrono::steady_clock::time_point::max()) {}
  // Waits until notify() or until `timeout` passes; returns false on timeout.
  Task<bool> wait(std::chrono::milliseconds timeout);
  Task<void> wait();
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// Serialises writers on one stream: two coroutines on the same io_context (client pump
// and server pump) both write to the client socket; messages must not interleave.
class WriteLock {
 public:
  explicit WriteLock(asio::any_io_executor ex) : released_(ex) {}
  Task<void> lock();
  // Fast path without a coroutine frame: true if the lock was free and is now held.
  bool tryLock() {
    if (held_) return false;
    held_ = true;
    return true;
  }
  void unlock();

 private:
  bool held_ = false;
  Event released_;
};

// Opens a connection to a PostgreSQL server within `timeout`. `host` is a name, an IP
// address, or (starting with '/') the directory of the server's Unix-domain socket, as in
// libpq: the socket is then <host>/.s.PGSQL.<port>, adopted by the returned tcp::socket.
Task<std::pair<std::error_code, tcp::socket>> connectTo(asio::any_io_executor ex,
                                                        const std::string& host, int port,
                                                        std::chrono::milliseconds timeout);
// True if `host` names a Unix-socket directory (an absolute path), as libpq decides.
bool isUnixSocketDir(std::string_view host);
std::string unixSocketPath(std::string_view dir, int port);

// Makes the TLS context for client connections from PEM files.
std::expected<std::shared_ptr<asio::ssl::context>, std::string> makeServerTlsContext(
    const std::string& cert, const std::string& key, const std::string& ciphers,
    bool prefer_server_ciphers);
// TLS context for connections to PostgreSQL servers (no certificate verification:
// sslmode=require semantics).
std::shared_ptr<asio::ssl::context> makeClientTlsContext();

}  // namespace pgpilot::net
