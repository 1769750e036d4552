#include "config/lexer.h"

#include <algorithm>

namespace pgpilot::config {
namespace {

enum class Tok {
  kEof,
  kEol,
  kId,
  kQualifiedId,
  kString,
  kUnquoted,
  kInteger,
  kReal,
  kEquals,
  kError
};

struct Token {
  Tok kind = Tok::kEof;
  std::string_view text;
  int line = 1;
};

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool isUnitLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// guc-file.l: LETTER [A-Za-z_\200-\377]
bool isLetter(char c) {
  return isUnitLetter(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool isLetterOrDigit(char c) {
  return isLetter(c) || isDigit(c);
}

// Hand-written flex: every rule's match length is computed and the longest wins; ties go
// to the rule listed first in guc-file.l (ID, QUALIFIED_ID, STRING, UNQUOTED_STRING,
// INTEGER, REAL).
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  Token next() {
    skipBlanksAndComment();
    Token t;
    t.line = line_;
    if (pos_ >= text_.size()) return t;
    char c = text_[pos_];
    size_t len = 1;
    if (c == '\n') {
      t.kind = Tok::kEol;
      ++line_;
    } else if (c == '=') {
      t.kind = Tok::kEquals;
    } else if (c == '\'') {
      len = stringLength();
      t.kind = len > 0 ? Tok::kString : Tok::kError;
      len = std::max<size_t>(len, 1);
    } else if (isLetter(c)) {
      len = wordLength(&t.kind);
    } else {
      size_t int_len = integerLength();
      size_t real_len = realLength();
      if (int_len == 0 && real_len == 0) {
        t.kind = Tok::kError;
      } else if (int_len >= real_len) {
        t.kind = Tok::kInteger;
        len = int_len;
      } else {
        t.kind = Tok::kReal;
        len = real_len;
      }
    }
    t.text = text_.substr(pos_, len);
    pos_ += len;
    return t;
  }

 private:
  void skipBlanksAndComment() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  char at(size_t i) const { return i < text_.size() ? text_[i] : '\0'; }

  // STRING \'([^'\\\n]|\\.|\'\')*\' ; 0 when no complete string starts here. A "''" may
  // be an escaped quote or the end followed by a new string; flex takes the longest.
  size_t stringLength() const {
    size_t i = pos_ + 1;
    size_t last_close = 0;
    while (i < text_.size()) {
      char c = text_[i];
      if (c == '\n') break;
      if (c == '\\') {
        if (i + 1 >= text_.size() || text_[i + 1] == '\n') break;
        i += 2;
      } else if (c == '\'') {
        last_close = i + 1 - pos_;
        if (at(i + 1) != '\'') return last_close;
        i += 2;
      } else {
        ++i;
      }
    }
    return last_close;
  }

  // ID, QUALIFIED_ID ({ID}"."{ID}) or UNQUOTED_STRING ({LETTER}({LETTER_OR_DIGIT}|[-._:/])*).
  size_t wordLength(Tok* kind) const {
    size_t id_end = pos_ + 1;
    while (id_end < text_.size() && isLetterOrDigit(text_[id_end])) ++id_end;
    size_t qualified_end = 0;
    if (at(id_end) == '.' && isLetter(at(id_end + 1))) {
      qualified_end = id_end + 2;
      while (qualified_end < text_.size() && isLetterOrDigit(text_[qualified_end])) {
        ++qualified_end;
      }
    }
    size_t unquoted_end = pos_ + 1;
    while (unquoted_end < text_.size()) {
      char c = text_[unquoted_end];
      if (!isLetterOrDigit(c) && c != '-' && c != '.' && c != '_' && c != ':' && c != '/') break;
      ++unquoted_end;
    }
    if (unquoted_end == id_end) {
      *kind = Tok::kId;
    } else if (unquoted_end == qualified_end) {
      *kind = Tok::kQualifiedId;
    } else {
      *kind = Tok::kUnquoted;
    }
    return unquoted_end - pos_;
  }

  // INTEGER {SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*
  size_t integerLength() const {
    size_t start = pos_;
    if (at(start) == '+' || at(start) == '-') ++start;
    size_t best = 0;
    size_t i = start;
    while (isDigit(at(i))) ++i;
    if (i > start) {
      while (isUnitLetter(at(i))) ++i;
      best = i - pos_;
    }
    if (at(start) == '0' && (at(start + 1) == 'x' || at(start + 1) == 'X') &&
        isHexDigit(at(start + 2))) {
      i = start + 2;
      while (isHexDigit(at(i))) ++i;
      while (isUnitLetter(at(i))) ++i;
      best = std::max(best, i - pos_);
    }
    return best;
  }

  // REAL {SIGN}?{DIGIT}*"."{DIGIT}*{EXPONENT}?  with EXPONENT [Ee]{SIGN}?{DIGIT}+
  size_t realLength() const {
    size_t i = pos_;
    if (at(i) == '+' || at(i) == '-') ++i;
    while (isDigit(at(i))) ++i;
    if (at(i) != '.') return 0;
    ++i;
    while (isDigit(at(i))) ++i;
    if (at(i) == 'e' || at(i) == 'E') {
      size_t j = i + 1;
      if (at(j) == '+' || at(j) == '-') ++j;
      if (isDigit(at(j))) {
        while (isDigit(at(j))) ++j;
        i = j;
      }
    }
    return i - pos_;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

ConfigError syntaxError(const std::string& file, const Token& t) {
  if (t.kind == Tok::kEol || t.kind == Tok::kEof) {
    return ConfigError{file, t.line, "syntax error near end of line"};
  }
  return ConfigError{file, t.line, "syntax error near token \"" + std::string(t.text) + "\""};
}

bool isValue(Tok kind) {
  // PostgreSQL does not accept a QUALIFIED_ID ("db.local") as a value; we do, since it is
  // a plausible host name and there is no ambiguity.
  return kind == Tok::kId || kind == Tok::kQualifiedId || kind == Tok::kString ||
         kind == Tok::kUnquoted || kind == Tok::kInteger || kind == Tok::kReal;
}

}  // namespace

std::string unquote(std::string_view quoted) {
  std::string out;
  if (quoted.size() < 2) return out;
  std::string_view s = quoted.substr(1, quoted.size() - 2);
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
      out.push_back('\'');
      ++i;
      continue;
    }
    if (c != '\\' || i + 1 >= s.size()) {
      out.push_back(c);
      continue;
    }
    char e = s[++i];
    switch (e) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': {
        int value = e - '0';
        for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) {
          value = value * 8 + (s[++i] - '0');
        }
        // GUC_scanstr builds a C string: an escaped NUL ends the value there.
        if ((value & 0xff) == 0) return out;
        out.push_back(static_cast<char>(value & 0xff));
        break;
      }
      default:
        out.push_back(e);
        break;
    }
  }
  return out;
}

std::expected<std::vector<Directive>, ConfigError> parseDirectives(std::string_view text,
                                                                   const std::string& file) {
  std::vector<Directive> out;
  Scanner scanner(text);
  for (;;) {
    Token t = scanner.next();
    if (t.kind == Tok::kEof) break;
    if (t.kind == Tok::kEol) continue;
    if (t.kind != Tok::kId && t.kind != Tok::kQualifiedId) {
      return std::unexpected(syntaxError(file, t));
    }
    Directive d;
    d.name = std::string(t.text);
    d.line = t.line;
    d.qualified = t.kind == Tok::kQualifiedId;
    t = scanner.next();
    if (t.kind == Tok::kEquals) t = scanner.next();
    if (!isValue(t.kind)) return std::unexpected(syntaxError(file, t));
    d.value = t.kind == Tok::kString ? unquote(t.text) : std::string(t.text);
    t = scanner.next();
    if (t.kind != Tok::kEol && t.kind != Tok::kEof) return std::unexpected(syntaxError(file, t));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace pgpilot::config
