#include "auth/file_util.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgpilot::auth::detail {

std::expected<std::string, AuthError> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(AuthError{path + ": cannot read: " + std::strerror(errno)});
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::unexpected(AuthError{path + ": read error"});
  return ss.str();
}

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::string lineError(const std::string& name, size_t line, std::string_view msg) {
  return name + ":" + std::to_string(line) + ": " + std::string(msg);
}

}  // namespace pgpilot::auth::detail
