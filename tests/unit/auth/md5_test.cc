#include <gtest/gtest.h>

#include "auth/auth.h"

namespace pgpilot::auth {
namespace {

// Expected values computed independently: `echo -n <text> | md5sum`.
TEST(Md5Test, PasswordHashMatchesPostgresStoredForm) {
  // echo -n postgrespostgres | md5sum
  EXPECT_EQ(md5PasswordHash("postgres", "postgres"), "md53175bce1d3201d16594cebf9d7eb3f9d");
  // echo -n secretalice | md5sum
  EXPECT_EQ(md5PasswordHash("secret", "alice"), "md54a0a68b43b6cd5cf266fa02f196e2371");
}

TEST(Md5Test, PasswordHashDependsOnUser) {
  EXPECT_NE(md5PasswordHash("secret", "alice"), md5PasswordHash("secret", "bob"));
}

TEST(Md5Test, ResponseHashesInnerHexWithSalt) {
  // echo -n "4a0a68b43b6cd5cf266fa02f196e2371abcd" | md5sum
  std::string stored = md5PasswordHash("secret", "alice");
  EXPECT_EQ(md5Response(stored, "abcd"), "md5c90bcafc0a2b54511742383e34d5dc9d");
}

TEST(Md5Test, ResponseWithBinarySalt) {
  std::string stored = md5PasswordHash("secret", "alice");
  std::string salt("\x00\xff\x10\x80", 4);
  std::string r = md5Response(stored, salt);
  EXPECT_EQ(r.size(), 35u);
  EXPECT_TRUE(r.starts_with("md5"));
  EXPECT_NE(r, md5Response(stored, "abcd"));
}

}  // namespace
}  // namespace pgpilot::auth
