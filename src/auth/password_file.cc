// pgpool-II pool_passwd formats: "user:md5<hex>", "user:SCRAM-SHA-256$...",
// "user:TEXT<plain>", "user:<plain>"; "user:AES<b64>" (pgpool-encrypted) is rejected.

#include "auth/auth.h"
#include "auth/file_util.h"

namespace pgpilot::auth {
namespace {

bool isMd5Hash(std::string_view s) {
  if (s.size() != 35 || !s.starts_with("md5")) return false;
  for (char c : s.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Classifies one secret; the error message lacks the "file:line: " prefix.
std::expected<PasswordEntry, std::string> parseSecret(std::string_view user,
                                                      std::string_view secret) {
  using Kind = PasswordEntry::Kind;
  if (secret.starts_with("AES")) {
    return std::unexpected("AES-encrypted passwords are not supported (user \"" +
                           std::string(user) + "\"); store md5, SCRAM or TEXT secrets");
  }
  if (secret.starts_with("SCRAM-SHA-256$")) {
    if (!parseScramVerifier(secret)) {
      return std::unexpected("invalid SCRAM-SHA-256 verifier for user \"" + std::string(user) +
                             "\"");
    }
    return PasswordEntry{Kind::kScram, std::string(secret)};
  }
  if (secret.size() == 35 && secret.starts_with("md5")) {
    if (!isMd5Hash(secret)) {
      return std::unexpected("malformed md5 hash for user \"" + std::string(user) +
                             "\" (expected \"md5\" + 32 lowercase hex digits)");
    }
    return PasswordEntry{Kind::kMd5, std::string(secret)};
  }
  if (secret.starts_with("TEXT")) secret.remove_prefix(4);
  // PostgreSQL refuses empty passwords too; an empty secret is almost surely a typo.
  if (secret.empty())
    return std::unexpected("empty password for user \"" + std::string(user) + "\"");
  return PasswordEntry{Kind::kPlain, std::string(secret)};
}

}  // namespace

std::expected<PasswordFile, AuthError> PasswordFile::load(const std::string& path) {
  auto text = detail::readFile(path);
  if (!text) return std::unexpected(text.error());
  return parse(*text, path);
}

std::expected<PasswordFile, AuthError> PasswordFile::parse(std::string_view text,
                                                           const std::string& name) {
  PasswordFile file;
  auto lines = detail::splitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    auto err = [&](std::string_view msg) {
      return std::unexpected(AuthError{detail::lineError(name, i + 1, msg)});
    };
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return err("expected \"user:secret\"");
    std::string_view user = line.substr(0, colon);
    if (user.empty()) return err("empty user name");
    auto entry = parseSecret(user, line.substr(colon + 1));
    if (!entry) return err(entry.error());
    if (!file.entries_.emplace(std::string(user), std::move(*entry)).second) {
      return err("duplicate user \"" + std::string(user) + "\"");
    }
  }
  return file;
}

const PasswordEntry* PasswordFile::find(std::string_view user) const {
  auto it = entries_.find(std::string(user));
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace pgpilot::auth
