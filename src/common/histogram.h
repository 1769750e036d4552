// LatencyHistogram: a fixed-bucket histogram of durations for /metrics.
//
// Purpose: count how long something took (a statement through the proxy, from the client's
// message to the server's ReadyForQuery) without locks: one instance per worker, bumped
// only by that worker with relaxed atomic adds; any thread may read a snapshot (the
// counters are individually exact, the snapshot as a whole is approximate, which is what
// Prometheus expects from a scrape).
//
//   hist.observe(std::chrono::steady_clock::now() - started);
//   auto snap = hist.snapshot();  // buckets[i] counts durations <= kBoundsSeconds[i]
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace pgpilot::common {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 15> kBoundsSeconds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                            0.005,  0.01,    0.025,  0.05,  0.1,
                                                            0.25,   0.5,     1.0,    2.5,   10.0};
  static constexpr size_t kBuckets = kBoundsSeconds.size() + 1;  // the last is +Inf

  struct Snapshot {
    std::array<uint64_t, kBuckets> buckets{};  // per bucket, not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
    void add(const Snapshot& o) {
      for (size_t i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
      count += o.count;
      sum_seconds += o.sum_seconds;
    }
  };

  void observe(std::chrono::nanoseconds d) {
    const auto ns = d.count() < 0 ? 0 : static_cast<uint64_t>(d.count());
    size_t i = 0;
    while (i < kBoundsSeconds.size() && static_cast<double>(ns) > kBoundsSeconds[i] * 1e9) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }

  Snapshot snapshot() const {
    Snapshot s;
    for (size_t i = 0; i < kBuckets; ++i) {
      s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
      s.count += s.buckets[i];
    }
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace pgpilot::common
