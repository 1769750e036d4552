// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it: see
// src/backend/libpq/auth-scram.c (server) and src/interfaces/libpq/fe-auth-scram.c (client).
// No channel binding (gs2 header "n,," or "y,,"), user name in client-first ignored,
// nonces of 18 random bytes in base64, salts of 16 bytes.

#include <charconv>
#include <climits>

#include "auth/auth.h"
#include "auth/crypto.h"

namespace pgpilot::auth {
namespace {

constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";
constexpr size_t kKeyLen = 32;       // SHA-256 output
constexpr size_t kRawNonceLen = 18;  // SCRAM_RAW_NONCE_LEN in PostgreSQL
constexpr size_t kSaltLen = 16;      // SCRAM_DEFAULT_SALT_LEN in PostgreSQL

std::unexpected<AuthError> fail(std::string msg) {
  return std::unexpected(AuthError{std::move(msg)});
}

// One "x=value" attribute of a SCRAM message.
struct Attr {
  char name = 0;
  std::string_view value;
};

// Splits a SCRAM message at ',' (values never contain ',': nonces exclude it, base64 has
// none, saslnames escape it as "=2C").
std::vector<std::string_view> splitComma(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(',', start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::optional<Attr> parseAttr(std::string_view token) {
  if (token.size() < 2 || token[1] != '=') return std::nullopt;
  char c = token[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return std::nullopt;
  return Attr{c, token.substr(2)};
}

// RFC 5802: printable ASCII except ','.
bool validNonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::optional<int> parsePositiveInt(std::string_view s) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

std::string randomNonce() {
  return base64Encode(randomBytes(kRawNonceLen));
}

// RFC 5802 saslname: ',' -> "=2C", '=' -> "=3D".
std::string escapeSaslName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool validVerifier(const ScramVerifier& v) {
  return v.iterations > 0 && !v.salt.empty() && v.stored_key.size() == kKeyLen &&
         v.server_key.size() == kKeyLen;
}

}  // namespace

// ---- verifier ----

std::optional<ScramVerifier> parseScramVerifier(std::string_view text) {
  if (!text.starts_with(kVerifierPrefix)) return std::nullopt;
  text.remove_prefix(kVerifierPrefix.size());
  size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  std::string_view iter_salt = text.substr(0, dollar);
  std::string_view keys = text.substr(dollar + 1);
  size_t colon1 = iter_salt.find(':');
  size_t colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) return std::nullopt;
  auto iterations = parsePositiveInt(iter_salt.substr(0, colon1));
  auto salt = base64Decode(iter_salt.substr(colon1 + 1));
  auto stored = base64Decode(keys.substr(0, colon2));
  auto server = base64Decode(keys.substr(colon2 + 1));
  if (!iterations || !salt || !stored || !server) return std::nullopt;
  ScramVerifier v{*iterations, std::move(*salt), std::move(*stored), std::move(*server)};
  if (!validVerifier(v)) return std::nullopt;
  return v;
}

ScramVerifier makeScramVerifier(std::string_view password, int iterations, std::string_view salt) {
  ScramVerifier v;
  v.iterations = iterations > 0 ? iterations : 4096;
  v.salt = salt.empty() ? randomBytes(kSaltLen) : std::string(salt);
  std::string salted = detail::pbkdf2Sha256(password, v.salt, v.iterations);
  v.stored_key = detail::sha256(detail::hmacSha256(salted, "Client Key"));
  v.server_key = detail::hmacSha256(salted, "Server Key");
  return v;
}

std::string formatScramVerifier(const ScramVerifier& v) {
  return std::string(kVerifierPrefix) + std::to_string(v.iterations) + ":" + base64Encode(v.salt) +
         "$" + base64Encode(v.stored_key) + ":" + base64Encode(v.server_key);
}

// ---- server ----

ScramServer::ScramServer(ScramVerifier verifier) : verifier_(std::move(verifier)) {}

std::expected<std::string, AuthError> ScramServer::handleClientFirst(
    std::string_view client_first) {
  if (state_ != State::kStart) return fail("SCRAM: unexpected client-first-message");
  state_ = State::kFailed;  // until this message is accepted
  if (!validVerifier(verifier_)) return fail("SCRAM: invalid stored verifier");

  // gs2-header: gs2-cbind-flag "," [authzid] ","
  if (client_first.starts_with("p=") || client_first.starts_with("p,")) {
    return fail("SCRAM: channel binding is not supported (client sent \"p=\")");
  }
  if (!client_first.starts_with("n,") && !client_first.starts_with("y,")) {
    return fail("SCRAM: malformed client-first-message (bad gs2 header)");
  }
  if (client_first.size() < 3 || client_first[2] != ',') {
    if (client_first.substr(2).starts_with("a=")) {
      return fail("SCRAM: authorization identity is not supported");
    }
    return fail("SCRAM: malformed client-first-message (bad gs2 header)");
  }
  gs2_header_ = std::string(client_first.substr(0, 3));
  client_first_bare_ = std::string(client_first.substr(3));

  auto parts = splitComma(client_first_bare_);
  auto user = parseAttr(parts[0]);
  if (!user || user->name != 'n') return fail("SCRAM: client-first-message lacks \"n=\"");
  if (parts.size() < 2) return fail("SCRAM: client-first-message lacks \"r=\"");
  auto nonce = parseAttr(parts[1]);
  if (nonce && nonce->name == 'm') return fail("SCRAM: mandatory extensions are not supported");
  if (!nonce || nonce->name != 'r') return fail("SCRAM: client-first-message lacks \"r=\"");
  if (!validNonce(nonce->value)) return fail("SCRAM: invalid client nonce");
  for (size_t i = 2; i < parts.size(); ++i) {
    if (!parseAttr(parts[i])) return fail("SCRAM: malformed client-first-message");
  }
  client_nonce_ = std::string(nonce->value);
  if (server_nonce_.empty()) server_nonce_ = randomNonce();

  server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + base64Encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = State::kSentServerFirst;
  return server_first_;
}

std::expected<std::string, AuthError> ScramServer::handleClientFinal(
    std::string_view client_final) {
  if (state_ != State::kSentServerFirst) return fail("SCRAM: unexpected client-final-message");
  state_ = State::kFailed;

  size_t proof_pos = client_final.rfind(",p=");
  if (proof_pos == std::string_view::npos) return fail("SCRAM: client-final-message lacks \"p=\"");
  std::string_view without_proof = client_final.substr(0, proof_pos);
  std::string_view proof_b64 = client_final.substr(proof_pos + 3);

  auto parts = splitComma(without_proof);
  auto cbind = parseAttr(parts[0]);
  if (!cbind || cbind->name != 'c') return fail("SCRAM: client-final-message lacks \"c=\"");
  auto cbind_raw = base64Decode(cbind->value);
  if (!cbind_raw) return fail("SCRAM: malformed channel-binding data (bad base64)");
  if (*cbind_raw != gs2_header_) {
    return fail("SCRAM: channel-binding data does not match the client-first gs2 header");
  }
  if (parts.size() < 2) return fail("SCRAM: client-final-message lacks \"r=\"");
  auto nonce = parseAttr(parts[1]);
  if (!nonce || nonce->name != 'r') return fail("SCRAM: client-final-message lacks \"r=\"");
  if (nonce->value != client_nonce_ + server_nonce_) return fail("SCRAM: nonce mismatch");
  for (size_t i = 2; i < parts.size(); ++i) {
    if (!parseAttr(parts[i])) return fail("SCRAM: malformed client-final-message");
  }
  auto proof = base64Decode(proof_b64);
  if (!proof) return fail("SCRAM: malformed client proof (bad base64)");
  if (proof->size() != kKeyLen) return fail("SCRAM: client proof has the wrong length");

  std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  std::string client_signature = detail::hmacSha256(verifier_.stored_key, auth_message);
  std::string client_key = detail::xorBytes(*proof, client_signature);
  if (!detail::secureEquals(detail::sha256(client_key), verifier_.stored_key)) {
    return fail("SCRAM: password authentication failed (wrong proof)");
  }
  client_key_ = std::move(client_key);
  state_ = State::kDone;
  return "v=" + base64Encode(detail::hmacSha256(verifier_.server_key, auth_message));
}

// ---- client ----

ScramClient::ScramClient(std::string password) : password_(std::move(password)) {}

ScramClient ScramClient::fromKeys(std::string client_key, std::string server_key) {
  ScramClient c;
  c.pass_through_ = true;
  c.client_key_ = std::move(client_key);
  c.server_key_ = std::move(server_key);
  return c;
}

std::string ScramClient::clientFirst() {
  if (nonce_.empty()) nonce_ = randomNonce();
  client_first_bare_ = "n=" + escapeSaslName(user_) + ",r=" + nonce_;
  expected_server_signature_.clear();
  return "n,," + client_first_bare_;
}

std::expected<std::string, AuthError> ScramClient::handleServerFirst(
    std::string_view server_first) {
  if (client_first_bare_.empty() || !expected_server_signature_.empty()) {
    return fail("SCRAM: unexpected server-first-message");
  }
  auto parts = splitComma(server_first);
  auto first = parseAttr(parts[0]);
  if (first && first->name == 'm') return fail("SCRAM: mandatory extensions are not supported");
  if (first && first->name == 'e') {
    return fail("SCRAM: server reported error: " + std::string(first->value));
  }
  if (!first || first->name != 'r' || parts.size() < 3) {
    return fail("SCRAM: malformed server-first-message");
  }
  std::string_view nonce = first->value;
  if (!nonce.starts_with(nonce_) || nonce.size() <= nonce_.size() || !validNonce(nonce)) {
    return fail("SCRAM: nonce mismatch in server-first-message");
  }
  auto salt_attr = parseAttr(parts[1]);
  auto iter_attr = parseAttr(parts[2]);
  if (!salt_attr || salt_attr->name != 's') return fail("SCRAM: server-first lacks \"s=\"");
  if (!iter_attr || iter_attr->name != 'i') return fail("SCRAM: server-first lacks \"i=\"");
  auto salt = base64Decode(salt_attr->value);
  if (!salt || salt->empty()) return fail("SCRAM: malformed salt in server-first-message");
  auto iterations = parsePositiveInt(iter_attr->value);
  if (!iterations) return fail("SCRAM: malformed iteration count in server-first-message");
  for (size_t i = 3; i < parts.size(); ++i) {
    if (!parseAttr(parts[i])) return fail("SCRAM: malformed server-first-message");
  }

  std::string client_key = client_key_;
  std::string server_key = server_key_;
  if (!pass_through_) {
    std::string salted = detail::pbkdf2Sha256(password_, *salt, *iterations);
    client_key = detail::hmacSha256(salted, "Client Key");
    server_key = detail::hmacSha256(salted, "Server Key");
  }
  // "biws" = base64("n,,"): we never use channel binding.
  std::string without_proof = "c=biws,r=" + std::string(nonce);
  std::string auth_message =
      client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  std::string stored_key = detail::sha256(client_key);
  std::string proof = detail::xorBytes(client_key, detail::hmacSha256(stored_key, auth_message));
  expected_server_signature_ = detail::hmacSha256(server_key, auth_message);
  return without_proof + ",p=" + base64Encode(proof);
}

std::expected<void, AuthError> ScramClient::verifyServerFinal(std::string_view server_final) {
  if (expected_server_signature_.empty()) return fail("SCRAM: unexpected server-final-message");
  auto parts = splitComma(server_final);
  auto attr = parseAttr(parts[0]);
  if (attr && attr->name == 'e') {
    return fail("SCRAM: server reported error: " + std::string(attr->value));
  }
  if (!attr || attr->name != 'v') return fail("SCRAM: server-final-message lacks \"v=\"");
  auto signature = base64Decode(attr->value);
  if (!signature) return fail("SCRAM: malformed server signature (bad base64)");
  if (!detail::secureEquals(*signature, expected_server_signature_)) {
    return fail("SCRAM: invalid server signature");
  }
  return {};
}

}  // namespace pgpilot::auth
