// SQL quoting for the statements pgpilot composes itself (SET replay, catalog lookups,
// ALTER SYSTEM): standard_conforming_strings is on since PostgreSQL 9.1, so a literal only
// doubles its quotes. Pure functions, header-only.
#pragma once

#include <string>
#include <string_view>

namespace pgpilot::common {

inline std::string quoteWith(std::string_view v, char q) {
  std::string out(1, q);
  for (char c : v) {
    if (c == q) out.push_back(q);
    out.push_back(c);
  }
  out.push_back(q);
  return out;
}

// 'it''s'
inline std::string quoteLiteral(std::string_view v) {
  return quoteWith(v, '\'');
}

// "My ""Table"""
inline std::string quoteIdent(std::string_view v) {
  return quoteWith(v, '"');
}

}  // namespace pgpilot::common
