// Loading: reads files (following include directives), applies each directive through the
// key table (keys.cc), then validates the result as a whole.
#include "config/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "config/keys.h"
#include "config/lexer.h"

namespace pgpilot::config {
namespace {

namespace fs = std::filesystem;

// PostgreSQL's CONF_FILE_MAX_DEPTH.
constexpr int kMaxIncludeDepth = 10;
// A configuration file this large is a mistake (or an attack on the fuzzer); refuse it.
constexpr size_t kMaxFileSize = 16 * 1024 * 1024;

using Status = std::expected<void, ConfigError>;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string dirOf(const std::string& file) {
  return fs::path(file).parent_path().string();
}

// Relative include targets are relative to the including file's directory.
std::string resolveAgainst(const std::string& including_file, const std::string& target) {
  fs::path p(target);
  if (p.is_absolute()) return target;
  std::string dir = dirOf(including_file);
  if (dir.empty()) return target;
  return (fs::path(dir) / p).lexically_normal().string();
}

std::string canonical(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(path), ec);
  return ec ? path : p.string();
}

// Reads a whole file; the error text is PostgreSQL's "could not open configuration file".
std::expected<std::string, std::string> readWholeFile(const std::string& path) {
  auto fail = [&](const char* why) {
    return std::unexpected(fmt::format("could not open configuration file \"{}\": {}", path, why));
  };
  std::error_code ec;
  if (fs::is_directory(fs::path(path), ec)) return fail(std::strerror(EISDIR));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return fail(std::strerror(errno));
  std::string data;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    data.append(buf, n);
    if (data.size() > kMaxFileSize) {
      std::fclose(f);
      return fail("file is larger than 16 MB");
    }
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return fail("read error");
  return data;
}

struct Origin {
  std::string file;
  int line = 0;
};

struct PendingBackend {
  BackendConfig config;
  bool has_hostname = false;
  Origin first;           // where the first key of this backend was set
  std::string first_key;  // e.g. "backend_port1"
};

class Loader {
 public:
  Loader(const std::string& source_path, const LoadOptions& options) : options_(options) {
    config_.source_path = source_path;
  }

  Status readFile(const std::string& path, int depth, const Origin* includer);
  Status readText(std::string_view text, const std::string& file, int depth);
  std::expected<LoadResult, ConfigError> finish();

 private:
  Status apply(const Directive& d, const std::string& file, int depth);
  Status include(const Directive& d, std::string_view kind, const std::string& file, int depth);
  Status includeDir(const std::string& dir, const Origin& at, int depth);
  Status setBackend(const BackendKeyDef& key, int index, const Directive& d,
                    const std::string& file);
  ConfigError errorAt(std::string_view key, std::string message) const;
  Status validate() const;

  LoadOptions options_;
  Config config_;
  std::map<int, PendingBackend> backends_;
  std::map<std::string, Origin, std::less<>> origins_;  // last assignment of each key
  std::set<std::string, std::less<>> reported_;         // keys already warned/noticed about
  std::vector<std::string> stack_;                      // canonical paths being read
  std::vector<std::string> warnings_;
  std::vector<std::string> notices_;
};

Status Loader::readFile(const std::string& path, int depth, const Origin* includer) {
  auto fail = [&](std::string message) -> Status {
    if (includer == nullptr) return std::unexpected(ConfigError{path, 0, std::move(message)});
    return std::unexpected(ConfigError{includer->file, includer->line, std::move(message)});
  };
  if (depth > kMaxIncludeDepth) {
    return fail(fmt::format(
        "could not open configuration file \"{}\": maximum nesting depth exceeded", path));
  }
  std::string canon = canonical(path);
  if (std::find(stack_.begin(), stack_.end(), canon) != stack_.end()) {
    return fail(
        fmt::format("include cycle: configuration file \"{}\" is already being read", path));
  }
  auto text = readWholeFile(path);
  if (!text) return fail(std::move(text.error()));
  stack_.push_back(canon);
  Status s = readText(*text, path, depth);
  stack_.pop_back();
  return s;
}

Status Loader::readText(std::string_view text, const std::string& file, int depth) {
  auto directives = parseDirectives(text, file);
  if (!directives) return std::unexpected(std::move(directives.error()));
  for (const Directive& d : *directives) {
    if (auto s = apply(d, file, depth); !s) return s;
  }
  return {};
}

Status Loader::include(const Directive& d, std::string_view kind, const std::string& file,
                       int depth) {
  Origin at{file, d.line};
  if (!options_.follow_includes) {
    return std::unexpected(ConfigError{file, d.line, fmt::format("{} is disabled here", kind)});
  }
  if (d.value.empty()) {
    return std::unexpected(ConfigError{file, d.line, fmt::format("empty file name in {}", kind)});
  }
  std::string target = resolveAgainst(file, d.value);
  if (kind == "include_dir") return includeDir(target, at, depth + 1);
  if (kind == "include_if_exists") {
    std::error_code ec;
    if (!fs::exists(fs::path(target), ec)) {
      notices_.push_back(
          fmt::format("{}:{}: skipping missing configuration file \"{}\"", file, d.line, target));
      return {};
    }
  }
  return readFile(target, depth + 1, &at);
}

// Like PostgreSQL: every regular file ending in ".conf" and not starting with '.', in
// byte order of the file name.
Status Loader::includeDir(const std::string& dir, const Origin& at, int depth) {
  std::error_code ec;
  fs::directory_iterator it(fs::path(dir), ec);
  if (ec) {
    return std::unexpected(ConfigError{
        at.file, at.line,
        fmt::format("could not open configuration directory \"{}\": {}", dir, ec.message())});
  }
  std::vector<std::string> files;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    if (name.empty() || name.front() == '.' || name.size() <= 5 ||
        name.compare(name.size() - 5, 5, ".conf") != 0) {
      continue;
    }
    std::error_code type_ec;
    if (!fs::is_regular_file(it->path(), type_ec)) continue;
    files.push_back(it->path().string());
  }
  if (ec) {
    return std::unexpected(ConfigError{
        at.file, at.line,
        fmt::format("could not read configuration directory \"{}\": {}", dir, ec.message())});
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    if (auto s = readFile(f, depth, &at); !s) return s;
  }
  return {};
}

Status Loader::apply(const Directive& d, const std::string& file, int depth) {
  std::string name = lower(d.name);
  if (!d.qualified && (name == "include" || name == "include_if_exists" || name == "include_dir")) {
    return include(d, name, file, depth);
  }
  std::string where = fmt::format("{}:{}: ", file, d.line);
  auto fail = [&](std::string message) -> Status {
    return std::unexpected(ConfigError{file, d.line, std::move(message)});
  };
  if (d.qualified) return fail(fmt::format("unrecognized configuration parameter \"{}\"", d.name));
  std::string base_dir = dirOf(file);
  if (const KeyDef* key = findKey(name)) {
    SetContext ctx{key->name, base_dir, where, &warnings_};
    if (auto r = key->set(config_, *key, d.value, ctx); !r) return fail(std::move(r.error()));
    origins_[name] = Origin{file, d.line};
    return {};
  }
  if (const char* notice = ignoredKeyNotice(name)) {
    if (reported_.insert(name).second) notices_.push_back(where + notice);
    return {};
  }
  std::string_view base;
  int index = 0;
  bool indexed = splitIndex(name, &base, &index);
  if (indexed) {
    for (const BackendKeyDef& key : backendKeys()) {
      if (key.prefix == base) return setBackend(key, index, d, file);
    }
  }
  if (isUnimplementedPgpoolKey(name) || (indexed && isUnimplementedPgpoolIndexedBase(base))) {
    if (reported_.insert(name).second) {
      warnings_.push_back(where + fmt::format("pgpool-II setting \"{}\" is not implemented by "
                                              "pgpilot yet and is ignored",
                                              name));
    }
    return {};
  }
  return fail(fmt::format("unrecognized configuration parameter \"{}\"", d.name));
}

Status Loader::setBackend(const BackendKeyDef& key, int index, const Directive& d,
                          const std::string& file) {
  if (index < 0 || index > kMaxBackendId) {
    return std::unexpected(ConfigError{
        file, d.line,
        fmt::format("backend number in \"{}\" is out of range (0 .. {})", d.name, kMaxBackendId)});
  }
  std::string canonical_name = fmt::format("{}{}", key.prefix, index);
  auto [it, inserted] = backends_.try_emplace(index);
  PendingBackend& pb = it->second;
  if (inserted) {
    pb.config.id = index;
    pb.first = Origin{file, d.line};
    pb.first_key = canonical_name;
  }
  std::string where = fmt::format("{}:{}: ", file, d.line);
  std::string base_dir = dirOf(file);
  SetContext ctx{canonical_name, base_dir, where, &warnings_};
  if (auto r = key.set(pb.config, d.value, ctx); !r) {
    return std::unexpected(ConfigError{file, d.line, std::move(r.error())});
  }
  if (key.prefix == "backend_hostname") pb.has_hostname = true;
  origins_[canonical_name] = Origin{file, d.line};
  return {};
}

ConfigError Loader::errorAt(std::string_view key, std::string message) const {
  auto it = origins_.find(key);
  if (it == origins_.end()) return ConfigError{config_.source_path, 0, std::move(message)};
  return ConfigError{it->second.file, it->second.line, std::move(message)};
}

Status Loader::validate() const {
  for (const auto& [id, pb] : backends_) {
    if (!pb.has_hostname) {
      return std::unexpected(ConfigError{
          pb.first.file, pb.first.line,
          fmt::format("backend {} has {} but no backend_hostname{}", id, pb.first_key, id)});
    }
  }
  if (backends_.empty()) {
    return std::unexpected(
        ConfigError{config_.source_path, 0, "no backend configured: set backend_hostname0"});
  }
  int always_primary = 0;
  for (const auto& [id, pb] : backends_) {
    if (pb.config.flag == BackendFlag::kAlwaysPrimary && ++always_primary > 1) {
      return std::unexpected(errorAt(fmt::format("backend_flag{}", id),
                                     "ALWAYS_PRIMARY is set on more than one backend"));
    }
  }
  if (config_.listen_addresses.empty() && config_.unix_socket_directories.empty()) {
    return std::unexpected(errorAt("listen_addresses",
                                   "listen_addresses and unix_socket_directories are both "
                                   "empty: no client could connect"));
  }
  if (config_.ssl && config_.ssl_cert.empty()) {
    return std::unexpected(errorAt("ssl", "ssl is on but ssl_cert is not set"));
  }
  if (config_.ssl && config_.ssl_key.empty()) {
    return std::unexpected(errorAt("ssl", "ssl is on but ssl_key is not set"));
  }
  // Every node whose health checks are on needs a user (its own or the global one).
  for (const auto& [id, pb] : backends_) {
    const HealthCheckSettings hc = healthCheckSettings(config_, pb.config);
    if (hc.period.count() <= 0 || !hc.user.empty()) continue;
    if (!pb.config.health_check.period) {
      return std::unexpected(errorAt("health_check_period",
                                     "health_check_period is set but health_check_user is empty"));
    }
    return std::unexpected(
        errorAt(fmt::format("health_check_period{}", id),
                fmt::format("health_check_period{0} is set but neither health_check_user{0} nor "
                            "health_check_user is set",
                            id)));
  }
  if (config_.admin_port != 0 && config_.admin_port == config_.port) {
    return std::unexpected(errorAt("admin_port", "admin_port must differ from port"));
  }
  return {};
}

std::expected<LoadResult, ConfigError> Loader::finish() {
  if (auto s = validate(); !s) return std::unexpected(std::move(s.error()));
  for (auto& [id, pb] : backends_) config_.backends.push_back(std::move(pb.config));
  LoadResult result;
  result.config = std::make_shared<const Config>(std::move(config_));
  result.warnings = std::move(warnings_);
  result.notices = std::move(notices_);
  return result;
}

}  // namespace

std::string ConfigError::str() const {
  if (file.empty()) return message;
  if (line > 0) return fmt::format("{}:{}: {}", file, line, message);
  return fmt::format("{}: {}", file, message);
}

std::expected<LoadResult, ConfigError> loadFile(const std::string& path) {
  Loader loader(path, LoadOptions{});
  if (auto s = loader.readFile(path, 0, nullptr); !s) return std::unexpected(std::move(s.error()));
  return loader.finish();
}

std::expected<LoadResult, ConfigError> loadString(std::string_view text, const std::string& name) {
  return loadString(text, name, LoadOptions{});
}

std::expected<LoadResult, ConfigError> loadString(std::string_view text, const std::string& name,
                                                  const LoadOptions& options) {
  Loader loader(name, options);
  if (auto s = loader.readText(text, name, 0); !s) return std::unexpected(std::move(s.error()));
  return loader.finish();
}

}  // namespace pgpilot::config
