#include "router/lexer.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>

namespace pgpilot::router {
namespace {

// Marker bytes mixed into the hash. They cannot occur in a lexed token's text
// (control characters are never part of an identifier or operator), so
// "a b" != "ab" and a placeholder never equals an identifier.
constexpr uint8_t kSeparator = 0x01;
constexpr uint8_t kLiteral = 0x02;
constexpr uint8_t kQuotedIdent = 0x03;

enum CharClass : uint8_t {
  kOther = 0,
  kSpace,
  kIdentStart,  // A-Z a-z _ and bytes >= 0x80 (PostgreSQL's ident_start)
  kDigit,
  kOperator,  // ~ ! @ # ^ & | ` ? + - * / % < > =
};

constexpr std::array<uint8_t, 256> makeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t k = kOther;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') k = kSpace;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80) k = kIdentStart;
    if (c >= '0' && c <= '9') k = kDigit;
    for (char op : std::string_view("~!@#^&|`?+-*/%<>=")) {
      if (c == static_cast<unsigned char>(op)) k = kOperator;
    }
    t[static_cast<size_t>(c)] = k;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClass = makeClasses();

inline uint8_t cls(char c) {
  return kClass[static_cast<unsigned char>(c)];
}
// PostgreSQL's ident_cont: ident_start, digits and '$'. A table of its own, because the
// identifier loop runs for most characters of a statement.
constexpr std::array<bool, 256> makeIdentCont() {
  std::array<bool, 256> t{};
  for (size_t c = 0; c < 256; ++c)
    t[c] = kClass[c] == kIdentStart || kClass[c] == kDigit || c == '$';
  return t;
}
constexpr std::array<bool, 256> kIdentCont = makeIdentCont();

inline bool isIdentCont(char c) {
  return kIdentCont[static_cast<unsigned char>(c)];
}
inline char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

// Streaming 64-bit hash over bytes, one multiply-rotate round per 8 bytes (the xxHash64
// round and avalanche), so hashing costs little next to the character loop.
class Hasher {
 public:
  void put(uint8_t b) {
    word_ |= static_cast<uint64_t>(b) << shift_;
    shift_ += 8;
    if (shift_ == 64) flush();
  }
  // The bytes [b, e), eight at a time; with `fold`, ASCII upper case is folded to lower
  // case on the way (the same stream of bytes as put() of each lower()ed byte).
  void putRaw(const char* b, const char* e, bool fold = false) {
    while (b < e) {
      const auto n = static_cast<unsigned>(std::min<ptrdiff_t>(e - b, 8));
      uint64_t w = 0;
      std::memcpy(&w, b, n);  // little-endian: byte i of the text is bits 8i..8i+7
      if (fold) w = foldAscii(w);
      putWord(w, n);
      b += n;
    }
  }
  uint64_t finish() {
    uint64_t total = words_ * 64 + shift_;
    acc_ = round(acc_, word_ ^ (total << 56));
    uint64_t h = acc_ ^ total;
    h ^= h >> 33;
    h *= kPrime2;
    h ^= h >> 29;
    h *= kPrime3;
    h ^= h >> 32;
    return h;
  }

 private:
  static constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
  static constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
  static constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
  static uint64_t round(uint64_t acc, uint64_t in) {
    acc += in * kPrime2;
    acc = (acc << 31) | (acc >> 33);
    return acc * kPrime1;
  }
  // Adds `n` (1..8) bytes held in the low bytes of `w` (the others zero).
  void putWord(uint64_t w, unsigned n) {
    word_ |= w << shift_;  // shift_ < 64 always
    const unsigned next = shift_ + 8 * n;
    if (next < 64) {
      shift_ = next;
      return;
    }
    const unsigned done = shift_;  // bits of word_ filled before w
    shift_ = 0;
    flush();
    if (next > 64) {
      word_ = w >> (64 - done);
      shift_ = next - 64;
    }
  }

  // ASCII 'A'..'Z' to 'a'..'z' in every byte of w at once; other bytes unchanged.
  static uint64_t foldAscii(uint64_t w) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    const uint64_t seven = w & ~kHigh;
    const uint64_t ge_a = seven + (0x80 - 'A') * kOnes;      // high bit: byte >= 'A'
    const uint64_t gt_z = seven + (0x80 - 'Z' - 1) * kOnes;  // high bit: byte > 'Z'
    const uint64_t upper = ge_a & ~gt_z & ~w & kHigh;        // and below 0x80
    return w | (upper >> 2);                                 // 0x80 >> 2 == 0x20
  }

  void flush() {
    acc_ = round(acc_, word_);
    word_ = 0;
    shift_ = 0;
    ++words_;
  }
  uint64_t acc_ = 0x27D4EB2F165667C5ULL;
  uint64_t word_ = 0;
  unsigned shift_ = 0;
  uint64_t words_ = 0;  // 8-byte words flushed
};

// Scans a '...' body starting after the opening quote. `backslash` enables E'' escapes.
// Returns the position after the closing quote, or nullptr if unterminated.
const char* scanQuoted(const char* p, const char* end, bool backslash) {
  while (p < end) {
    char c = *p++;
    if (backslash && c == '\\') {
      if (p < end) ++p;  // E'\'' : the escaped character never closes the literal
      continue;
    }
    if (c == '\'') {
      if (p < end && *p == '\'') {  // doubled quote
        ++p;
        continue;
      }
      return p;
    }
  }
  return nullptr;
}

// Scans a "quoted identifier" body starting after the opening quote ("" doubles).
const char* scanQuotedIdent(const char* p, const char* end) {
  while (p < end) {
    if (*p++ == '"') {
      if (p < end && *p == '"') {
        ++p;
        continue;
      }
      return p;
    }
  }
  return nullptr;
}

// Scans a nested /* */ comment starting at "/*". Returns the position after the
// matching "*/", or nullptr if unterminated.
const char* scanBlockComment(const char* p, const char* end) {
  int depth = 0;
  while (p + 1 < end) {
    if (p[0] == '/' && p[1] == '*') {
      ++depth;
      p += 2;
    } else if (p[0] == '*' && p[1] == '/') {
      p += 2;
      if (--depth == 0) return p;
    } else {
      ++p;
    }
  }
  return nullptr;
}

// True if the comment [b, e) (including /* and */) is the pgpool-II hint
// /*NO LOAD BALANCE*/ (case-insensitive, surrounding blanks allowed).
bool isNoLoadBalanceHint(const char* b, const char* e) {
  std::string_view body(b + 2, static_cast<size_t>(e - b - 4));
  while (!body.empty() && cls(body.front()) == kSpace) body.remove_prefix(1);
  while (!body.empty() && cls(body.back()) == kSpace) body.remove_suffix(1);
  return keywordEquals(body, "no load balance");
}

// Dollar quote at p ('$'): returns the position after the closing delimiter, p itself if
// this '$' does not open a dollar quote, or nullptr if the quote is unterminated.
const char* scanDollarQuote(const char* p, const char* end) {
  const char* t = p + 1;
  if (t < end && cls(*t) == kIdentStart) {
    ++t;
    while (t < end && (cls(*t) == kIdentStart || cls(*t) == kDigit)) ++t;
  }
  if (t >= end || *t != '$') return p;                      // "$1" or a stray '$'
  std::string_view tag(p, static_cast<size_t>(t - p + 1));  // "$tag$"
  std::string_view rest(t + 1, static_cast<size_t>(end - t - 1));
  size_t close = rest.find(tag);
  if (close == std::string_view::npos) return nullptr;
  return rest.data() + close + tag.size();
}

// Scans a numeric literal starting at p (a digit, or '.' followed by a digit).
const char* scanNumber(const char* p, const char* end) {
  auto isDigitOr_ = [](char c) { return cls(c) == kDigit || c == '_'; };
  if (p[0] == '0' && p + 2 < end) {
    char b = lower(p[1]);
    auto hexOk = [](char c) { return cls(c) == kDigit || (lower(c) >= 'a' && lower(c) <= 'f'); };
    bool ok = (b == 'x' && hexOk(p[2])) || (b == 'o' && p[2] >= '0' && p[2] <= '7') ||
              (b == 'b' && (p[2] == '0' || p[2] == '1'));
    if (ok) {
      p += 2;
      while (p < end && (hexOk(*p) || *p == '_')) ++p;
      return p;
    }
  }
  while (p < end && isDigitOr_(*p)) ++p;
  if (p < end && *p == '.' && !(p + 1 < end && p[1] == '.')) {
    ++p;
    while (p < end && isDigitOr_(*p)) ++p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    const char* q = p + 1;
    if (q < end && (*q == '+' || *q == '-')) ++q;
    if (q < end && cls(*q) == kDigit) {  // "1e" alone is 1 followed by identifier e
      p = q;
      while (p < end && isDigitOr_(*p)) ++p;
    }
  }
  return p;
}

class ShapeLexer {
 public:
  explicit ShapeLexer(std::string_view sql) : p_(sql.data()), end_(sql.data() + sql.size()) {}

  Shape run() {
    while (p_ < end_ && !out_.lex_error) step();
    out_.hash = hash_.finish();
    return out_;
  }

 private:
  void step() {
    char c = *p_;
    switch (cls(c)) {
      case kSpace:
        ++p_;
        return;
      case kIdentStart:
        identOrPrefixedLiteral();
        return;
      case kDigit:
        literal(scanNumber(p_, end_));
        return;
      case kOperator:
        if (comment()) return;
        operatorRun();
        return;
      default:
        break;
    }
    switch (c) {
      case '\'':
        literal(scanQuoted(p_ + 1, end_, false));
        return;
      case '"':
        quotedIdent(p_, scanQuotedIdent(p_ + 1, end_));
        return;
      case '$':
        dollar();
        return;
      case '.':
        if (p_ + 1 < end_ && cls(p_[1]) == kDigit) {
          literal(scanNumber(p_, end_));
          return;
        }
        break;
      case '(':
        ++depth_;
        break;
      case ')':
        if (depth_ > 0) --depth_;
        break;
      case ';':
        // A top-level ';' ends a statement; it only makes a multi-statement string if
        // another token follows. Empty statements (";;") do not count.
        if (depth_ == 0 && seen_token_) pending_statement_ = true;
        hash_.put(static_cast<uint8_t>(c));
        hash_.put(kSeparator);
        ++p_;
        return;
      default:
        break;
    }
    startToken();
    sign_allowed_ = c == '(' || c == ',' || c == '[';
    if (c == '(' || c == '[') out_.nesting_cost += 3;
    if (c == ':') ++out_.nesting_cost;
    hash_.put(static_cast<uint8_t>(c));
    hash_.put(kSeparator);
    ++p_;
  }

  void startToken() {
    if (pending_statement_) {
      out_.multi_statement = true;
      pending_statement_ = false;
    }
    seen_token_ = true;
  }

  // Emits a literal spanning [p_, e). e == nullptr means unterminated.
  void literal(const char* e) {
    if (e == nullptr) {
      out_.lex_error = true;
      return;
    }
    startToken();
    sign_allowed_ = false;
    if (keep_literals_) {
      hash_.put(kLiteral);
      hash_.putRaw(p_, e);
    } else {
      hash_.put(kLiteral);
    }
    hash_.put(kSeparator);
    p_ = e;
  }

  void quotedIdent(const char* b, const char* e) {
    if (e == nullptr) {
      out_.lex_error = true;
      return;
    }
    startToken();
    sign_allowed_ = false;
    hash_.put(kQuotedIdent);
    hash_.putRaw(b, e);  // case-sensitive, as PostgreSQL treats it
    hash_.put(kSeparator);
    p_ = e;
  }

  void identOrPrefixedLiteral() {
    const char* p = p_;
    char c0 = lower(*p);
    if (p + 1 < end_ && p[1] == '\'') {
      if (c0 == 'e') {
        p_ = p + 1;  // the literal's text starts at the quote; the prefix is hashed below
        prefixedLiteral(c0, scanQuoted(p + 2, end_, true));
        return;
      }
      if (c0 == 'b' || c0 == 'x' || c0 == 'n') {
        p_ = p + 1;
        prefixedLiteral(c0, scanQuoted(p + 2, end_, false));
        return;
      }
    }
    if (c0 == 'u' && p + 2 < end_ && p[1] == '&') {
      if (p[2] == '\'') {  // U&'...': '' doubles; a backslash never escapes the quote
        p_ = p + 2;
        prefixedLiteral(c0, scanQuoted(p + 3, end_, false));
        return;
      }
      if (p[2] == '"') {
        quotedIdent(p, scanQuotedIdent(p + 3, end_));
        return;
      }
    }
    const char* e = p + 1;
    while (e < end_ && isIdentCont(*e)) ++e;
    bool first = !seen_token_;
    startToken();
    sign_allowed_ = false;
    ++out_.nesting_cost;
    hash_.putRaw(p, e, /*fold=*/true);
    hash_.put(kSeparator);
    if (first) {
      out_.first_keyword = std::string_view(p, static_cast<size_t>(e - p));
      keep_literals_ = keywordEquals(out_.first_keyword, "set");
    }
    p_ = e;
  }

  // A literal with a one-letter prefix (E, B, X, N, U&). The prefix is part of the
  // shape: B'1' and X'1' have different types.
  void prefixedLiteral(char prefix, const char* e) {
    if (e == nullptr) {
      out_.lex_error = true;
      return;
    }
    hash_.put(static_cast<uint8_t>(prefix));
    literal(e);
  }

  void dollar() {
    const char* e = scanDollarQuote(p_, end_);
    if (e == nullptr) {
      out_.lex_error = true;
      return;
    }
    if (e != p_) {
      literal(e);
      return;
    }
    // Parameter $n (or a stray '$'): keep it, parameters are part of the structure.
    const char* q = p_ + 1;
    while (q < end_ && cls(*q) == kDigit) ++q;
    startToken();
    sign_allowed_ = false;
    hash_.putRaw(p_, q);
    hash_.put(kSeparator);
    p_ = q;
  }

  // Handles "--" and "/*" at p_. Returns false if p_ does not start a comment.
  bool comment() {
    if (p_ + 1 >= end_) return false;
    if (p_[0] == '-' && p_[1] == '-') {
      if (!seen_token_) out_.leading_comment = true;
      while (p_ < end_ && *p_ != '\n') ++p_;
      return true;
    }
    if (p_[0] == '/' && p_[1] == '*') {
      const char* e = scanBlockComment(p_, end_);
      if (e == nullptr) {
        out_.lex_error = true;
        return true;
      }
      // Only a comment before the first token is a hint (pgpool: the text must start
      // with it; pgpilot also allows blanks and other comments before it).
      if (!seen_token_) {
        out_.leading_comment = true;
        if (isNoLoadBalanceHint(p_, e)) out_.no_load_balance = true;
      }
      p_ = e;
      return true;
    }
    return false;
  }

  // An operator is a run of operator characters; "--" and "/*" inside it start a comment
  // (PostgreSQL scan.l rule), so the run stops there.
  void operatorRun() {
    if (*p_ == '-' && sign_allowed_ && signedNumber()) return;
    const char* e = p_ + 1;
    while (e < end_ && cls(*e) == kOperator) {
      if (e + 1 < end_ && ((e[0] == '-' && e[1] == '-') || (e[0] == '/' && e[1] == '*'))) break;
      ++e;
    }
    startToken();
    sign_allowed_ = true;
    ++out_.nesting_cost;
    hash_.putRaw(p_, e);
    hash_.put(kSeparator);
    p_ = e;
  }

  // "- 42" where a sign is allowed: one negative constant.
  bool signedNumber() {
    const char* q = p_ + 1;
    while (q < end_ && cls(*q) == kSpace) ++q;
    bool number =
        q < end_ && (cls(*q) == kDigit || (*q == '.' && q + 1 < end_ && cls(q[1]) == kDigit));
    if (!number) return false;
    p_ = q;
    literal(scanNumber(q, end_));
    return true;
  }

  const char* p_;
  const char* end_;
  Shape out_;
  Hasher hash_;
  int depth_ = 0;
  // Whether the previous token lets a following '-' be a sign: an operator, '(', ',' or
  // '['. After an identifier, literal or ')' a '-' is binary minus.
  bool sign_allowed_ = false;
  bool seen_token_ = false;
  bool pending_statement_ = false;
  bool keep_literals_ = false;
};

}  // namespace

Shape lexShape(std::string_view sql) noexcept {
  return ShapeLexer(sql).run();
}

bool keywordEquals(std::string_view written, std::string_view lower_word) noexcept {
  if (written.size() != lower_word.size()) return false;
  for (size_t i = 0; i < written.size(); ++i) {
    if (lower(written[i]) != lower_word[i]) return false;
  }
  return true;
}

}  // namespace pgpilot::router
