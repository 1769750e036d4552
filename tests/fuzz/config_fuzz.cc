// libFuzzer target for the configuration parser: lexer, key table, value parsing and
// validation. Includes are disabled so an input cannot make the fuzzer read files.
// Invariants checked on every successful load: SHOW output exists for every key and a
// config never differs from itself.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  pgpilot::config::LoadOptions options;
  options.follow_includes = false;
  auto result = pgpilot::config::loadString(text, "fuzz.conf", options);
  if (!result) {
    if (result.error().message.empty()) __builtin_trap();
    return 0;
  }
  const pgpilot::config::Config& config = *result->config;
  if (config.backends.empty()) __builtin_trap();
  if (!pgpilot::config::diffKeys(config, config).empty()) __builtin_trap();
  if (pgpilot::config::describeSettings(config).empty()) __builtin_trap();
  return 0;
}
