#include "auth/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

namespace pgpilot::auth::detail {
namespace {

// OpenSSL digest failures mean a broken library/provider setup (e.g. FIPS without MD5),
// not bad input; there is no sensible way to continue authenticating.
[[noreturn]] void cryptoFailure(const char* what) {
  std::fprintf(stderr, "pgpilot: OpenSSL %s failed\n", what);
  std::abort();
}

std::string digest(const EVP_MD* md, std::string_view data, const char* what) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) cryptoFailure(what);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string md5Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string raw = digest(EVP_md5(), data, "MD5");
  std::string hex;
  hex.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0x0f]);
  }
  return hex;
}

std::string sha256(std::string_view data) {
  return digest(EVP_sha256(), data, "SHA-256");
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
           &len) == nullptr) {
    cryptoFailure("HMAC-SHA-256");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations) {
  std::string out(32, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    cryptoFailure("PBKDF2-HMAC-SHA-256");
  }
  return out;
}

std::string xorBytes(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    out[i] = static_cast<char>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
  }
  return out;
}

bool secureEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace pgpilot::auth::detail
