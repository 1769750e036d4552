#include "common/log.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pgpilot::log {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pgpilot-log-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    file_ = (dir_ / "pgpilot.log").string();
  }
  void TearDown() override {
    init(Level::kWarning, "");  // back to stderr before the file disappears
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::vector<std::string> lines() const {
    std::ifstream in(file_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  // The part after "<timestamp> UTC [pid] ".
  static std::string body(const std::string& line) {
    size_t pos = line.find("] ");
    return pos == std::string::npos ? line : line.substr(pos + 2);
  }

  std::filesystem::path dir_;
  std::string file_;
};

TEST_F(LogTest, LineFormat) {
  init(Level::kInfo, file_);
  write(Level::kWarning, "disk almost full");
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  // "2024-05-01 12:34:56.789 UTC [1234] WARNING: disk almost full"; '9' stands for a digit.
  std::string expected_tail = " UTC [" + std::to_string(getpid()) + "] WARNING: disk almost full";
  ASSERT_EQ(l[0].size(), 23 + expected_tail.size()) << l[0];
  std::string shape = l[0].substr(0, 23);
  for (char& c : shape) {
    if (c >= '0' && c <= '9') c = '9';
  }
  EXPECT_EQ(shape, "9999-99-99 99:99:99.999") << l[0];
  EXPECT_EQ(l[0].substr(23), expected_tail);
}

TEST_F(LogTest, ContextPartsAndOmissions) {
  init(Level::kDebug5, file_);
  Context full{42, 1, "alice", "shop", "psql"};
  write(Level::kLog, full, "connected");
  Context some{0, 2, "", "shop", ""};
  write(Level::kLog, some, "partial");
  Context none{};
  write(Level::kLog, none, "bare");
  Context node_zero{7, 0, "", "", ""};
  write(Level::kError, node_zero, "node zero is a node");
  auto l = lines();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(body(l[0]), "LOG: [s:42 n:1 u:alice d:shop a:psql] connected");
  EXPECT_EQ(body(l[1]), "LOG: [n:2 d:shop] partial");
  EXPECT_EQ(body(l[2]), "LOG: bare");
  EXPECT_EQ(body(l[3]), "ERROR: [s:7 n:0] node zero is a node");
}

TEST_F(LogTest, LevelNames) {
  init(Level::kDebug5, file_);
  const std::vector<std::pair<Level, std::string>> levels = {
      {Level::kDebug5, "DEBUG5"}, {Level::kDebug4, "DEBUG4"}, {Level::kDebug3, "DEBUG3"},
      {Level::kDebug2, "DEBUG2"}, {Level::kDebug1, "DEBUG1"}, {Level::kInfo, "INFO"},
      {Level::kNotice, "NOTICE"}, {Level::kLog, "LOG"},       {Level::kWarning, "WARNING"},
      {Level::kError, "ERROR"},   {Level::kFatal, "FATAL"},
  };
  for (const auto& [level, name] : levels) write(level, "x");
  auto l = lines();
  ASSERT_EQ(l.size(), levels.size());
  for (size_t i = 0; i < levels.size(); ++i) EXPECT_EQ(body(l[i]), levels[i].second + ": x");
}

TEST_F(LogTest, FilteringFollowsPostgresOrder) {
  init(Level::kWarning, file_);
  EXPECT_FALSE(enabled(Level::kDebug1));
  EXPECT_FALSE(enabled(Level::kInfo));
  EXPECT_FALSE(enabled(Level::kNotice));
  EXPECT_TRUE(enabled(Level::kWarning));
  EXPECT_TRUE(enabled(Level::kError));
  EXPECT_TRUE(enabled(Level::kLog));  // LOG ranks between ERROR and FATAL, as in PostgreSQL
  EXPECT_TRUE(enabled(Level::kFatal));
  write(Level::kDebug1, "hidden debug");
  write(Level::kInfo, "hidden info");
  write(Level::kNotice, "hidden notice");
  write(Level::kWarning, "shown warning");
  write(Level::kLog, "shown log");
  logf(Level::kError, "shown {} {}", "error", 7);
  logf(Level::kInfo, Context{1, -1, "", "", ""}, "hidden {}", 1);
  auto l = lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(body(l[0]), "WARNING: shown warning");
  EXPECT_EQ(body(l[1]), "LOG: shown log");
  EXPECT_EQ(body(l[2]), "ERROR: shown error 7");

  init(Level::kError, file_);
  write(Level::kWarning, "hidden warning");
  write(Level::kLog, "still shown log");
  init(Level::kFatal, file_);
  write(Level::kLog, "hidden log");
  l = lines();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(body(l[3]), "LOG: still shown log");
}

TEST_F(LogTest, SetLevelChangesFilterAndReinitAppends) {
  init(Level::kError, file_);
  write(Level::kInfo, "hidden");
  setLevel(Level::kDebug1);
  EXPECT_TRUE(enabled(Level::kDebug1));
  EXPECT_FALSE(enabled(Level::kDebug2));
  write(Level::kDebug1, "now shown");
  logf(Level::kDebug1, Context{5, -1, "bob", "", ""}, "n={}", 3);
  init(Level::kInfo, file_);  // re-init on the same file appends
  write(Level::kInfo, "after reinit");
  auto l = lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(body(l[0]), "DEBUG1: now shown");
  EXPECT_EQ(body(l[1]), "DEBUG1: [s:5 u:bob] n=3");
  EXPECT_EQ(body(l[2]), "INFO: after reinit");
}

TEST_F(LogTest, SwitchingSinks) {
  std::string other = (dir_ / "other.log").string();
  init(Level::kInfo, file_);
  write(Level::kInfo, "first");
  init(Level::kInfo, other);
  write(Level::kInfo, "second");
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(body(l[0]), "INFO: first");
  std::ifstream in(other);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(body(line), "INFO: second");
}

TEST_F(LogTest, UnopenableFileFallsBackToStderr) {
  // spdlog creates missing directories, so block it with a regular file in the way.
  std::ofstream(dir_ / "plain_file") << "x";
  ::testing::internal::CaptureStderr();
  init(Level::kInfo, (dir_ / "plain_file/x.log").string());
  write(Level::kWarning, "to stderr");
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("ERROR: could not open log file"), std::string::npos) << err;
  EXPECT_NE(err.find("WARNING: to stderr"), std::string::npos) << err;
}

TEST(ParseLevel, PgpoolNames) {
  Level l{};
  const std::vector<std::pair<std::string, Level>> names = {
      {"debug5", Level::kDebug5},   {"DEBUG4", Level::kDebug4}, {"debug3", Level::kDebug3},
      {"debug2", Level::kDebug2},   {"debug1", Level::kDebug1}, {"debug", Level::kDebug2},
      {"info", Level::kInfo},       {"notice", Level::kNotice}, {"log", Level::kLog},
      {"Warning", Level::kWarning}, {"error", Level::kError},   {"fatal", Level::kFatal},
      {"panic", Level::kFatal},
  };
  for (const auto& [name, level] : names) {
    ASSERT_TRUE(parseLevel(name, &l)) << name;
    EXPECT_EQ(l, level) << name;
  }
  EXPECT_FALSE(parseLevel("", &l));
  EXPECT_FALSE(parseLevel("debug6", &l));
  EXPECT_FALSE(parseLevel("warn", &l));
}

}  // namespace
}  // namespace pgpilot::log
