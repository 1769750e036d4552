// ErrorClassCounts: ErrorResponses sent to clients, counted by SQLSTATE class.
//
// Purpose: /metrics exports pgpilot_errors_total{class="23"}: every ErrorResponse a client
// received through pgpilot, whether the server produced it (forwarded) or pgpilot did
// (57P03 no primary, 08P01 protocol violation, 28P01 bad password, ...). The class is the
// SQLSTATE's first two characters (PostgreSQL Appendix A). One instance per worker, bumped
// only on that worker's thread with plain increments (no atomics, no locks on the query
// path); a scrape reads it by posting to the worker, like the pool statistics.
//
//   counts.count("23505");          // worker thread
//   for (auto [cls, n] : counts.nonZero()) ...   // worker thread: "23", 1
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgpilot::common {

class ErrorClassCounts {
 public:
  // Label for a code whose first two characters are not [0-9A-Z] (or that is too short).
  static constexpr std::string_view kInvalidClass = "invalid";

  void count(std::string_view sqlstate) { ++counts_[slot(sqlstate)]; }

  // The classes counted so far, in class order ("08" < "23" < "invalid").
  std::vector<std::pair<std::string, uint64_t>> nonZero() const {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (size_t i = 0; i < kClasses; ++i) {
      if (counts_[i] != 0)
        out.emplace_back(std::string{kDigits[i / 36], kDigits[i % 36]}, counts_[i]);
    }
    if (counts_[kClasses] != 0) out.emplace_back(std::string(kInvalidClass), counts_[kClasses]);
    return out;
  }

 private:
  static constexpr std::string_view kDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  static constexpr size_t kClasses = 36 * 36;

  static int digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return -1;
  }
  static size_t slot(std::string_view code) {
    if (code.size() < 2) return kClasses;
    const int a = digit(code[0]);
    const int b = digit(code[1]);
    if (a < 0 || b < 0) return kClasses;
    return static_cast<size_t>(a) * 36 + static_cast<size_t>(b);
  }

  std::array<uint64_t, kClasses + 1> counts_{};
};

}  // namespace pgpilot::common
