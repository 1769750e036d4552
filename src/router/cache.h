#pragma once
// Per-worker classification cache keyed by statement shape (lexer.h). A statement whose
// shape was seen before skips libpg_query entirely: lex (~100 ns) + one probe.
//
// What is cached is the Classification, never the routing decision: function volatility,
// temp/unlogged tables, the configuration and the hint are applied afterwards by
// Policy::decide(), so a catalog or config change never leaves a stale decision behind.
//
// Structure: 4-way set-associative table with LRU replacement inside a set; fixed
// capacity (rounded up to a power of two, at least 4), allocated once. Statements that
// do not lex cleanly (lex_error) or do not parse are classified every time and never
// stored.
// Correctness rests on the shape hash: two shapes colliding on 64 bits is the only way
// to get another statement's classification (and a write sent to a standby then fails
// there with "cannot execute ... in a read-only transaction"; it cannot change data).
//
// Thread-safety: none, by design: one cache per worker thread, no locks.
//
//   ClassificationCache cache(4096);
//   ClassificationCache::Result r = cache.classify(sql);
//   Route route = policy.decide(*r.classification, r.shape.no_load_balance, sql, catalog);
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "router/classifier.h"
#include "router/lexer.h"

namespace pgpilot::router {

class ClassificationCache {
 public:
  struct Result {
    Shape shape;
    // Valid until the next call of classify() or insert() on this cache.
    const Classification* classification = nullptr;
    bool hit = false;
  };

  explicit ClassificationCache(size_t capacity = 4096);

  // Lexes `sql`, returns the cached classification for its shape, or classifies it with
  // libpg_query and stores the result.
  Result classify(std::string_view sql);

  // Lower-level access, keyed by shape (hash + hint flag).
  const Classification* find(const Shape& shape);
  const Classification* insert(const Shape& shape, Classification c);

  void clear();

  size_t capacity() const { return slots_.size(); }
  size_t size() const { return size_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t evictions() const { return evictions_; }

 private:
  static constexpr size_t kWays = 4;
  struct Slot {
    uint64_t key = 0;
    uint64_t last_used = 0;  // 0 = empty
    Classification value;
  };
  static uint64_t keyOf(const Shape& s) { return s.hash ^ (s.no_load_balance ? 0x9E37ULL : 0); }
  size_t setOf(uint64_t key) const { return static_cast<size_t>(key) & set_mask_; }

  std::vector<Slot> slots_;
  size_t set_mask_ = 0;
  size_t size_ = 0;
  uint64_t tick_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
  Classification uncached_;  // result for statements that are never cached
};

}  // namespace pgpilot::router
