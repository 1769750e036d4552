// pool_hba.conf / pg_hba.conf subset: see auth.h for what is accepted. Anything outside the
// subset is an error naming file:line, never silently ignored (a skipped rule could widen
// access).

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "auth/auth.h"
#include "auth/file_util.h"

namespace pgpilot::auth {
namespace {

using ConnType = HbaRule::ConnType;

struct Address {
  int family = 0;     // 4 or 6
  std::string bytes;  // 4 or 16
};

std::optional<Address> parseIp(std::string_view text) {
  std::string s(text.substr(0, text.find('%')));  // drop an IPv6 zone ("fe80::1%eth0")
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    return Address{4, std::string(reinterpret_cast<char*>(buf), 4)};
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    return Address{6, std::string(reinterpret_cast<char*>(buf), 16)};
  }
  return std::nullopt;
}

// Leading one bits of a netmask; nullopt if the mask is not contiguous.
std::optional<int> maskPrefix(std::string_view mask) {
  int prefix = 0;
  bool ended = false;
  for (char ch : mask) {
    auto c = static_cast<unsigned char>(ch);
    for (int bit = 7; bit >= 0; --bit) {
      bool one = ((c >> bit) & 1) != 0;
      if (one && ended) return std::nullopt;
      if (one) ++prefix;
      if (!one) ended = true;
    }
  }
  return prefix;
}

bool prefixMatches(std::string_view a, std::string_view b, int prefix_len) {
  auto full = static_cast<size_t>(prefix_len / 8);
  if (std::memcmp(a.data(), b.data(), full) != 0) return false;
  int rest = prefix_len % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (static_cast<unsigned char>(a[full]) & mask) ==
         (static_cast<unsigned char>(b[full]) & mask);
}

constexpr std::string_view kV4MappedPrefix{"\0\0\0\0\0\0\0\0\0\0\xff\xff", 12};

bool addressMatches(const HbaRule& rule, std::string_view client_text) {
  if (rule.family == 0) return true;  // "all"
  auto client = parseIp(client_text);
  if (!client) return false;
  std::string bytes = client->bytes;
  // Compare IPv4 with IPv6 through IPv4-mapped addresses (::ffff:a.b.c.d), as PostgreSQL.
  if (rule.family == 4 && client->family == 6) {
    if (!std::string_view(bytes).starts_with(kV4MappedPrefix)) return false;
    bytes = bytes.substr(12);
  } else if (rule.family == 6 && client->family == 4) {
    bytes = std::string(kV4MappedPrefix) + bytes;
  }
  return prefixMatches(rule.address, bytes, rule.prefix_len);
}

bool listMatches(const std::vector<std::string>& list, const std::string& value,
                 const std::string* user_for_sameuser) {
  if (list.empty()) return true;
  return std::any_of(list.begin(), list.end(), [&](const std::string& item) {
    if (user_for_sameuser != nullptr && item == "sameuser") return value == *user_for_sameuser;
    return item == value;
  });
}

std::vector<std::string_view> splitTokens(std::string_view line) {
  std::vector<std::string_view> tokens;
  size_t pos = 0;
  while (true) {
    pos = line.find_first_not_of(" \t", pos);
    if (pos == std::string_view::npos) break;
    size_t end = line.find_first_of(" \t", pos);
    tokens.push_back(line.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return tokens;
}

// Parse errors are plain messages here; the caller prefixes "file:line: ".
using Err = std::unexpected<std::string>;

std::expected<ConnType, std::string> parseConnType(std::string_view t) {
  if (t == "local") return ConnType::kLocal;
  if (t == "host") return ConnType::kHost;
  if (t == "hostssl") return ConnType::kHostSsl;
  if (t == "hostnossl") return ConnType::kHostNoSsl;
  if (t == "hostgssenc" || t == "hostnogssenc") {
    return Err("connection type \"" + std::string(t) + "\" is not supported");
  }
  return Err("invalid connection type \"" + std::string(t) + "\"");
}

// "all" -> empty list; otherwise the comma-separated names.
std::expected<std::vector<std::string>, std::string> parseNameList(std::string_view field,
                                                                   bool is_database) {
  std::vector<std::string> names;
  bool all = false;
  size_t start = 0;
  while (start <= field.size()) {
    size_t comma = field.find(',', start);
    std::string_view name =
        field.substr(start, comma == std::string_view::npos ? comma : comma - start);
    std::string n(name);
    if (name.empty()) return Err("empty name in list \"" + std::string(field) + "\"");
    if (name.front() == '+') return Err("group membership (\"" + n + "\") is not supported");
    if (name.front() == '@') return Err("file inclusion (\"" + n + "\") is not supported");
    if (name.find('"') != std::string_view::npos) {
      return Err("quoted names (" + n + ") are not supported");
    }
    if (name == "samerole" || name == "samegroup" || name == "replication") {
      return Err("\"" + n + "\" is not supported");
    }
    if (name == "sameuser" && !is_database) return Err("\"sameuser\" is only valid as database");
    if (name == "all") {
      all = true;
    } else {
      names.push_back(std::move(n));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (all) names.clear();
  return names;
}

std::expected<AuthMethod, std::string> parseMethod(std::string_view m) {
  if (m == "trust") return AuthMethod::kTrust;
  if (m == "reject") return AuthMethod::kReject;
  if (m == "password") return AuthMethod::kPassword;
  if (m == "md5") return AuthMethod::kMd5;
  if (m == "scram-sha-256") return AuthMethod::kScramSha256;
  for (std::string_view known :
       {"ldap", "pam", "cert", "ident", "peer", "gss", "sspi", "radius", "bsd"}) {
    if (m == known) return Err("authentication method \"" + std::string(m) + "\" is not supported");
  }
  return Err("invalid authentication method \"" + std::string(m) + "\"");
}

// Parses the address field(s) starting at tokens[*idx]; advances *idx past them.
std::expected<void, std::string> parseAddress(const std::vector<std::string_view>& tokens,
                                              size_t* idx, HbaRule* rule) {
  std::string_view tok = tokens[*idx];
  std::string t(tok);
  ++*idx;
  if (tok == "all") return {};  // family 0 = any address
  if (tok == "samehost" || tok == "samenet") return Err("\"" + t + "\" is not supported");
  size_t slash = tok.find('/');
  auto ip = parseIp(tok.substr(0, slash));
  if (!ip) {
    if (slash == std::string_view::npos && tok.find(':') == std::string_view::npos) {
      return Err("host names (\"" + t + "\") are not supported; use an IP address");
    }
    return Err("invalid IP address \"" + t + "\"");
  }
  if (tok.find('%') != std::string_view::npos) return Err("IPv6 zones are not supported");
  rule->family = ip->family;
  rule->address = ip->bytes;
  int max_prefix = ip->family == 4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    std::string_view p = tok.substr(slash + 1);
    int prefix = -1;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix < 0 ||
        prefix > max_prefix) {
      return Err("invalid CIDR mask in address \"" + t + "\"");
    }
    rule->prefix_len = prefix;
    return {};
  }
  // "address mask" form: the next token must be a netmask of the same family.
  auto mask = *idx < tokens.size() ? parseIp(tokens[*idx]) : std::nullopt;
  if (!mask) return Err("address \"" + t + "\" needs a /prefix or a mask");
  if (mask->family != ip->family) {
    return Err("address \"" + t + "\" needs a /prefix or a mask of the same family");
  }
  auto prefix = maskPrefix(mask->bytes);
  if (!prefix) return Err("non-contiguous netmask \"" + std::string(tokens[*idx]) + "\"");
  rule->prefix_len = *prefix;
  ++*idx;
  return {};
}

std::expected<HbaRule, std::string> parseRule(const std::vector<std::string_view>& tokens) {
  HbaRule rule;
  auto type = parseConnType(tokens[0]);
  if (!type) return Err(type.error());
  rule.type = *type;
  bool local = rule.type == ConnType::kLocal;
  size_t needed = local ? 4 : 5;
  if (tokens.size() < needed) {
    return Err(local ? "expected \"local database user method\""
                     : "expected \"" + std::string(tokens[0]) + " database user address method\"");
  }
  auto dbs = parseNameList(tokens[1], true);
  if (!dbs) return Err(dbs.error());
  auto users = parseNameList(tokens[2], false);
  if (!users) return Err(users.error());
  rule.databases = std::move(*dbs);
  rule.users = std::move(*users);
  size_t idx = 3;
  if (!local) {
    auto addr = parseAddress(tokens, &idx, &rule);
    if (!addr) return Err(addr.error());
  }
  if (idx >= tokens.size()) return Err("missing authentication method");
  auto method = parseMethod(tokens[idx]);
  if (!method) return Err(method.error());
  rule.method = *method;
  if (idx + 1 < tokens.size()) {
    return Err("authentication options (\"" + std::string(tokens[idx + 1]) +
               "\") are not supported");
  }
  return rule;
}

bool connTypeMatches(ConnType type, const ClientInfo& client) {
  bool is_local = client.address.empty();
  switch (type) {
    case ConnType::kLocal:
      return is_local;
    case ConnType::kHost:
      return !is_local;
    case ConnType::kHostSsl:
      return !is_local && client.ssl;
    case ConnType::kHostNoSsl:
      return !is_local && !client.ssl;
  }
  return false;
}

}  // namespace

std::expected<HbaRules, AuthError> HbaRules::load(const std::string& path) {
  auto text = detail::readFile(path);
  if (!text) return std::unexpected(text.error());
  return parse(*text, path);
}

std::expected<HbaRules, AuthError> HbaRules::parse(std::string_view text, const std::string& name) {
  HbaRules rules;
  auto lines = detail::splitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    line = line.substr(0, line.find('#'));
    auto tokens = splitTokens(line);
    if (tokens.empty()) continue;
    if (line.ends_with('\\')) {
      return std::unexpected(
          AuthError{detail::lineError(name, i + 1, "line continuation is not supported")});
    }
    auto rule = parseRule(tokens);
    if (!rule) return std::unexpected(AuthError{detail::lineError(name, i + 1, rule.error())});
    rule->line = static_cast<int>(i + 1);
    rules.rules_.push_back(std::move(*rule));
  }
  return rules;
}

AuthMethod HbaRules::match(const ClientInfo& client) const {
  for (const HbaRule& rule : rules_) {
    if (!connTypeMatches(rule.type, client)) continue;
    if (!listMatches(rule.databases, client.database, &client.user)) continue;
    if (!listMatches(rule.users, client.user, nullptr)) continue;
    if (rule.type != ConnType::kLocal && !addressMatches(rule, client.address)) continue;
    return rule.method;
  }
  return AuthMethod::kReject;  // no rule matched: PostgreSQL rejects
}

std::string_view methodName(AuthMethod m) {
  switch (m) {
    case AuthMethod::kTrust:
      return "trust";
    case AuthMethod::kReject:
      return "reject";
    case AuthMethod::kPassword:
      return "password";
    case AuthMethod::kMd5:
      return "md5";
    case AuthMethod::kScramSha256:
      return "scram-sha-256";
  }
  return "unknown";
}

}  // namespace pgpilot::auth
