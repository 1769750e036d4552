#include <gtest/gtest.h>

#include "auth/auth.h"

namespace pgpilot::auth {
namespace {

// RFC 7677 section 3 example (user "user", password "pencil").
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Verifiers computed independently with Python (hashlib.pbkdf2_hmac + hmac):
//   salted = pbkdf2_hmac('sha256', pw, salt, 4096)
//   stored = sha256(hmac(salted, b'Client Key')); server = hmac(salted, b'Server Key')
constexpr std::string_view kPencilVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
// password "s3cr3t!", salt "pgpilot-salt-16b", 4096 iterations.
constexpr std::string_view kSecretVerifier =
    "SCRAM-SHA-256$4096:cGdwaWxvdC1zYWx0LTE2Yg==$L7oe3wTAS7oduecZMd1qy0cyJnqYII/CfvD8pmmQwOY=:"
    "iLq1X1WrgD3kv3tMfGX/jZU5Nk6WQvLTMM+UIeVeW7o=";
// ClientKey for "s3cr3t!" with the salt above.
constexpr std::string_view kSecretClientKeyB64 = "K1cbVlkZ1KBLM/VimPAN0xda1k1/EvfTBPQoXP2MkSI=";

ScramVerifier mustParse(std::string_view text) {
  auto v = parseScramVerifier(text);
  EXPECT_TRUE(v.has_value()) << text;
  return v.value_or(ScramVerifier{});
}

// Runs a full exchange; returns the server's error (empty on success).
struct ExchangeResult {
  std::string server_error;
  std::string client_error;
  std::string client_key;
};

ExchangeResult exchange(ScramClient& client, ScramServer& server) {
  ExchangeResult r;
  auto server_first = server.handleClientFirst(client.clientFirst());
  if (!server_first) return {server_first.error().message, "", ""};
  auto client_final = client.handleServerFirst(*server_first);
  if (!client_final) return {"", client_final.error().message, ""};
  auto server_final = server.handleClientFinal(*client_final);
  if (!server_final) return {server_final.error().message, "", ""};
  auto ok = client.verifyServerFinal(*server_final);
  if (!ok) return {"", ok.error().message, ""};
  r.client_key = server.clientKey();
  return r;
}

TEST(ScramVerifierTest, MakeMatchesIndependentPythonComputation) {
  ScramVerifier v = makeScramVerifier("s3cr3t!", 4096, "pgpilot-salt-16b");
  EXPECT_EQ(formatScramVerifier(v), kSecretVerifier);
  EXPECT_EQ(formatScramVerifier(
                makeScramVerifier("pencil", 4096, *base64Decode("W22ZaJ0SNY7soEsUEjb6gQ=="))),
            kPencilVerifier);
}

TEST(ScramVerifierTest, ParsesPostgresFormat) {
  ScramVerifier v = mustParse(kSecretVerifier);
  EXPECT_EQ(v.iterations, 4096);
  EXPECT_EQ(v.salt, "pgpilot-salt-16b");
  EXPECT_EQ(base64Encode(v.stored_key), "L7oe3wTAS7oduecZMd1qy0cyJnqYII/CfvD8pmmQwOY=");
  EXPECT_EQ(base64Encode(v.server_key), "iLq1X1WrgD3kv3tMfGX/jZU5Nk6WQvLTMM+UIeVeW7o=");
}

TEST(ScramVerifierTest, FormatParseRoundTrip) {
  ScramVerifier v = makeScramVerifier("another password", 10000);
  EXPECT_EQ(v.salt.size(), 16u);
  EXPECT_EQ(v.stored_key.size(), 32u);
  std::string text = formatScramVerifier(v);
  EXPECT_TRUE(text.starts_with("SCRAM-SHA-256$10000:"));
  ScramVerifier back = mustParse(text);
  EXPECT_EQ(back.iterations, v.iterations);
  EXPECT_EQ(back.salt, v.salt);
  EXPECT_EQ(back.stored_key, v.stored_key);
  EXPECT_EQ(back.server_key, v.server_key);
  EXPECT_EQ(formatScramVerifier(back), text);
}

TEST(ScramVerifierTest, RandomSaltDiffers) {
  EXPECT_NE(makeScramVerifier("pw").salt, makeScramVerifier("pw").salt);
}

TEST(ScramVerifierTest, RejectsMalformed) {
  const std::string key = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
  const std::string good = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key;
  EXPECT_TRUE(parseScramVerifier(good));
  for (const std::string& bad : {
           std::string(""),
           std::string("md53175bce1d3201d16594cebf9d7eb3f9d"),
           "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key,
           "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key,
           "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key,
           "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key,
           "SCRAM-SHA-256$4096:$" + key + ":" + key,                          // empty salt
           "SCRAM-SHA-256$4096:W22Z*J0SNY7soEsUEjb6gQ==$" + key + ":" + key,  // bad b64
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":Zm9v",    // short key
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key,              // one key
           "SCRAM-SHA-256$4096W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key,   // no colon
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=="),
       }) {
    EXPECT_FALSE(parseScramVerifier(bad)) << bad;
  }
}

TEST(ScramClientTest, Rfc7677TestVector) {
  ScramClient client("pencil");
  client.setUser("user");
  client.setNonceForTesting(std::string(kRfcClientNonce));
  EXPECT_EQ(client.clientFirst(), kRfcClientFirst);
  auto final_msg = client.handleServerFirst(kRfcServerFirst);
  ASSERT_TRUE(final_msg) << final_msg.error().message;
  EXPECT_EQ(*final_msg, kRfcClientFinal);
  EXPECT_TRUE(client.verifyServerFinal(kRfcServerFinal));
  EXPECT_FALSE(client.verifyServerFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
}

TEST(ScramServerTest, Rfc7677TestVector) {
  ScramServer server(mustParse(kPencilVerifier));
  server.setNonceForTesting(std::string(kRfcServerNonce));
  auto first = server.handleClientFirst(kRfcClientFirst);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, kRfcServerFirst);
  auto final_msg = server.handleClientFinal(kRfcClientFinal);
  ASSERT_TRUE(final_msg) << final_msg.error().message;
  EXPECT_EQ(*final_msg, kRfcServerFinal);
  // ClientKey = HMAC(SaltedPassword, "Client Key"), from the Python computation.
  EXPECT_EQ(base64Encode(server.clientKey()), "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=");
}

TEST(ScramClientTest, DefaultClientFirstHasEmptyUserAndRandomNonce) {
  ScramClient a("pw");
  ScramClient b("pw");
  std::string fa = a.clientFirst();
  std::string fb = b.clientFirst();
  ASSERT_TRUE(fa.starts_with("n,,n=,r=")) << fa;
  EXPECT_NE(fa, fb);
  std::string nonce = fa.substr(8);
  EXPECT_EQ(nonce.size(), 24u);  // base64 of 18 random bytes, as libpq
  EXPECT_TRUE(base64Decode(nonce));
}

TEST(ScramClientTest, EscapesUserName) {
  ScramClient c("pw");
  c.setUser("a,b=c");
  c.setNonceForTesting("abc");
  EXPECT_EQ(c.clientFirst(), "n,,n=a=2Cb=3Dc,r=abc");
}

TEST(ScramExchangeTest, RightPasswordSucceeds) {
  ScramServer server(mustParse(kSecretVerifier));
  ScramClient client("s3cr3t!");
  ExchangeResult r = exchange(client, server);
  EXPECT_EQ(r.server_error, "");
  EXPECT_EQ(r.client_error, "");
  EXPECT_EQ(base64Encode(r.client_key), kSecretClientKeyB64);
}

TEST(ScramExchangeTest, WrongPasswordFails) {
  ScramServer server(mustParse(kSecretVerifier));
  ScramClient client("s3cr3t?");
  ExchangeResult r = exchange(client, server);
  EXPECT_NE(r.server_error.find("wrong proof"), std::string::npos) << r.server_error;
  EXPECT_TRUE(server.clientKey().empty());
}

TEST(ScramExchangeTest, ClientRejectsForgedServerSignature) {
  // A server that does not know the verifier's ServerKey cannot produce v=.
  ScramVerifier forged = mustParse(kSecretVerifier);
  forged.server_key = std::string(32, 'x');
  ScramServer server(forged);
  ScramClient client("s3cr3t!");
  ExchangeResult r = exchange(client, server);
  EXPECT_EQ(r.server_error, "");
  EXPECT_NE(r.client_error.find("invalid server signature"), std::string::npos) << r.client_error;
}

// A client that supports channel binding but thinks we do not sends "y,,"; its c= is then
// base64("y,,") = "eSws". Proof and signature computed independently with Python from the
// RFC 7677 inputs with that c= value.
TEST(ScramServerTest, AcceptsYFlagWithMatchingChannelBindingData) {
  ScramServer server(mustParse(kPencilVerifier));
  server.setNonceForTesting(std::string(kRfcServerNonce));
  ASSERT_TRUE(server.handleClientFirst("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  auto final_msg = server.handleClientFinal(
      "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=");
  ASSERT_TRUE(final_msg) << final_msg.error().message;
  EXPECT_EQ(*final_msg, "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=");
}

TEST(ScramServerTest, RejectsChannelBindingDataNotMatchingHeader) {
  ScramServer server(mustParse(kPencilVerifier));
  server.setNonceForTesting(std::string(kRfcServerNonce));
  ASSERT_TRUE(server.handleClientFirst("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  auto r = server.handleClientFinal(kRfcClientFinal);  // valid proof, but c=biws
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("channel-binding data"), std::string::npos);
}

TEST(ScramExchangeTest, PassThroughWithClientKeyAndServerKey) {
  ScramVerifier verifier = mustParse(kSecretVerifier);
  ScramServer front(verifier);
  ScramClient user_client("s3cr3t!");
  ExchangeResult r = exchange(user_client, front);
  ASSERT_EQ(r.server_error, "");
  ASSERT_EQ(front.clientKey().size(), 32u);

  ScramServer backend(verifier);
  ScramClient proxy = ScramClient::fromKeys(front.clientKey(), verifier.server_key);
  ExchangeResult r2 = exchange(proxy, backend);
  EXPECT_EQ(r2.server_error, "");
  EXPECT_EQ(r2.client_error, "");
}

TEST(ScramExchangeTest, PassThroughFailsAgainstDifferentVerifier) {
  ScramVerifier verifier = mustParse(kSecretVerifier);
  // Same password, different salt: keys from the first verifier do not fit.
  ScramServer backend(makeScramVerifier("s3cr3t!", 4096, "other-salt-16byt"));
  ScramClient proxy =
      ScramClient::fromKeys(*base64Decode(kSecretClientKeyB64), verifier.server_key);
  ExchangeResult r = exchange(proxy, backend);
  EXPECT_NE(r.server_error, "");
}

// ---- malformed messages: server side ----

class ScramServerMalformedTest : public ::testing::Test {
 protected:
  ScramServerMalformedTest() : server_(mustParse(kSecretVerifier)) {
    server_.setNonceForTesting("SN");
  }
  std::string firstError(std::string_view msg) {
    auto r = server_.handleClientFirst(msg);
    return r ? std::string() : r.error().message;
  }
  // A fresh exchange per message: any error ends an exchange.
  static std::string finalError(std::string_view msg) {
    ScramServer server(mustParse(kSecretVerifier));
    server.setNonceForTesting("SN");
    auto first = server.handleClientFirst("n,,n=,r=CN");
    EXPECT_TRUE(first);
    auto r = server.handleClientFinal(msg);
    return r ? std::string() : r.error().message;
  }
  ScramServer server_;
};

TEST_F(ScramServerMalformedTest, ChannelBindingRejected) {
  EXPECT_NE(firstError("p=tls-server-end-point,,n=,r=abc").find("channel binding is not supported"),
            std::string::npos);
}

TEST_F(ScramServerMalformedTest, ClientFirstErrors) {
  for (std::string_view msg :
       {"", "n", "n,", "x,,n=,r=abc", "n,,", "n,,r=abc", "n,,n=", "n,,n=,", "n,,n=,x=abc",
        "n,,n=,r=", "n,,n=,r=a b", "n,,n=,r=abc,garbage", "n,,n=,m=ext,r=abc"}) {
    ScramServer server(mustParse(kSecretVerifier));
    auto r = server.handleClientFirst(msg);
    EXPECT_FALSE(r) << "accepted: " << msg;
  }
  EXPECT_NE(firstError("n,a=admin,n=,r=abc").find("authorization identity"), std::string::npos);
}

TEST_F(ScramServerMalformedTest, MandatoryExtensionRejected) {
  EXPECT_NE(firstError("n,,n=,m=foo,r=abc").find("mandatory extensions"), std::string::npos);
}

TEST_F(ScramServerMalformedTest, ClientFinalErrors) {
  const std::string proof = "p=" + base64Encode(std::string(32, 'a'));
  EXPECT_NE(finalError("c=biws,r=CNSN").find("lacks \"p=\""), std::string::npos);
  EXPECT_NE(finalError("r=CNSN," + proof).find("lacks \"c=\""), std::string::npos);
  EXPECT_NE(finalError("c=biws," + proof).find("lacks \"r=\""), std::string::npos);
  EXPECT_NE(finalError("c=bi*s,r=CNSN," + proof).find("bad base64"), std::string::npos);
  EXPECT_NE(finalError("c=eSws,r=CNSN," + proof).find("channel-binding"), std::string::npos);
  EXPECT_NE(finalError("c=biws,r=CNXX," + proof).find("nonce mismatch"), std::string::npos);
  EXPECT_NE(finalError("c=biws,r=CN," + proof).find("nonce mismatch"), std::string::npos);
  EXPECT_NE(finalError("c=biws,r=CNSN,p=!!!!").find("bad base64"), std::string::npos);
  EXPECT_NE(finalError("c=biws,r=CNSN,p=Zm9v").find("wrong length"), std::string::npos);
  EXPECT_NE(finalError("c=biws,r=CNSN," + proof).find("wrong proof"), std::string::npos);
  EXPECT_NE(finalError("").find("lacks"), std::string::npos);
}

TEST_F(ScramServerMalformedTest, OutOfOrderCallsRejected) {
  EXPECT_FALSE(server_.handleClientFinal("c=biws,r=x,p=Zm9v"));
  ScramServer s2(mustParse(kSecretVerifier));
  ASSERT_TRUE(s2.handleClientFirst("n,,n=,r=abc"));
  EXPECT_FALSE(s2.handleClientFirst("n,,n=,r=abc"));
  // A failed exchange cannot be continued.
  EXPECT_FALSE(s2.handleClientFinal("c=biws,r=abc,p=Zm9v"));
}

TEST_F(ScramServerMalformedTest, InvalidVerifierRejected) {
  ScramServer server(ScramVerifier{});
  auto r = server.handleClientFirst("n,,n=,r=abc");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("invalid stored verifier"), std::string::npos);
}

// ---- malformed messages: client side ----

std::string serverFirstError(std::string_view msg) {
  ScramClient c("pw");
  c.setNonceForTesting("CN");
  c.clientFirst();
  auto r = c.handleServerFirst(msg);
  return r ? std::string() : r.error().message;
}

TEST(ScramClientMalformedTest, ServerFirstErrors) {
  EXPECT_EQ(serverFirstError("r=CNSN,s=c2FsdA==,i=4096"), "");
  EXPECT_NE(serverFirstError("r=XXSN,s=c2FsdA==,i=4096").find("nonce mismatch"), std::string::npos);
  EXPECT_NE(serverFirstError("r=CN,s=c2FsdA==,i=4096").find("nonce mismatch"), std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,s=c2F*dA==,i=4096").find("salt"), std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,s=,i=4096").find("salt"), std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,s=c2FsdA==,i=0").find("iteration"), std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,s=c2FsdA==,i=x").find("iteration"), std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,s=c2FsdA==,i=99999999999").find("iteration"),
            std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,i=4096,s=c2FsdA==").find("s="), std::string::npos);
  EXPECT_NE(serverFirstError("r=CNSN,s=c2FsdA==").find("malformed"), std::string::npos);
  EXPECT_NE(serverFirstError("m=x,r=CNSN,s=c2FsdA==,i=1").find("mandatory"), std::string::npos);
  EXPECT_NE(serverFirstError("e=other-error").find("other-error"), std::string::npos);
  EXPECT_NE(serverFirstError("").find("malformed"), std::string::npos);
}

TEST(ScramClientMalformedTest, ServerFinalErrors) {
  ScramClient c("pw");
  EXPECT_FALSE(c.verifyServerFinal("v=Zm9v"));  // before handleServerFirst
  c.setNonceForTesting("CN");
  c.clientFirst();
  ASSERT_TRUE(c.handleServerFirst("r=CNSN,s=c2FsdA==,i=1"));
  auto e = c.verifyServerFinal("e=invalid-proof");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("invalid-proof"), std::string::npos);
  EXPECT_FALSE(c.verifyServerFinal("v=!!!!"));
  EXPECT_FALSE(c.verifyServerFinal("x=Zm9v"));
  EXPECT_FALSE(c.verifyServerFinal(""));
}

TEST(ScramClientMalformedTest, HandleServerFirstBeforeClientFirst) {
  ScramClient c("pw");
  EXPECT_FALSE(c.handleServerFirst("r=CNSN,s=c2FsdA==,i=1"));
}

}  // namespace
}  // namespace pgpilot::auth
