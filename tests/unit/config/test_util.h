// Helpers shared by the config tests: a temporary directory that removes itself, and a
// loader for small snippets that always adds one backend so validation passes.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"

namespace pgpilot::config::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pgpilot-config-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `text` to `name` (relative to the directory, parents created); returns the path.
  std::string write(const std::string& name, const std::string& text) const {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

inline constexpr const char* kBackend = "backend_hostname0 = 'db0'\n";

// Loads `text` plus one backend.
inline std::expected<LoadResult, ConfigError> load(const std::string& text) {
  return loadString(std::string(kBackend) + text, "test.conf");
}

// Loads `text` plus one backend and returns the config; fails the test on error.
inline std::shared_ptr<const Config> mustLoad(const std::string& text) {
  auto r = load(text);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().str());
  if (!r) return std::make_shared<const Config>();
  return r->config;
}

// The error message of a load that must fail ("" and a test failure otherwise).
inline std::string loadError(const std::string& text) {
  auto r = load(text);
  EXPECT_FALSE(r.has_value()) << "loaded without error:\n" << text;
  return r ? std::string() : r.error().str();
}

}  // namespace pgpilot::config::testing
