// Logging over spdlog with PostgreSQL level names and filtering.
//
// Filtering follows PostgreSQL's rule for the server log (is_log_level_output): LOG ranks
// above ERROR and below FATAL, so `log_min_messages = warning` still shows LOG lines such
// as connection logs, exactly like pgpool-II. The threshold is therefore kept here and the
// spdlog logger itself passes everything; spdlog levels are still set on each record
// (debug5..debug2 -> trace, debug1 -> debug, info/notice/log -> info, warning -> warn,
// error -> err, fatal -> critical) so spdlog sinks and tools see sensible severities.
#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>

namespace pgpilot::log {
namespace {

// PostgreSQL's order for the server log.
int severity(Level level) {
  switch (level) {
    case Level::kDebug5:
      return 0;
    case Level::kDebug4:
      return 1;
    case Level::kDebug3:
      return 2;
    case Level::kDebug2:
      return 3;
    case Level::kDebug1:
      return 4;
    case Level::kInfo:
      return 5;
    case Level::kNotice:
      return 6;
    case Level::kWarning:
      return 7;
    case Level::kError:
      return 8;
    case Level::kLog:
      return 9;
    case Level::kFatal:
      return 10;
  }
  return 10;
}

spdlog::level::level_enum spdlogLevel(Level level) {
  switch (level) {
    case Level::kDebug5:
    case Level::kDebug4:
    case Level::kDebug3:
    case Level::kDebug2:
      return spdlog::level::trace;
    case Level::kDebug1:
      return spdlog::level::debug;
    case Level::kInfo:
    case Level::kNotice:
    case Level::kLog:
      return spdlog::level::info;
    case Level::kWarning:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kFatal:
      return spdlog::level::critical;
  }
  return spdlog::level::critical;
}

std::string_view levelName(Level level) {
  switch (level) {
    case Level::kDebug5:
      return "DEBUG5";
    case Level::kDebug4:
      return "DEBUG4";
    case Level::kDebug3:
      return "DEBUG3";
    case Level::kDebug2:
      return "DEBUG2";
    case Level::kDebug1:
      return "DEBUG1";
    case Level::kInfo:
      return "INFO";
    case Level::kNotice:
      return "NOTICE";
    case Level::kLog:
      return "LOG";
    case Level::kWarning:
      return "WARNING";
    case Level::kError:
      return "ERROR";
    case Level::kFatal:
      return "FATAL";
  }
  return "LOG";
}

// "<timestamp> UTC [pid] " then our own "LEVEL: [context] message".
constexpr const char* kPattern = "%Y-%m-%d %H:%M:%S.%e UTC [%P] %v";

std::shared_ptr<spdlog::logger> makeLogger(spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("pgpilot", std::move(sink));
  logger->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(kPattern, spdlog::pattern_time_type::utc));
  logger->set_level(spdlog::level::trace);
  // Every line reaches the file at once: a crash must not eat the lines explaining it.
  logger->flush_on(spdlog::level::trace);
  return logger;
}

// The process-wide logger. Readers take a reference-counted snapshot, so init() can swap
// the sink while worker threads are logging.
struct State {
  std::atomic<int> threshold{severity(Level::kWarning)};
  std::atomic<std::shared_ptr<spdlog::logger>> logger{
      makeLogger(std::make_shared<spdlog::sinks::stderr_sink_mt>())};
};

State& state() {
  static State s;
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}

void emit(Level level, std::string_view line) {
  std::shared_ptr<spdlog::logger> logger = state().logger.load();
  logger->log(spdlogLevel(level), spdlog::string_view_t(line.data(), line.size()));
}

}  // namespace

bool parseLevel(std::string_view text, Level* out) {
  struct Name {
    std::string_view name;
    Level level;
  };
  // pgpool-II's server_message_level_options, including its aliases debug and panic.
  static constexpr Name kNames[] = {
      {"debug5", Level::kDebug5},   {"debug4", Level::kDebug4}, {"debug3", Level::kDebug3},
      {"debug2", Level::kDebug2},   {"debug1", Level::kDebug1}, {"debug", Level::kDebug2},
      {"info", Level::kInfo},       {"notice", Level::kNotice}, {"log", Level::kLog},
      {"warning", Level::kWarning}, {"error", Level::kError},   {"fatal", Level::kFatal},
      {"panic", Level::kFatal},
  };
  for (const Name& n : kNames) {
    if (equalsIgnoreCase(text, n.name)) {
      *out = n.level;
      return true;
    }
  }
  return false;
}

void init(Level level, const std::string& file) {
  State& s = state();
  s.threshold.store(severity(level));
  spdlog::sink_ptr sink;
  std::string failure;
  if (!file.empty()) {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
    } catch (const spdlog::spdlog_ex& e) {  // spdlog reports open failures by throwing
      failure = e.what();
    }
  }
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  s.logger.store(makeLogger(std::move(sink)));
  if (!failure.empty()) {
    write(Level::kError,
          "could not open log file \"" + file + "\": " + failure + "; logging to stderr");
  }
}

void setLevel(Level level) {
  state().threshold.store(severity(level));
}

bool enabled(Level level) {
  return severity(level) >= state().threshold.load();
}

void write(Level level, const Context& ctx, std::string_view message) {
  if (!enabled(level)) return;
  std::string line;
  line.reserve(message.size() + 64);
  line.append(levelName(level));
  line.append(": ");
  std::string context;
  auto add = [&context](std::string_view part) {
    if (!context.empty()) context.push_back(' ');
    context.append(part);
  };
  if (ctx.session != 0) add(fmt::format("s:{}", ctx.session));
  if (ctx.node >= 0) add(fmt::format("n:{}", ctx.node));
  if (!ctx.user.empty()) add(fmt::format("u:{}", ctx.user));
  if (!ctx.database.empty()) add(fmt::format("d:{}", ctx.database));
  if (!ctx.application.empty()) add(fmt::format("a:{}", ctx.application));
  if (!context.empty()) {
    line.push_back('[');
    line.append(context);
    line.append("] ");
  }
  line.append(message);
  emit(level, line);
}

void write(Level level, std::string_view message) {
  write(level, Context{}, message);
}

}  // namespace pgpilot::log
