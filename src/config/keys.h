// The key table: every setting pgpilot implements, with its type, default unit, reload
// behaviour, description, and how it is stored into / shown from a Config.
//
// Purpose: one row per key drives parsing (config.cc), SHOW output (describeSettings),
// reload decisions (needsRestart, diffKeys) and docs/configuration.md. Backend keys with
// a numeric suffix have their own small table (backendKeys()).
// Thread-safety: the tables are immutable after static initialisation.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/values.h"

namespace pgpilot::config {

enum class KeyType { kString, kPath, kBool, kInt, kReal, kDuration, kEnum, kList };

// What a setter may need besides the value.
struct SetContext {
  std::string_view key;       // canonical key name, with the index for backend keys
  std::string_view base_dir;  // directory of the file the line came from (relative paths)
  std::string where;          // "file:line: " prefix for warnings and notices
  std::vector<std::string>* warnings = nullptr;
};

struct KeyDef;
// Returns an error message (without file:line) when the value is not acceptable.
using SetFn = std::expected<void, std::string> (*)(Config&, const KeyDef&, std::string_view,
                                                   const SetContext&);
using ShowFn = std::string (*)(const Config&);

struct KeyDef {
  std::string_view name;
  KeyType type;
  Unit unit;  // default unit of a bare number (durations), kNone otherwise
  int64_t min;
  int64_t max;  // in `unit` for durations
  bool needs_restart;
  bool secret;  // value masked in describeSettings
  std::string_view description;
  SetFn set;
  ShowFn show;
  std::span<const std::string_view> choices;  // for kEnum
};

std::span<const KeyDef> keyTable();
// `name` must already be lower case.
const KeyDef* findKey(std::string_view name);

// ---- backend keys: backend_<field>N, N in 0..kMaxBackendId ----
// The same table holds the per-node health-check overrides (health_check_periodN,
// connect_timeoutN, ...), which pgpool-II also names with the backend id as suffix.
inline constexpr int kMaxBackendId = 127;

using BackendSetFn = std::expected<void, std::string> (*)(BackendConfig&, std::string_view value,
                                                          const SetContext&);
using BackendShowFn = std::string (*)(const BackendConfig&);

struct BackendKeyDef {
  std::string_view prefix;  // "backend_hostname"
  KeyType type;
  bool needs_restart;  // for an existing backend; new backends may be added on reload
  std::string_view description;
  BackendSetFn set;
  BackendShowFn show;
  bool secret = false;  // value masked in describeSettings
};

std::span<const BackendKeyDef> backendKeys();

// Splits "backend_port12" into ("backend_port", 12). Returns false when `name` does not end
// in digits. *index is -1 when the digits do not fit an int.
bool splitIndex(std::string_view name, std::string_view* base, int* index);

// ---- pgpool-II keys that are accepted but ignored ----
// Keys accepted without an index, and bases that take a node index (health_check_period0).
bool isUnimplementedPgpoolKey(std::string_view name);
bool isUnimplementedPgpoolIndexedBase(std::string_view base);
// Keys that are ignored with a NOTICE saying why (num_init_children); nullptr otherwise.
const char* ignoredKeyNotice(std::string_view name);

}  // namespace pgpilot::config
