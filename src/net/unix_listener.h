// A listening Unix-domain socket for client connections, as PostgreSQL and pgpool-II make
// them: <dir>/.s.PGSQL.<port>, so `psql -h <dir> -p <port>` finds it.
//
// open() refuses a socket file that another process still accepts on, and replaces one
// left behind by a process that died (nothing accepts on it). The file gets the given
// permissions and, if named, group. The listener owns the socket and removes the file
// when destroyed. One worker accepts on a dup() of the socket (adopt()) and deals the
// connections out to every worker (Worker::listenUnix).
//
//   auto l = UnixListener::open("/var/run/pgpilot", 9999, 0777, "", 1024);
//   if (!l) fatal(l.error());
#pragma once

#include <asio.hpp>

#include <expected>
#include <string>
#include <string_view>

namespace pgpilot::net {

class UnixListener {
 public:
  static std::expected<UnixListener, std::string> open(const std::string& dir, int port,
                                                       int permissions, const std::string& group,
                                                       int backlog);
  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&& other) noexcept;
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
  ~UnixListener();

  const std::string& path() const { return path_; }
  // An acceptor on `ctx` for a duplicate of the listening socket.
  std::expected<asio::local::stream_protocol::acceptor, std::string> adopt(
      asio::io_context& ctx) const;

 private:
  UnixListener(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void release();

  int fd_ = -1;
  std::string path_;
};

}  // namespace pgpilot::net
