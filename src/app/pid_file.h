// PidFile: the pid file that stops two pgpilots from running with one configuration and
// lets `pgpilot stop` find the running one. A file left by a crashed run (its pid is dead
// or is not a pgpilot) does not block a new start.
#pragma once

#include <expected>
#include <string>

namespace pgpilot::app {

class PidFile {
 public:
  static std::expected<PidFile, std::string> create(const std::string& path);
  // Reads the pid of a live pgpilot from `path`, or an error text.
  static std::expected<int, std::string> readLive(const std::string& path);
  PidFile(PidFile&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  ~PidFile();

 private:
  explicit PidFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace pgpilot::app
