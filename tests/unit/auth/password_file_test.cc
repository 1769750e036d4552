#include <gtest/gtest.h>

#include "auth/auth.h"

namespace pgpilot::auth {
namespace {

using Kind = PasswordEntry::Kind;

constexpr std::string_view kVerifier =
    "SCRAM-SHA-256$4096:cGdwaWxvdC1zYWx0LTE2Yg==$L7oe3wTAS7oduecZMd1qy0cyJnqYII/CfvD8pmmQwOY=:"
    "iLq1X1WrgD3kv3tMfGX/jZU5Nk6WQvLTMM+UIeVeW7o=";

std::string parseError(std::string_view text) {
  auto r = PasswordFile::parse(text, "pool_passwd");
  return r ? std::string("<ok>") : r.error().message;
}

TEST(PasswordFileTest, ParsesEveryFormat) {
  std::string text = std::string("# comment\n") +
                     "\n"
                     "alice:md54a0a68b43b6cd5cf266fa02f196e2371\n"
                     "bob:" +
                     std::string(kVerifier) +
                     "\n"
                     "carol:TEXTplain:with:colons\n"
                     "dave:just plain\r\n"
                     "   # indented comment\n"
                     "erin:md5short\n"
                     "frank:TEXTmd54a0a68b43b6cd5cf266fa02f196e2371";  // no final newline
  auto file = PasswordFile::parse(text, "pool_passwd");
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->size(), 6u);

  const PasswordEntry* alice = file->find("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->kind, Kind::kMd5);
  EXPECT_EQ(alice->secret, "md54a0a68b43b6cd5cf266fa02f196e2371");

  const PasswordEntry* bob = file->find("bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->kind, Kind::kScram);
  EXPECT_EQ(bob->secret, kVerifier);

  const PasswordEntry* carol = file->find("carol");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->kind, Kind::kPlain);
  EXPECT_EQ(carol->secret, "plain:with:colons");

  const PasswordEntry* dave = file->find("dave");
  ASSERT_NE(dave, nullptr);
  EXPECT_EQ(dave->kind, Kind::kPlain);
  EXPECT_EQ(dave->secret, "just plain");  // '\r' dropped

  ASSERT_NE(file->find("erin"), nullptr);
  EXPECT_EQ(file->find("erin")->kind, Kind::kPlain);  // "md5" + not 32 chars: plain text
  EXPECT_EQ(file->find("erin")->secret, "md5short");

  ASSERT_NE(file->find("frank"), nullptr);
  EXPECT_EQ(file->find("frank")->kind, Kind::kPlain);  // TEXT forces plain
  EXPECT_EQ(file->find("frank")->secret, "md54a0a68b43b6cd5cf266fa02f196e2371");

  EXPECT_EQ(file->find("nobody"), nullptr);
  EXPECT_EQ(file->find("Alice"), nullptr);
}

TEST(PasswordFileTest, EmptyFile) {
  auto file = PasswordFile::parse("", "x");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->size(), 0u);
}

TEST(PasswordFileTest, ErrorsNameFileAndLine) {
  EXPECT_EQ(parseError("alice:pw\nno colon here\n"), "pool_passwd:2: expected \"user:secret\"");
  EXPECT_EQ(parseError("\n\n:pw\n"), "pool_passwd:3: empty user name");
  EXPECT_EQ(parseError("alice:pw\nalice:other\n"), "pool_passwd:2: duplicate user \"alice\"");
  EXPECT_EQ(parseError("alice:\n"), "pool_passwd:1: empty password for user \"alice\"");
  EXPECT_EQ(parseError("alice:TEXT\n"), "pool_passwd:1: empty password for user \"alice\"");
}

TEST(PasswordFileTest, AesRejected) {
  std::string e = parseError("# x\nalice:AESx8Hq3pTb0pWnBQQQ1Nx8xg==\n");
  EXPECT_TRUE(e.starts_with("pool_passwd:2: AES-encrypted passwords are not supported")) << e;
}

TEST(PasswordFileTest, BadScramVerifierRejected) {
  std::string e = parseError("bob:SCRAM-SHA-256$4096:c2FsdA==$Zm9v:YmFy\n");
  EXPECT_EQ(e, "pool_passwd:1: invalid SCRAM-SHA-256 verifier for user \"bob\"");
}

TEST(PasswordFileTest, BadMd5HashRejected) {
  std::string e = parseError("alice:md54A0A68B43B6CD5CF266FA02F196E2371\n");
  EXPECT_TRUE(e.starts_with("pool_passwd:1: malformed md5 hash for user \"alice\"")) << e;
  e = parseError("alice:md54a0a68b43b6cd5cf266fa02f196e237z\n");
  EXPECT_TRUE(e.starts_with("pool_passwd:1: malformed md5 hash")) << e;
}

TEST(PasswordFileTest, LoadFromFile) {
  std::string path = std::string(PGPILOT_TEST_DATA) + "/auth/pool_passwd";
  auto file = PasswordFile::load(path);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->size(), 3u);
  ASSERT_NE(file->find("postgres"), nullptr);
  EXPECT_EQ(file->find("postgres")->secret, md5PasswordHash("postgres", "postgres"));
  ASSERT_NE(file->find("scram_user"), nullptr);
  EXPECT_EQ(file->find("scram_user")->kind, Kind::kScram);
  ASSERT_NE(file->find("text_user"), nullptr);
  EXPECT_EQ(file->find("text_user")->secret, "hunter2");
}

TEST(PasswordFileTest, LoadErrorNamesPath) {
  std::string path = std::string(PGPILOT_TEST_DATA) + "/auth/bad_pool_passwd";
  auto file = PasswordFile::load(path);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().message, path +
                                      ":3: AES-encrypted passwords are not supported "
                                      "(user \"enc\"); store md5, SCRAM or TEXT secrets");
  auto missing = PasswordFile::load("/nonexistent/pool_passwd");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().message.starts_with("/nonexistent/pool_passwd: cannot read"))
      << missing.error().message;
}

}  // namespace
}  // namespace pgpilot::auth
