#include "net/unix_listener.h"

#include "net/stream.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace pgpilot::net {
namespace {

std::string errnoText() {
  return std::strerror(errno);
}

// True if a process accepts connections on the socket file at `addr`.
bool someoneListens(const sockaddr_un& addr) {
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool listening =
      ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(probe);
  return listening;
}

}  // namespace

std::expected<UnixListener, std::string> UnixListener::open(const std::string& dir, int port,
                                                            int permissions,
                                                            const std::string& group, int backlog) {
  const std::string path = unixSocketPath(dir, port);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return std::unexpected(fmt::format("Unix socket path \"{}\" is too long (maximum {} bytes)",
                                       path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!group.empty()) {
    const struct group* g = ::getgrnam(group.c_str());
    if (g == nullptr) {
      return std::unexpected(fmt::format("unix_socket_group \"{}\" does not exist", group));
    }
    gid = g->gr_gid;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return std::unexpected(
          fmt::format("could not create Unix socket \"{}\": a file that is not a socket exists "
                      "there",
                      path));
    }
    if (someoneListens(addr)) {
      return std::unexpected(fmt::format(
          "could not create Unix socket \"{}\": another server is accepting connections on it",
          path));
    }
    ::unlink(path.c_str());  // left behind by a process that died
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected("could not create Unix socket: " + errnoText());
  UnixListener out(fd, "");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return std::unexpected(fmt::format("could not bind Unix socket \"{}\": {}", path, errnoText()));
  }
  out.path_ = path;  // ours from here on: removed by the destructor
  if (::chmod(path.c_str(), static_cast<mode_t>(permissions)) != 0 ||
      (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0)) {
    return std::unexpected(
        fmt::format("could not set the permissions of Unix socket \"{}\": {}", path, errnoText()));
  }
  if (::listen(fd, backlog) != 0) {
    return std::unexpected(
        fmt::format("could not listen on Unix socket \"{}\": {}", path, errnoText()));
  }
  return out;
}

UnixListener::UnixListener(UnixListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::exchange(other.path_, {})) {}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

UnixListener::~UnixListener() {
  release();
}

void UnixListener::release() {
  if (!path_.empty()) ::unlink(path_.c_str());
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  path_.clear();
}

std::expected<asio::local::stream_protocol::acceptor, std::string> UnixListener::adopt(
    asio::io_context& ctx) const {
  const int copy = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return std::unexpected("could not duplicate the Unix socket: " + errnoText());
  asio::local::stream_protocol::acceptor acc(ctx);
  std::error_code ec;
  acc.assign(asio::local::stream_protocol(), copy, ec);
  if (ec) {
    ::close(copy);
    return std::unexpected("could not watch the Unix socket: " + ec.message());
  }
  return acc;
}

}  // namespace pgpilot::net
