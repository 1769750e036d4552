#include "config/values.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace pgpilot::config {
namespace {

bool isBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && isBlank(s.back())) s.remove_suffix(1);
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

enum class Kind { kNone, kTime, kMemory };

struct UnitFactor {
  std::string_view name;
  Kind kind;
  double factor;  // in ms for time, bytes for memory
};

// guc.c's conversion tables, flattened: every unit against one base per kind.
constexpr std::array<UnitFactor, 11> kUnits = {{
    {"us", Kind::kTime, 0.001},
    {"ms", Kind::kTime, 1.0},
    {"s", Kind::kTime, 1000.0},
    {"min", Kind::kTime, 60.0 * 1000.0},
    {"h", Kind::kTime, 60.0 * 60.0 * 1000.0},
    {"d", Kind::kTime, 24.0 * 60.0 * 60.0 * 1000.0},
    {"B", Kind::kMemory, 1.0},
    {"kB", Kind::kMemory, 1024.0},
    {"MB", Kind::kMemory, 1024.0 * 1024.0},
    {"GB", Kind::kMemory, 1024.0 * 1024.0 * 1024.0},
    {"TB", Kind::kMemory, 1024.0 * 1024.0 * 1024.0 * 1024.0},
}};

Kind kindOf(Unit u) {
  switch (u) {
    case Unit::kMilliseconds:
    case Unit::kSeconds:
    case Unit::kMinutes:
      return Kind::kTime;
    case Unit::kBytes:
    case Unit::kKilobytes:
    case Unit::kMegabytes:
      return Kind::kMemory;
    case Unit::kNone:
      break;
  }
  return Kind::kNone;
}

double baseFactor(Unit u) {
  switch (u) {
    case Unit::kMilliseconds:
    case Unit::kBytes:
      return 1.0;
    case Unit::kSeconds:
      return 1000.0;
    case Unit::kMinutes:
      return 60.0 * 1000.0;
    case Unit::kKilobytes:
      return 1024.0;
    case Unit::kMegabytes:
      return 1024.0 * 1024.0;
    case Unit::kNone:
      break;
  }
  return 1.0;
}

// strtol(text, &end, 0): optional sign, then 0x hex, leading-0 octal or decimal digits.
// Returns the number of characters consumed (0 when no digits) and sets *overflow.
size_t parseIntegerPrefix(std::string_view s, double* out, bool* overflow) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  int base = 10;
  if (i + 1 < s.size() && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X') && i + 2 < s.size() &&
      std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
    base = 16;
    i += 2;
  } else if (i + 1 < s.size() && s[i] == '0' && isDigit(s[i + 1])) {
    base = 8;
  }
  uint64_t value = 0;
  const char* begin = s.data() + i;
  auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), value, base);
  if (ptr == begin) return 0;
  *overflow = ec == std::errc::result_out_of_range ||
              value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  double v = static_cast<double>(value);
  *out = negative ? -v : v;
  return static_cast<size_t>(ptr - s.data());
}

// strtod on the same text: optional sign, then what std::from_chars accepts.
size_t parseRealPrefix(std::string_view s, double* out) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  // from_chars would accept "inf"/"nan"; PostgreSQL does too, but they make no sense for
  // a setting and are rejected by the finiteness check below anyway.
  if (i >= s.size() || !(isDigit(s[i]) || s[i] == '.')) return 0;
  double value = 0;
  const char* begin = s.data() + i;
  auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), value);
  if (ptr == begin || ec != std::errc()) return 0;
  *out = negative ? -value : value;
  return static_cast<size_t>(ptr - s.data());
}

}  // namespace

std::optional<bool> parseBool(std::string_view text) {
  std::string_view t = trim(text);
  for (std::string_view yes : {"on", "true", "yes", "1"}) {
    if (equalsIgnoreCase(t, yes)) return true;
  }
  for (std::string_view no : {"off", "false", "no", "0"}) {
    if (equalsIgnoreCase(t, no)) return false;
  }
  return std::nullopt;
}

std::optional<double> parseQuantity(std::string_view text, Unit base) {
  std::string_view s = text;
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  double value = 0;
  bool overflow = false;
  size_t used = parseIntegerPrefix(s, &value, &overflow);
  // Like PostgreSQL's parse_int: a '.', an exponent or an overflow means it is a real.
  if (used == 0 || overflow ||
      (used < s.size() && (s[used] == '.' || s[used] == 'e' || s[used] == 'E'))) {
    used = parseRealPrefix(s, &value);
    if (used == 0) return std::nullopt;
  }
  if (!std::isfinite(value)) return std::nullopt;
  s.remove_prefix(used);
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  size_t unit_len = 0;
  while (unit_len < s.size() && isLetter(s[unit_len])) ++unit_len;
  std::string_view unit = s.substr(0, unit_len);
  s.remove_prefix(unit_len);
  if (!trim(s).empty()) return std::nullopt;
  if (unit.empty()) return value;
  Kind kind = kindOf(base);
  if (kind == Kind::kNone) return std::nullopt;
  for (const UnitFactor& u : kUnits) {
    if (u.kind == kind && u.name == unit) {
      double converted = value * u.factor / baseFactor(base);
      if (!std::isfinite(converted)) return std::nullopt;
      return converted;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> parseInteger(std::string_view text, Unit base) {
  std::optional<double> v = parseQuantity(text, base);
  if (!v) return std::nullopt;
  double r = std::rint(*v);
  // 2^63 is exactly representable; anything at or beyond it does not fit.
  constexpr double kLimit = 9223372036854775808.0;
  if (!(r > -kLimit && r < kLimit)) return std::nullopt;
  return static_cast<int64_t>(r);
}

std::string formatMilliseconds(int64_t ms) {
  if (ms == 0) return "0";
  struct Step {
    int64_t factor;
    std::string_view name;
  };
  constexpr std::array<Step, 4> kSteps = {{
      {24LL * 60 * 60 * 1000, "d"},
      {60LL * 60 * 1000, "h"},
      {60LL * 1000, "min"},
      {1000, "s"},
  }};
  for (const Step& step : kSteps) {
    if (ms % step.factor == 0) return std::to_string(ms / step.factor) + std::string(step.name);
  }
  return std::to_string(ms) + "ms";
}

std::string_view unitName(Unit unit) {
  switch (unit) {
    case Unit::kMilliseconds:
      return "ms";
    case Unit::kSeconds:
      return "s";
    case Unit::kMinutes:
      return "min";
    case Unit::kBytes:
      return "B";
    case Unit::kKilobytes:
      return "kB";
    case Unit::kMegabytes:
      return "MB";
    case Unit::kNone:
      break;
  }
  return "";
}

}  // namespace pgpilot::config
