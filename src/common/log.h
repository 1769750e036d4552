// Logging: PostgreSQL-style levels on top of spdlog, with session and node ids in lines.
//
// Purpose: one place that maps pgpilot's log levels (error, warning, notice, info, log,
// debug1..debug5) onto spdlog, configures the sink (stderr or a file) and formats lines as
// "<timestamp> [pid] LEVEL: [s:<session> n:<node> u:<user> d:<db> a:<app>] message".
// Thread-safety: spdlog loggers are thread-safe; init() is called once from main before
// threads start (and again on reload from the control thread, which swaps the level only).
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pgpilot::log {

enum class Level {
  kDebug5,
  kDebug4,
  kDebug3,
  kDebug2,
  kDebug1,
  kInfo,
  kNotice,
  kLog,
  kWarning,
  kError,
  kFatal
};

// Parses "error", "warning", "notice", "info", "log", "debug1".."debug5" (pgpool names).
bool parseLevel(std::string_view text, Level* out);

// Sets up the logger. An empty `file` logs to stderr.
void init(Level level, const std::string& file);
void setLevel(Level level);
bool enabled(Level level);

// Who a line is about; empty fields are omitted from the line.
struct Context {
  uint64_t session = 0;
  int node = -1;
  std::string_view user;
  std::string_view database;
  std::string_view application;
};

void write(Level level, const Context& ctx, std::string_view message);
void write(Level level, std::string_view message);

template <typename... Args>
void logf(Level level, fmt::format_string<Args...> f, Args&&... args) {
  if (!enabled(level)) return;
  write(level, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logf(Level level, const Context& ctx, fmt::format_string<Args...> f, Args&&... args) {
  if (!enabled(level)) return;
  write(level, ctx, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace pgpilot::log
