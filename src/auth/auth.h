// Authentication primitives: SCRAM-SHA-256 (both sides), MD5, password file, hba rules.
//
// Purpose: everything the proxy needs to authenticate clients (acting as a server) and to
// authenticate itself to PostgreSQL servers (acting as a client). Pure logic: no sockets,
// no sessions; the session module drives the message exchange.
// Thread-safety: PasswordFile and HbaRules are immutable after load and may be shared;
// ScramServer / ScramClient are per-exchange objects owned by one session.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pgpilot::auth {

struct AuthError {
  std::string message;
};

// ---- MD5 (PostgreSQL's "md5" method) ----
// "md5" + hex(md5(password + user)), the form stored in pg_authid / pool_passwd.
std::string md5PasswordHash(std::string_view password, std::string_view user);
// Response to AuthenticationMD5Password: "md5" + hex(md5(hex_part_of(stored) + salt)).
// `stored_hash` is an "md5..." hash as returned by md5PasswordHash.
std::string md5Response(std::string_view stored_hash, std::string_view salt4);

// ---- SCRAM-SHA-256 (RFC 5802 / RFC 7677, as used by PostgreSQL) ----
struct ScramVerifier {
  int iterations = 4096;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw 32 bytes
  std::string server_key;  // raw 32 bytes
};
// Parses "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>" (the
// pg_authid.rolpassword form). nullopt if malformed (iterations <= 0, empty salt, keys not
// 32 bytes, bad base64).
std::optional<ScramVerifier> parseScramVerifier(std::string_view text);
// Builds a verifier from a plain password (random 16-byte salt unless given, as PostgreSQL;
// iterations < 1 means the default 4096).
// PostgreSQL SASLprep-normalises the password first; for ASCII that is the identity. We use
// non-ASCII passwords as raw bytes, so a non-ASCII password that SASLprep would change
// yields a verifier (and client proofs) that PostgreSQL's own would not match.
ScramVerifier makeScramVerifier(std::string_view password, int iterations = 4096,
                                std::string_view salt = {});
std::string formatScramVerifier(const ScramVerifier& v);

// Server side: the proxy authenticates a client. Mechanism "SCRAM-SHA-256" only: the gs2
// header must be "n,," or "y,," (channel binding "p=..." and authzid are rejected); the
// user name in client-first is ignored (as PostgreSQL: the startup packet's user counts).
// Call handleClientFirst then handleClientFinal, once each; any error ends the exchange.
class ScramServer {
 public:
  explicit ScramServer(ScramVerifier verifier);
  // Tests only: use this server nonce instead of a random one.
  void setNonceForTesting(std::string server_nonce) { server_nonce_ = std::move(server_nonce); }
  // Takes client-first-message (SASLInitialResponse data); returns server-first-message.
  std::expected<std::string, AuthError> handleClientFirst(std::string_view client_first);
  // Takes client-final-message; returns server-final-message ("v=...") on a right proof.
  std::expected<std::string, AuthError> handleClientFinal(std::string_view client_final);
  // After a successful exchange: the ClientKey the client proved it knows (raw bytes),
  // usable for SCRAM pass-through to servers that store the same verifier.
  const std::string& clientKey() const { return client_key_; }

 private:
  enum class State { kStart, kSentServerFirst, kDone, kFailed };
  State state_ = State::kStart;
  ScramVerifier verifier_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string client_nonce_;
  std::string server_nonce_;
  std::string client_key_;
};

// Client side: the proxy authenticates to a PostgreSQL server. Call clientFirst, then
// handleServerFirst, then verifyServerFinal. Passwords are used as raw bytes (no SASLprep;
// see makeScramVerifier).
class ScramClient {
 public:
  // From a plain password.
  explicit ScramClient(std::string password);
  // Pass-through: from a ClientKey and the verifier's ServerKey (no plain password known).
  // Works only if the server's verifier (salt, iterations) is the one the keys came from;
  // we cannot check that, the server rejects the proof if not.
  static ScramClient fromKeys(std::string client_key, std::string server_key);
  // Optional user name for client-first ("n=<user>"); PostgreSQL ignores it and libpq sends
  // it empty, which is the default.
  void setUser(std::string user) { user_ = std::move(user); }
  // Tests only: use this client nonce instead of a random one (call before clientFirst).
  void setNonceForTesting(std::string nonce) { nonce_ = std::move(nonce); }
  // client-first-message ("n,,n=,r=<nonce>").
  std::string clientFirst();
  // Takes server-first-message; returns client-final-message.
  std::expected<std::string, AuthError> handleServerFirst(std::string_view server_first);
  // Checks the server's signature in server-final-message.
  std::expected<void, AuthError> verifyServerFinal(std::string_view server_final);

 private:
  ScramClient() = default;
  bool pass_through_ = false;
  std::string user_;
  std::string password_;
  std::string client_key_;  // set in pass-through mode
  std::string server_key_;  // set in pass-through mode
  std::string nonce_;
  std::string client_first_bare_;
  std::string expected_server_signature_;  // empty until handleServerFirst succeeded
};

// ---- password file (pgpool's pool_passwd formats) ----
// Lines "user:secret" where secret is "md5<32 lowercase hex>", "SCRAM-SHA-256$...",
// "TEXT<plain>" or a plain-text password (split at the first ':'). Lines whose first
// non-blank character is '#' and blank lines are ignored; a trailing '\r' is dropped.
// Errors ("<name>:<line>: ..."): no ':', empty user, empty password, duplicate user, bad md5 or
// SCRAM verifier, pgpool "AES..." encrypted passwords (not supported).
struct PasswordEntry {
  enum class Kind { kPlain, kMd5, kScram };
  Kind kind = Kind::kPlain;
  std::string secret;  // plain password, "md5..." hash, or the SCRAM verifier text
};

class PasswordFile {
 public:
  static std::expected<PasswordFile, AuthError> load(const std::string& path);
  static std::expected<PasswordFile, AuthError> parse(std::string_view text,
                                                      const std::string& name);
  const PasswordEntry* find(std::string_view user) const;
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, PasswordEntry> entries_;
};

// ---- hba-style rules (pool_hba.conf syntax: a subset of pg_hba.conf) ----
// "local|host|hostssl|hostnossl  database  user  [address]  method"; '#' starts a comment.
// database/user: "all", a name, a comma list ("a,b"); database may also be "sameuser".
// address: CIDR ("127.0.0.1/32", "::1/128"), "address mask" ("127.0.0.1 255.255.255.255"),
// or "all". Errors ("<name>:<line>: ..."): "+group", "@file", quoted names, samerole,
// replication, host names, samehost/samenet, methods other than trust, reject, password,
// md5, scram-sha-256 (ldap, pam, cert, ident, ...), authentication options.
enum class AuthMethod { kTrust, kReject, kPassword, kMd5, kScramSha256 };

struct HbaRule {
  enum class ConnType { kLocal, kHost, kHostSsl, kHostNoSsl };
  ConnType type = ConnType::kHost;
  std::vector<std::string> databases;  // empty = all; may contain the keyword "sameuser"
  std::vector<std::string> users;      // empty = all
  // Address as bytes + prefix length; family 4 or 6; family 0 = any (local, or "all").
  int family = 0;
  std::string address;  // 4 or 16 raw bytes
  int prefix_len = 0;
  AuthMethod method = AuthMethod::kTrust;
  int line = 0;
};

struct ClientInfo {
  std::string user;
  std::string database;
  // Textual IP ("127.0.0.1", "::1", "::ffff:10.0.0.1"); empty for unix socket.
  std::string address;
  bool ssl = false;
};

class HbaRules {
 public:
  static std::expected<HbaRules, AuthError> load(const std::string& path);
  static std::expected<HbaRules, AuthError> parse(std::string_view text, const std::string& name);
  // First matching rule's method; no match = kReject (as PostgreSQL).
  AuthMethod match(const ClientInfo& client) const;
  const std::vector<HbaRule>& rules() const { return rules_; }

 private:
  std::vector<HbaRule> rules_;
};

std::string_view methodName(AuthMethod m);

// base64 helpers (RFC 4648), used by SCRAM.
std::string base64Encode(std::string_view raw);
std::optional<std::string> base64Decode(std::string_view text);
// base64Decode is strict: padding required, no whitespace, nullopt on anything else.
// Cryptographically random bytes (OpenSSL RAND_bytes). If the RNG fails the process aborts:
// predictable nonces/salts would be a silent security hole.
std::string randomBytes(size_t n);

}  // namespace pgpilot::auth
