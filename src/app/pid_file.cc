#include "app/pid_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgpilot::app {

namespace {

bool isLivePgpilot(int pid) {
  if (pid <= 0 || pid == ::getpid()) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  return argv0.find("pgpilot") != std::string::npos;
}

int readPid(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  in >> pid;
  return in ? pid : 0;
}

}  // namespace

std::expected<PidFile, std::string> PidFile::create(const std::string& path) {
  const int old = readPid(path);
  if (isLivePgpilot(old)) {
    return std::unexpected("pid file \"" + path + "\" exists and pgpilot with pid " +
                           std::to_string(old) + " is running");
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    return std::unexpected("could not create pid file \"" + path + "\": " + std::strerror(errno));
  }
  const std::string text = std::to_string(::getpid()) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return std::unexpected("could not write pid file \"" + path + "\": " + std::strerror(errno));
  }
  return PidFile(path);
}

std::expected<int, std::string> PidFile::readLive(const std::string& path) {
  const int pid = readPid(path);
  if (pid <= 0) return std::unexpected("no pid file \"" + path + "\": is pgpilot running?");
  if (!isLivePgpilot(pid)) {
    return std::unexpected("pid file \"" + path + "\" names pid " + std::to_string(pid) +
                           ", which is not a running pgpilot");
  }
  return pid;
}

PidFile::~PidFile() {
  if (!path_.empty() && readPid(path_) == ::getpid()) ::unlink(path_.c_str());
}

}  // namespace pgpilot::app
