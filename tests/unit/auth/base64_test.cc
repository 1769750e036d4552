#include <gtest/gtest.h>

#include "auth/auth.h"

namespace pgpilot::auth {
namespace {

// RFC 4648 section 10 test vectors.
TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("n,,"), "biws");
}

TEST(Base64Test, DecodesRfc4648Vectors) {
  EXPECT_EQ(base64Decode(""), std::string());
  EXPECT_EQ(base64Decode("Zg=="), "f");
  EXPECT_EQ(base64Decode("Zm8="), "fo");
  EXPECT_EQ(base64Decode("Zm9vYmFy"), "foobar");
}

TEST(Base64Test, RoundTripsAllByteValues) {
  std::string raw;
  for (int i = 0; i < 256; ++i) raw.push_back(static_cast<char>(i));
  for (size_t len = 0; len <= raw.size(); len += 17) {
    std::string part = raw.substr(0, len);
    EXPECT_EQ(base64Decode(base64Encode(part)), part) << len;
  }
}

TEST(Base64Test, RejectsMalformedInput) {
  EXPECT_FALSE(base64Decode("Zg="));        // bad length
  EXPECT_FALSE(base64Decode("Zg"));         // no padding
  EXPECT_FALSE(base64Decode("Z==="));       // too much padding
  EXPECT_FALSE(base64Decode("Zg==Zg=="));   // padding in the middle
  EXPECT_FALSE(base64Decode("Zm9v YmFy"));  // whitespace
  EXPECT_FALSE(base64Decode("Zm9*"));       // invalid character
  EXPECT_FALSE(base64Decode("=Zm9"));
}

TEST(RandomBytesTest, ReturnsRequestedLengthAndVaries) {
  EXPECT_EQ(randomBytes(0).size(), 0u);
  EXPECT_EQ(randomBytes(18).size(), 18u);
  EXPECT_NE(randomBytes(32), randomBytes(32));
}

}  // namespace
}  // namespace pgpilot::auth
