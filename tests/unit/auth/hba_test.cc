#include <gtest/gtest.h>

#include "auth/auth.h"

namespace pgpilot::auth {
namespace {

using ConnType = HbaRule::ConnType;

HbaRules mustParse(std::string_view text) {
  auto r = HbaRules::parse(text, "pool_hba.conf");
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : HbaRules{};
}

std::string parseError(std::string_view text) {
  auto r = HbaRules::parse(text, "pool_hba.conf");
  return r ? std::string("<ok>") : r.error().message;
}

ClientInfo tcp(std::string user, std::string db, std::string addr, bool ssl = false) {
  return ClientInfo{std::move(user), std::move(db), std::move(addr), ssl};
}

TEST(HbaTest, ParsesFields) {
  HbaRules rules = mustParse(
      "# comment\n"
      "\n"
      "local all all trust\n"
      "host app,reports alice,bob 192.168.1.0/24 scram-sha-256  # comment\n"
      "hostnossl all all ::1/128 md5\n");
  ASSERT_EQ(rules.rules().size(), 3u);
  const HbaRule& local = rules.rules()[0];
  EXPECT_EQ(local.type, ConnType::kLocal);
  EXPECT_TRUE(local.databases.empty());
  EXPECT_TRUE(local.users.empty());
  EXPECT_EQ(local.family, 0);
  EXPECT_EQ(local.method, AuthMethod::kTrust);
  EXPECT_EQ(local.line, 3);

  const HbaRule& host = rules.rules()[1];
  EXPECT_EQ(host.type, ConnType::kHost);
  EXPECT_EQ(host.databases, (std::vector<std::string>{"app", "reports"}));
  EXPECT_EQ(host.users, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(host.family, 4);
  EXPECT_EQ(host.address, std::string("\xc0\xa8\x01\x00", 4));
  EXPECT_EQ(host.prefix_len, 24);
  EXPECT_EQ(host.method, AuthMethod::kScramSha256);
  EXPECT_EQ(host.line, 4);

  const HbaRule& v6 = rules.rules()[2];
  EXPECT_EQ(v6.type, ConnType::kHostNoSsl);
  EXPECT_EQ(v6.family, 6);
  EXPECT_EQ(v6.address.size(), 16u);
  EXPECT_EQ(v6.prefix_len, 128);
  EXPECT_EQ(v6.method, AuthMethod::kMd5);
}

TEST(HbaTest, FirstMatchWins) {
  HbaRules rules = mustParse(
      "host all alice 127.0.0.1/32 reject\n"
      "host all all 127.0.0.1/32 md5\n"
      "host all all 0.0.0.0/0 password\n");
  EXPECT_EQ(rules.match(tcp("alice", "db", "127.0.0.1")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("bob", "db", "127.0.0.1")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("bob", "db", "10.1.2.3")), AuthMethod::kPassword);
}

TEST(HbaTest, NoMatchRejects) {
  HbaRules rules = mustParse("host app all 127.0.0.1/32 trust\n");
  EXPECT_EQ(rules.match(tcp("bob", "other", "127.0.0.1")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("bob", "app", "127.0.0.2")), AuthMethod::kReject);
  EXPECT_EQ(HbaRules{}.match(tcp("bob", "app", "127.0.0.1")), AuthMethod::kReject);
}

TEST(HbaTest, Ipv4Cidr) {
  HbaRules rules = mustParse("host all all 10.20.0.0/14 trust\n");
  EXPECT_EQ(rules.match(tcp("u", "d", "10.20.0.1")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "10.23.255.255")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "10.24.0.0")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("u", "d", "10.19.255.255")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("u", "d", "not-an-ip")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("u", "d", "::1")), AuthMethod::kReject);
  // IPv4-mapped IPv6 client address matches an IPv4 rule.
  EXPECT_EQ(rules.match(tcp("u", "d", "::ffff:10.21.3.4")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "::ffff:10.24.3.4")), AuthMethod::kReject);
}

TEST(HbaTest, HostBitsInRuleAddressAreIgnored) {
  HbaRules rules = mustParse("host all all 192.168.1.77/24 trust\n");
  EXPECT_EQ(rules.match(tcp("u", "d", "192.168.1.5")), AuthMethod::kTrust);
}

TEST(HbaTest, ZeroPrefixMatchesWholeFamily) {
  HbaRules rules = mustParse("host all all 0.0.0.0/0 md5\nhost all all ::/0 password\n");
  EXPECT_EQ(rules.match(tcp("u", "d", "8.8.8.8")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("u", "d", "2001:db8::1")), AuthMethod::kPassword);
}

TEST(HbaTest, Ipv6Cidr) {
  HbaRules rules = mustParse("host all all 2001:db8:abcd::/49 trust\n");
  EXPECT_EQ(rules.match(tcp("u", "d", "2001:db8:abcd::1")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "2001:db8:abcd:7fff::1")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "2001:db8:abcd:8000::1")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("u", "d", "127.0.0.1")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("u", "d", "fe80::1%eth0")), AuthMethod::kReject);
}

TEST(HbaTest, Ipv6RuleMatchesMappedIpv4Client) {
  HbaRules rules = mustParse("host all all ::ffff:10.0.0.0/104 trust\n");
  EXPECT_EQ(rules.match(tcp("u", "d", "10.9.9.9")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "11.9.9.9")), AuthMethod::kReject);
}

TEST(HbaTest, AddressMaskForm) {
  HbaRules rules = mustParse(
      "host all all 127.0.0.1 255.255.255.255 md5\n"
      "host all all 10.0.0.0 255.0.0.0 trust\n"
      "host all all fd00:: ffff:ff00:: password\n");
  ASSERT_EQ(rules.rules().size(), 3u);
  EXPECT_EQ(rules.rules()[0].prefix_len, 32);
  EXPECT_EQ(rules.rules()[1].prefix_len, 8);
  EXPECT_EQ(rules.rules()[2].prefix_len, 24);
  EXPECT_EQ(rules.match(tcp("u", "d", "127.0.0.1")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("u", "d", "10.200.0.1")), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "fd00:ff::1")), AuthMethod::kPassword);
  EXPECT_EQ(rules.match(tcp("u", "d", "127.0.0.2")), AuthMethod::kReject);
}

TEST(HbaTest, AllAddress) {
  HbaRules rules = mustParse("host all all all md5\n");
  EXPECT_EQ(rules.match(tcp("u", "d", "1.2.3.4")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("u", "d", "::1")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(ClientInfo{"u", "d", "", false}), AuthMethod::kReject);  // not local
}

TEST(HbaTest, ConnectionTypes) {
  HbaRules rules = mustParse(
      "local all all trust\n"
      "hostssl all all 0.0.0.0/0 scram-sha-256\n"
      "hostnossl all all 0.0.0.0/0 md5\n");
  EXPECT_EQ(rules.match(ClientInfo{"u", "d", "", false}), AuthMethod::kTrust);
  EXPECT_EQ(rules.match(tcp("u", "d", "1.2.3.4", true)), AuthMethod::kScramSha256);
  EXPECT_EQ(rules.match(tcp("u", "d", "1.2.3.4", false)), AuthMethod::kMd5);

  HbaRules ssl_only = mustParse("hostssl all all 0.0.0.0/0 trust\n");
  EXPECT_EQ(ssl_only.match(tcp("u", "d", "1.2.3.4", false)), AuthMethod::kReject);
  EXPECT_EQ(ssl_only.match(ClientInfo{"u", "d", "", true}), AuthMethod::kReject);

  HbaRules host = mustParse("host all all 0.0.0.0/0 password\n");
  EXPECT_EQ(host.match(tcp("u", "d", "1.2.3.4", true)), AuthMethod::kPassword);
  EXPECT_EQ(host.match(tcp("u", "d", "1.2.3.4", false)), AuthMethod::kPassword);
  EXPECT_EQ(host.match(ClientInfo{"u", "d", "", false}), AuthMethod::kReject);

  HbaRules local = mustParse("local all all trust\n");
  EXPECT_EQ(local.match(tcp("u", "d", "127.0.0.1")), AuthMethod::kReject);
}

TEST(HbaTest, CommaListsAndAll) {
  HbaRules rules = mustParse(
      "host db1,db2 u1,u2 0.0.0.0/0 md5\n"
      "host db3,all u3 0.0.0.0/0 password\n");
  EXPECT_EQ(rules.match(tcp("u1", "db2", "1.1.1.1")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("u2", "db1", "1.1.1.1")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("u3", "db1", "1.1.1.1")), AuthMethod::kPassword);  // "all" in list
  EXPECT_EQ(rules.match(tcp("u3", "anything", "1.1.1.1")), AuthMethod::kPassword);
  EXPECT_EQ(rules.match(tcp("u1", "db3", "1.1.1.1")), AuthMethod::kReject);
  EXPECT_EQ(rules.match(tcp("U1", "db1", "1.1.1.1")), AuthMethod::kReject);  // case-sensitive
  EXPECT_TRUE(rules.rules()[1].databases.empty());
}

TEST(HbaTest, SameUser) {
  HbaRules rules = mustParse("host sameuser all 0.0.0.0/0 md5\n");
  EXPECT_EQ(rules.match(tcp("alice", "alice", "1.1.1.1")), AuthMethod::kMd5);
  EXPECT_EQ(rules.match(tcp("alice", "bob", "1.1.1.1")), AuthMethod::kReject);
}

TEST(HbaTest, MethodNames) {
  HbaRules rules = mustParse(
      "local all all trust\nlocal all all reject\nlocal all all password\n"
      "local all all md5\nlocal all all scram-sha-256\n");
  ASSERT_EQ(rules.rules().size(), 5u);
  const char* names[] = {"trust", "reject", "password", "md5", "scram-sha-256"};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(methodName(rules.rules()[i].method), names[i]);
}

TEST(HbaTest, Errors) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"\nfoo all all md5\n", "pool_hba.conf:2: invalid connection type \"foo\""},
      {"hostgssenc all all 0.0.0.0/0 md5",
       "pool_hba.conf:1: connection type \"hostgssenc\" is not supported"},
      {"host all all 0.0.0.0/0 ldap",
       "pool_hba.conf:1: authentication method \"ldap\" is not supported"},
      {"host all all 0.0.0.0/0 pam",
       "pool_hba.conf:1: authentication method \"pam\" is not supported"},
      {"hostssl all all 0.0.0.0/0 cert",
       "pool_hba.conf:1: authentication method \"cert\" is not supported"},
      {"host all all 0.0.0.0/0 ident",
       "pool_hba.conf:1: authentication method \"ident\" is not supported"},
      {"host all all 0.0.0.0/0 md6", "pool_hba.conf:1: invalid authentication method \"md6\""},
      {"host all all localhost md5",
       "pool_hba.conf:1: host names (\"localhost\") are not supported; use an IP address"},
      {"host all all .example.com md5",
       "pool_hba.conf:1: host names (\".example.com\") are not supported; use an IP address"},
      {"host all all samehost md5", "pool_hba.conf:1: \"samehost\" is not supported"},
      {"host all +admins 0.0.0.0/0 md5",
       "pool_hba.conf:1: group membership (\"+admins\") is not supported"},
      {"host @dbs all 0.0.0.0/0 md5",
       "pool_hba.conf:1: file inclusion (\"@dbs\") is not supported"},
      {"host \"db\" all 0.0.0.0/0 md5", "pool_hba.conf:1: quoted names (\"db\") are not supported"},
      {"host replication all 0.0.0.0/0 md5", "pool_hba.conf:1: \"replication\" is not supported"},
      {"host all sameuser 0.0.0.0/0 md5",
       "pool_hba.conf:1: \"sameuser\" is only valid as database"},
      {"host db1,,db2 all 0.0.0.0/0 md5", "pool_hba.conf:1: empty name in list \"db1,,db2\""},
      {"host all all 10.0.0.0/33 md5",
       "pool_hba.conf:1: invalid CIDR mask in address \"10.0.0.0/33\""},
      {"host all all ::1/129 md5", "pool_hba.conf:1: invalid CIDR mask in address \"::1/129\""},
      {"host all all 10.0.0.0/ md5", "pool_hba.conf:1: invalid CIDR mask in address \"10.0.0.0/\""},
      {"host all all 10.0.0.0/8x md5",
       "pool_hba.conf:1: invalid CIDR mask in address \"10.0.0.0/8x\""},
      {"host all all 10.0.0.300/8 md5", "pool_hba.conf:1: invalid IP address \"10.0.0.300/8\""},
      {"host all all 10.0.0.1 md5",
       "pool_hba.conf:1: address \"10.0.0.1\" needs a /prefix or a mask"},
      {"host all all 10.0.0.1 ::1 md5",
       "pool_hba.conf:1: address \"10.0.0.1\" needs a /prefix or a mask of the same family"},
      {"host all all 10.0.0.0 255.0.255.0 md5",
       "pool_hba.conf:1: non-contiguous netmask \"255.0.255.0\""},
      {"host all all 10.0.0.0/8",
       "pool_hba.conf:1: expected \"host database user address method\""},
      {"host all all 10.0.0.0 255.0.0.0", "pool_hba.conf:1: missing authentication method"},
      {"host all all md5", "pool_hba.conf:1: expected \"host database user address method\""},
      {"local all md5", "pool_hba.conf:1: expected \"local database user method\""},
      {"host all all 10.0.0.0/8 md5 foo=bar",
       "pool_hba.conf:1: authentication options (\"foo=bar\") are not supported"},
      {"local all all 127.0.0.1/32 md5",
       "pool_hba.conf:1: invalid authentication method \"127.0.0.1/32\""},
      {"local all all \\\n trust", "pool_hba.conf:1: line continuation is not supported"},
  };
  for (const Case& c : cases) EXPECT_EQ(parseError(c.text), c.error) << c.text;
}

TEST(HbaTest, ErrorLineNumberAfterValidRules) {
  EXPECT_EQ(parseError("local all all trust\n# c\n\nhost all all 0.0.0.0/0 trust\nhost all all "
                       "0.0.0.0/0 pam\n"),
            "pool_hba.conf:5: authentication method \"pam\" is not supported");
}

TEST(HbaTest, LoadFromFile) {
  std::string path = std::string(PGPILOT_TEST_DATA) + "/auth/pool_hba.conf";
  auto rules = HbaRules::load(path);
  ASSERT_TRUE(rules) << rules.error().message;
  ASSERT_EQ(rules->rules().size(), 4u);
  EXPECT_EQ(rules->rules()[1].line, 4);
  EXPECT_EQ(rules->match(tcp("alice", "app", "10.1.1.1", true)), AuthMethod::kScramSha256);
  EXPECT_EQ(rules->match(tcp("alice", "app", "10.1.1.1", false)), AuthMethod::kReject);
  EXPECT_EQ(rules->match(tcp("bob", "x", "::1")), AuthMethod::kMd5);
  EXPECT_EQ(rules->match(ClientInfo{"bob", "x", "", false}), AuthMethod::kTrust);
  auto missing = HbaRules::load("/nonexistent/pool_hba.conf");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().message.starts_with("/nonexistent/pool_hba.conf: cannot read"));
}

}  // namespace
}  // namespace pgpilot::auth
