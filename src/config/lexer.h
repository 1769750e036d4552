// postgresql.conf syntax: splits one file's text into `name = value` directives.
//
// Purpose: a faithful, hand-written copy of PostgreSQL's guc-file.l scanner and its
// ParseConfigFp() grammar: `name = value` or `name value`, one per line, '#' comments,
// values that are identifiers, numbers (with unit letters), unquoted strings such as
// `localhost` or `a.b:c`, or single-quoted strings with '' and backslash escapes
// (\b \f \n \r \t, octal \NNN, any other \c is c). Include directives are returned like
// any other directive; the loader (config.cc) follows them.
// Thread-safety: pure function.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace pgpilot::config {

struct Directive {
  std::string name;        // as written (callers compare case-insensitively)
  std::string value;       // quotes removed and escapes processed
  int line = 0;            // 1-based line of the name
  bool qualified = false;  // "ext.name": never an include
};

std::expected<std::vector<Directive>, ConfigError> parseDirectives(std::string_view text,
                                                                   const std::string& file);

// GUC_scanstr: the contents of a single-quoted string (including the quotes) unescaped.
std::string unquote(std::string_view quoted);

}  // namespace pgpilot::config
