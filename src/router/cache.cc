#include "router/cache.h"

#include <bit>
#include <utility>

namespace pgpilot::router {

ClassificationCache::ClassificationCache(size_t capacity) {
  size_t n = std::bit_ceil(capacity < kWays ? kWays : capacity);
  slots_.resize(n);
  set_mask_ = n / kWays - 1;
}

const Classification* ClassificationCache::find(const Shape& shape) {
  uint64_t key = keyOf(shape);
  Slot* set = &slots_[setOf(key) * kWays];
  for (size_t i = 0; i < kWays; ++i) {
    if (set[i].last_used != 0 && set[i].key == key) {
      set[i].last_used = ++tick_;
      ++hits_;
      return &set[i].value;
    }
  }
  ++misses_;
  return nullptr;
}

const Classification* ClassificationCache::insert(const Shape& shape, Classification c) {
  uint64_t key = keyOf(shape);
  Slot* set = &slots_[setOf(key) * kWays];
  Slot* victim = &set[0];
  for (size_t i = 0; i < kWays; ++i) {
    if (set[i].last_used != 0 && set[i].key == key) {  // replace in place
      victim = &set[i];
      break;
    }
    if (set[i].last_used < victim->last_used) victim = &set[i];
  }
  if (victim->last_used == 0) {
    ++size_;
  } else if (victim->key != key) {
    ++evictions_;
  }
  victim->key = key;
  victim->last_used = ++tick_;
  victim->value = std::move(c);
  return &victim->value;
}

ClassificationCache::Result ClassificationCache::classify(std::string_view sql) {
  Result r;
  r.shape = lexShape(sql);
  if (!r.shape.lex_error) {
    if (const Classification* c = find(r.shape)) {
      r.classification = c;
      r.hit = true;
      return r;
    }
  } else {
    ++misses_;
  }
  Classification c = router::classify(sql);
  // Not stored: unterminated literals/comments (the hash covers part of the text) and
  // parse errors (see Classification::parse_error).
  if (r.shape.lex_error || c.parse_error) {
    uncached_ = std::move(c);
    r.classification = &uncached_;
    return r;
  }
  r.classification = insert(r.shape, std::move(c));
  return r;
}

void ClassificationCache::clear() {
  for (Slot& s : slots_) s = Slot{};
  size_ = 0;
}

}  // namespace pgpilot::router
