// ASCII character classes for SQL keywords and blanks, without libc's locale lookups (a
// function call per character in <cctype>). For code that runs on every statement; SQL
// keywords and PostgreSQL's blanks are ASCII.
//
//   while (!s.empty() && ascii::isBlank(s.front())) s.remove_prefix(1);
#pragma once

namespace pgpilot::ascii {

// The characters PostgreSQL's lexer skips as whitespace: space, \t \n \v \f \r.
constexpr bool isBlank(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

constexpr bool isLetter(char c) {
  return static_cast<unsigned char>((static_cast<unsigned char>(c) | 0x20) - 'a') < 26;
}

constexpr char toLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
}

}  // namespace pgpilot::ascii
