// Internal crypto helpers for the auth module (thin wrappers over OpenSSL 3).
//
// Not part of the public API: only src/auth/*.cc include this. All functions take and
// return raw bytes in std::string.
#pragma once

#include <string>
#include <string_view>

namespace pgpilot::auth::detail {

std::string md5Hex(std::string_view data);
std::string sha256(std::string_view data);
std::string hmacSha256(std::string_view key, std::string_view data);
std::string pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations);
std::string xorBytes(std::string_view a, std::string_view b);  // a.size() == b.size()
// Constant-time equality (sizes compared first; sizes are not secret).
bool secureEquals(std::string_view a, std::string_view b);

}  // namespace pgpilot::auth::detail
