// PostgreSQL's "md5" password method (protocol section 55.2.3, AuthenticationMD5Password).

#include "auth/auth.h"
#include "auth/crypto.h"

namespace pgpilot::auth {

std::string md5PasswordHash(std::string_view password, std::string_view user) {
  std::string buf;
  buf.reserve(password.size() + user.size());
  buf.append(password).append(user);
  return "md5" + detail::md5Hex(buf);
}

std::string md5Response(std::string_view stored_hash, std::string_view salt4) {
  // The client sends "md5" + md5hex(md5hex(password + user) + salt); the stored hash already
  // holds the inner part behind its "md5" prefix.
  std::string_view inner = stored_hash;
  if (inner.starts_with("md5")) inner.remove_prefix(3);
  std::string buf;
  buf.reserve(inner.size() + salt4.size());
  buf.append(inner).append(salt4);
  return "md5" + detail::md5Hex(buf);
}

}  // namespace pgpilot::auth
