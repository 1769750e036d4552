#include "config/values.h"

#include <gtest/gtest.h>

namespace pgpilot::config {
namespace {

TEST(ParseBool, AcceptsPostgresSpellings) {
  for (const char* t : {"on", "ON", "true", "True", "yes", "1", " on "}) {
    EXPECT_EQ(parseBool(t), std::optional<bool>(true)) << t;
  }
  for (const char* f : {"off", "OFF", "false", "no", "No", "0"}) {
    EXPECT_EQ(parseBool(f), std::optional<bool>(false)) << f;
  }
  for (const char* bad : {"", "2", "onn", "y", "enable", "of"}) {
    EXPECT_FALSE(parseBool(bad).has_value()) << bad;
  }
}

TEST(ParseQuantity, BareNumbersTakeTheBaseUnit) {
  EXPECT_EQ(parseQuantity("10", Unit::kSeconds), 10.0);
  EXPECT_EQ(parseQuantity("10", Unit::kMilliseconds), 10.0);
  EXPECT_EQ(parseQuantity("-3", Unit::kNone), -3.0);
  EXPECT_EQ(parseQuantity("+7", Unit::kNone), 7.0);
  EXPECT_EQ(parseQuantity(" 42 ", Unit::kNone), 42.0);
}

TEST(ParseQuantity, TimeUnits) {
  EXPECT_EQ(parseQuantity("10s", Unit::kMilliseconds), 10000.0);
  EXPECT_EQ(parseQuantity("5min", Unit::kSeconds), 300.0);
  EXPECT_EQ(parseQuantity("100ms", Unit::kMilliseconds), 100.0);
  EXPECT_EQ(parseQuantity("100ms", Unit::kSeconds), 0.1);
  EXPECT_EQ(parseQuantity("1h", Unit::kSeconds), 3600.0);
  EXPECT_EQ(parseQuantity("1d", Unit::kSeconds), 86400.0);
  EXPECT_EQ(parseQuantity("1500us", Unit::kMilliseconds), 1.5);
  EXPECT_EQ(parseQuantity("2 min", Unit::kMinutes), 2.0);
  EXPECT_EQ(parseQuantity("1.5s", Unit::kMilliseconds), 1500.0);
}

TEST(ParseQuantity, MemoryUnits) {
  EXPECT_EQ(parseQuantity("64MB", Unit::kBytes), 64.0 * 1024 * 1024);
  EXPECT_EQ(parseQuantity("1GB", Unit::kKilobytes), 1024.0 * 1024);
  EXPECT_EQ(parseQuantity("2048kB", Unit::kMegabytes), 2.0);
  EXPECT_EQ(parseQuantity("1TB", Unit::kMegabytes), 1024.0 * 1024);
  EXPECT_EQ(parseQuantity("512B", Unit::kBytes), 512.0);
}

TEST(ParseQuantity, RejectsWrongOrUnknownUnits) {
  EXPECT_FALSE(parseQuantity("10s", Unit::kNone).has_value());
  EXPECT_FALSE(parseQuantity("10MB", Unit::kSeconds).has_value());
  EXPECT_FALSE(parseQuantity("10s", Unit::kBytes).has_value());
  EXPECT_FALSE(parseQuantity("10S", Unit::kSeconds).has_value());  // units are case-sensitive
  EXPECT_FALSE(parseQuantity("10mb", Unit::kBytes).has_value());
  EXPECT_FALSE(parseQuantity("10 sec", Unit::kSeconds).has_value());
  EXPECT_FALSE(parseQuantity("10s5", Unit::kSeconds).has_value());
}

TEST(ParseQuantity, RejectsGarbage) {
  for (const char* bad : {"", " ", "abc", "1-2", "--1", "s", "inf", "nan", "1e999", "0x"}) {
    EXPECT_FALSE(parseQuantity(bad, Unit::kSeconds).has_value()) << bad;
  }
}

TEST(ParseQuantity, IntegersFollowStrtolBaseZero) {
  EXPECT_EQ(parseQuantity("0x1F", Unit::kNone), 31.0);
  EXPECT_EQ(parseQuantity("0777", Unit::kNone), 511.0);  // octal, like unix_socket_permissions
  EXPECT_EQ(parseQuantity("1e3", Unit::kNone), 1000.0);
  EXPECT_FALSE(parseQuantity("09", Unit::kNone).has_value());
}

TEST(ParseInteger, RoundsAndChecksRange) {
  EXPECT_EQ(parseInteger("2.5", Unit::kNone), 2);  // rint: ties to even
  EXPECT_EQ(parseInteger("2.6", Unit::kNone), 3);
  EXPECT_EQ(parseInteger("1.5s", Unit::kMilliseconds), 1500);
  EXPECT_EQ(parseInteger("9223372036854775807", Unit::kNone).has_value(), false);
  EXPECT_FALSE(parseInteger("99999999999999999999", Unit::kNone).has_value());
  EXPECT_EQ(parseInteger("4611686018427387904", Unit::kNone), 4611686018427387904LL);
}

TEST(FormatMilliseconds, PicksLargestExactUnit) {
  EXPECT_EQ(formatMilliseconds(0), "0");
  EXPECT_EQ(formatMilliseconds(1500), "1500ms");
  EXPECT_EQ(formatMilliseconds(5000), "5s");
  EXPECT_EQ(formatMilliseconds(300000), "5min");
  EXPECT_EQ(formatMilliseconds(3600000), "1h");
  EXPECT_EQ(formatMilliseconds(86400000), "1d");
  EXPECT_EQ(formatMilliseconds(90000), "90s");
}

}  // namespace
}  // namespace pgpilot::config
